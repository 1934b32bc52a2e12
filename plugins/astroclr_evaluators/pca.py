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

from astroclr.api import AstroclrError
from astroclr_evaluators.common import (
    Task,
    checked_labels,
    evaluate_classifiers,
    feature_models,
    ids_digest,
    markdown_section,
)

if TYPE_CHECKING:
    from astroclr.api import EvalContext, EvalResult


def _fit_pca(X: np.ndarray, n_components: int, seed: int) -> Any:
    """Fit a PCA on the rows of ``X`` (kept separate so tests can check which rows it saw)."""
    from sklearn.decomposition import PCA

    solver = "randomized" if n_components < 0.8 * min(X.shape) else "full"
    return PCA(n_components=n_components, svd_solver=solver, random_state=seed).fit(X)


def _flat(images: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``idx`` of the image cube, flattened, and the sorted indices (sorted reads suit a memmap)."""
    order = np.sort(idx)
    return np.asarray(images[order], dtype=np.float32).reshape(len(order), -1), order


def _transform_all(pca: Any, images: np.ndarray, batch: int = 2048) -> np.ndarray:
    out = []
    for start in range(0, images.shape[0], batch):
        x = np.asarray(images[start:start + batch], dtype=np.float32).reshape(
            min(batch, images.shape[0] - start), -1)
        out.append(pca.transform(x).astype(np.float32))
    return np.concatenate(out)


def evaluate(context: "EvalContext", models: Sequence[str] = ("linear", "mlp"),
             fit_on: str = "pool", max_fit: int = 10000, components: int = 0,
             hidden: Sequence[int] = (256,), max_iter: int = 200) -> "EvalResult":
    from astroclr.api import EvalResult

    labels = checked_labels(context, "pca")
    images = context.galaxies.images
    n_pixels = int(np.prod(images.shape[1:]))
    dim = int(components) or int(np.asarray(context.representations).shape[1])
    fits: dict[Any, dict[str, Any]] = {}
    record: dict[str, Any] = {}

    def features(task: Task) -> np.ndarray:
        key = task.seed if fit_on == "pool" else (task.seed, len(task.train_idx))
        if key not in fits:
            if fit_on == "pool":
                # everything except this seed's test galaxies: pool + unlabelled
                allowed = np.setdiff1d(np.arange(len(labels)), task.split.test)
                rng = np.random.default_rng(task.seed)
                if len(allowed) > max_fit:
                    allowed = rng.choice(allowed, max_fit, replace=False)
            else:
                allowed = task.train_idx
            if np.intersect1d(allowed, task.test_idx).size:  # a guard, should never trigger
                raise AstroclrError("evaluator 'pca': internal error, test galaxy in PCA fit")
            X, order = _flat(images, allowed)
            n_comp = max(1, min(dim, X.shape[0] - 1 if X.shape[0] > 1 else 1, n_pixels))
            pca = _fit_pca(X, n_comp, task.seed)
            fits[key] = {"features": _transform_all(pca, images)}
            record[str(key if fit_on == "pool" else f"{key[0]}/{key[1]}")] = {
                "n_fit": int(len(order)), "fit_sha1": ids_digest(context.galaxies.ids[order]),
                "components": int(n_comp),
                "explained_variance": float(np.sum(pca.explained_variance_ratio_)),
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
             f"Then the same probe as for the SimCLR representations.")
    return EvalResult(metrics=metrics, markdown=markdown_section(metrics, intro))
