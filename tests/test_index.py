"""The neighbour index: exact below a size, HNSW above it, saved beside its table and reused."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from astroclr.evaluate.index import NeighbourIndex, digest, index_path


def clustered(n: int, dim: int = 16, clusters: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)) * 2
    return (centres[rng.integers(0, clusters, n)] + rng.normal(size=(n, dim)) + 5).astype(np.float32)


def brute(reps: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    mean = reps.mean(axis=0)
    u = (reps - mean) / np.linalg.norm(reps - mean, axis=1, keepdims=True)
    q = (queries - mean) / np.linalg.norm(queries - mean, axis=1, keepdims=True)
    return np.argsort(-(q @ u.T), axis=1, kind="stable")[:, :k]


def test_exact_below_the_threshold_matches_brute_force():
    reps = clustered(500)
    index = NeighbourIndex.build(reps, exact_max=500)
    assert index.exact
    rows, dist = index.search(reps[:20], 10)
    np.testing.assert_array_equal(rows, brute(reps, reps[:20], 10))
    assert np.all(np.diff(dist, axis=1) >= 0) and dist[0, 0] == pytest.approx(0, abs=1e-5)


def test_excluded_row_is_never_returned():
    reps = clustered(200)
    rows, _ = NeighbourIndex.build(reps).search(reps[:5], 199, exclude=np.arange(5))
    assert rows.shape == (5, 199)
    assert all(i not in r for i, r in enumerate(rows))


def test_hnsw_recall_on_clustered_vectors():
    reps = clustered(3000, seed=1)
    queries = clustered(200, seed=2)
    index = NeighbourIndex.build(reps, exact_max=1000)
    assert not index.exact
    rows, _ = index.search(queries, 10)
    truth = brute(reps, queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(rows, truth)])
    assert recall >= 0.95


def _table(path, reps, extra=None):
    t = Table({"id": np.arange(len(reps)), "representation": reps})
    if extra is not None:
        t["score"] = extra
    t.write(path, overwrite=True)


def test_saved_index_is_reused_until_the_representations_change(tmp_path, monkeypatch):
    monkeypatch.setenv("ASTROCLR_CACHE", str(tmp_path / "cache"))
    table = tmp_path / "embeddings.fits"
    reps = clustered(1500)
    _table(table, reps)
    first = NeighbourIndex.for_table(table, reps, exact_max=1000)
    assert not first.reused and index_path(digest(reps)).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "embeddings.fits"]
    again = NeighbourIndex.for_table(table, reps, exact_max=1000)
    assert again.reused
    np.testing.assert_array_equal(again.search(reps[:10], 5)[0], first.search(reps[:10], 5)[0])
    _table(table, reps, extra=np.zeros(len(reps)))  # a new column, the same vectors: still valid
    assert NeighbourIndex.for_table(table, reps, exact_max=1000).reused
    changed = reps.copy()
    changed[0] += 1.0
    _table(table, changed)
    assert not NeighbourIndex.for_table(table, changed, exact_max=1000).reused


def test_small_tables_are_searched_exactly_without_an_index_file(tmp_path, monkeypatch):
    monkeypatch.setenv("ASTROCLR_CACHE", str(tmp_path / "cache"))
    table = tmp_path / "embeddings.fits"
    reps = clustered(300)
    _table(table, reps)
    assert NeighbourIndex.for_table(table, reps).exact
    assert not index_path(digest(reps)).exists()


def test_a_forged_cached_index_is_rebuilt_not_trusted(tmp_path, monkeypatch):
    """A cached index whose file is not the one recorded (another index of other vectors put
    in its place) is rebuilt, and searches give the true neighbours."""
    monkeypatch.setenv("ASTROCLR_CACHE", str(tmp_path / "cache"))
    table = tmp_path / "embeddings.fits"
    reps, other = clustered(1500, seed=3), clustered(1200, seed=4)
    _table(table, reps)
    NeighbourIndex.for_table(table, reps, exact_max=1000)
    forged = NeighbourIndex.for_table(tmp_path / "other.fits", other, exact_max=1000)
    assert not forged.reused
    index_path(digest(reps)).write_bytes(index_path(digest(other)).read_bytes())
    again = NeighbourIndex.for_table(table, reps, exact_max=1000)
    assert not again.reused
    rows, _ = again.search(reps[:20], 5)
    truth = brute(reps, reps[:20], 5)
    assert np.mean([len(set(a) & set(b)) / 5 for a, b in zip(rows, truth)]) >= 0.9
