"""Montages: galaxy cutouts in a grid with a label under each, the one drawer of every montage
(the ``similar`` and ``anomaly`` evaluators, ``astroclr similar``, ``astroclr suggest``), and
:func:`to_rgb`, how a cutout of any number of bands is shown. Matplotlib loads on first draw."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from astroclr.evaluate.ids import index_of
from astroclr.plugin.specs import AstroclrError

if TYPE_CHECKING:
    from astroclr.data.galaxies import Galaxies

#: panels per row of a single block (several blocks: one row each, as wide as the widest)
COLUMNS = 5
#: characters per line of a panel's label (an id is data: it may be any length)
LABEL_WIDTH = 40


@dataclass(frozen=True)
class Panel:
    """One cell of a montage: a (C, H, W) cutout (None draws "image not available") and its
    label; a ``lead`` panel (the query, the first pick) is labelled in dark red."""

    label: str
    image: np.ndarray | None = None
    lead: bool = False


def printable(text: str) -> str:
    """``text`` with each character that is not printable written as its escape (``a\\x00b``):
    an id is data, and a control character in a figure's title is drawn as a missing glyph,
    with a warning from matplotlib for each one."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


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


def draw_montage(blocks: Sequence[Sequence[Panel]], path: str | Path, title: str) -> Path:
    """Draw ``blocks`` of panels (one block per query: its panel, then its neighbours), each
    block starting a new row; one block wraps after :data:`COLUMNS` panels. Written as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    blocks = [list(b) for b in blocks if b]
    width = max((len(b) for b in blocks), default=1)
    cols = min(width, COLUMNS) if len(blocks) == 1 else width
    rows_per = [-(-len(b) // cols) for b in blocks] or [1]
    rows = sum(rows_per)
    fig, axes = plt.subplots(rows, cols, figsize=(2.1 * cols, 2.75 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    r0 = 0
    for block, nrows in zip(blocks, rows_per):
        for j, panel in enumerate(block):
            ax = axes[r0 + j // cols, j % cols]
            if panel.image is None:
                ax.text(0.5, 0.5, "image not\navailable", ha="center", va="center", fontsize=8)
            else:
                ax.imshow(to_rgb(np.asarray(panel.image)), origin="lower")
            label = "\n".join(printable(line)[:LABEL_WIDTH] for line in panel.label.split("\n"))
            ax.set_title(label, fontsize=7, color="darkred" if panel.lead else "black")
        r0 += nrows
    fig.suptitle("\n".join(printable(line) for line in title.split("\n")), fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def montage(galaxies: "Galaxies", query: Any, neighbours: Sequence[tuple[Any, float]],
            path: str | Path, title: str | None = None, first: str = "query {id}",
            value: str = "d") -> Path:
    """Draw the query galaxy and its neighbours in a row-wrapped grid, with ids and distances.

    ``first`` labels the first panel (``{id}`` is its id); ``value`` names the number under
    the others (``d`` for a distance; e.g. ``score`` for a ranking by score). A neighbour not
    among ``galaxies`` is an empty panel; the query must be among them.
    """
    def image(gid: Any) -> np.ndarray | None:
        try:  # a few panels: a scan per id beats building a lookup of every galaxy
            return np.asarray(galaxies.images[index_of(galaxies.ids, gid, "the galaxies")])
        except AstroclrError:
            return None

    lead = image(query)
    if lead is None:
        raise AstroclrError(f"id {query!r} is not among the galaxies given to draw the montage "
                            f"(dataset {galaxies.survey.name!r})")
    panels = [Panel(first.format(id=query), lead, lead=True)]
    panels += [Panel(f"{gid}\n{value} = {dist:.3f}", image(gid)) for gid, dist in neighbours]
    return draw_montage([panels], path, title or f"Most similar galaxies to {query} "
                                                 f"(cosine distance)")
