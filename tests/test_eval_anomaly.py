"""The anomaly evaluator: injected oddities rank high, scores become embeddings.fits columns."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table
from test_eval_probe import make_galaxies

import astroclr
from astroclr.evaluate.context import EvalContext, run_evaluators
from astroclr.plugin.specs import AstroclrError
from astroclr.session.rundir import RunDir

ODD = np.array([3, 50, 77, 120, 199, 230])


def toy(tmp_path):
    """Two tight classes of representations, and six galaxies away from both (each somewhere
    else), as oddities sit away from the manifold of ordinary galaxies."""
    g = make_galaxies(n=240)
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(2, 16)) * 3.0
    reps = (centres[g.labels()] + rng.normal(size=(240, 16)) * 0.5).astype(np.float32)
    reps[ODD] = rng.normal(size=(len(ODD), 16)) * 3.0
    return EvalContext(g, reps, tmp_path / "figures")


@pytest.mark.parametrize("score", ["knn", "iforest"])
def test_injected_oddities_rank_highest(tmp_path, registry, score):
    res = run_evaluators(registry, ["anomaly"], {"anomaly": {"score": score, "top": 8}},
                         toy(tmp_path))["anomaly"]
    ranked = np.argsort(-res.columns[f"anomaly_{score}"])
    assert set(ODD) <= set(ranked[:8])
    assert {t["id"] for t in res.metrics["top"][:6]} == {1000 + int(r) for r in ODD}
    assert res.figures[0].name == "anomaly.png" and res.figures[0].stat().st_size > 1000


def test_both_scores_are_per_galaxy_columns(tmp_path, registry):
    res = run_evaluators(registry, ["anomaly"], {}, toy(tmp_path))["anomaly"]
    assert set(res.columns) == {"anomaly_knn", "anomaly_iforest"}
    assert all(v.shape == (240,) and np.isfinite(v).all() for v in res.columns.values())
    assert "| 1 | " in res.markdown and -1 <= res.metrics["rank_correlation"] <= 1


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
    assert {"anomaly_knn", "anomaly_iforest"} <= set(table.colnames)
    assert table["representation"].shape == (60, 64)
    assert "anomaly.png" in (run.dir / "report.md").read_text()
