"""``retrieval``: are a galaxy's nearest neighbours of its own class? precision@k.

For each seed's split, every test galaxy is a query; its ``k`` nearest labelled galaxies (cosine
distance of mean-centred features, as ``astroclr similar``; itself excluded) are retrieved, and
precision@k is the fraction of them sharing its label, averaged over queries, then mean ± std
over seeds. The same search runs on the shared baselines of the run: PCA of the pixels (fitted
without the split's test galaxies, so the queries are unseen by it) and the untrained network;
``random`` is the precision of neighbours drawn at random (the class frequencies). Nothing is
trained: this measures the geometry ``astroclr similar`` and the anomaly score rely on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from astroclr.api import AstroclrError, checked_features, fmt, mean_std

if TYPE_CHECKING:
    from astroclr.api import EvalContext, EvalResult

#: the representation's row is named after the run's method (``EvalContext.method_title``)
LABELS = {"pca": "PCA of the pixels",
          "untrained": "untrained network", "random": "random neighbours"}


def precision_at(features: np.ndarray, labels: np.ndarray, queries: np.ndarray,
                 ks: Sequence[int]) -> dict[int, float]:
    """Mean precision@k of same-label neighbours of ``queries`` among all labelled rows.

    ``labels``: per row, -1 = unlabelled (never retrieved); ``queries``: rows (labelled).
    """
    from astroclr.api import NeighbourIndex

    labelled = np.flatnonzero(labels >= 0)
    position = np.full(len(labels), -1)
    position[labelled] = np.arange(len(labelled))
    index = NeighbourIndex.build(features[labelled])
    kmax = max(ks)
    rows, _ = index.search(features[queries], kmax, exclude=position[queries])
    same = labels[labelled][rows] == labels[queries][:, None]
    return {k: float(same[:, :k].mean()) for k in ks}


def chance(labels: np.ndarray, queries: np.ndarray) -> float:
    """Precision of random neighbours: the mean frequency of each query's class."""
    known = labels[labels >= 0]
    freq = np.bincount(known) / len(known)
    return float(freq[labels[queries]].mean())


def evaluate(context: "EvalContext", k: Sequence[int] = (1, 10, 50),
             baselines: Sequence[str] = ("pca", "untrained")) -> "EvalResult":
    from astroclr.api import EvalResult, ids_digest

    if not k or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in k):
        raise AstroclrError(f"evaluator 'retrieval': k must be a non-empty list of integers "
                            f">= 1, got {list(k)!r}")
    features = checked_features(context.representations, context, "retrieval")
    labels = context.labels()
    n_labelled = int((labels >= 0).sum())
    if n_labelled < 3:
        raise AstroclrError("evaluator 'retrieval': needs at least three labelled galaxies")
    ks = sorted({min(int(v), n_labelled - 1) for v in k})
    per: dict[str, dict[int, list[float]]] = {}
    notes, splits = [], {}
    for seed in context.seeds:
        split = context.split(seed)
        queries = split.test
        splits[str(seed)] = {"test_sha1": ids_digest(context.galaxies.ids[queries]),
                             "queries": int(len(queries))}
        rows: dict[str, Any] = {"representation": features}
        for name in baselines:
            try:
                rows[name] = context.baseline(name, split if name == "pca" else None)
            except AstroclrError as exc:  # e.g. no backbone in a unit test's context
                if seed == context.seeds[0]:
                    notes.append(f"{name} left out: {exc}")
        for name, X in rows.items():
            found = precision_at(np.asarray(X, dtype=np.float32), labels, queries, ks)
            for kk, v in found.items():
                per.setdefault(name, {}).setdefault(kk, []).append(v)
        per.setdefault("random", {})
        for kk in ks:
            per["random"].setdefault(kk, []).append(chance(labels, queries))
    models = {}
    for name, by_k in per.items():
        label = (f"{context.method_title} representation" if name == "representation"
                 else LABELS.get(name, name))
        models[name] = {"label": label, "by_k": {}}
        for kk, values in by_k.items():
            m, s = mean_std(values)
            models[name]["by_k"][str(kk)] = {"mean": m, "std": s}
    head = " | ".join(f"P@{kk}" for kk in ks)
    lines = [f"Precision@k of same-class neighbours (`{context.label_column}`): each test "
             f"galaxy of a split queries the {n_labelled} labelled galaxies; mean ± std over "
             f"seeds {list(context.seeds)}.", "", f"| features | {head} |",
             "|---|" + "---|" * len(ks)]
    for name, model in models.items():
        cells = " | ".join(fmt(model["by_k"][str(kk)]["mean"], model["by_k"][str(kk)]["std"])
                           for kk in ks)
        lines.append(f"| {model['label']} | {cells} |")
    if notes:
        lines += ["", "; ".join(notes) + "."]
    return EvalResult(metrics={"k": ks, "seeds": list(context.seeds), "n_labelled": n_labelled,
                               "models": models, "splits": splits, "notes": notes},
                      markdown="\n".join(lines))
