"""The numbers every evaluator reports: classification and regression metrics, their mean and
spread over seeds, and how they are printed.

The standard deviation is the sample standard deviation over seeds (``ddof=1``; 0 for one
seed), ignoring NaN.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

#: scalar classification metrics, in the order tables show them
SCALAR_METRICS = ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro",
                  "f1_macro", "roc_auc")
METRIC_TITLES = {
    "accuracy": "accuracy", "balanced_accuracy": "balanced acc.", "precision_macro": "precision",
    "recall_macro": "recall", "f1_macro": "F1", "roc_auc": "ROC AUC",
}
#: scalar regression metrics, in the order tables show them
REGRESSION_METRICS = ("r2", "rmse", "mae", "bias", "nmad", "outlier_fraction")
REGRESSION_TITLES = {"r2": "R²", "rmse": "RMSE", "mae": "MAE", "bias": "bias", "nmad": "σ_NMAD",
                     "outlier_fraction": "outliers"}


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[int],
                           names: Sequence[str] | None = None) -> dict[str, Any]:
    """Every metric of one test: scikit-learn's functions, over all ``classes``.

    ``proba`` is (n, k) in ``classes`` order; the prediction is its argmax. ROC AUC is the
    binary AUC of the second class, or the macro one-vs-rest AUC for several classes; it is
    NaN when the test set lacks a class (it is undefined there). Per-class metrics are keyed
    by ``names`` (default: the class values as strings).
    """
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    classes = np.asarray(classes)
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    y_pred = classes[np.argmax(proba, axis=1)]
    import warnings

    with warnings.catch_warnings():
        # a class missing from a small test set is reported as NaN/0, not as a warning storm
        warnings.simplefilter("ignore")
        p, r, f, support = precision_recall_fscore_support(
            y_true, y_pred, labels=classes, average=None, zero_division=0)
        pm, rm, fm, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=classes, average="macro", zero_division=0)
        bal = balanced_accuracy_score(y_true, y_pred)
    present = np.unique(y_true)
    if len(present) < 2:
        auc = math.nan
    elif len(classes) == 2:
        auc = float(roc_auc_score(y_true, proba[:, 1]))
    else:
        # normalise rows: roc_auc_score's multi-class path insists on probabilities
        rows = proba / np.clip(proba.sum(axis=1, keepdims=True), 1e-12, None)
        if len(present) < len(classes):
            keep = np.isin(classes, present)
            rows = rows[:, keep] / np.clip(rows[:, keep].sum(axis=1, keepdims=True), 1e-12, None)
            auc = float(roc_auc_score(y_true, rows, multi_class="ovr", labels=classes[keep]))
        else:
            auc = float(roc_auc_score(y_true, rows, multi_class="ovr", labels=classes))
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(bal),
        "precision_macro": float(pm),
        "recall_macro": float(rm),
        "f1_macro": float(fm),
        "roc_auc": auc,
        "per_class": {name: {"precision": float(p[i]), "recall": float(r[i]),
                             "f1": float(f[i]), "support": int(support[i])}
                      for i, name in enumerate(names or [str(c) for c in classes])},
        "confusion": confusion_matrix(y_true, y_pred, labels=classes).tolist(),
    }


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (ddof=1; 0 for one value), ignoring NaN; NaN if all are NaN."""
    arr = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if arr.size == 0:
        return math.nan, math.nan
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray,
                       outlier: float = 0.15) -> dict[str, float]:
    """R², RMSE, MAE and mean bias of ``y_pred - y_true``, and the two numbers
    photometric-redshift work quotes: σ_NMAD = 1.4826 × median(|Δ − median(Δ)|) and the
    fraction of |Δ| > ``outlier`` (Δ = pred − true, unnormalised: the target need not be a
    redshift)."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    delta = y_pred - y_true
    return {
        "r2": float(r2_score(y_true, y_pred)) if len(y_true) > 1 else math.nan,
        "rmse": float(math.sqrt(mean_squared_error(y_true, y_pred))),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "bias": float(delta.mean()),
        "nmad": float(1.4826 * np.median(np.abs(delta - np.median(delta)))),
        "outlier_fraction": float(np.mean(np.abs(delta) > outlier)),
    }


def aggregate_classification(per_seed: list[dict[str, Any]], names: list[str],
                             n_train: int) -> dict[str, Any]:
    """Mean, std, per-class means and the summed confusion matrix of one (model, N) cell."""
    mean, std = {}, {}
    for m in SCALAR_METRICS:
        mean[m], std[m] = mean_std([s[m] for s in per_seed])
    per_class_mean = {}
    for name in names:
        per_class_mean[name] = {k: mean_std([s["per_class"][name][k] for s in per_seed])[0]
                                for k in ("precision", "recall", "f1")}
    confusion = np.sum([np.asarray(s["confusion"]) for s in per_seed], axis=0).tolist()
    return {
        "n_train": n_train,
        "mean": mean,
        "std": std,
        "per_class_mean": per_class_mean,
        "confusion_sum": confusion,
        "fit_seconds_mean": mean_std([s["fit_seconds"] for s in per_seed])[0],
        "per_seed": per_seed,
    }


def aggregate_regression(per_seed: list[dict[str, Any]], n_train: int) -> dict[str, Any]:
    """Mean and std over seeds of each regression metric, for one (model, N) cell."""
    mean, std = {}, {}
    for m in REGRESSION_METRICS:
        mean[m], std[m] = mean_std([s[m] for s in per_seed])
    return {"n_train": n_train, "mean": mean, "std": std,
            "fit_seconds_mean": mean_std([s["fit_seconds"] for s in per_seed])[0],
            "per_seed": per_seed}


def fmt(mean: float, std: float | None = None, digits: int = 3) -> str:
    """``0.853 ± 0.012``; ``n/a`` for NaN."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"
