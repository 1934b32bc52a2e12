"""Baseline features every evaluator may compare against, computed once per run.

- ``pca``: PCA of the preprocessed pixels, fitted on every galaxy except a split's test set
  (at most ``PCA_MAX_FIT`` of them), to as many components as the representation has;
- ``untrained``: the features of an untrained backbone of the run's kind (torch seed 0);
- ``colours``: the galaxy's central colours (see :func:`central_colours`).

``EvalContext.baseline(name, split)`` caches them, so the PCA evaluator, a regression evaluator
and a retrieval metric share one PCA fit per split instead of fitting their own.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from astroclr.plugin.specs import AstroclrError

BASELINES = ("pca", "untrained", "colours")
PCA_MAX_FIT = 10000
COLOUR_APERTURE = 0.25
UNTRAINED_SEED = 0


def fit_pca(X: np.ndarray, n_components: int, seed: int) -> Any:
    """Fit a PCA on the rows of ``X`` (one function, so tests can check which rows it saw)."""
    from sklearn.decomposition import PCA

    solver = "randomized" if n_components < 0.8 * min(X.shape) else "full"
    return PCA(n_components=n_components, svd_solver=solver, random_state=seed).fit(X)


def flat_rows(images: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``idx`` of the image cube, flattened, and the sorted indices (sorted reads suit a
    memory map)."""
    order = np.sort(idx)
    return np.asarray(images[order], dtype=np.float32).reshape(len(order), -1), order


def pca_rows(n: int, exclude: np.ndarray, max_fit: int, seed: int) -> np.ndarray:
    """The galaxies a ``pool`` PCA is fitted on: all but ``exclude``, at most ``max_fit``."""
    allowed = np.setdiff1d(np.arange(n), exclude)
    if len(allowed) > max_fit:
        allowed = np.random.default_rng(seed).choice(allowed, max_fit, replace=False)
    return allowed


def pca_features(images: np.ndarray, rows: np.ndarray, n_components: int, seed: int,
                 batch: int = 2048) -> tuple[np.ndarray, dict[str, Any]]:
    """PCA fitted on ``rows``, applied to every image: (N, k) float32 and a description of the
    fit (rows used, components, explained variance)."""
    X, order = flat_rows(images, rows)
    n_pixels = X.shape[1]
    k = max(1, min(n_components, X.shape[0] - 1 if X.shape[0] > 1 else 1, n_pixels))
    pca = fit_pca(X, k, seed)
    out = []
    for start in range(0, images.shape[0], batch):
        x = np.asarray(images[start:start + batch], dtype=np.float32).reshape(
            min(batch, images.shape[0] - start), -1)
        out.append(pca.transform(x).astype(np.float32))
    info = {"rows": order, "components": int(k),
            "explained_variance": float(np.sum(pca.explained_variance_ratio_))}
    return np.concatenate(out), info


def central_colours(images: np.ndarray, aperture: float = COLOUR_APERTURE,
                    batch: int = 4096) -> np.ndarray:
    """(N, 2C − 1): the mean of each band and the colours (magnitudes) between consecutive bands
    in a centred square of side ``aperture`` × image side; read in batches (memory-map safe).

    Colour alone separates early (red) from late (blue) types well on SDSS; a representation
    worth training must beat it. The band means carry colour and, since images are scaled per
    image, central concentration; ``-2.5 log10(F_b / F_b+1)`` are g − r and r − i for gri.
    """
    n, c, h, w = images.shape
    if c < 2:
        raise AstroclrError("central colours need at least two bands")
    half = max(1, int(round(aperture * min(h, w) / 2)))
    cy, cx = h // 2, w // 2
    out = np.empty((n, 2 * c - 1), dtype=np.float64)
    for start in range(0, n, batch):
        block = np.asarray(images[start:start + batch, :, cy - half:cy + half, cx - half:cx + half],
                           dtype=np.float64)
        # A floor keeps an empty band from giving an infinite colour.
        flux = np.clip(block, 0.0, None).sum(axis=(2, 3)) + 1e-6 * block[0].size
        means = block.mean(axis=(2, 3))
        colours = -2.5 * np.log10(flux[:, :-1] / flux[:, 1:])
        out[start:start + len(block)] = np.concatenate([means, colours], axis=1)
    return out


def untrained_features(build_backbone: Callable[[], Any] | None,
                       embed_with: Callable[[Any], np.ndarray] | None,
                       init_seed: int = UNTRAINED_SEED) -> np.ndarray:
    """Features of a fresh, randomly initialised backbone of the run's kind (the same random
    network for the same ``init_seed``)."""
    if build_backbone is None or embed_with is None:
        raise AstroclrError("the untrained baseline needs build_backbone and embed_with in the "
                            "evaluation context (run it from a training run)")
    import torch

    torch.manual_seed(init_seed)
    return np.asarray(embed_with(build_backbone()), dtype=np.float32)
