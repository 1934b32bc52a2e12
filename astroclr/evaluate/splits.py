"""Labelled train/test splits shared by every evaluator.

The probe, the supervised CNN and PCA must see exactly the same training and test galaxies, so
the split is made once here, from the target and a seed, and handed to each evaluator. A
classification target (integer classes, -1 = none) is stratified by class; a continuous
target (floats, NaN = none) by quantile bins, so both ends of, say, a redshift distribution
are in the test set. Training sets of growing size are nested: the first N of one seeded
permutation of the pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from astroclr.plugin.specs import AstroclrError

#: quantile bins of a continuous target (fewer when there are few galaxies)
VALUE_STRATA = 10


@dataclass(frozen=True)
class Split:
    """Indices into the dataset: a fixed test set and an ordered training pool."""

    seed: int
    test: np.ndarray
    train_pool: np.ndarray

    def train(self, n: int) -> np.ndarray:
        """The first ``n`` galaxies of the training pool (capped at its size)."""
        return self.train_pool[: min(int(n), len(self.train_pool))]

    def digests(self, ids: np.ndarray, sizes: Iterable[int]) -> dict[str, Any]:
        """The split's record in ``metrics.json``: which galaxies it tested and trained on at
        each N, as digests of their ids (``{"test_sha1": ..., "train_sha1": {"N": ...}}``).
        Equal records mean two runs, methods or benchmark files fitted the same galaxies."""
        from astroclr.files import ids_digest

        ids = np.asarray(ids)
        return {"test_sha1": ids_digest(ids[self.test]),
                "train_sha1": {str(int(n)): ids_digest(ids[self.train(n)]) for n in sizes}}


def target_kind(values: np.ndarray) -> str:
    """``"class"`` for integer (or boolean) targets, ``"value"`` for floating-point ones."""
    values = np.asarray(values)
    if values.dtype.kind in "iub":
        return "class"
    if values.dtype.kind == "f":
        return "value"
    raise AstroclrError(f"a target column must hold integers (classes) or floats (values), "
                        f"not {values.dtype}")


def strata(values: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The galaxies with a target (``labelled``) and the stratum of each of them."""
    values = np.asarray(values)
    if kind == "class":
        labelled = np.flatnonzero(values >= 0)
        return labelled, values[labelled]
    labelled = np.flatnonzero(np.isfinite(values))
    bins = max(1, min(VALUE_STRATA, len(labelled) // 20))
    edges = np.quantile(values[labelled], np.linspace(0, 1, bins + 1)[1:-1]) if bins > 1 else []
    return labelled, np.searchsorted(edges, values[labelled], side="right")


def make_split(labels: np.ndarray, seed: int, test_fraction: float = 0.25,
               max_test: int | None = None, kind: str | None = None) -> Split:
    """A stratified split of the galaxies with a target; the others are left out.

    Each stratum (class, or quantile bin of a continuous target) is shuffled with ``seed`` and
    ``test_fraction`` of it goes to the test set, so the target's distribution matches between
    test set and pool. The pool is then shuffled as a whole, so any prefix ``train(n)`` is a
    random sample of it. ``kind`` is ``"class"`` or ``"value"`` (default: from the dtype).
    """
    labels = np.asarray(labels)
    if not 0.0 < test_fraction < 1.0:
        raise AstroclrError(f"test_fraction must be in (0, 1), got {test_fraction}")
    kind = kind or target_kind(labels)
    labelled, groups = strata(labels, kind)
    if kind == "class":
        classes = np.unique(groups)
        if len(classes) < 2:
            found = ", ".join(map(str, classes)) or "none"
            raise AstroclrError(f"need at least two label classes to evaluate, found: {found}")
    elif len(labelled) < 4:
        raise AstroclrError(f"need at least 4 galaxies with a finite target value to evaluate, "
                            f"found {len(labelled)}")
    rng = np.random.default_rng(seed)
    test_parts, pool_parts = [], []
    for g in np.unique(groups):
        members = labelled[groups == g]
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
