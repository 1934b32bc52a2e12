"""The run's anomaly scorer: fitted once with the run, stored beside it, applied by ``embed`` to a
new catalogue so that a galaxy scores the same there as in the run, and higher on galaxies
that do not look like the run's (a blurred, noisier copy)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from test_classify import TINY, cli

import astroclr
from astroclr.evaluate.anomaly import AnomalyScorer, asymmetry
from astroclr.plugin.specs import AstroclrError
from astroclr.runs.rundir import RunDir


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("anomaly") / "run"
    astroclr.run(out=out, backbone="smallcnn", epochs=1, progress=False,
                 sets=[TINY[i + 1] for i in range(0, len(TINY), 2)])
    return out


def not_galaxies(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each image's pixels shuffled: the same values, no galaxy."""
    rng = np.random.default_rng(seed)
    x = np.asarray(images, dtype=np.float32)
    flat = x.reshape(len(x), x.shape[1], -1)
    return np.stack([f[:, rng.permutation(f.shape[1])] for f in flat]).reshape(x.shape)


def test_a_run_stores_its_scorer_and_every_galaxys_score(tiny_run):
    rundir = RunDir(tiny_run)
    assert rundir.anomaly.is_file()
    table = Table.read(rundir.embeddings)
    assert np.isfinite(table["anomaly_score"]).all() and len(table) == 60


def test_embed_scores_a_catalogue_as_the_run_scored_its_galaxies(tiny_run, tmp_path, capsys):
    out = tmp_path / "again.fits"
    code, _, err = cli(["embed", str(tiny_run), "--out", str(out), "--quiet"], capsys)
    assert code == 0, err
    run_table = Table.read(RunDir(tiny_run).embeddings)
    new = Table.read(out)
    assert list(new["id"]) == list(run_table["id"])
    np.testing.assert_allclose(new["anomaly_score"], run_table["anomaly_score"], atol=1e-5)
    header = fits.getheader(out, 1)  # the run's own galaxies are not shifted against it
    assert header["OOD_FRAC"] <= 0.05 and abs(header["OOD_SHFT"]) < 0.5, dict(header)


def worse_seeing_and_noise(images: np.ndarray, sigma: float = 0.08) -> np.ndarray:
    """A realistic shift of the same galaxies: a 3x3 box blur and Gaussian noise."""
    x = np.asarray(images, dtype=np.float32)
    pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    blurred = sum(pad[:, :, i:i + x.shape[2], j:j + x.shape[3]]
                  for i in range(3) for j in range(3)) / 9.0
    noise = np.random.default_rng(0).normal(0.0, sigma, x.shape)
    return (blurred + noise).astype(np.float32)


def test_a_blurred_noisier_copy_gives_a_larger_ood_frac_than_the_same_survey(tiny_run,
                                                                           tmp_path, capsys):
    prepared = tmp_path / "same"
    code, _, err = cli(["prepare", "-o", str(prepared), "--set", TINY[1], "--set", TINY[3],
                        "-q"], capsys)
    assert code == 0, err
    shifted = tmp_path / "shifted"
    shutil.copytree(prepared, shifted)
    images = np.load(shifted / "images.npy", mmap_mode="r+")
    images[:] = worse_seeing_and_noise(images)
    images.flush()
    del images
    frac, moved, said = {}, {}, {}
    for name in ("same", "shifted"):
        out = tmp_path / f"{name}.fits"
        code, _, said[name] = cli(["embed", str(tiny_run), "--out", str(out), "--quiet",
                                   "--set", "dataset.input=prepared", "--set",
                                   f"dataset.path={tmp_path / name}"], capsys)
        assert code == 0, said[name]
        header = fits.getheader(out, 1)
        frac[name], moved[name] = header["OOD_FRAC"], header["OOD_SHFT"]
    assert frac["shifted"] > frac["same"] + 0.3, frac
    assert abs(moved["shifted"]) > abs(moved["same"]) + 0.5, moved
    warned = [line for line in said["shifted"].splitlines() if "warning" in line]  # stderr
    assert len(warned) == 1 and warned[0].startswith("warning: these galaxies may not look "
                                                     "like") and "spread" in warned[0], said
    assert "warning" not in said["same"], said


def test_images_unlike_the_runs_score_above_its_99th_percentile(sample_galaxies):
    images = np.asarray(sample_galaxies.images)
    reps = np.random.default_rng(0).normal(size=(len(images), 8)).astype(np.float32)
    scorer = AnomalyScorer.fit(reps[:300], images[:300])
    same = scorer.score(reps[300:], images[300:])["score"]
    other = scorer.score(reps[300:], not_galaxies(images[300:]))["score"]
    cut = scorer.percentile(99.0)
    assert np.mean(other > cut) > 0.5
    assert np.mean(same > cut) < 0.1  # held-out galaxies of the same survey are not flagged


