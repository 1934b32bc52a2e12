"""``probe``: how well do the frozen representations classify galaxies?

The reference work's headline number: a fully connected network trained on the
representations of labelled galaxies. Here both an MLP and a linear (logistic) model, each
with standardisation fitted on the training galaxies only, trained on N labelled galaxies and
tested on the seed's held-out test set, for every seed and N.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from astroclr.api import checked_features, evaluate_classifiers, feature_models
from astroclr_evaluators.common import markdown_section
from astroclr_evaluators.declared import HIDDEN, MAX_ITER, MODELS

if TYPE_CHECKING:
    from astroclr.api import EvalContext, EvalResult


def evaluate(context: "EvalContext", models: Sequence[str] = tuple(MODELS.default),
             hidden: Sequence[int] = tuple(HIDDEN.default), max_iter: int = MAX_ITER.default) -> "EvalResult":
    from astroclr.api import EvalResult

    features = checked_features(context.representations, context, "probe")
    built, labels = feature_models(features, models, f"{context.method_title} probe", hidden=hidden,
                                   max_iter=max_iter)
    metrics = evaluate_classifiers(context, "probe", built, labels)
    metrics["feature_dim"] = int(features.shape[1])
    intro = (f"Classifiers trained on the frozen {context.method_title} representations "
             f"({features.shape[1]} dimensions), standardised on the training galaxies only.")
    return EvalResult(metrics=metrics, markdown=markdown_section(metrics, intro))
