"""Similarity queries against an embedded catalogue: by galaxy id, by new image files (embedded
on the fly with a run's model and preprocessing), or by a table of representations.

A query gives representations; :func:`search` finds the ``k`` nearest rows of a catalogue (an
``embeddings.fits`` of a run or of ``astroclr embed``) through its :class:`NeighbourIndex`,
and returns one table, ``query, rank, id, distance``; :func:`write_results` writes it as FITS or
CSV; :func:`query_montage` draws each query beside its neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from astroclr.evaluate.index import EXACT_MAX, NeighbourIndex
from astroclr.evaluate.similar import index_of, plain, to_rgb
from astroclr.plugin.specs import AstroclrError

if TYPE_CHECKING:
    from astropy.table import Table

    from astroclr.session.trained import TrainedModel

#: montage limits: the results table holds everything, the picture only what stays readable
MONTAGE_QUERIES = 10
MONTAGE_NEIGHBOURS = 10


@dataclass
class Catalogue:
    """An embedded catalogue to search: ids, representations and where they came from."""

    ids: np.ndarray
    representations: np.ndarray
    path: Path
    #: rows left out because their representation holds NaN or inf
    skipped: int = 0
    _index: NeighbourIndex | None = field(default=None, repr=False)
    _rows: dict[str, int] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, path: str | Path) -> "Catalogue":
        """The embeddings table ``path``, or a run directory's ``embeddings.fits``."""
        from astroclr.files import read_embeddings_table
        from astroclr.session.rundir import RunDir

        path = Path(path)
        table_path = RunDir(path).embeddings if path.is_dir() else path
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
        """The row of ``objid`` (compared as text: 123 matches "123"), or None."""
        if self._rows is None:
            self._rows = {}
            for i, v in enumerate(self.ids):  # first occurrence wins, as index_of
                self._rows.setdefault(str(plain(v)), i)
        return self._rows.get(str(plain(objid)))

    def vectors_of(self, objids: Sequence[Any]) -> np.ndarray:
        """The representations of galaxies of this catalogue (a one-line error if one is not)."""
        return self.representations[[index_of(self.ids, i, str(self.path)) for i in objids]]


def table_queries(path: str | Path) -> tuple[list[Any], np.ndarray, int]:
    """``(ids, representations, rows left out)`` of every row of an embeddings table whose
    representation is finite, as queries."""
    cat = Catalogue.open(path)
    return [plain(v) for v in cat.ids], cat.representations, cat.skipped


