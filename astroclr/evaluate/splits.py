"""Labelled train/test splits shared by every evaluator.

The probe, the supervised CNN and PCA must see exactly the same training and test galaxies, so
the split is made once here, from the labels and a seed, and handed to each evaluator.
Training sets of growing size are nested: the first N of one seeded permutation of the pool.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from astroclr.plugin.specs import AstroclrError


@dataclass(frozen=True)
class Split:
    """Indices into the dataset: a fixed test set and an ordered training pool."""

    seed: int
    test: np.ndarray
    train_pool: np.ndarray

    def train(self, n: int) -> np.ndarray:
        """The first ``n`` galaxies of the training pool (capped at its size)."""
        return self.train_pool[: min(int(n), len(self.train_pool))]


def make_split(labels: np.ndarray, seed: int, test_fraction: float = 0.25,
               max_test: int | None = None) -> Split:
    """A stratified split of the labelled galaxies (``label >= 0``); unlabelled ones are left out.

    Each class is shuffled with ``seed`` and ``test_fraction`` of it goes to the test set, so
    class proportions match between test set and pool. The pool is then shuffled as a whole,
    so any prefix ``train(n)`` is a random sample of it.
    """
    labels = np.asarray(labels)
    if not 0.0 < test_fraction < 1.0:
        raise AstroclrError(f"test_fraction must be in (0, 1), got {test_fraction}")
    labelled = np.flatnonzero(labels >= 0)
    classes = np.unique(labels[labelled])
    if len(classes) < 2:
        found = ", ".join(map(str, classes)) or "none"
        raise AstroclrError(f"need at least two label classes to evaluate, found: {found}")
    rng = np.random.default_rng(seed)
    test_parts, pool_parts = [], []
    for c in classes:
        members = labelled[labels[labelled] == c]
        members = members[rng.permutation(len(members))]
        n_test = int(round(len(members) * test_fraction))
        if max_test is not None:
            n_test = min(n_test, int(round(max_test * len(members) / len(labelled))))
        n_test = min(max(n_test, 1), len(members) - 1) if len(members) > 1 else 0
        test_parts.append(members[:n_test])
        pool_parts.append(members[n_test:])
    test = np.sort(np.concatenate(test_parts))
    pool = np.concatenate(pool_parts)
    pool = pool[rng.permutation(len(pool))]
    return Split(seed=seed, test=test, train_pool=pool)
