"""``cnn``: the supervised baseline — the same backbone trained from scratch on the labels.

The reference work's claim is that SimCLR + a small classifier matches a supervised CNN. The
honest comparison trains the *same* architecture (``context.build_backbone()``, fresh random
weights) with a linear head, on the *same* N labelled galaxies of the *same* split, with the
*same* augmentations, and tests it on the same test galaxies. It is slow on a CPU, so it is
not in the default evaluator list and ``sizes`` can limit which N are run.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from astroclr.api import AstroclrError, Recipe, Task, checked_labels, evaluate_classifiers
from astroclr_evaluators.common import markdown_section

if TYPE_CHECKING:
    from astroclr.api import EvalContext, EvalResult


_RECIPE = Recipe()


def scratch_recipe(epochs: int, max_steps: int, min_steps: int, lr: float, weight_decay: float,
                   batch_size: int, augment: bool) -> Recipe:
    """The fine-tuning recipe from random weights on the labels alone: no probe head (random
    features have nothing to probe), one learning rate, no unlabelled galaxies."""
    return Recipe(mode="finetune", init="scratch", unlabelled="none", probe_init=False,
                  epochs=epochs, max_steps=max_steps, min_steps=min_steps, lr=lr,
                  encoder_lr=lr, weight_decay=weight_decay, batch_size=batch_size,
                  augment="run" if augment else "none")


def evaluate(context: "EvalContext", sizes: Sequence[int] = (), epochs: int = _RECIPE.epochs,
             max_steps: int = _RECIPE.max_steps, min_steps: int = _RECIPE.min_steps,
             lr: float = _RECIPE.lr, weight_decay: float = _RECIPE.weight_decay,
             batch_size: int = _RECIPE.batch_size, augment: bool = True) -> "EvalResult":
    from astroclr.api import EvalResult
    from astroclr_evaluators.finetune import fit_and_predict

    if context.build_backbone is None:
        raise AstroclrError("evaluator 'cnn': needs build_backbone in the evaluation context "
                            "(run it from a training run)")
    checked_labels(context, "cnn")
    spec = scratch_recipe(epochs, max_steps, min_steps, lr, weight_decay, batch_size, augment)
    pipeline = context.augment if spec.augment == "run" else None
    log: dict[str, Any] = {}

    def model(task: Task) -> np.ndarray:
        return fit_and_predict(context, task, spec, pipeline, log)

    start = time.perf_counter()
    metrics = evaluate_classifiers(context, "cnn", {"cnn": model},
                                   {"cnn": "supervised CNN (same network, from scratch)"},
                                   sizes=sizes)
    total = time.perf_counter() - start
    aug = pipeline is not None
    metrics.update({"train_seconds_total": total, "train_seconds": log.get("train_seconds", []),
                    "steps": log.get("steps", []), "augmented": aug,
                    "device": str(context.device), "recipe": spec.to_dict(),
                    "hyperparameters": {"epochs": epochs, "max_steps": max_steps,
                                        "min_steps": min_steps, "lr": lr,
                                        "weight_decay": weight_decay,
                                        "batch_size": batch_size}})
    names = getattr(context.augment, "names", None) if aug else None
    intro = (f"Baseline: the run's network (backbone and representation layer) trained from "
             f"random weights with a linear head, supervised, on the same N labelled galaxies "
             f"alone, by the fine-tuning recipe's code path (`astroclr finetune --init "
             f"scratch`: cross-entropy, AdamW, lr {lr}, warm-up and cosine decay, batch "
             f"{batch_size}, {epochs} epochs bounded to {min_steps}–{max_steps or '∞'} steps), "
             + (f"with the run's augmentations ({', '.join(names)})" if names else
                "with the run's augmentations" if aug else "without augmentation")
             + f". Wall-clock of all its training: {total:.1f} s on {context.device} "
             f"(not included in the {context.method_title} training time).")
    return EvalResult(metrics=metrics, markdown=markdown_section(metrics, intro))
