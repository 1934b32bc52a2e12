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


def evaluate(context: "EvalContext", sizes: Sequence[int] = (), **recipe: Any) -> "EvalResult":
    import torch

    from astroclr.api import (
        EvalResult,
        Recipe,
        classifier_net,
        forward_all,
        holdout,
        select_augment,
        train_classifier,
    )

    if getattr(context, "trained_encoder", None) is None:
        raise AstroclrError("evaluator 'finetune': needs the run's trained encoder in the "
                            "evaluation context (run it from a run: astroclr evaluate RUN -e "
                            "finetune)")
    checked_labels(context, "finetune")
    spec = Recipe(mode="finetune", **recipe)
    augment = select_augment(spec.augment, context.augment, context.galaxies.survey)
    images = context.galaxies.images
    device = torch.device(context.device)
    log: dict[str, list] = {"train_seconds": [], "steps": [], "best_step": [],
                            "validation_balanced_accuracy": []}

    def model(task: Task):
        const = single_class_prediction(task)
        if const is not None:
            return const
        k = len(task.classes)
        y = np.searchsorted(task.classes, task.y_train)
        train_rows, val_rows = holdout(task.train_idx, y, spec.val_fraction, task.seed)
        torch.manual_seed(task.seed)
        net = classifier_net(context.trained_encoder(), k)
        out = train_classifier(net, images, train_rows, _classes(task, train_rows), val_rows,
                               _classes(task, val_rows), k, spec, augment=augment, seed=task.seed,
                               device=str(device), n_labels=len(task.train_idx))
        log["train_seconds"].append(out["seconds"])
        log["steps"].append(out.get("steps", 0))
        log["best_step"].append(out.get("best_step"))
        log["validation_balanced_accuracy"].append(
            out.get("validation", {}).get("balanced_accuracy"))
        logits = forward_all(net, images, task.test_idx, device)
        return torch.softmax(torch.from_numpy(logits), dim=1).numpy()

    start = time.perf_counter()
    metrics = evaluate_classifiers(context, "finetune", {"finetune": model},
                                   {"finetune": "SimCLR fine-tuned"}, sizes=sizes)
    total = time.perf_counter() - start
    names = getattr(augment, "names", None) if augment is not None else None
    metrics.update({"train_seconds_total": total, **log, "recipe": spec.to_dict(),
                    "augmentations": names or [], "device": str(context.device)})
    intro = (f"The run's trained encoder fine-tuned with a linear head on the same N labelled "
             f"galaxies: head first fitted as the linear probe, then encoder and head trained "
             f"end to end (AdamW, head lr {spec.lr}, encoder lr {spec.encoder_lr} × "
             f"{spec.layer_decay} per block downwards, "
             f"{'frozen' if spec.freeze_bn else 'updated'} batch-norm statistics, batch "
             f"{spec.batch_size}, {spec.epochs} epochs bounded to {spec.min_steps}–"
             f"{spec.max_steps or '∞'} steps as the cnn baseline), "
             + (f"with augmentations ({', '.join(names)})" if names else "without augmentation")
             + (f", early stopping on {spec.val_fraction:.0%} of the N labels held out "
                f"(every {spec.eval_every} steps, patience {spec.patience})"
                if spec.val_fraction > 0 else ", on all N labels, no early stopping")
             + f". Wall-clock of all its training: {total:.1f} s on {context.device}.")
    return EvalResult(metrics=metrics, markdown=markdown_section(metrics, intro))
