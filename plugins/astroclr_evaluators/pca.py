"""``pca``: the classical baseline — principal components of the pixels, then the same probe.

The preprocessed images are flattened and projected onto as many principal components as the
representations have dimensions, so both probes see vectors of the same length. The PCA is
fitted per seed on galaxies outside that seed's test set only: by default the training pool
and the unlabelled galaxies (unsupervised, like SimCLR's own training, but never a test
image), or with ``fit_on = "train"`` only the N labelled training galaxies of each task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from astroclr.api import (
    PCA_MAX_FIT,
    AstroclrError,
    Task,
    checked_labels,
    evaluate_classifiers,
    feature_models,
    ids_digest,
    pca_features,
    pca_rows,
)
from astroclr_evaluators.common import markdown_section
from astroclr_evaluators.declared import HIDDEN, MAX_ITER, MODELS

if TYPE_CHECKING:
    from astroclr.api import EvalContext, EvalResult


def evaluate(context: "EvalContext", models: Sequence[str] = tuple(MODELS.default),
             fit_on: str = "pool", max_fit: int = 10000, components: int = 0,
             hidden: Sequence[int] = tuple(HIDDEN.default), max_iter: int = MAX_ITER.default) -> "EvalResult":
    from astroclr.api import EvalResult

    labels = checked_labels(context, "pca")
    images = context.galaxies.images
    n_pixels = int(np.prod(images.shape[1:]))
    dim = int(components) or int(np.asarray(context.representations).shape[1])
    fits: dict[Any, dict[str, Any]] = {}
    record: dict[str, Any] = {}

    rep_dim = int(np.asarray(context.representations).shape[1])
    # The default fit is the core's shared pca baseline: one fit per split for every evaluator.
    shared = fit_on == "pool" and max_fit == PCA_MAX_FIT and dim == rep_dim

    def features(task: Task) -> np.ndarray:
        key = task.seed if fit_on == "pool" else (task.seed, len(task.train_idx))
        if key not in fits:
            if fit_on == "pool":
                # everything except this seed's test galaxies: pool + unlabelled
                allowed = pca_rows(len(labels), task.split.test, max_fit, task.seed)
            else:
                allowed = task.train_idx
            if np.intersect1d(allowed, task.test_idx).size:  # a guard, should never trigger
                raise AstroclrError("evaluator 'pca': internal error, test galaxy in PCA fit")
            if shared:
                X = context.baseline("pca", task.split)
                info = context.baseline_info("pca", task.split)
            else:
                X, info = pca_features(images, allowed, dim, task.seed)
            fits[key] = {"features": X}
            record[str(key if fit_on == "pool" else f"{key[0]}/{key[1]}")] = {
                "n_fit": int(len(info["rows"])),
                "fit_sha1": ids_digest(context.galaxies.ids[info["rows"]]),
                "components": int(info["components"]),
                "explained_variance": float(info["explained_variance"]),
            }
        return fits[key]["features"]

    if fit_on not in ("pool", "train"):
        raise AstroclrError(f"evaluator 'pca': fit_on must be 'pool' or 'train', got {fit_on!r}")
    built, names = feature_models(features, models, "PCA", hidden=hidden, max_iter=max_iter)
    metrics = evaluate_classifiers(context, "pca", built, names)
    metrics["pca_fits"] = record
    metrics["feature_dim"] = dim
    metrics["fit_on"] = fit_on
    explained = np.mean([r["explained_variance"] for r in record.values()])
    intro = (f"Baseline: PCA of the {n_pixels} preprocessed pixel values per galaxy to {dim} "
             f"components (as many as the representation has), fitted per seed on "
             + ("galaxies outside the test set (training pool and unlabelled)"
                if fit_on == "pool" else "the N training galaxies only")
             + f", never on test images; mean explained variance {explained:.3f}. "
             f"Then the same probe as for the {context.method_title} representations.")
    return EvalResult(metrics=metrics, markdown=markdown_section(metrics, intro))
