"""Nearest neighbours of representations: exact search below ``EXACT_MAX`` rows, an HNSW index
(faiss) above it, built once per embedded table and saved beside it.

Distances are cosine distances of the representations with the catalogue's mean removed
(see :func:`astroclr.evaluate.query.nearest` for why): each vector is centred and scaled to
unit length, so ``1 - inner product`` is the distance and an inner-product index finds the
nearest. The library was chosen with ``benchmarks/ann_index.py`` (docs/quality.md): faiss's
HNSW reached recall@10 0.988 on 1,000,000 clustered 64-D vectors, installs from wheels
(hnswlib ships only a source package and was no faster), and needs no training or per-catalogue
tuning (faiss's IVF, faster on tightly clustered vectors, fell to recall 0.86 on broadly
clustered ones, where HNSW kept 0.99).

A saved index sits in astroclr's cache folder (``CACHE/index/SHA1.hnsw`` with its record
``SHA1.hnsw.json``, see :func:`astroclr.files.cache_dir`), not beside its table; it is reused
while the table's representations are unchanged and the file is the one written (its own
SHA-1 is in the record, and its size and dimension are checked after reading). The key is a
SHA-1 of the representation column (not the file's mtime), so adding a column to the table,
such as the anomaly score, keeps the index valid, and a rewritten table with new vectors never
reuses a stale one.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from astroclr.files import atomic_path, file_digest, read_json, write_json
from astroclr.plugin.specs import AstroclrError

#: below this many rows, search exactly: a scan of 50,000 x 64 is a few ms per query and needs
#: no build, while an HNSW build of that size takes seconds (benchmarks/ann_index.py)
EXACT_MAX = 50_000
#: HNSW graph degree and build/search beam widths (faiss): recall@10 >= 0.95 on the benchmark
HNSW_M = 32
EF_CONSTRUCTION = 80
EF_SEARCH = 64


def unit_rows(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``x`` centred by ``mean`` and scaled to unit length, float32 (zero rows stay zero)."""
    y = np.asarray(x, dtype=np.float32) - mean
    return y / np.clip(np.linalg.norm(y, axis=1, keepdims=True), 1e-12, None)


def digest(representations: np.ndarray) -> str:
    """SHA-1 of a representation array (its float32 bytes and shape): the saved index's key."""
    reps = np.ascontiguousarray(representations, dtype=np.float32)
    h = hashlib.sha1(str(reps.shape).encode())
    h.update(memoryview(reps).cast("B"))
    return h.hexdigest()


def index_path(key_sha1: str) -> Path:
    """Where the index of representations with this SHA-1 is cached: ``CACHE/index/SHA1.hnsw``
    (see :func:`astroclr.files.cache_dir`), never beside the table (an input, perhaps read-only,
    perhaps another user's)."""
    from astroclr.files import cache_dir

    return cache_dir("index") / f"{key_sha1}.hnsw"


def file_sha1(path: Path) -> str:
    return file_digest(path, "sha1")


