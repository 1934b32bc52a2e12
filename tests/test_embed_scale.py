"""Embedding at scale: streamed into a memory map, resumable, split across devices, and the
FITS table written in chunks reads back exactly as the in-memory table."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from astropy.table import Table

from astroclr.data.galaxies import Galaxies, SurveyInfo
from astroclr.evaluate.embed import embed_images, embed_to_npy, embeddings_table, write_embeddings


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


def test_embed_streams_into_memmap_and_matches_in_memory(galaxies, tmp_path):
    net = _Net()
    expected = embed_images(net, np.asarray(galaxies.images), batch_size=1000)
    got = embed_to_npy(net, galaxies.images, tmp_path / "rep.npy", batch_size=32,
                       chunk_batches=2)
    assert isinstance(got, np.memmap)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_embedding_resumes_after_interruption_without_redoing_rows(galaxies, tmp_path):
    net = _Net()
    path = tmp_path / "rep.npy"
    seen = []

    def stop_after_two_chunks(n):
        seen.append(n)
        if sum(seen) >= 128:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        embed_to_npy(net, galaxies.images, path, batch_size=32, chunk_batches=2,
                     advance=stop_after_two_chunks)
    assert not path.exists()
    progress = json.loads((tmp_path / "rep.npy.progress.json").read_text())
    assert progress["done"] == 64  # the second chunk was interrupted: only the first counts
    net.calls = 0
    got = embed_to_npy(net, galaxies.images, path, batch_size=32, chunk_batches=2)
    assert net.calls == 1 + int(np.ceil((300 - 64) / 32))  # shape probe + remaining batches
    np.testing.assert_allclose(got, embed_images(_Net(), galaxies.images, 64), rtol=1e-5,
                               atol=1e-6)
    net.calls = 0
    embed_to_npy(net, galaxies.images, path, batch_size=32)  # complete: reused
    assert net.calls == 1


def test_partial_embedding_of_another_model_is_not_reused(galaxies, tmp_path):
    path = tmp_path / "rep.npy"
    embed_to_npy(_Net(), galaxies.images, path, batch_size=64)
    other = _Net()
    with torch.no_grad():
        other.fc.bias += 1
    got = embed_to_npy(other, galaxies.images, path, batch_size=64)
    np.testing.assert_allclose(got, embed_images(other, galaxies.images, 64), rtol=1e-5,
                               atol=1e-6)


def test_several_devices_split_the_rows(galaxies):
    net = _Net()
    one = embed_images(net, galaxies.images, 50)
    two = embed_images(net, galaxies.images, 50, devices=["cpu", "cpu", "cpu"])
    np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-6)


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