def image_queries(model: "TrainedModel", paths: Sequence[str | Path]
                  ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(names, representations, preprocessed images)`` of image files, read as the run's
    dataset plugin reads its own (its ``read_image``, the run's crop, resize and bands) and
    embedded with ``model``'s preprocessing; names are the files' names."""
    raw = model.read_images(paths)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):  # checked below
        reps, pixels = model.embed(raw), model.preprocessing.apply(raw)
    check_finite_queries(reps, paths)
    return [Path(p).name for p in paths], reps, pixels


def check_finite_queries(reps: np.ndarray, paths: Sequence[str | Path]) -> None:
    """A query image whose representation is not finite (pixels so large that preprocessing
    overflows, 3e38) would make every galaxy its neighbour at distance 2: refused by name."""
    bad = [str(p) for p, ok in zip(paths, np.isfinite(reps).all(axis=1)) if not ok]
    if bad:
        raise AstroclrError(f"image {bad[0]}: its pixels give a non-finite representation "
                            f"(values too large for the run's preprocessing?)"
                            + (f"; {len(bad) - 1} more such images" if len(bad) > 1 else ""))


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


def query_montage(queries: Sequence[tuple[str, np.ndarray | None]],
                  neighbours: Sequence[Sequence[tuple[Any, float]]],
                  image_of: Callable[[Any], np.ndarray | None], path: str | Path,
                  title: str) -> Path:
    """Each query (its label and image, or None) followed by its neighbours, one block of rows
    per query; at most ``MONTAGE_QUERIES`` queries and ``MONTAGE_NEIGHBOURS`` neighbours each
    (the title says when some are left out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown_q = list(zip(queries, neighbours))[:MONTAGE_QUERIES]
    width = min(max((len(n) for _, n in shown_q), default=0), MONTAGE_NEIGHBOURS) + 1
    cols = min(width, 5 if len(shown_q) == 1 else width)
    blocks = [[(label, img, None)] + [(i, image_of(i), d) for i, d in nb[:MONTAGE_NEIGHBOURS]]
              for (label, img), nb in shown_q]
    rows_per = [-(-len(b) // cols) for b in blocks]
    fig, axes = plt.subplots(sum(rows_per), cols, figsize=(2.0 * cols, 2.6 * sum(rows_per)),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    r0 = 0
    for block, nrows in zip(blocks, rows_per):
        for j, (label, img, dist) in enumerate(block):
            ax = axes[r0 + j // cols, j % cols]
            if img is None:
                ax.text(0.5, 0.5, "image not\navailable", ha="center", va="center", fontsize=8)
            else:
                ax.imshow(to_rgb(np.asarray(img)), origin="lower")
            text = f"query {label}" if dist is None else f"{label}\nd = {dist:.3f}"
            ax.set_title(text[:40], fontsize=7, color="darkred" if dist is None else "black")
        r0 += nrows
    left = []
    if len(queries) > len(shown_q):
        left.append(f"first {len(shown_q)} of {len(queries)} queries")
    if any(len(n) > MONTAGE_NEIGHBOURS for n in neighbours):
        left.append(f"first {MONTAGE_NEIGHBOURS} neighbours")
    fig.suptitle(title + (f" ({'; '.join(left)}; all in the table)" if left else ""), fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def grouped(table: "Table") -> list[tuple[str, list[tuple[Any, float]]]]:
    """``[(query, [(id, distance), ...]), ...]`` from a results table, in query order."""
    out: list[tuple[str, list[tuple[Any, float]]]] = []
    for q, i, d in zip(table["query"], table["id"], table["distance"]):
        if not out or out[-1][0] != q:
            out.append((str(q), []))
        out[-1][1].append((plain(i), float(d)))
    return out


def galaxy_images(galaxies: Any) -> Callable[[Any], np.ndarray | None]:
    """``id -> preprocessed image`` of a dataset's galaxies (None for an id not among them)."""
    rows: dict[str, int] = {}
    for i, v in enumerate(galaxies.ids):
        rows.setdefault(str(plain(v)), i)

    def image_of(objid: Any) -> np.ndarray | None:
        row = rows.get(str(plain(objid)))
        return None if row is None else np.asarray(galaxies.images[row])

    return image_of


@dataclass
class SimilarResult:
    """What :func:`similar` found and wrote."""

    table: "Table"
    montage: Path
    results: Path
    queries: int
    #: ``{table: rows left out}`` for tables with NaN or inf representations
    skipped: dict[str, int] = field(default_factory=dict)


def similar(run_dir: str | Path, ids: Sequence[Any] = (), images: Sequence[str | Path] = (),
            table: str | Path | None = None, against: str | Path | None = None, k: int = 8,
            out: str | Path | None = None, results: str | Path | None = None,
            exact_max: int = EXACT_MAX) -> SimilarResult:
    """``astroclr similar``: query a run's catalogue (or ``against`` another embedded one) by
    galaxy ids of the run, by image files, or by the rows of an embeddings ``table``; write a
    montage (default ``RUN/figures/similar_<query>.png``) and the neighbours table (default
    beside it, ``.csv``)."""
    from astroclr.output import check_output
    from astroclr.session.rundir import open_run

    given = [name for name, v in (("--id", ids), ("--image", images), ("--table", table)) if v]
    if len(given) != 1:
        raise AstroclrError("give one kind of query: --id ID, --image FILE or --table FILE "
                            f"(got {', '.join(given) or 'none'})")
    if results is not None and Path(results).suffix.lower() not in (".fits", ".fit", ".csv"):
        raise AstroclrError(f"--results {results}: the suffix must be .fits or .csv")
    run = open_run(run_dir)
    catalogue = Catalogue.open(against if against is not None else run.rundir.embeddings)
    skipped = {str(catalogue.path): catalogue.skipped}
    query_images: list[np.ndarray | None]
    if ids:
        own = catalogue if against is None else Catalogue.open(run.rundir.embeddings)
        names, vectors = [plain(i) for i in ids], own.vectors_of(ids)
        query_images = [None] * len(names)
        stem = str(names[0])
    elif images:
        from astroclr.session.trained import load

        names, vectors, pixels = image_queries(load(run.dir), images)
        query_images = list(pixels)
        stem = Path(images[0]).name.split(".")[0]
    else:
        names, vectors, skipped[str(table)] = table_queries(table)
        query_images = [None] * len(names)
        stem = Path(str(table)).name.split(".")[0]
    if len(names) > 1:
        stem += f"_and_{len(names) - 1}_more"
    if against is not None:
        stem += f"_in_{Path(str(against)).name.split('.')[0]}"
    found = search(catalogue, names, vectors, k, exclude_self=not images, exact_max=exact_max)
    montage_path = Path(out) if out is not None else run.rundir.figure(f"similar_{stem}")
    results_path = Path(results) if results is not None else montage_path.with_suffix(".csv")
    # Before the dataset is loaded for the montage: a bad output costs seconds, not the load.
    inputs = [*images, table, against, run.rundir.embeddings]
    check_output(montage_path, "--out" if out is not None else "the montage", inputs=inputs,
                 replaceable=True)
    check_output(results_path, "--results" if results is not None else "the results table",
                 inputs=inputs, replaceable=True)
    write_results(found, results_path)
    image_of = galaxy_images(run.galaxies())
    for i, name in enumerate(names):
        if query_images[i] is None and len(names) <= MONTAGE_QUERIES:
            query_images[i] = image_of(name)
    by_query = dict(grouped(found))
    where = "" if against is None else f" in {Path(str(against)).name}"
    query_montage([(str(n), img) for n, img in zip(names, query_images)],
                  [by_query.get(str(n), []) for n in names], image_of, montage_path,
                  f"Most similar galaxies{where} (cosine distance)")
    return SimilarResult(found, montage_path, results_path, len(names),
                         {k: v for k, v in skipped.items() if v})
