"""``finetune``: the run's trained encoder fine-tuned on the N labels, next to the ``cnn`` baseline.

The semi-supervised protocol of SimCLR and Zoobot: start from the self-supervised encoder and
train it, with a linear head, on the labelled galaxies. It runs on the *same* seeded splits as
``probe``, ``pca`` and ``cnn`` and, by default, with the ``cnn`` evaluator's number of steps
(``epochs`` passes bounded to ``min_steps``–``max_steps``), batch size and augmentations (the
run's pipeline), so ``astroclr evaluate RUN -e probe -e finetune -e cnn -e label_efficiency``
compares pre-trained and random initialisation on equal terms. The recipe (linear probe first,
then every layer at the ``cnn`` learning rate on all N labels; layer-wise rates, frozen
batch-norm statistics and early stopping are options) is :class:`astroclr.api.Recipe`'s; see
``astroclr/classify/finetune.py`` for the measurements behind the defaults.
Slow on a CPU: kept out of the default evaluators, like ``cnn``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from astroclr.api import (
    AstroclrError,
    Task,
    checked_labels,
    evaluate_classifiers,
    single_class_prediction,
)
from astroclr_evaluators.common import markdown_section

if TYPE_CHECKING:
    from astroclr.api import EvalContext, EvalResult


def _classes(task: Task, rows: np.ndarray) -> np.ndarray:
    """Class indices 0..K-1 of the galaxies ``rows``."""
    return np.searchsorted(task.classes, task.labels[rows])


def fit_and_predict(context: "EvalContext", task: Task, spec: Any, augment: Any,
                    log: dict[str, list]) -> np.ndarray:
    """Train the classifier of ``spec`` (a Recipe) on ``task``'s labelled galaxies and return
    its test-set probabilities: the one code path of the ``finetune`` evaluator (the run's
    encoder) and the ``cnn`` baseline (``init="scratch"``: random weights, labels alone).

    The unlabelled galaxies of a semi-supervised recipe are every galaxy of the dataset but
    the N labelled ones and the test split: their labels are never read."""
    import torch

    from astroclr.api import (
        classifier_net,
        forward_all,
        holdout,
        scratch_encoder,
        train_classifier,
        unlabelled_rows,
    )

    const = single_class_prediction(task)
    if const is not None:
        return const
    k = len(task.classes)
    y = np.searchsorted(task.classes, task.y_train)
    train_rows, val_rows = holdout(task.train_idx, y, spec.val_fraction, task.seed)
    torch.manual_seed(task.seed)  # the same initial weights for a seed, whatever N
    if spec.init == "scratch":
        dim = int(context.config.get("train", {}).get("representation_dim", 64))
        encoder = scratch_encoder(context.build_backbone(), dim)
    else:
        encoder = context.trained_encoder()
    net = classifier_net(encoder, k)
    images = context.galaxies.images
    unlabelled = (unlabelled_rows(len(context.galaxies), task.train_idx, task.test_idx)
                  if spec.semi_supervised else None)
    out = train_classifier(net, images, train_rows, _classes(task, train_rows), val_rows,
                           _classes(task, val_rows), k, spec, augment=augment, seed=task.seed,
                           device=str(context.device), n_labels=len(task.train_idx),
                           unlabelled_rows=unlabelled, survey=context.galaxies.survey)
    log.setdefault("train_seconds", []).append(out["seconds"])
    log.setdefault("steps", []).append(out.get("steps", 0))
    log.setdefault("best_step", []).append(out.get("best_step"))
    log.setdefault("validation_balanced_accuracy", []).append(
        out.get("validation", {}).get("balanced_accuracy"))
    log.setdefault("n_unlabelled", []).append(out.get("n_unlabelled", 0))
    logits = forward_all(net, images, task.test_idx, torch.device(context.device))
    return torch.softmax(torch.from_numpy(logits), dim=1).numpy()


def evaluate(context: "EvalContext", sizes: Sequence[int] = (), **recipe: Any) -> "EvalResult":
    from astroclr.api import EvalResult, Recipe, select_augment

    if getattr(context, "trained_encoder", None) is None:
        raise AstroclrError("evaluator 'finetune': needs the run's trained encoder in the "
                            "evaluation context (run it from a run: astroclr evaluate RUN -e "
                            "finetune)")
    checked_labels(context, "finetune")
    spec = Recipe(mode="finetune", **recipe)
    if spec.init == "scratch" and context.build_backbone is None:
        raise AstroclrError("evaluator 'finetune': init 'scratch' needs build_backbone in the "
                            "evaluation context (run it from a run)")
    augment = select_augment(spec.augment, context.augment, context.galaxies.survey)
    log: dict[str, list] = {}

    def model(task: Task) -> np.ndarray:
        return fit_and_predict(context, task, spec, augment, log)

    start = time.perf_counter()
    metrics = evaluate_classifiers(context, "finetune", {"finetune": model},
                                   {"finetune": _title(spec)}, sizes=sizes)
    total = time.perf_counter() - start
    names = getattr(augment, "names", None) if augment is not None else None
    metrics.update({"train_seconds_total": total, **log, "recipe": spec.to_dict(),
                    "augmentations": names or [], "device": str(context.device)})
    return EvalResult(metrics=metrics, markdown=markdown_section(metrics, _intro(spec, names,
                                                                                 total, context)))


def _title(spec: Any) -> str:
    if spec.init == "scratch":
        return "same network from scratch"
    return {"fixmatch": "fine-tuned + FixMatch", "ssl": "fine-tuned + SSL loss",
            "distill": "fine-tuned + self-distillation",
            "none": "fine-tuned"}[spec.unlabelled]


def _intro(spec: Any, names: Any, total: float, context: "EvalContext") -> str:
    start = ("The same network trained from random weights" if spec.init == "scratch" else
             "The run's trained encoder fine-tuned with a linear head, its head first fitted "
             "as the linear probe" if spec.probe_init else
             "The run's trained encoder fine-tuned with a new linear head")
    semi = {"fixmatch": f"; the galaxies outside the N labelled ones and the test split as "
                        f"unlabelled, FixMatch-style (pseudo-labels of a weak view above "
                        f"{spec.threshold} confidence, distribution-aligned, train the strong "
                        f"view; {spec.unlabelled_batch} per step, weight "
                        f"{spec.unlabelled_weight})",
            "ssl": f"; the galaxies outside the N labelled ones and the test split as "
                   f"unlabelled, with the self-supervised NT-Xent loss kept on them "
                   f"({spec.unlabelled_batch} per step, weight {spec.unlabelled_weight})",
            "distill": f"; a copy first fine-tuned on the labels alone as the teacher, then the "
                       f"network trained on the labels and, on the galaxies outside the N "
                       f"labelled ones and the test split, the teacher's soft predictions of a "
                       f"weak view from a strong view ({spec.unlabelled_batch} per step, weight "
                       f"{spec.unlabelled_weight})",
            "none": ""}[spec.unlabelled if spec.semi_supervised else "none"]
    return (f"{start}, end to end on the same N labelled galaxies (AdamW, head lr {spec.lr}, "
            f"encoder lr {spec.encoder_lr} × {spec.layer_decay} per block downwards, "
            f"{'frozen' if spec.freeze_bn else 'updated'} batch-norm statistics, batch "
            f"{spec.batch_size}, {spec.epochs} epochs bounded to {spec.min_steps}–"
            f"{spec.max_steps or '∞'} steps)"
            + semi + ", "
            + (f"with augmentations ({', '.join(names)})" if names else "without augmentation")
            + (f", early stopping on {spec.val_fraction:.0%} of the N labels held out "
               f"(every {spec.eval_every} steps, patience {spec.patience})"
               if spec.val_fraction > 0 else ", on all N labels, no early stopping")
            + f". Wall-clock of all its training: {total:.1f} s on {context.device}.")