def test_a_stored_scorer_scores_identically(tmp_path, sample_galaxies):
    images = np.asarray(sample_galaxies.images)[:120]
    reps = np.random.default_rng(1).normal(size=(120, 8)).astype(np.float32)
    scorer = AnomalyScorer.fit(reps, images, components=("representation", "pixels",
                                                         "asymmetry"))
    back = AnomalyScorer.load(scorer.save(tmp_path / "anomaly.npz"))
    a, b = scorer.score(reps, images), back.score(reps, images)
    assert back.components == scorer.components
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_a_broken_or_non_finite_scorer_file_is_refused(tmp_path, sample_galaxies):
    bad = tmp_path / "anomaly.npz"
    bad.write_bytes(b"not an npz")
    with pytest.raises(AstroclrError, match="anomaly.npz: not a readable anomaly scorer"):
        AnomalyScorer.load(bad)
    images = np.asarray(sample_galaxies.images)[:50]
    scorer = AnomalyScorer.fit(np.ones((50, 4), np.float32) * np.arange(50)[:, None], images)
    scorer.rep_reference[0, 0] = np.nan
    scorer.save(bad)
    with pytest.raises(AstroclrError, match="non-finite"):
        AnomalyScorer.load(bad)


def test_asymmetry_is_zero_for_a_symmetric_galaxy_and_grows_with_a_companion():
    yy, xx = np.mgrid[:16, :16]
    galaxy = np.exp(-((yy - 7.5) ** 2 + (xx - 7.5) ** 2) / 8.0)
    companion = np.exp(-((yy - 11.5) ** 2 + (xx - 10.5) ** 2) / 2.0)
    images = np.stack([galaxy, galaxy + 0.5 * companion, galaxy + companion])[:, None]
    a = asymmetry(images)
    assert a[0] == pytest.approx(0.0, abs=1e-6) and 0 < a[1] < a[2]


def test_unknown_components_are_refused(sample_galaxies):
    images = np.asarray(sample_galaxies.images)[:20]
    with pytest.raises(AstroclrError, match="choose from representation, pixels, asymmetry"):
        AnomalyScorer.fit(np.zeros((20, 4), np.float32), images, components=("colour",))


def test_predict_writes_the_runs_anomaly_score(tiny_run, tmp_path, capsys):
    from test_classify import FAST

    clf = tmp_path / "clf"
    code, _, err = cli(["finetune", str(tiny_run), "--out", str(clf), "--labels", "40",
                        "--unlabelled", "none", "--quiet", *FAST], capsys)
    assert code == 0, err
    out = tmp_path / "pred.fits"
    code, _, err = cli(["predict", str(clf), "--out", str(out), "--quiet"], capsys)
    assert code == 0, err
    run_table = Table.read(RunDir(tiny_run).embeddings)
    np.testing.assert_allclose(Table.read(out)["anomaly_score"], run_table["anomaly_score"],
                               atol=1e-5)
    assert "OOD_FRAC" in fits.getheader(out, 1)


def older_scorer(path):
    """``path`` (an anomaly.npz) as the first scorer wrote it: no shift check."""
    with np.load(path) as z:
        old = {k: z[k] for k in z.files if k in ("components", "k", "rep_reference",
                                                  "pca_mean", "pca_basis", "pix_reference",
                                                  "fused_reference")}
        old["centre"], old["scale"] = z["centre"][:3], z["scale"][:3]
    with open(path, "wb") as fh:
        np.savez(fh, **old)


def test_an_older_scorer_scores_alike_and_evaluate_refits_it(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = AnomalyScorer.load(RunDir(run).anomaly)
    older_scorer(RunDir(run).anomaly)
    old = AnomalyScorer.load(RunDir(run).anomaly)
    assert not old.checks_shift and before.checks_shift
    out = tmp_path / "e.fits"
    code, _, err = cli(["embed", str(run), "--out", str(out)], capsys)
    assert code == 0, err
    said = [line for line in err.splitlines() if "predates the domain-shift check" in line]
    assert len(said) == 1 and f"astroclr evaluate {run} -e anomaly" in said[0], err
    assert "OOD_FRAC" not in fits.getheader(out, 1)
    np.testing.assert_allclose(Table.read(out)["anomaly_score"],
                               Table.read(RunDir(run).embeddings)["anomaly_score"], atol=1e-5)
    code, _, err = cli(["evaluate", str(run), "-e", "anomaly", "--quiet"], capsys)
    assert code == 0, err
    assert AnomalyScorer.load(RunDir(run).anomaly).checks_shift
