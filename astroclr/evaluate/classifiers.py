"""The classifier protocol: one loop and one metric structure for every classifier evaluator.

A classifier evaluator differs from another only in how it turns a training set into class
probabilities for the test set (a :data:`Model`). Everything else — which galaxies are trained
and tested on (``context.split(seed)``), which sizes are run, which metrics are computed and
how they are averaged over seeds — lives here, so the numbers are comparable by construction,
and the label-efficiency curve and the report read any classifier result the same way. An
evaluator whose spec says ``provides="classifier"`` and returns these metrics joins the curve,
whichever package it comes from.

Metric structure (``EvalResult.metrics``) written by :func:`evaluate_classifiers`::

    {
      "kind": "classifier",              # marker read by label_efficiency
      "evaluator": "probe",
      "label_column": "label",
      "classes": [0, 1], "class_names": ["early", "late"],
      "seeds": [0, 1, 2], "sizes": [100, 300, ...],
      "n_labelled": 3917, "n_test": 979, "n_unlabelled": 97,
      "splits": {"0": {"test_sha1": "...", "train_sha1": {"100": "...", ...}}, ...},
      "majority_baseline": {"mean": {...}, "std": {...}, "class": [1, 1, 1]},
      "models": {
        "linear": {
          "label": "SimCLR probe (linear)",
          "by_size": {
            "100": {
              "n_train": 100,
              "mean": {"accuracy": ..., "balanced_accuracy": ..., "precision_macro": ...,
                       "recall_macro": ..., "f1_macro": ..., "roc_auc": ...},
              "std":  {... same keys ...},
              "per_class_mean": {"early": {"precision": ..., "recall": ..., "f1": ...}, ...},
              "confusion_sum": [[...], [...]],     # summed over seeds, rows = true class
              "fit_seconds_mean": ...,
              "per_seed": [{"seed": 0, "accuracy": ..., ..., "confusion": [[...]],
                            "per_class": {...}, "fit_seconds": ..., "note": "..."}]
            }, ...
          }
        }
      }
    }

The standard deviation is the sample standard deviation over seeds (``ddof=1``; 0 for one
seed). The standard deviation is the sample standard deviation over seeds (``ddof=1``; 0 for one
seed). The split digests (SHA-1 of the sorted galaxy ids) let anyone check that two
evaluators trained and tested on exactly the same galaxies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from astroclr.evaluate.metrics import (
    SCALAR_METRICS,
    aggregate_classification,
    classification_metrics,
    mean_std,
)
from astroclr.plugin.specs import AstroclrError

if TYPE_CHECKING:
    from astroclr.evaluate.context import EvalContext
    from astroclr.evaluate.splits import Split


@dataclass
class Task:
    """One training problem handed to a model: a seed, its split, the N training galaxies."""

    seed: int
    split: "Split"
    train_idx: np.ndarray
    test_idx: np.ndarray
    classes: np.ndarray
    labels: np.ndarray  # all labels of the dataset (-1 = unlabelled)

    @property
    def y_train(self) -> np.ndarray:
        return self.labels[self.train_idx]

    @property
    def y_test(self) -> np.ndarray:
        return self.labels[self.test_idx]


#: a model: given a task, return class probabilities (n_test, n_classes) in ``task.classes``
#: order, or ``(probabilities, note)`` to attach a note (e.g. "one class in training set")
Model = Callable[[Task], "np.ndarray | tuple[np.ndarray, str]"]


# -- inputs -----------------------------------------------------------------------------------

def checked_labels(context: "EvalContext", evaluator: str) -> np.ndarray:
    """The context's labels, or a one-line AstroclrError naming the evaluator."""
    try:
        labels = context.labels()
    except AstroclrError as exc:
        raise AstroclrError(f"evaluator {evaluator!r}: {exc}") from None
    if labels.shape[0] != len(context.galaxies):
        raise AstroclrError(f"evaluator {evaluator!r}: {labels.shape[0]} labels for "
                            f"{len(context.galaxies)} galaxies")
    if not np.any(labels >= 0):
        raise AstroclrError(f"evaluator {evaluator!r}: no labelled galaxies in column "
                            f"{context.label_column!r} (all are -1 = unlabelled)")
    return labels


def checked_split(context: "EvalContext", evaluator: str, seed: int) -> "Split":
    """``context.split(seed)``, with core errors (e.g. one class) prefixed by the evaluator."""
    try:
        return context.split(seed)
    except AstroclrError as exc:
        raise AstroclrError(f"evaluator {evaluator!r}: {exc}") from None


def checked_features(features: Any, context: "EvalContext", evaluator: str,
                     what: str = "representations") -> np.ndarray:
    """Features as a finite float array (N, D) aligned with the galaxies."""
    arr = np.asarray(features)
    if arr.ndim != 2 or arr.shape[0] != len(context.galaxies):
        raise AstroclrError(f"evaluator {evaluator!r}: {what} must be (N={len(context.galaxies)}, D), "
                            f"got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise AstroclrError(f"evaluator {evaluator!r}: {what} of {bad} galaxies are not finite "
                            f"(NaN or inf)")
    return arr


def class_names(context: "EvalContext", classes: Sequence[int]) -> list[str]:
    names = context.label_names
    return [names[c] if names is not None and 0 <= c < len(names) else str(c) for c in classes]


