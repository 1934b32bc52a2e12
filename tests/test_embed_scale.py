"""Embedding at scale: the engine streams into a memory map (its resume and multi-process
sharding: tests/test_classify_ddp.py), and the FITS table written in chunks reads back exactly
as the in-memory table."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from astropy.table import Table

from astroclr.data.galaxies import Galaxies, SurveyInfo
from astroclr.evaluate.embed import embed_images, embeddings_table, write_embeddings


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 3)
        self.fc = torch.nn.Linear(8, 5)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.fc(self.conv(x).mean((2, 3)))


@pytest.fixture()
def galaxies(tmp_path) -> Galaxies:
    n = 300
    path = tmp_path / "images.npy"
    cube = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, 3, 8, 8))
    cube[:] = np.random.default_rng(0).random((n, 3, 8, 8), dtype=np.float32)
    cube.flush()
    survey = SurveyInfo.create("toy", ["g", "r", "i"], 0.4, {"g": 1.0, "r": 1.0, "i": 1.0})
    g = Galaxies.from_arrays(np.load(path, mmap_mode="r"), survey, ids=np.arange(1000, 1000 + n),
                             labels=np.arange(n) % 3 - 1)
    g.catalog["name"] = [f"gal{i}" * (1 + i % 3) for i in range(n)]
    g.catalog["flag"] = np.arange(n) % 2 == 0
    return g


def _train_options():
    from astroclr.resolved import TrainOptions

    return TrainOptions.check({"accelerator": "cpu"})


def test_the_engine_streams_into_a_memmap_equal_to_the_in_memory_embedding(galaxies, tmp_path):
    from astroclr.train.infer import infer

    net = _Net()
    expected = embed_images(net, np.asarray(galaxies.images), batch_size=1000)
    got = infer(net, galaxies.images, galaxies.ids, tmp_path / "work", _train_options(), 32)
    assert isinstance(got, np.memmap) and got.shape == (len(galaxies), 5)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_embed_to_npy_of_0_1_0_still_writes_the_file_through_the_engine(galaxies, tmp_path):
    import astroclr.embed as old
    from astroclr.moved import MovedWarning

    net = _Net()
    with pytest.warns(MovedWarning, match="astroclr.evaluate.embed.embed_to_npy"):
        embed_to_npy = old.embed_to_npy
    got = embed_to_npy(net, galaxies.images, tmp_path / "rep.npy", batch_size=64)
    np.testing.assert_allclose(np.load(tmp_path / "rep.npy"), embed_images(net, galaxies.images),
                               rtol=1e-5, atol=1e-6)
    assert got.shape == (len(galaxies), 5)
    assert not (tmp_path / "rep.npy.parts").exists()


def test_in_memory_embedding_fills_a_given_output_batch_by_batch(galaxies):
    net = _Net()
    out = np.full((len(galaxies), 5), np.nan, dtype=np.float32)
    seen = []
    got = embed_images(net, galaxies.images, 64, out=out, advance=seen.append)
    assert got is out and np.isfinite(out).all()
    assert seen == [64, 64, 64, 64, 44] and net.calls == 5


def test_chunked_fits_equals_in_memory_table(galaxies, tmp_path):
    rep = embed_images(_Net(), galaxies.images, 100)
    path = write_embeddings(tmp_path / "e.fits", galaxies, rep, chunk_rows=70)
    got = Table.read(path)
    # astropy's own writer, with the whole table in memory, is the reference
    embeddings_table(galaxies, rep).write(tmp_path / "ref.fits")
    want = Table.read(tmp_path / "ref.fits")
    assert got.colnames == want.colnames
    assert len(got) == len(galaxies)
    for name in want.colnames:
        np.testing.assert_array_equal(np.asarray(got[name]), np.asarray(want[name]), err_msg=name)
    assert got.meta["BANDS"] == "g,r,i" and got.meta["SURVEY"] == "toy"
    assert not (tmp_path / "e.fits.partial").exists()


def test_the_run_table_keeps_the_catalogue_columns_embed_and_predict_keep(galaxies, tmp_path):
    from astroclr.classify.tables import read_table, write_table
    from astroclr.files import catalog_columns

    galaxies.catalog["survey_tag"] = np.array([b"dr7"] * len(galaxies))  # bytes: kept
    galaxies.catalog["flux"] = np.ones((len(galaxies), 3))  # a vector per galaxy: left out
    rep = embed_images(_Net(), galaxies.images, 100)
    run_table = Table.read(write_embeddings(tmp_path / "run.fits", galaxies, rep))
    kept = catalog_columns(galaxies.catalog, skip=("representation",))
    embed_table = read_table(write_table(
        tmp_path / "embed.fits", len(galaxies),
        [*((c, galaxies.catalog[c]) for c in kept), ("representation", rep)]))
    assert run_table.colnames == embed_table.colnames
    assert "survey_tag" in run_table.colnames and "flux" not in run_table.colnames
