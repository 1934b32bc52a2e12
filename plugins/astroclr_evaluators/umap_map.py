"""The interactive UMAP map: one self-contained HTML file (no server, no CDN).

Hovering over a point shows the galaxy's cutout, id and label; clicking lists its nearest
neighbours in representation space (cosine distance, as ``astroclr similar``) with their
cutouts, and rings them on the map. A box or a lasso (shift adds to it) selects galaxies, and
"download CSV" saves their ids under the header ``id``: a list to label, which comes back as
``astroclr finetune --labels-file`` / ``astroclr suggest --labels-file`` once a label column
is added (tests/test_map_select.py draws both in headless Chromium).

Everything is inline: the points, ids and neighbours as base64 typed arrays and JSON, the
cutouts as JPEG sprite sheets (64 x 64 thumbnails per sheet), the drawing code as plain
JavaScript on a canvas (the page is ``umap_map.html`` beside this module). The report embeds
the file in an ``<iframe srcdoc>``.

Measured for 20,000 galaxies (the umap evaluator's default ``max_points``) on the shared
2-core machine: 5.7 MB with 24 px thumbnails at JPEG quality 70 (13 MB at 32 px, quality 85),
written in ~40 s, drawn by headless Chromium in 0.4 s.

Opening ``umap_map.html#demo=ROW`` hovers and clicks point ROW on load (how the map is checked
headless: a screenshot shows the tooltip and the neighbour list).
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from astroclr.api import EvalContext

#: thumbnails per side of one sprite sheet (a sheet holds SHEET**2 of them)
SHEET = 64
#: tab10, as the static UMAP figure colours its classes
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def sprite_sheets(images: Any, rows: np.ndarray, size: int, quality: int = 70) -> list[str]:
    """Base64 JPEG sheets of ``size``-px thumbnails of ``images[rows]``, row-major, SHEET per
    side; thumbnail ``i`` is on sheet ``i // SHEET**2``."""
    from PIL import Image

    from astroclr.api import to_rgb

    sheets = []
    per = SHEET * SHEET
    for start in range(0, len(rows), per):
        chunk = rows[start:start + per]
        side = SHEET if len(chunk) > SHEET else len(chunk)
        height = -(-len(chunk) // SHEET)
        canvas = np.zeros((height * size, side * size, 3), dtype=np.uint8)
        rgbs = (to_rgb(np.asarray(images[np.sort(chunk)]))[np.argsort(np.argsort(chunk))]
                * 255).astype(np.uint8)  # sorted reads suit a memory map
        for j, rgb in enumerate(rgbs):
            thumb = rgb if rgb.shape[0] == size else np.asarray(
                Image.fromarray(rgb).resize((size, size), Image.BILINEAR))
            y, x = divmod(j, SHEET)
            canvas[y * size:(y + 1) * size, x * size:(x + 1) * size] = thumb[::-1]  # origin lower
        buf = io.BytesIO()
        Image.fromarray(canvas).save(buf, format="JPEG", quality=quality)
        sheets.append(base64.b64encode(buf.getvalue()).decode("ascii"))
    return sheets


def write_map(context: "EvalContext", rows: np.ndarray, coords: np.ndarray, labels: np.ndarray,
              path: str | Path, k: int = 8, thumb: int = 24,
              title: str = "UMAP of the representations") -> Path:
    """Write the map of galaxies ``rows`` at 2-D ``coords`` to ``path`` (a complete HTML page)."""
    from astroclr.api import NeighbourIndex, atomic_write

    rows = np.asarray(rows, dtype=np.int64)
    features = np.asarray(context.representations, dtype=np.float32)[rows]
    k = max(1, min(int(k), len(rows) - 1))
    nb, dist = NeighbourIndex.build(features).search(features, k, exclude=np.arange(len(rows)))
    ids = [str(v.item() if isinstance(v, np.generic) else v) for v in context.galaxies.ids[rows]]
    names = context.label_names or ()
    lab = np.asarray(labels, dtype=np.int64)
    classes = [int(c) for c in np.unique(lab[lab >= 0])]
    legend = [{"label": int(c), "name": names[c] if 0 <= c < len(names) else str(c),
               "color": PALETTE[i % len(PALETTE)]} for i, c in enumerate(classes)]
    colour_of = {c: i % len(PALETTE) for i, c in enumerate(classes)}
    name_of = {entry["label"]: entry["name"] for entry in legend}
    size = int(min(thumb, context.galaxies.image_size))
    data = {
        "n": len(rows), "k": k, "thumb": size, "sheet": SHEET, "title": title,
        "x": _b64(coords[:, 0].astype(np.float32)), "y": _b64(coords[:, 1].astype(np.float32)),
        "colour": _b64(np.array([colour_of.get(int(c), -1) for c in lab], dtype=np.int8)),
        "nb": _b64(nb.astype(np.int32)), "dist": _b64(dist.astype(np.float32)),
        "ids": ids, "legend": legend, "palette": PALETTE,
        "labels": [name_of.get(int(c), "unlabelled") for c in lab],
    }
    sheets = sprite_sheets(context.galaxies.images, rows, size)
    # the data last: nothing is substituted into what the ids may spell
    page = (_template().replace("__TITLE__", _escape(title)).replace("__SHEETS__", json.dumps(sheets))
            .replace("__DATA__", _script_json(data)))
    return atomic_write(path, page)


def _template() -> str:
    """The page (HTML, CSS and JavaScript), shipped beside this module."""
    from importlib.resources import files

    return files("astroclr_evaluators").joinpath("umap_map.html").read_text(encoding="utf-8")


def _script_json(value: Any) -> str:
    """JSON safe inside ``<script>``: no ``<`` at all, so no ids can close or comment it."""
    return json.dumps(value, separators=(",", ":")).replace("<", "\\u003c")


def _escape(text: str) -> str:
    import html

    return html.escape(text)