def resolve_sizes(context: "EvalContext", evaluator: str, only: Sequence[int] = ()) -> list[int]:
    """``context.sizes()`` — or, when ``only`` is given, those values capped at the pool."""
    checked_split(context, evaluator, context.seeds[0])
    sizes = context.sizes()
    if only:
        pool = sizes[-1] if sizes else 0
        sizes = sorted({min(int(n), pool) for n in only if int(n) > 0})
    if not sizes:
        raise AstroclrError(f"evaluator {evaluator!r}: no training sizes to run (train_sizes "
                            f"{list(context.train_sizes)})")
    if sizes[0] < 2:
        raise AstroclrError(f"evaluator {evaluator!r}: the training pool has {sizes[-1]} galaxies; "
                            f"need at least 2")
    return sizes


def majority_baseline(labels: np.ndarray, splits: Sequence["Split"], classes: np.ndarray,
                      names: Sequence[str] | None = None) -> dict[str, Any]:
    """Always predict the training pool's most frequent class: the floor every method must beat."""
    per_seed = []
    for split in splits:
        pool = labels[split.train_pool]
        counts = np.array([(pool == c).sum() for c in classes])
        winner = int(np.argmax(counts))
        proba = np.zeros((len(split.test), len(classes)))
        proba[:, winner] = 1.0
        m = classification_metrics(labels[split.test], proba, classes, names)
        m["class"] = int(classes[winner])
        per_seed.append(m)
    return {
        "mean": {k: mean_std([s[k] for s in per_seed])[0] for k in SCALAR_METRICS},
        "std": {k: mean_std([s[k] for s in per_seed])[1] for k in SCALAR_METRICS},
        "class": [s["class"] for s in per_seed],
    }


# -- the loop ---------------------------------------------------------------------------------

def evaluate_classifiers(
    context: "EvalContext",
    evaluator: str,
    models: Mapping[str, Model],
    labels_of_models: Mapping[str, str] | None = None,
    sizes: Sequence[int] = (),
    on_task: Callable[[str, Task], None] | None = None,
) -> dict[str, Any]:
    """Train and test every model for every seed in ``context.seeds`` and every training size.

    ``models`` maps a model name (``linear``, ``mlp``, ``knn``, ``cnn`` …) to a callable taking
    a :class:`Task`. ``labels_of_models`` gives display names for tables and plots.
    ``on_task`` (tests, logging) sees every task before its model runs.
    """
    labels = checked_labels(context, evaluator)
    if not context.seeds:
        raise AstroclrError(f"evaluator {evaluator!r}: no seeds given")
    splits = [checked_split(context, evaluator, int(s)) for s in context.seeds]
    sizes = resolve_sizes(context, evaluator, sizes)
    classes = np.unique(labels[labels >= 0])
    names = class_names(context, classes)
    ids = context.galaxies.ids
    labels_of_models = dict(labels_of_models or {})

    results: dict[str, dict[str, Any]] = {
        m: {"label": labels_of_models.get(m, m), "by_size": {}} for m in models}
    split_info: dict[str, Any] = {}
    for split in splits:
        split_info[str(split.seed)] = {**split.digests(ids, sizes), "n_test": int(len(split.test))}

    runs = [(model_name, n, Task(split.seed, split, split.train(n), split.test, classes, labels))
            for model_name in models for n in sizes for split in splits]
    per_seed: dict[tuple[str, int], list[dict[str, Any]]] = {(m, n): [] for m in models for n in sizes}
    for (model_name, n, task), (out, seconds) in zip(runs, _fit_all(models, runs, on_task)):
        proba, note = out if isinstance(out, tuple) else (out, "")
        proba = np.asarray(proba, dtype=np.float64)
        if proba.shape != (len(task.test_idx), len(classes)):
            raise AstroclrError(
                f"evaluator {evaluator!r}: model {model_name!r} returned probabilities of "
                f"shape {proba.shape}, expected {(len(task.test_idx), len(classes))}")
        m = classification_metrics(task.y_test, proba, classes, names)
        entry = {"seed": task.seed, "n_train": int(len(task.train_idx)), **m, "fit_seconds": seconds}
        if note:
            entry["note"] = note
        per_seed[model_name, n].append(entry)
    for (model_name, n), entries in per_seed.items():
        results[model_name]["by_size"][str(n)] = aggregate_classification(entries, names, n)

    n_unlabelled = int((labels < 0).sum())
    return {
        "kind": "classifier",
        "evaluator": evaluator,
        "label_column": context.label_column,
        "classes": [int(c) for c in classes],
        "class_names": names,
        "seeds": [int(s) for s in context.seeds],
        "sizes": [int(n) for n in sizes],
        "n_labelled": int((labels >= 0).sum()),
        "n_test": int(len(splits[0].test)),
        "n_unlabelled": n_unlabelled,
        "splits": split_info,
        "majority_baseline": majority_baseline(labels, splits, classes, names),
        "models": results,
    }


def _fit_all(models: Mapping[str, Model], runs: Sequence[tuple[str, int, Task]],
             on_task: Callable[[str, Task], None] | None):
    """``(output, seconds)`` of every run, in order: fits of models that describe themselves as
    a :class:`~astroclr.evaluate.parallel.FitJob` (``model.job(task)``) on worker processes,
    any other model in this process; lazily, one fit's arrays at a time per worker."""
    from astroclr.evaluate.parallel import FitJob, eval_jobs, run_fits, timed_fit

    notify = on_task or (lambda name, task: None)

    def jobs():
        for model_name, _, task in runs:
            notify(model_name, task)
            yield models[model_name].job(task)

    if eval_jobs() > 1 and all(callable(getattr(m, "job", None)) for m in models.values()):
        yield from run_fits(jobs(), len(runs))
        return
    for model_name, _, task in runs:
        notify(model_name, task)
        yield timed_fit(FitJob(models[model_name], (task,)))
