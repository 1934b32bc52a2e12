"""End to end: a real Lightning run of a few steps on real SDSS sample images."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.table import Table

import astroclr
from astroclr.plugin.specs import AstroclrError

TINY = dict(backbone="smallcnn", batch_size=32, max_steps=4, epochs=1, eval_seeds=[0],
            train_sizes=[50, 100])
SETS = ("dataset.limit=200", "backbone.width=8", "train.embed_batch_size=64",
        "train.checkpoint_every_n_steps=2")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    return astroclr.run(out=out, sets=SETS, progress=False, evaluators=["probe", "pca"], **TINY)


def test_run_directory_holds_every_output(finished):
    names = {p.name for p in finished.dir.iterdir()}
    assert {"config.toml", "run.json", "model.pt", "embeddings.fits", "metrics.json",
            "report.md", "report.html", "checkpoints"} <= names
    assert (finished.dir / "checkpoints" / "last.ckpt").is_file()
    assert not list(finished.dir.rglob("*.partial"))


def test_training_ran_the_requested_steps(finished):
    state = json.loads((finished.dir / "run.json").read_text())
    assert state["status"] == "complete"
    assert state["train"]["steps"] == 4
    assert np.isfinite(state["train"]["final_loss"])
    assert state["bands"] == ["g", "r", "i"]


def test_embeddings_table_has_ids_labels_and_64_numbers(finished):
    table = Table.read(finished.dir / "embeddings.fits")
    assert len(table) == 200
    assert table["representation"].shape == (200, 64)
    assert {"id", "label"} <= set(table.colnames)
    assert np.isfinite(table["representation"]).all()


def test_report_shows_probe_and_pca(finished):
    metrics = json.loads((finished.dir / "metrics.json").read_text())
    assert {"probe", "pca"} <= set(json.dumps(metrics).replace('"', " ").split())
    text = (finished.dir / "report.md").read_text()
    assert "probe" in text.lower() and "pca" in text.lower()


def test_load_embed_reproduces_stored_embeddings(finished):
    from astroclr_sdss.sample import load_raw_sample

    raw, catalog = load_raw_sample()
    model = astroclr.load(finished.dir, device="cpu")
    vectors = model.embed(raw[:200])
    stored = np.asarray(Table.read(finished.dir / "embeddings.fits")["representation"])
    np.testing.assert_allclose(vectors, stored, rtol=1e-4, atol=1e-5)


def test_embed_rejects_wrong_band_count(finished):
    model = astroclr.load(finished.dir, device="cpu")
    with pytest.raises(AstroclrError, match="trained on 3 bands"):
        model.embed(np.zeros((2, 4, 64, 64), dtype=np.float32))


def test_existing_run_is_refused_and_left_intact(finished):
    before = {p: p.stat().st_mtime_ns for p in finished.dir.rglob("*") if p.is_file()}
    with pytest.raises(AstroclrError, match="already holds a run"):
        astroclr.run(out=finished.dir, sets=SETS, progress=False, **TINY)
    after = {p: p.stat().st_mtime_ns for p in finished.dir.rglob("*") if p.is_file()}
    assert before == after


def test_bad_config_writes_nothing(tmp_path):
    out = tmp_path / "never"
    with pytest.raises(AstroclrError, match="train.lr"):
        astroclr.run(out=out, sets=SETS + ("train.lr=-1",), progress=False, **TINY)
    assert not out.exists()
