"""The parts of the fine-tuning recipe that need no training loop: choosing galaxies, the
linear probe as a head, class weights, augmentations (see :mod:`astroclr.classify.finetune`
for why each part is there)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from astroclr.data.augment import Pipeline


# -- choosing galaxies --------------------------------------------------------------------------

def stratified_subset(idx: np.ndarray, y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` of the galaxies ``idx`` (labels ``y``) with class proportions kept, seeded; each
    class present keeps at least one member when ``n`` allows."""
    if n >= len(idx):
        return np.asarray(idx)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    share = np.maximum(1, np.floor(counts * n / len(idx))).astype(int)
    while share.sum() > n:  # a class at its floor of one cannot give more
        share[np.argmax(share)] -= 1
    rest = n - share.sum()
    frac = counts * n / len(idx) - share
    for i in np.argsort(-frac)[:rest]:
        share[i] += 1
    parts = [rng.permutation(idx[y == c])[:k] for c, k in zip(classes, share)]
    return np.sort(np.concatenate(parts))


def holdout(idx: np.ndarray, y: np.ndarray, fraction: float, seed: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """A stratified (train, validation) split of ``idx``; every class keeps a training member,
    and a class of two or more gives at least one galaxy to validation."""
    if fraction <= 0:
        return np.asarray(idx), np.empty(0, dtype=np.int64)
    rng = np.random.default_rng([seed, 1])
    train, val = [], []
    for c in np.unique(y):
        members = rng.permutation(idx[y == c])
        k = min(max(1, int(round(len(members) * fraction))), len(members) - 1)
        val.append(members[:k])
        train.append(members[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


# -- the linear probe as a head -----------------------------------------------------------------

def probe_head(features: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """A linear head (W (K, D), b (K,)) on raw features: standardisation + class-weighted
    logistic regression, its strength cross-validated (balanced accuracy) on these galaxies.

    ``y`` holds class indices 0..K-1. The standardisation is folded into W and b, and a binary
    model's single logit z becomes the two logits (0, z), which softmax turns into the same
    probabilities.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

    mu = features.mean(axis=0)
    sigma = features.std(axis=0)
    sigma = np.where(sigma > 1e-8, sigma, 1.0)
    z = (features - mu) / sigma
    counts = np.bincount(y, minlength=n_classes)
    folds = int(min(5, counts[counts > 0].min()))
    if folds >= 2:
        clf = LogisticRegressionCV(Cs=np.logspace(-3, 1, 7), cv=folds, max_iter=2000,
                                   class_weight="balanced", scoring="balanced_accuracy")
    else:
        clf = LogisticRegression(max_iter=2000, C=1.0, class_weight="balanced")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", FutureWarning)
        clf.fit(z, y)
    coef, intercept = np.asarray(clf.coef_), np.asarray(clf.intercept_)
    present = np.asarray(clf.classes_)
    W = np.zeros((n_classes, features.shape[1]))
    b = np.full(n_classes, -1e4)  # a class absent from these labels is never predicted
    if len(present) == 2 and coef.shape[0] == 1:
        W[present[1]], b[present[1]] = coef[0], intercept[0]
        W[present[0]], b[present[0]] = 0.0, 0.0
    else:
        W[present], b[present] = coef, intercept
    W_raw = W / sigma
    b_raw = b - W_raw @ mu
    return W_raw.astype(np.float32), b_raw.astype(np.float32)


def set_head(net: nn.Module, W: np.ndarray, b: np.ndarray) -> None:
    head = net[-1]
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(W))
        head.bias.copy_(torch.from_numpy(b))


@torch.no_grad()
def forward_all(module: nn.Module, images: np.ndarray, idx: np.ndarray, device: torch.device,
                batch_size: int = 256) -> np.ndarray:
    """``module`` in eval mode over the images ``idx`` (sorted reads), in ``idx`` order."""
    was = module.training
    module.eval()
    out = []
    try:
        for a in range(0, len(idx), batch_size):
            rows = idx[a:a + batch_size]
            x = torch.from_numpy(np.asarray(images[rows], dtype=np.float32)).to(device)
            out.append(module(x).float().cpu().numpy())
    finally:
        module.train(was)
    return np.concatenate(out) if out else np.empty((0, 0), dtype=np.float32)


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Weights inverse to class frequency (mean 1 over the galaxies), as the evaluators use."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    return np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / n_classes, 0.0)


def scratch_encoder(backbone: nn.Module, representation_dim: int) -> nn.Module:
    """The run's network from random weights: a fresh ``backbone`` and representation layer
    (the supervised baseline's starting point; seed torch before building the backbone)."""
    from astroclr.train.model import Encoder

    return Encoder(backbone, int(representation_dim))


def fresh_copy(module: nn.Module) -> nn.Module:
    """A deep copy (a trained encoder is fine-tuned without changing the caller's)."""
    return copy.deepcopy(module)


def select_augment(kind: str, pipeline: "Pipeline | None", survey: Any = None) -> "Pipeline | None":
    """The augmentations of a recipe: the run's ``pipeline`` (``run``), its rotation/flip step
    alone (``rotate_flip``; built with default parameters when the run has none), or None."""
    from astroclr.data.augment import Pipeline, build_pipeline, resolve_augment_config

    if kind == "none":
        return None
    if kind == "run":
        return pipeline
    steps = [s for s in (pipeline.steps if pipeline is not None else []) if s.name == "rotate_flip"]
    if steps:
        return Pipeline(steps)
    if survey is None:
        return None
    from astroclr.plugin.registry import get_registry

    registry = get_registry()
    names, params = resolve_augment_config(registry, {"pipeline": ["rotate_flip"]})
    return build_pipeline(registry, survey, names, params)
