"""``anomaly``: a score per galaxy saying how unlike the others it is, and the most anomalous.

Two scores of the representations, both higher = stranger:

- ``knn``: the cosine distance (mean-centred, as ``astroclr similar``) to the ``k``-th nearest
  other galaxy: a galaxy alone in its part of representation space;
- ``iforest``: an isolation forest's score (scikit-learn): how few random splits isolate it.

Both are written as columns ``anomaly_knn`` and ``anomaly_iforest`` of ``embeddings.fits``
(through ``EvalResult.columns``); ``score`` chooses the one the montage ranks by. Which one
finds injected oddities better is measured by ``benchmarks/anomaly_recall.py``
(docs/quality.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from astroclr.api import AstroclrError, checked_features, montage

if TYPE_CHECKING:
    from astroclr.api import EvalContext, EvalResult

SCORES = ("knn", "iforest")


def knn_score(features: np.ndarray, k: int) -> np.ndarray:
    """Cosine distance of each row to its ``k``-th nearest other row (exact below the index's
    size threshold, HNSW above it)."""
    from astroclr.api import NeighbourIndex

    index = NeighbourIndex.build(features)
    k = max(1, min(int(k), len(features) - 1))
    _, dist = index.search(features, k, exclude=np.arange(len(features)))
    return dist[:, k - 1].astype(np.float32)


def iforest_score(features: np.ndarray, seed: int, trees: int = 200) -> np.ndarray:
    """Isolation-forest anomaly score (the negated ``score_samples``: higher = stranger)."""
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(n_estimators=trees, random_state=seed, n_jobs=1).fit(features)
    return (-forest.score_samples(features)).astype(np.float32)


def anomaly_scores(features: np.ndarray, k: int = 10, seed: int = 0,
                   trees: int = 200) -> dict[str, np.ndarray]:
    """Both scores of ``features`` (N, D): ``{"knn": ..., "iforest": ...}``."""
    return {"knn": knn_score(features, k), "iforest": iforest_score(features, seed, trees)}


def evaluate(context: "EvalContext", k: int = 10, score: str = "knn", top: int = 16,
             trees: int = 200, seed: int = 0) -> "EvalResult":
    from astroclr.api import EvalResult

    features = checked_features(context.representations, context, "anomaly")
    if len(features) < 3:
        raise AstroclrError("evaluator 'anomaly': needs at least three galaxies")
    scores = anomaly_scores(features, k, seed, trees)
    ranked = np.argsort(-scores[score], kind="stable")
    ids = context.galaxies.ids
    plain = [v.item() if isinstance(v, np.generic) else v for v in ids[ranked[:top]]]
    shown = [(i, float(scores[score][r])) for i, r in zip(plain, ranked[:top])]
    path = montage(context.galaxies, shown[0][0], shown[1:], context.figures_dir / "anomaly.png",
                   title=f"The {len(shown)} most anomalous galaxies by the {score} score",
                   first=f"1st {{id}}\nscore = {shown[0][1]:.3f}", value="score")
    rho = _rank_correlation(scores["knn"], scores["iforest"])
    lines = [f"A score per galaxy, higher = stranger: `knn` is the cosine distance to the "
             f"{k}-th nearest galaxy, `iforest` an isolation forest's ({trees} trees). Both are "
             f"columns of `embeddings.fits` (`anomaly_knn`, `anomaly_iforest`); the montage "
             f"ranks by `{score}`. Rank correlation of the two scores: {rho:.2f}.", "",
             "| rank | id | knn | iforest |", "|---|---|---|---|"]
    for n, (gid, row) in enumerate(zip(plain[:10], ranked[:10]), 1):
        lines.append(f"| {n} | {gid} | {scores['knn'][row]:.3f} | {scores['iforest'][row]:.3f} |")
    metrics = {"k": int(k), "score": score, "trees": int(trees),
               "rank_correlation": rho,
               "top": [{"id": gid, "knn": float(scores["knn"][r]),
                        "iforest": float(scores["iforest"][r])} for gid, r in zip(plain, ranked)],
               "quantiles": {name: {q: float(np.quantile(s, float(q))) for q in
                                    ("0.5", "0.95", "0.99")} for name, s in scores.items()}}
    return EvalResult(metrics=metrics, figures=[path], markdown="\n".join(lines),
                      columns={f"anomaly_{name}": s for name, s in scores.items()})


def _rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (ties broken by order: scores are continuous)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])
