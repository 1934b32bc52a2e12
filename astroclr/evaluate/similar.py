"""Similarity search: the galaxies whose representations are closest to a given one.

A trained run writes ``embeddings.fits`` (an astropy Table with an ``id`` column and a
``representation`` column of shape (N, D)). Closeness is cosine distance, ``1 - cos(angle)``,
the geometry SimCLR's loss trains: 0 for the same direction, 2 for opposite ones.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from astroclr.plugin.specs import AstroclrError

if TYPE_CHECKING:
    from astroclr.data.galaxies import Galaxies

def load_embeddings(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, representations)`` from a run directory or an embeddings table file."""
    from astroclr.files import read_embeddings_table
    from astroclr.session.rundir import RunDir

    path = Path(path)
    is_table = path.is_file() or path.suffix.lower() in (".fits", ".fit", ".parquet")
    table = read_embeddings_table(path) if is_table else RunDir(path).read_embeddings()
    return np.asarray(table["id"]), np.asarray(table["representation"], dtype=np.float32)


def same_ids(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two id columns list the same galaxies in the same order (str and bytes alike)."""
    a, b = np.asarray(a), np.asarray(b)
    if len(a) != len(b):
        return False
    if a.dtype.kind in "SU" or b.dtype.kind in "SU":
        decode = np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else str(v), otypes=[str])
        return bool(np.array_equal(decode(a), decode(b))) if len(a) else True
    return bool(np.array_equal(a, b))


def index_of(ids: np.ndarray, objid: Any, where: str = "the embeddings") -> int:
    """Row of ``objid`` in ``ids``, matching ``"123"`` to integer id 123 and bytes to str."""
    ids = np.asarray(ids)
    key: Any = objid
    if np.issubdtype(ids.dtype, np.integer):
        try:
            key = int(str(objid).strip())
        except ValueError:
            raise AstroclrError(f"id {objid!r} is not in {where}: its ids are integers") from None
    elif ids.dtype.kind in "SU":
        ids = ids.astype(str)
        key = objid.decode() if isinstance(objid, bytes) else str(objid)
    hits = np.flatnonzero(ids == key)
    if hits.size == 0:
        sample = ", ".join(str(i) for i in ids[:3])
        raise AstroclrError(f"id {objid!r} is not in {where} ({len(ids)} galaxies, e.g. {sample})")
    return int(hits[0])


def plain(value: Any) -> Any:
    """A plain Python value from a numpy scalar (ids come back JSON- and print-friendly)."""
    value = value.item() if isinstance(value, np.generic) else value
    return value.decode() if isinstance(value, bytes) else value


def nearest(ids: np.ndarray, representations: np.ndarray, objid: Any, k: int = 8,
            where: str = "the embeddings") -> list[tuple[Any, float]]:
    """The ``k`` galaxies closest to ``objid`` by cosine distance, nearest first, itself excluded.

    Distances are between representations with the dataset's mean representation removed:
    SimCLR representations share a large common component, so raw cosines all sit near 1 and
    say little; centred, they measure how a galaxy differs from the typical one.
    """
    from astroclr.evaluate.index import NeighbourIndex

    reps = np.asarray(representations, dtype=np.float32)
    row = index_of(ids, objid, where)
    # exact whatever the size: one query scans even 1,000,000 rows in well under a second
    index = NeighbourIndex.build(reps, exact_max=len(reps))
    rows, dist = index.search(reps[row:row + 1], k, exclude=np.array([row]))
    return [(plain(np.asarray(ids)[i]), float(d)) for i, d in zip(rows[0], dist[0])]


def find_similar(run_dir: str | Path, objid: Any, k: int = 8) -> list[tuple[Any, float]]:
    """The ``k`` most similar galaxies to ``objid`` in a run: ``[(id, cosine distance), ...]``."""
    from astroclr.session.rundir import RunDir

    ids, reps = load_embeddings(run_dir)
    return nearest(ids, reps, objid, k, where=str(RunDir(run_dir).embeddings))


def to_rgb(image: np.ndarray) -> np.ndarray:
    """A displayable (H, W, 3) image from (C, H, W) of any number of bands; or (N, H, W, 3)
    from a batch (N, C, H, W), stretched image by image as if one at a time.

    Bands are assumed ordered blue to red (as surveys list them): the reddest goes to red,
    the bluest to blue; one band is shown grey. Each channel is stretched between its 1st
    and 99.5th percentile, then an asinh stretch shows faint outskirts and bright cores.
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 3:
        return to_rgb(img[None])[0]
    c = img.shape[1]
    if c == 1:
        chans = [img[:, 0]] * 3
    elif c == 2:
        chans = [img[:, 1], 0.5 * (img[:, 0] + img[:, 1]), img[:, 0]]
    else:
        chans = [img[:, c - 1], img[:, c // 2], img[:, 0]]
    out = []
    for ch in chans:  # (N, H, W)
        if np.isfinite(ch).all():
            lo, hi = np.percentile(ch, [1, 99.5], axis=(1, 2))
        else:
            with warnings.catch_warnings():  # an all-NaN image: drawn black below
                warnings.simplefilter("ignore", RuntimeWarning)
                lo, hi = np.nanpercentile(ch, [1, 99.5], axis=(1, 2))
        lo, hi = np.nan_to_num(lo, nan=0.0)[:, None, None], np.nan_to_num(hi, nan=1.0)[:, None, None]
        x = np.clip((np.nan_to_num(ch, nan=0.0) - lo) / np.maximum(hi - lo, 1e-12), 0, 1)
        x = np.where(np.isfinite(ch), x, 0.0)
        out.append(np.arcsinh(8 * x) / np.arcsinh(8))
    return np.stack(out, axis=-1).astype(np.float32)


def montage(galaxies: "Galaxies", query: Any, neighbours: Sequence[tuple[Any, float]],
            path: str | Path, title: str | None = None, first: str = "query {id}",
            value: str = "d") -> Path:
    """Draw the query galaxy and its neighbours in a row-wrapped grid, with ids and distances.

    ``first`` labels the first panel (``{id}`` is its id); ``value`` names the number under
    the others (``d`` for a distance; e.g. ``score`` for a ranking by score).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gal_ids = galaxies.ids
    panels = [(query, None)] + list(neighbours)
    cols = min(len(panels), 5)
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.1 * cols, 2.75 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (gid, dist) in zip(axes.ravel(), panels):
        try:
            row = index_of(gal_ids, gid, "the galaxies")
        except AstroclrError:
            if dist is None:
                raise AstroclrError(f"id {query!r} is not among the galaxies given to draw the "
                                    f"montage (dataset {galaxies.survey.name!r})") from None
            ax.text(0.5, 0.5, "image not\navailable", ha="center", va="center", fontsize=8)
        else:
            ax.imshow(to_rgb(np.asarray(galaxies.images[row])), origin="lower")
        label = first.format(id=gid) if dist is None else f"{gid}\n{value} = {dist:.3f}"
        ax.set_title(label, fontsize=7, color="darkred" if dist is None else "black")
    fig.suptitle(title or f"Most similar galaxies to {query} (cosine distance)", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_montage(run_dir: str | Path, objid: Any, k: int, path: str | Path,
                  galaxies: "Galaxies") -> Path:
    """PNG of ``objid`` and its ``k`` nearest neighbours in the run's embeddings."""
    neighbours = find_similar(run_dir, objid, k)
    return montage(galaxies, objid, neighbours, path)
