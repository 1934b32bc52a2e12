"""Similarity queries against an embedded catalogue: the ``k`` nearest galaxies to given
representations, the one search of astroclr (``astroclr similar``, the ``similar`` evaluator
through :func:`nearest`, the run-level :func:`astroclr.session.similar.find_similar`).

:func:`search` finds the ``k`` nearest rows of a catalogue (an ``embeddings.fits`` of a run or
of ``astroclr embed``, or arrays) through its :class:`NeighbourIndex` and returns one table,
``query, rank, id, distance``; :func:`neighbours` the same as lists; :func:`write_results`
writes the table as FITS or CSV.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from astroclr.evaluate.ids import id_key, index_of, plain, row_lookup
from astroclr.evaluate.index import EXACT_MAX, NeighbourIndex
from astroclr.plugin.specs import AstroclrError

if TYPE_CHECKING:
    from astropy.table import Table


@dataclass
class Catalogue:
    """An embedded catalogue to search: ids, representations and where they came from."""

    ids: np.ndarray
    representations: np.ndarray
    path: Path
    #: rows left out because their representation holds NaN or inf
    skipped: int = 0
    _index: NeighbourIndex | None = field(default=None, repr=False)
    _rows: dict[Any, int] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, path: str | Path) -> "Catalogue":
        """The embeddings table file ``path`` (a run's: :func:`astroclr.runs.rundir.embeddings_file`)."""
        from astroclr.files import read_embeddings_table

        table_path = Path(path)
        table = read_embeddings_table(table_path)
        ids = np.asarray(table["id"])
        reps = np.asarray(table["representation"], np.float32)
        # one NaN row would make the catalogue's mean NaN, and every query's neighbours the
        # last row at distance 2: such rows are left out and counted
        finite = np.isfinite(reps).all(axis=1)
        if not finite.all():
            if not finite.any():
                raise AstroclrError(f"{table_path}: every representation holds NaN or inf")
            ids, reps = ids[finite], reps[finite]
        return cls(ids, reps, table_path, skipped=int((~finite).sum()))

    def __len__(self) -> int:
        return len(self.ids)

    def index(self, exact_max: int = EXACT_MAX) -> NeighbourIndex:
        if self._index is None:
            self._index = NeighbourIndex.for_table(self.path, self.representations, exact_max)
        return self._index

    def row(self, objid: Any) -> int | None:
        """The row of ``objid`` (matched as :func:`~astroclr.evaluate.ids.index_of` matches:
        "123" finds 123), or None."""
        if self._rows is None:
            self._rows = row_lookup(self.ids)
        return self._rows.get(id_key(self.ids, objid))

    def vectors_of(self, objids: Sequence[Any]) -> np.ndarray:
        """The representations of galaxies of this catalogue (a one-line error if one is not)."""
        return self.representations[[index_of(self.ids, i, str(self.path)) for i in objids]]


def table_queries(path: str | Path) -> tuple[list[Any], np.ndarray, int]:
    """``(ids, representations, rows left out)`` of every row of an embeddings table whose
    representation is finite, as queries."""
    cat = Catalogue.open(path)
    return [plain(v) for v in cat.ids], cat.representations, cat.skipped


def search(catalogue: Catalogue, query_ids: Sequence[Any], queries: np.ndarray, k: int,
           exclude_self: bool = True, exact_max: int = EXACT_MAX) -> "Table":
    """The ``k`` nearest galaxies of ``catalogue`` to each query: a table with ``query`` (the
    query's id or file name), ``rank`` (1 = nearest), ``id`` and ``distance`` (cosine).

    With ``exclude_self``, a catalogue galaxy with the query's own id is not its neighbour.
    """
    from astropy.table import Table

    queries = np.asarray(queries, dtype=np.float32)
    if queries.ndim != 2 or queries.shape[1] != catalogue.representations.shape[1]:
        raise AstroclrError(f"the queries have {queries.shape[-1]}-number representations but "
                            f"{catalogue.path} has {catalogue.representations.shape[1]}: they "
                            f"were made by different models")
    exclude = None
    if exclude_self:
        exclude = np.array([-1 if (r := catalogue.row(q)) is None else r for q in query_ids])
    rows, dist = catalogue.index(exact_max).search(queries, k, exclude)
    m, kk = rows.shape
    table = Table()
    table["query"] = np.repeat(np.array([str(q) for q in query_ids]), kk) if m * kk else \
        np.array([], dtype=str)
    table["rank"] = np.tile(np.arange(1, kk + 1), m)
    table["id"] = catalogue.ids[rows.ravel()]
    table["distance"] = dist.ravel()
    table.meta["CATALOG"] = str(catalogue.path)[:60]
    table.meta["METRIC"] = "cosine distance of mean-centred representations"
    return table


def write_results(table: "Table", path: str | Path) -> Path:
    """Write a results table as FITS (``.fits``/``.fit``) or CSV (``.csv``), atomically."""
    from astroclr.files import atomic_path

    path = Path(path)
    suffix = path.suffix.lower()
    formats = {".fits": "fits", ".fit": "fits", ".csv": "ascii.csv"}
    if suffix not in formats:
        raise AstroclrError(f"--results {path}: the suffix must be .fits or .csv")
    with atomic_path(path) as tmp:
        table.write(tmp, format=formats[suffix])
    return path


def grouped(table: "Table") -> list[tuple[str, list[tuple[Any, float]]]]:
    """``[(query, [(id, distance), ...]), ...]`` from a results table, in query order."""
    out: list[tuple[str, list[tuple[Any, float]]]] = []
    for q, i, d in zip(table["query"], table["id"], table["distance"]):
        if not out or out[-1][0] != q:
            out.append((str(q), []))
        out[-1][1].append((plain(i), float(d)))
    return out


def neighbours(catalogue: Catalogue, objids: Sequence[Any], k: int,
               exact_max: int = EXACT_MAX) -> list[list[tuple[Any, float]]]:
    """The ``k`` nearest galaxies of ``catalogue`` to each of its galaxies ``objids`` (each
    itself excluded), ``[(id, cosine distance), ...]`` nearest first; an id not in the
    catalogue is a one-line error."""
    names = [plain(i) for i in objids]
    found = search(catalogue, names, catalogue.vectors_of(objids), k, exact_max=exact_max)
    per = len(found) // len(names) if names else 0
    ids, dist = [plain(i) for i in found["id"]], [float(d) for d in found["distance"]]
    return [list(zip(ids[q * per:(q + 1) * per], dist[q * per:(q + 1) * per]))
            for q in range(len(names))]


def nearest(ids: np.ndarray, representations: np.ndarray, objid: Any, k: int = 8,
            where: str = "the embeddings") -> list[tuple[Any, float]]:
    """The ``k`` galaxies closest to ``objid`` by cosine distance, nearest first, itself excluded.

    Distances are between representations with the dataset's mean representation removed:
    SimCLR representations share a large common component, so raw cosines all sit near 1 and
    say little; centred, they measure how a galaxy differs from the typical one.
    """
    catalogue = Catalogue(np.asarray(ids), np.asarray(representations, np.float32), Path(where))
    # exact whatever the size: one query scans even 1,000,000 rows in well under a second
    return neighbours(catalogue, [objid], k, exact_max=len(catalogue))[0]
