"""The regression protocol: the classifier loop's twin for a continuous target.

A regression evaluator (a photometric redshift, a stellar mass, a Sérsic index from the
representation) gives models that turn a training set into predicted values for the test set;
:func:`evaluate_regressors` runs them on the shared seeded splits of the target column (stratified
by quantiles), for every training size, and returns the metric structure::

    {"kind": "regressor", "evaluator": "photoz", "target_column": "z",
     "seeds": [...], "sizes": [...], "n_labelled": ..., "n_test": ...,
     "splits": {"0": {"test_sha1": "...", "train_sha1": {...}}},
     "mean_baseline": {"mean": {...}, "std": {...}},       # predict the pool's mean
     "models": {"ridge": {"label": "...", "by_size": {"100": {"n_train": 100,
                 "mean": {"r2": ..., "rmse": ..., ...}, "std": {...}, "per_seed": [...]}}}}}
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from astroclr.evaluate.metrics import REGRESSION_METRICS, aggregate_regression, mean_std, regression_metrics
from astroclr.evaluate.parallel import blas_threads
from astroclr.plugin.specs import AstroclrError

if TYPE_CHECKING:
    from astroclr.evaluate.context import EvalContext
    from astroclr.evaluate.splits import Split


@dataclass
class RegressionTask:
    """One training problem: a seed, its split of the target's galaxies, N training galaxies."""

    seed: int
    split: "Split"
    train_idx: np.ndarray
    test_idx: np.ndarray
    values: np.ndarray  # the target of every galaxy (NaN = none)

    @property
    def y_train(self) -> np.ndarray:
        return self.values[self.train_idx]

    @property
    def y_test(self) -> np.ndarray:
        return self.values[self.test_idx]


#: a regression model: given a task, the predicted values of its test galaxies (n_test,)
Regressor = Callable[[RegressionTask], np.ndarray]


def ridge_model(features: np.ndarray | Callable[[RegressionTask], np.ndarray]) -> Regressor:
    """Standardise (training galaxies only) + ridge regression, its strength chosen by
    cross-validation on the training galaxies alone (as the linear probe's)."""

    def fit(task: RegressionTask) -> np.ndarray:
        from sklearn.linear_model import RidgeCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        X = features(task) if callable(features) else features
        folds = int(min(5, len(task.train_idx)))
        model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13),
                                                        cv=folds if folds >= 2 else None))
        model.fit(X[task.train_idx], task.y_train)
        return model.predict(X[task.test_idx])

    return fit


def evaluate_regressors(context: "EvalContext", evaluator: str, column: str,
                        models: Mapping[str, Regressor],
                        labels_of_models: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Train and test every model for every seed and training size on ``column``'s splits."""
    try:
        values = context.target(column)
        splits = [context.split(int(s), column) for s in context.seeds]
        sizes = context.sizes(column=column)
    except AstroclrError as exc:
        raise AstroclrError(f"evaluator {evaluator!r}: {exc}") from None
    if values.dtype.kind != "f":
        raise AstroclrError(f"evaluator {evaluator!r}: column {column!r} holds integer classes; "
                            f"a regression needs continuous values")
    ids = context.galaxies.ids
    labels_of_models = dict(labels_of_models or {})
    results: dict[str, Any] = {m: {"label": labels_of_models.get(m, m), "by_size": {}}
                               for m in models}
    for name, model in models.items():
        for n in sizes:
            per_seed = []
            for split in splits:
                task = RegressionTask(split.seed, split, split.train(n), split.test, values)
                start = time.perf_counter()
                with blas_threads():
                    pred = np.asarray(model(task), dtype=np.float64)
                if pred.shape != (len(task.test_idx),):
                    raise AstroclrError(f"evaluator {evaluator!r}: model {name!r} returned "
                                        f"predictions of shape {pred.shape}, expected "
                                        f"{(len(task.test_idx),)}")
                per_seed.append({"seed": split.seed, "n_train": int(len(task.train_idx)),
                                 **regression_metrics(task.y_test, pred),
                                 "fit_seconds": time.perf_counter() - start})
            results[name]["by_size"][str(n)] = aggregate_regression(per_seed, n)
    baseline = [regression_metrics(values[s.test], np.full(len(s.test), values[s.train_pool].mean()))
                for s in splits]
    return {
        "kind": "regressor",
        "evaluator": evaluator,
        "target_column": column,
        "seeds": [int(s) for s in context.seeds],
        "sizes": [int(n) for n in sizes],
        "n_labelled": int(np.isfinite(values).sum()),
        "n_test": int(len(splits[0].test)),
        "splits": {str(s.seed): s.digests(ids, sizes) for s in splits},
        "mean_baseline": {"mean": {m: mean_std([b[m] for b in baseline])[0]
                                   for m in REGRESSION_METRICS},
                          "std": {m: mean_std([b[m] for b in baseline])[1]
                                  for m in REGRESSION_METRICS}},
        "models": results,
    }