@dataclass
class NeighbourIndex:
    """Search the ``(N, D)`` representations of a catalogue by cosine distance."""

    unit: np.ndarray  # (N, D) centred unit vectors
    mean: np.ndarray  # (D,) the catalogue's mean representation
    hnsw: Any = None  # a faiss index, or None for exact search
    reused: bool = False  # loaded from a saved index
    _flat: Any = field(default=None, repr=False)  # exact search, built on first use

    @property
    def exact(self) -> bool:
        return self.hnsw is None

    @classmethod
    def build(cls, representations: np.ndarray, exact_max: int = EXACT_MAX) -> "NeighbourIndex":
        """An index of ``representations``: exact up to ``exact_max`` rows, HNSW above."""
        reps = np.asarray(representations, dtype=np.float32)
        if reps.ndim != 2 or len(reps) == 0:
            raise AstroclrError(f"representations must be a non-empty (N, D) array, got shape "
                                f"{reps.shape}")
        mean = reps.mean(axis=0, dtype=np.float64).astype(np.float32)
        unit = unit_rows(reps, mean)
        return cls(unit, mean, None if len(unit) <= exact_max else _build_hnsw(unit))

    @classmethod
    def for_table(cls, table: str | Path, representations: np.ndarray,
                  exact_max: int = EXACT_MAX) -> "NeighbourIndex":
        """The index of an embeddings table: exact when small; else the saved ``TABLE.hnsw``
        when it was built from these very representations, or a new one, saved (a warning,
        not an error, when the table's folder is not writable)."""
        reps = np.asarray(representations, dtype=np.float32)
        if len(reps) <= exact_max:
            return cls.build(reps, exact_max)
        key = {"sha1": digest(reps), "n": int(reps.shape[0]), "dim": int(reps.shape[1]),
               "m": HNSW_M, "ef_construction": EF_CONSTRUCTION, "library": _faiss_version()}
        path = index_path(key["sha1"])
        meta_path = path.with_name(path.name + ".json")
        mean = reps.mean(axis=0, dtype=np.float64).astype(np.float32)
        unit = unit_rows(reps, mean)
        reused = _read_checked(path, meta_path, key)
        if reused is not None:
            return cls(unit, mean, reused, reused=True)
        index = cls(unit, mean, _build_hnsw(unit))
        try:
            _write_hnsw(index.hnsw, path)
            write_json(meta_path, {"key": key, "table": Path(table).name,
                                   "file_sha1": file_sha1(path)})
        except OSError as exc:
            warnings.warn(f"could not save the index beside {table} ({exc.strerror or exc}); "
                          f"it is rebuilt on every search", stacklevel=2)
        return index

    def __len__(self) -> int:
        return len(self.unit)

    def search(self, queries: np.ndarray, k: int, exclude: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest rows to each query representation, nearest first.

        ``queries``: (M, D) representations (centred by the catalogue's mean here);
        ``exclude``: (M,) a row to leave out per query (the query itself), -1 for none.
        Returns ``(rows (M, k'), distances (M, k'))`` with ``k' = min(k, N - 1 if anything is
        excluded else N)``; ties are broken by row.
        """
        if k < 1:
            raise AstroclrError(f"k must be at least 1, got {k}")
        q = np.asarray(queries, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.unit.shape[1]:
            raise AstroclrError(f"queries have shape {q.shape}, but the catalogue's "
                                f"representations have {self.unit.shape[1]} numbers")
        excl = np.full(len(q), -1, np.int64) if exclude is None else np.asarray(exclude, np.int64)
        drop = bool((excl >= 0).any())
        kk = min(int(k), len(self) - 1 if drop else len(self))
        if kk <= 0:
            return np.empty((len(q), 0), np.int64), np.empty((len(q), 0), np.float32)
        uq = unit_rows(q, self.mean)
        ask = min(kk + int(drop), len(self))
        rows, sims = self._exact(uq, ask) if self.exact else self._approximate(uq, ask)
        if drop:  # remove the excluded row if found, else the farthest
            keep = rows != excl[:, None]
            keep[keep.all(axis=1), -1] = False
            rows = rows[keep].reshape(len(q), ask - 1)
            sims = sims[keep].reshape(len(q), ask - 1)
        rows, sims = rows[:, :kk], sims[:, :kk]
        return rows, np.clip(1.0 - sims, 0.0, 2.0).astype(np.float32)

    def _exact(self, uq: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        # faiss's flat search (BLAS and a heap per query) rather than numpy: measured 2.3x
        # faster for 20,000 queries of 20,000 rows, where numpy's argpartition dominated
        if self._flat is None:
            self._flat = _faiss().IndexFlatIP(self.unit.shape[1])
            self._flat.add(np.ascontiguousarray(self.unit))
        sims, rows = self._flat.search(np.ascontiguousarray(uq), k)
        order = np.lexsort((rows, -sims), axis=1)  # by similarity, then by row for ties
        return (np.take_along_axis(rows, order, axis=1).astype(np.int64),
                np.take_along_axis(sims, order, axis=1).astype(np.float32))

    def _approximate(self, uq: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        self.hnsw.hnsw.efSearch = max(EF_SEARCH, 2 * k)
        sims, rows = self.hnsw.search(np.ascontiguousarray(uq), k)
        missing = rows < 0  # fewer than k found: refill those queries exactly
        if missing.any():
            bad = np.flatnonzero(missing.any(axis=1))
            rows[bad], sims[bad] = self._exact(uq[bad], k)
        return rows.astype(np.int64), sims.astype(np.float32)


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:  # pragma: no cover - a dependency; a broken install says so
        raise AstroclrError("approximate search needs faiss: pip install faiss-cpu") from None
    return faiss


def _faiss_version() -> str:
    return f"faiss {_faiss().__version__}"


def _build_hnsw(unit: np.ndarray) -> Any:
    faiss = _faiss()
    index = faiss.IndexHNSWFlat(unit.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_CONSTRUCTION
    index.add(np.ascontiguousarray(unit))
    index.hnsw.efSearch = EF_SEARCH
    return index


def _write_hnsw(index: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        _faiss().write_index(index, str(tmp))


def _read_hnsw(path: Path) -> Any:
    return _faiss().read_index(str(path))


def _read_checked(path: Path, meta_path: Path, key: dict) -> Any:
    """The cached index at ``path`` if its record holds ``key`` and the file's own SHA-1, and
    it holds ``key``'s number of vectors of ``key``'s dimension; else None (it is rebuilt).
    The file is hashed before faiss parses it: a forged or damaged index never reaches
    faiss's reader."""
    saved = read_json(meta_path, {}) if meta_path.is_file() else {}
    if not isinstance(saved, dict) or saved.get("key") != key or not path.is_file():
        return None
    try:
        if saved.get("file_sha1") != file_sha1(path):
            return None
        index = _read_hnsw(path)
    except Exception:  # unreadable: rebuilt by the caller
        return None
    if int(index.ntotal) != key["n"] or int(index.d) != key["dim"]:
        return None
    return index
