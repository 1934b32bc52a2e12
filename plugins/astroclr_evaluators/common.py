"""The shared machinery of every classifier evaluator: one loop, one metric structure.

``probe``, ``pca``, ``untrained``, ``knn`` and ``cnn`` all differ only in how they turn a
training set into class probabilities for the test set. Everything else — which galaxies are
trained and tested on (``context.split(seed)``), which sizes are run, which metrics are
computed and how they are averaged over seeds — lives here, so their numbers are comparable
by construction and ``label_efficiency`` and the report can read any of them the same way.

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
seed). The split digests (SHA-1 of the sorted galaxy ids) let anyone check that two
evaluators trained and tested on exactly the same galaxies.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from astroclr.api import AstroclrError

if TYPE_CHECKING:
    from astroclr.api import EvalContext, Split

#: scalar metrics, in the order tables show them
SCALAR_METRICS = ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro",
                  "f1_macro", "roc_auc")
METRIC_TITLES = {
    "accuracy": "accuracy", "balanced_accuracy": "balanced acc.", "precision_macro": "precision",
    "recall_macro": "recall", "f1_macro": "F1", "roc_auc": "ROC AUC",
}


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


def ids_digest(ids: np.ndarray) -> str:
    """SHA-1 of the sorted ids: equal digests mean exactly the same galaxies."""
    text = "\n".join(map(str, np.sort(np.asarray(ids))))
    return hashlib.sha1(text.encode()).hexdigest()


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


# -- metrics ----------------------------------------------------------------------------------

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


def _aggregate(per_seed: list[dict[str, Any]], names: list[str], n_train: int) -> dict[str, Any]:
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

#: environment variable: BLAS threads for the classifier fits (default 1, see blas_threads)
ENV_THREADS = "ASTROCLR_EVAL_THREADS"


def blas_threads() -> contextlib.AbstractContextManager:
    """Limit BLAS threads while fitting (``$ASTROCLR_EVAL_THREADS``, default 1).

    The probe's matrices are small: on a busy 2-core machine two OpenBLAS threads spin-wait
    for each other and an MLP fit took 10x longer (36 s vs 3.5 s for 7,500 galaxies,
    measured); one thread loses little when the machine is idle.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    try:
        n = max(1, int(os.environ.get(ENV_THREADS, "1")))
    except ValueError:
        raise AstroclrError(f"{ENV_THREADS} must be a positive integer, "
                            f"got {os.environ[ENV_THREADS]!r}") from None
    return threadpool_limits(limits=n, user_api="blas")


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
        info = {"test_sha1": ids_digest(ids[split.test]), "n_test": int(len(split.test)),
                "train_sha1": {}}
        for n in sizes:
            info["train_sha1"][str(n)] = ids_digest(ids[split.train(n)])
        split_info[str(split.seed)] = info

    for model_name, model in models.items():
        for n in sizes:
            per_seed = []
            for split in splits:
                task = Task(split.seed, split, split.train(n), split.test, classes, labels)
                if on_task is not None:
                    on_task(model_name, task)
                start = time.perf_counter()
                with blas_threads():
                    out = model(task)
                seconds = time.perf_counter() - start
                proba, note = out if isinstance(out, tuple) else (out, "")
                proba = np.asarray(proba, dtype=np.float64)
                if proba.shape != (len(task.test_idx), len(classes)):
                    raise AstroclrError(
                        f"evaluator {evaluator!r}: model {model_name!r} returned probabilities of "
                        f"shape {proba.shape}, expected {(len(task.test_idx), len(classes))}")
                m = classification_metrics(task.y_test, proba, classes, names)
                entry = {"seed": split.seed, "n_train": int(len(task.train_idx)), **m,
                         "fit_seconds": seconds}
                if note:
                    entry["note"] = note
                per_seed.append(entry)
            results[model_name]["by_size"][str(n)] = _aggregate(per_seed, names, n)

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


# -- standard models on fixed features ---------------------------------------------------------

def _constant(task: Task) -> tuple[np.ndarray, str] | None:
    """If the training set holds a single class, predict it (no classifier can be fit)."""
    present = np.unique(task.y_train)
    if len(present) >= 2:
        return None
    proba = np.zeros((len(task.test_idx), len(task.classes)))
    proba[:, int(np.searchsorted(task.classes, present[0]))] = 1.0
    return proba, f"training set holds one class ({int(present[0])}); predicted it for all"


