"""Standard models on fixed features: the probes every feature-based evaluator shares.

A model takes a :class:`~astroclr.evaluate.classifiers.Task` and returns test-set class
probabilities (classifiers) or predicted values (regressors). Every method (SimCLR, PCA, an
untrained network, colours) gets the same models, the same class weighting and the same choice
of regularisation, so the comparison is about the features alone.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from astroclr.evaluate.classifiers import Model, Task
from astroclr.evaluate.parallel import FitJob
from astroclr.plugin.specs import AstroclrError


def single_class_prediction(task: Task) -> tuple[np.ndarray, str] | None:
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


class FeatureModel:
    """A model on features: ``model(task)`` fits here; ``model.job(task)`` describes the same fit
    as a :class:`~astroclr.evaluate.parallel.FitJob` for a worker process (the features are
    made here: a per-seed PCA needs the evaluation context, a worker gets arrays)."""

    def __init__(self, features: np.ndarray | Callable[[Task], np.ndarray],
                 fit: Callable[..., np.ndarray], **options: Any) -> None:
        self.features = features
        self.fit = fit
        self.options = options

    def job(self, task: Task) -> FitJob:
        const = single_class_prediction(task)
        if const is not None:
            return FitJob(_constant, (const,))
        X = self.features(task) if callable(self.features) else self.features
        return FitJob(self.fit, (X[task.train_idx], task.y_train, X[task.test_idx], task.classes,
                                 task.seed, self.options))

    def __call__(self, task: Task) -> np.ndarray | tuple[np.ndarray, str]:
        job = self.job(task)
        return job.fn(*job.args)


def _constant(out: tuple[np.ndarray, str]) -> tuple[np.ndarray, str]:
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
    return FeatureModel(features, _fit_linear, max_iter=max_iter, C=C)


def _fit_linear(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray,
                classes: np.ndarray, _seed: int, options: dict[str, Any]) -> np.ndarray:
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), _logistic(y_train, options["max_iter"], options["C"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", FutureWarning)  # LogisticRegressionCV's API notices
        clf.fit(X_train, y_train)
    return _full_proba(clf, X_test, classes)


def _logistic(y_train: np.ndarray, max_iter: int, C: float | None) -> Any:
    """Logistic regression; with ``C=None`` its regularisation is chosen by stratified 5-fold
    cross-validation on the training galaxies alone (balanced accuracy), so a 64- or
    512-dimensional representation is not penalised against a 5-number baseline at N = 100 by
    one fixed strength that suits only one of them."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

    if C is not None:
        return LogisticRegression(max_iter=max_iter, C=C, class_weight="balanced")
    counts = np.unique(y_train, return_counts=True)[1]
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
    return FeatureModel(features, _fit_mlp, hidden=tuple(hidden), max_iter=max_iter, alpha=alpha)


def _fit_mlp(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, classes: np.ndarray,
             seed: int, options: dict[str, Any]) -> np.ndarray:
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    counts = np.bincount(np.searchsorted(classes, y_train))
    # early stopping needs a stratified validation slice with each class present
    # (below ~1000 galaxies a 10 % slice is too noisy to stop on: train max_iter epochs)
    early = len(y_train) >= 1000 and counts[counts > 0].min() >= 10
    clf = make_pipeline(StandardScaler(), MLPClassifier(
        hidden_layer_sizes=options["hidden"], alpha=options["alpha"],
        max_iter=options["max_iter"], early_stopping=early, random_state=seed))
    rows = balanced_resample(np.arange(len(y_train)), y_train, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_train[rows], y_train[rows])
    return _full_proba(clf, X_test, classes)


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


