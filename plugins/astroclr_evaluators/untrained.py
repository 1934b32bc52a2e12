"""``untrained``: the "random network" row — the same probe on an untrained backbone's features.

A randomly initialised convolutional network already gives features that separate galaxy
types somewhat; SimCLR's training is only worth what it adds on top of this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from astroclr.api import (
    UNTRAINED_SEED,
    AstroclrError,
    checked_features,
    checked_labels,
    evaluate_classifiers,
    feature_models,
    untrained_features,
)
from astroclr_evaluators.common import markdown_section
from astroclr_evaluators.declared import HIDDEN, LINEAR_MODELS, MAX_ITER

if TYPE_CHECKING:
    from astroclr.api import EvalContext, EvalResult


def evaluate(context: "EvalContext", models: Sequence[str] = tuple(LINEAR_MODELS.default),
             init_seed: int = 0, hidden: Sequence[int] = tuple(HIDDEN.default),
             max_iter: int = MAX_ITER.default) -> "EvalResult":
    from astroclr.api import EvalResult

    if context.build_backbone is None or context.embed_with is None:
        raise AstroclrError("evaluator 'untrained': needs build_backbone and embed_with in the "
                            "evaluation context (run it from a training run)")
    checked_labels(context, "untrained")  # fail on labels before spending time on embedding
    # The default seed is the core's shared untrained baseline, embedded once per run.
    raw = (context.baseline("untrained") if init_seed == UNTRAINED_SEED
           else untrained_features(context.build_backbone, context.embed_with, init_seed))
    features = checked_features(raw, context, "untrained", "untrained-backbone features")
    built, names = feature_models(features, models, "untrained backbone", hidden=hidden,
                                  max_iter=max_iter)
    metrics = evaluate_classifiers(context, "untrained", built, names)
    metrics["feature_dim"] = int(features.shape[1])
    metrics["init_seed"] = init_seed
    intro = (f"Baseline: the same probe on the {features.shape[1]} features of an untrained "
             f"backbone of the run's kind (random weights, torch seed {init_seed}).")
    return EvalResult(metrics=metrics, markdown=markdown_section(metrics, intro))
