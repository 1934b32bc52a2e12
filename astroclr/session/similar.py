"""``astroclr similar`` on a run: queries by galaxy id, by new image files (embedded on the fly
with the run's model and preprocessing) or by a table of representations, searched with
:mod:`astroclr.evaluate.query` and drawn with :mod:`astroclr.evaluate.montage`; and
:func:`find_similar`, the same search for one galaxy of a run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from astroclr.evaluate.ids import id_key, plain, row_lookup
from astroclr.evaluate.index import EXACT_MAX
from astroclr.evaluate.query import (
    Catalogue,
    grouped,
    neighbours,
    search,
    table_queries,
    write_results,
)
from astroclr.plugin.specs import AstroclrError
from astroclr.runs.rundir import embeddings_file

if TYPE_CHECKING:
    from astropy.table import Table

    from astroclr.runs.encoder import TrainedEncoder

#: montage limits: the results table holds everything, the picture only what stays readable
MONTAGE_QUERIES = 10
MONTAGE_NEIGHBOURS = 10


def find_similar(run_dir: str | Path, objid: Any, k: int = 8) -> list[tuple[Any, float]]:
    """The ``k`` most similar galaxies to ``objid`` in a run (or an embeddings table):
    ``[(id, cosine distance), ...]``, nearest first, itself excluded."""
    return neighbours(Catalogue.open(embeddings_file(run_dir)), [objid], k)[0]


def image_queries(model: "TrainedEncoder", paths: Sequence[str | Path]
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


def galaxy_images(galaxies: Any) -> Callable[[Any], np.ndarray | None]:
    """``id -> preprocessed image`` of a dataset's galaxies (None for an id not among them)."""
    rows = row_lookup(galaxies.ids)

    def image_of(objid: Any) -> np.ndarray | None:
        row = rows.get(id_key(galaxies.ids, objid))
        return None if row is None else np.asarray(galaxies.images[row])

    return image_of


def query_montage(queries: Sequence[tuple[str, np.ndarray | None]],
                  found: Sequence[Sequence[tuple[Any, float]]],
                  image_of: Callable[[Any], np.ndarray | None], path: str | Path,
                  title: str) -> Path:
    """Each query (its label and image, or None) followed by its neighbours, one block of rows
    per query; at most ``MONTAGE_QUERIES`` queries and ``MONTAGE_NEIGHBOURS`` neighbours each
    (the title says when some are left out)."""
    from astroclr.evaluate.montage import Panel, draw_montage

    shown = list(zip(queries, found))[:MONTAGE_QUERIES]
    blocks = [[Panel(f"query {label}", img, lead=True)]
              + [Panel(f"{i}\nd = {d:.3f}", image_of(i)) for i, d in nb[:MONTAGE_NEIGHBOURS]]
              for (label, img), nb in shown]
    left = []
    if len(queries) > len(shown):
        left.append(f"first {len(shown)} of {len(queries)} queries")
    if any(len(n) > MONTAGE_NEIGHBOURS for n in found):
        left.append(f"first {MONTAGE_NEIGHBOURS} neighbours")
    return draw_montage(blocks, path, title + (f" ({'; '.join(left)}; all in the table)"
                                               if left else ""))


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
    from astroclr.runs.rundir import open_run

    given = [name for name, v in (("--id", ids), ("--image", images), ("--table", table)) if v]
    if len(given) != 1:
        raise AstroclrError("give one kind of query: --id ID, --image FILE or --table FILE "
                            f"(got {', '.join(given) or 'none'})")
    if results is not None and Path(results).suffix.lower() not in (".fits", ".fit", ".csv"):
        raise AstroclrError(f"--results {results}: the suffix must be .fits or .csv")
    run = open_run(run_dir)
    catalogue = Catalogue.open(embeddings_file(against) if against is not None
                               else run.rundir.embeddings)
    skipped = {str(catalogue.path): catalogue.skipped}
    query_images: list[np.ndarray | None]
    if ids:
        own = catalogue if against is None else Catalogue.open(run.rundir.embeddings)
        names, vectors = [plain(i) for i in ids], own.vectors_of(ids)
        query_images = [None] * len(names)
        stem = str(names[0])
    elif images:
        from astroclr.runs.encoder import load_encoder

        names, vectors, pixels = image_queries(load_encoder(run.dir), images)
        query_images = list(pixels)
        stem = Path(images[0]).name.split(".")[0]
    else:
        names, vectors, skipped[str(table)] = table_queries(embeddings_file(table))
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
