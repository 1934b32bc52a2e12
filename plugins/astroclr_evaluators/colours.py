"""``colours``: the astronomer's baseline — the galaxy's central colours, and nothing else.

Colour alone separates early (red) from late (blue) types well on SDSS; a representation
that is worth training must beat it. Features, in a centred aperture of the same preprocessed
images the model sees: the mean of each band (C numbers: colour and, since images are scaled
per image, central concentration) and the C − 1 colours between consecutive bands,
``-2.5 log10(F_b / F_b+1)`` (g − r and r − i for gri). Then the same probes as ``probe``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from astroclr.api import AstroclrError
from astroclr_evaluators.common import (
    checked_labels,
    evaluate_classifiers,
    feature_models,
    markdown_section,
)

if TYPE_CHECKING:
    from astroclr.api import EvalContext, EvalResult


def central_colours(images: np.ndarray, aperture: float, batch: int = 4096) -> np.ndarray:
    """(N, 2C − 1): the mean of each band and the colours (magnitudes) between consecutive bands
    in a centred square of side ``aperture`` × image side; read in batches (memory-map safe)."""
    n, c, h, w = images.shape
    half = max(1, int(round(aperture * min(h, w) / 2)))
    cy, cx = h // 2, w // 2
    out = np.empty((n, 2 * c - 1), dtype=np.float64)
    for start in range(0, n, batch):
        block = np.asarray(images[start:start + batch, :, cy - half:cy + half, cx - half:cx + half],
                           dtype=np.float64)
        # A floor keeps an empty band from giving an infinite colour.
        flux = np.clip(block, 0.0, None).sum(axis=(2, 3)) + 1e-6 * block[0].size
        means = block.mean(axis=(2, 3))
        colours = -2.5 * np.log10(flux[:, :-1] / flux[:, 1:])
        out[start:start + len(block)] = np.concatenate([means, colours], axis=1)
    return out


def evaluate(context: "EvalContext", aperture: float = 0.25,
             models: Sequence[str] = ("linear",), hidden: Sequence[int] = (256,),
             max_iter: int = 200) -> "EvalResult":
    from astroclr.api import EvalResult

    checked_labels(context, "colours")
    if len(context.galaxies.bands) < 2:
        raise AstroclrError("evaluator 'colours': needs at least two bands")
    features = central_colours(context.galaxies.images, aperture)
    built, names = feature_models(features, models, "central colours", hidden=hidden,
                                  max_iter=max_iter)
    metrics = evaluate_classifiers(context, "colours", built, names)
    metrics["feature_dim"] = int(features.shape[1])
    metrics["aperture"] = aperture
    bands = ", ".join(context.galaxies.bands)
    intro = (f"Baseline: the galaxy's centre alone: the mean of each band ({bands}) and the "
             f"colours between consecutive bands, in a centred square of {aperture:g} of the "
             f"image side.")
    return EvalResult(metrics=metrics, markdown=markdown_section(metrics, intro))