def _full_proba(clf: Any, X: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """predict_proba spread onto all classes (a small training set may lack some)."""
    part = clf.predict_proba(X)
    out = np.zeros((X.shape[0], len(classes)))
    cols = np.searchsorted(classes, np.asarray(clf.classes_))
    out[:, cols] = part
    return out


def linear_model(features: np.ndarray | Callable[[Task], np.ndarray], max_iter: int = 2000,
                 C: float | None = None) -> Model:
    """Standardise (fitted on the training galaxies only) + multinomial logistic regression.

    ``features`` is an (N, D) array or a callable ``task -> (N, D)`` (for per-seed features
    such as PCA fitted on that seed's training images). Classes are weighted inversely to their
    frequency in the training set: the headline metric is balanced accuracy, and an unweighted
    fit on imbalanced labels (70 % early types) trades it for the majority class. Every method
    (SimCLR, PCA, untrained, colours) gets the same weighting and the same choice of
    regularisation (cross-validated on the training galaxies unless ``C`` is given).
    """

    def fit(task: Task):
        const = _constant(task)
        if const is not None:
            return const
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        X = features(task) if callable(features) else features
        clf = make_pipeline(StandardScaler(), _logistic(task, max_iter, C))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", FutureWarning)  # LogisticRegressionCV's API notices
            clf.fit(X[task.train_idx], task.y_train)
        return _full_proba(clf, X[task.test_idx], task.classes)

    return fit


def _logistic(task: Task, max_iter: int, C: float | None) -> Any:
    """Logistic regression; with ``C=None`` its regularisation is chosen by stratified 5-fold
    cross-validation on the training galaxies alone (balanced accuracy), so a 64- or
    512-dimensional representation is not penalised against a 5-number baseline at N = 100 by
    one fixed strength that suits only one of them."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

    if C is not None:
        return LogisticRegression(max_iter=max_iter, C=C, class_weight="balanced")
    counts = np.unique(task.y_train, return_counts=True)[1]
    folds = int(min(5, counts.min()))
    if folds < 2:
        return LogisticRegression(max_iter=max_iter, C=1.0, class_weight="balanced")
    return LogisticRegressionCV(Cs=np.logspace(-3, 1, 7), cv=folds, max_iter=max_iter,
                                class_weight="balanced", scoring="balanced_accuracy")


def mlp_model(features: np.ndarray | Callable[[Task], np.ndarray], hidden: Sequence[int] = (256,),
              max_iter: int = 200, alpha: float = 1e-3) -> Model:
    """Standardise (training galaxies only) + a fully connected network (as in the reference work).

    scikit-learn's MLPClassifier (Adam, ReLU). Early stopping on a 10 % validation slice of the
    *training* galaxies when there are enough of them, so the test set never steers training.
    ``alpha`` is the L2 penalty; the default 1e-3 is mild, which matters for small N.
    MLPClassifier takes no class weights, so the training galaxies are resampled to equal class
    counts (the linear model's ``class_weight="balanced"`` by other means).
    """

    def fit(task: Task):
        const = _constant(task)
        if const is not None:
            return const
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        X = features(task) if callable(features) else features
        counts = np.bincount(np.searchsorted(task.classes, task.y_train))
        # early stopping needs a stratified validation slice with each class present
        # (below ~1000 galaxies a 10 % slice is too noisy to stop on: train max_iter epochs)
        early = len(task.train_idx) >= 1000 and counts[counts > 0].min() >= 10
        clf = make_pipeline(StandardScaler(), MLPClassifier(
            hidden_layer_sizes=tuple(hidden), alpha=alpha, max_iter=max_iter,
            early_stopping=early, random_state=task.seed))
        train = balanced_resample(task.train_idx, task.y_train, task.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X[train], task.labels[train])
        return _full_proba(clf, X[task.test_idx], task.classes)

    return fit


def balanced_resample(idx: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """``idx`` with each class's members drawn with replacement up to the largest class count
    (all originals kept), shuffled; deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    parts = []
    for c, n in zip(classes, counts):
        members = idx[y == c]
        extra = rng.choice(members, size=counts.max() - n, replace=True) if n < counts.max() else []
        parts.append(np.concatenate([members, np.asarray(extra, dtype=idx.dtype)]))
    out = np.concatenate(parts)
    return out[rng.permutation(len(out))]


def feature_models(features: np.ndarray | Callable[[Task], np.ndarray], which: Sequence[str],
                   prefix: str, hidden: Sequence[int] = (256,), max_iter: int = 200
                   ) -> tuple[dict[str, Model], dict[str, str]]:
    """The probe models (``linear``, ``mlp``) on ``features``, with display labels."""
    models: dict[str, Model] = {}
    labels: dict[str, str] = {}
    for name in which:
        if name == "linear":
            models[name] = linear_model(features)
        elif name == "mlp":
            models[name] = mlp_model(features, hidden=hidden, max_iter=max_iter)
        else:
            raise AstroclrError(f"unknown probe model {name!r}; models: linear, mlp")
        labels[name] = f"{prefix} ({'MLP' if name == 'mlp' else name})"
    return models, labels


# -- Markdown ---------------------------------------------------------------------------------

def fmt(mean: float, std: float | None = None, digits: int = 3) -> str:
    """``0.853 ± 0.012``; ``n/a`` for NaN."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def markdown_section(metrics: Mapping[str, Any], intro: str) -> str:
    """The standard report section: intro, a table at the largest N, a confusion matrix."""
    sizes = metrics["sizes"]
    n_max = str(sizes[-1])
    seeds = metrics["seeds"]
    lines = [intro, "",
             f"{metrics['n_labelled']} labelled galaxies ({metrics['n_unlabelled']} unlabelled "
             f"left out), test set of {metrics['n_test']} per seed, seeds {seeds}; "
             f"mean ± std over seeds, at N = {n_max} training galaxies:", ""]
    header = ["model"] + [METRIC_TITLES[m] for m in SCALAR_METRICS]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for name, model in metrics["models"].items():
        entry = model["by_size"][n_max]
        cells = [fmt(entry["mean"][m], entry["std"][m]) for m in SCALAR_METRICS]
        lines.append(f"| {model['label']} | " + " | ".join(cells) + " |")
    base = metrics["majority_baseline"]
    cells = [fmt(base["mean"][m], base["std"][m]) for m in SCALAR_METRICS]
    lines.append("| majority class | " + " | ".join(cells) + " |")
    lines.append("")
    names = metrics["class_names"]
    for name, model in metrics["models"].items():
        entry = model["by_size"][n_max]
        per = entry["per_class_mean"]
        lines.append(f"Per class, {model['label']}: " + "; ".join(
            f"{c}: precision {fmt(per[c]['precision'])}, recall {fmt(per[c]['recall'])}, "
            f"F1 {fmt(per[c]['f1'])}" for c in names) + ".")
        lines.append("")
    if len(sizes) > 1:
        lines.append("Balanced accuracy against the number of training galaxies N:")
        lines.append("")
        lines.append("| model | " + " | ".join(f"N={n}" for n in sizes) + " |")
        lines.append("|---|" + "---|" * len(sizes))
        for name, model in metrics["models"].items():
            cells = [fmt(model["by_size"][str(n)]["mean"]["balanced_accuracy"],
                         model["by_size"][str(n)]["std"]["balanced_accuracy"]) for n in sizes]
            lines.append(f"| {model['label']} | " + " | ".join(cells) + " |")
        lines.append("")
    first = next(iter(metrics["models"].values()))
    conf = first["by_size"][n_max]["confusion_sum"]
    lines.append(f"Confusion matrix of {first['label']} at N = {n_max}, summed over seeds "
                 f"(rows: true class, columns: predicted):")
    lines.append("")
    lines.append("| true \\ predicted | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    for name, row in zip(names, conf):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    notes = sorted({s["note"] for model in metrics["models"].values()
                    for e in model["by_size"].values() for s in e["per_seed"] if "note" in s})
    if notes:
        lines.append("")
        lines.extend(f"Note: {n}." for n in notes)
    return "\n".join(lines) + "\n"
