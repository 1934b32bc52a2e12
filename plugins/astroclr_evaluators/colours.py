"""``colours``: the astronomer's baseline — the galaxy's central colours, and nothing else.

Colour alone separates early (red) from late (blue) types well on SDSS; a representation
that is worth training must beat it. Features, in a centred aperture of the same preprocessed
images the model sees: the mean of each band (C numbers: colour and, since images are scaled
per image, central concentration) and the C − 1 colours between consecutive bands,
``-2.5 log10(F_b / F_b+1)`` (g − r and r − i for gri). Then the same probes as ``probe``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from astroclr.api import (
    COLOUR_APERTURE,
    AstroclrError,
    central_colours,
    checked_labels,
    evaluate_classifiers,
    feature_models,
)
from astroclr_evaluators.common import markdown_section
from astroclr_evaluators.declared import HIDDEN, LINEAR_MODELS, MAX_ITER

if TYPE_CHECKING:
    from astroclr.api import EvalContext, EvalResult


def evaluate(context: "EvalContext", aperture: float = 0.25,
             models: Sequence[str] = tuple(LINEAR_MODELS.default),
             hidden: Sequence[int] = tuple(HIDDEN.default),
             max_iter: int = MAX_ITER.default) -> "EvalResult":
    from astroclr.api import EvalResult

    checked_labels(context, "colours")
    if len(context.galaxies.bands) < 2:
        raise AstroclrError("evaluator 'colours': needs at least two bands")
    # The default aperture is the core's shared colours baseline, computed once per run.
    features = (context.baseline("colours") if aperture == COLOUR_APERTURE
                else central_colours(context.galaxies.images, aperture))
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
