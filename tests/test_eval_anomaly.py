"""The anomaly evaluator: injected oddities rank high, scores become embeddings.fits columns."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table
from test_eval_probe import make_galaxies

import astroclr
from astroclr.evaluate.context import EvalContext, run_evaluators
from astroclr.plugin.specs import AstroclrError
from astroclr.runs.rundir import RunDir

ODD = np.array([3, 50, 77, 120, 199, 230])


def toy(tmp_path, flagged: bool = False):
    """Two tight classes of representations and six galaxies away from both, which also carry
    a bright off-centre blob in their pixels, as a merger's companion or an artefact does."""
    g = make_galaxies(n=240)
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(2, 16)) * 3.0
    reps = (centres[g.labels()] + rng.normal(size=(240, 16)) * 0.5).astype(np.float32)
    reps[ODD] = rng.normal(size=(len(ODD), 16)) * 3.0
    images = np.asarray(g.images)
    yy, xx = np.mgrid[:8, :8]
    galaxy = np.exp(-((yy - 3.5) ** 2 + (xx - 3.5) ** 2) / 4.0)       # centred, symmetric
    companion = np.exp(-((yy - 6.5) ** 2 + (xx - 6.0) ** 2) / 1.0)
    images[:] = galaxy + rng.normal(0.0, 0.03, size=images.shape)
    images[ODD] += companion
    if flagged:
        flags = np.zeros(240, np.int64)
        flags[ODD] = 1
        flags[[0, 1]] = -1  # unknown: left out of the measure
        g.catalog["flagged"] = flags
    return EvalContext(g, reps, tmp_path / "figures")


@pytest.mark.parametrize("components", [["representation"], ["pixels", "asymmetry"]])
def test_injected_oddities_rank_highest(tmp_path, registry, components):
    res = run_evaluators(registry, ["anomaly"], {"anomaly": {"components": components,
                                                             "top": 8}},
                         toy(tmp_path))["anomaly"]
    ranked = np.argsort(-res.columns["anomaly_score"])
    assert set(ODD) <= set(ranked[:8])
    assert {t["id"] for t in res.metrics["top"][:6]} == {1000 + int(r) for r in ODD}
    assert res.figures[0].name == "anomaly.png" and res.figures[0].stat().st_size > 1000


def test_the_score_and_each_component_are_per_galaxy_columns(tmp_path, registry):
    res = run_evaluators(registry, ["anomaly"], {}, toy(tmp_path))["anomaly"]
    assert set(res.columns) == {"anomaly_score", "anomaly_representation", "anomaly_pixels",
                                "anomaly_asymmetry"}
    assert all(v.shape == (240,) and np.isfinite(v).all() for v in res.columns.values())
    assert res.metrics["components"] == ["pixels", "asymmetry"]
    assert res.columns["anomaly_score"][ODD].min() > np.median(res.columns["anomaly_score"])
    assert "| 1 | " in res.markdown and "truth" not in res.metrics  # no flagged column here


def test_known_oddities_are_measured_next_to_the_pixel_baselines(tmp_path, registry):
    res = run_evaluators(registry, ["anomaly"], {}, toy(tmp_path, flagged=True))["anomaly"]
    truth = res.metrics["truth"]
    assert truth["flagged"] == 6 and truth["known"] == 238
    by = truth["by_score"]
    assert {"PCA + isolation forest (pixel baseline)", "pixels alone", "asymmetry alone",
            "representation alone"} <= set(by)
    fused = by["fused (pixels + asymmetry)"]
    assert fused["auroc"] > 0.95 and fused["precision_at_flagged"] >= 0.5
    assert "| fused (pixels + asymmetry) |" in res.markdown


def test_a_truth_column_that_is_not_there_or_not_flags_is_an_error(tmp_path, registry):
    ctx = toy(tmp_path, flagged=True)
    with pytest.raises(AstroclrError, match="truth column 'mergers' is not in the catalogue"):
        run_evaluators(registry, ["anomaly"], {"anomaly": {"truth": "mergers"}}, ctx)
    ctx.galaxies.catalog["counts"] = np.arange(240)
    with pytest.raises(AstroclrError, match="must hold 1 .an oddity., 0 .not. or -1"):
        run_evaluators(registry, ["anomaly"], {"anomaly": {"truth": "counts"}}, ctx)


def test_add_columns_keeps_the_table_and_refuses_bad_columns(tmp_path):
    rundir = RunDir(tmp_path)
    reps = np.arange(12, dtype=np.float32).reshape(4, 3)
    Table({"id": ["a", "b", "c", "d"], "representation": reps}).write(rundir.embeddings)
    rundir.add_columns({"score": np.array([0.1, 0.2, 0.3, 0.4])})
    rundir.add_columns({"score": np.array([1.0, 2.0, 3.0, 4.0])})  # re-evaluated: replaced
    table = rundir.read_embeddings()
    assert list(table["id"]) == ["a", "b", "c", "d"] and list(table["score"]) == [1, 2, 3, 4]
    np.testing.assert_array_equal(table["representation"], reps)
    with pytest.raises(AstroclrError, match="'representation' cannot be replaced"):
        rundir.add_columns({"representation": np.zeros(4)})
    with pytest.raises(AstroclrError, match="3 values for 4 galaxies"):
        rundir.add_columns({"x": np.zeros(3)})


def test_a_run_writes_the_scores_into_embeddings_fits(tmp_path):
    run = astroclr.run(out=tmp_path / "run", dataset="sdss", backbone="smallcnn", epochs=1,
                       evaluators=["anomaly"], progress=False,
                       sets=("dataset.limit=60", "dataset.bin=4", "train.max_steps=2"))
    table = run.embeddings()
    assert {"anomaly_score", "anomaly_pixels", "anomaly_asymmetry"} <= set(table.colnames)
    assert table["representation"].shape == (60, 64)
    report = (run.dir / "report.md").read_text()
    assert "anomaly.png" in report and "known oddities (`flagged`" in report
