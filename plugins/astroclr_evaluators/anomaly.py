"""``anomaly``: how unlike the run's other galaxies each galaxy is, measured on real oddities.

The score is the run's own anomaly scorer (:class:`astroclr.api.AnomalyScorer`, the one
``astroclr embed`` applies to new catalogues): the mean of the empirical-CDF ranks of its
components, by default the distance to the ``k``-th neighbour in a PCA of the pixels and the
rotational asymmetry of the light (which the sample's real oddities chose, docs/quality.md);
the representation's own neighbour distance is a component to add. Every component and the
fused score become columns of ``embeddings.fits`` (``anomaly_score``, ``anomaly_<component>``).

Given a column of known oddities (``truth``: 1 = an oddity, 0 = not, -1 = unknown; the
embedded SDSS sample's ``flagged`` marks the galaxies Galaxy Zoo 1 volunteers called mergers or
"don't know"), the report gives each score's AUROC and its precision among the top as many
galaxies as are flagged, next to the pixel baselines on equal terms (PCA + isolation forest,
PCA + k-th neighbour) and the representation's isolation forest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from astroclr.api import DEFAULT_ANOMALY_COMPONENTS, AstroclrError, checked_features, montage

if TYPE_CHECKING:
    from astroclr.api import EvalContext, EvalResult


def iforest_score(features: np.ndarray, seed: int, trees: int = 200) -> np.ndarray:
    """Isolation-forest anomaly score (the negated ``score_samples``: higher = stranger)."""
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(n_estimators=trees, random_state=seed, n_jobs=1).fit(features)
    return (-forest.score_samples(features)).astype(np.float32)


def truth_of(context: "EvalContext", column: str, default: bool) -> np.ndarray | None:
    """The known-oddity flags (1/0, -1 unknown) of ``column``; None if the default column is
    absent (a column the user named must exist)."""
    cat = context.galaxies.catalog
    if column not in cat.colnames:
        if default:
            return None
        raise AstroclrError(f"evaluator 'anomaly': truth column {column!r} is not in the "
                            f"catalogue; columns: {', '.join(cat.colnames)}")
    values = np.asarray(cat[column])
    if values.dtype.kind not in "iub" or not np.isin(values, (-1, 0, 1)).all():
        raise AstroclrError(f"evaluator 'anomaly': truth column {column!r} must hold 1 (an "
                            f"oddity), 0 (not) or -1 (unknown)")
    return values.astype(np.int64)


def detection(scores: dict[str, np.ndarray], truth: np.ndarray) -> dict[str, dict[str, float]]:
    """AUROC and precision at the number flagged, of each score, on the galaxies whose truth
    is known."""
    from sklearn.metrics import roc_auc_score

    known = truth >= 0
    y = truth[known]
    n = int(y.sum())
    out = {}
    for name, s in scores.items():
        s = s[known]
        top = np.argsort(-s, kind="stable")[:n]
        out[name] = {"auroc": float(roc_auc_score(y, s)),
                     "precision_at_flagged": float(y[top].mean()) if n else 0.0}
    return out


def evaluate(context: "EvalContext", k: int = 10, components: Sequence[str] = DEFAULT_ANOMALY_COMPONENTS,
             truth: str = "flagged", top: int = 16, trees: int = 200,
             seed: int = 0) -> "EvalResult":
    from astroclr.api import AnomalyScorer, EvalResult, pca_features

    for name, value, low in (("k", k, 1), ("top", top, 2), ("trees", trees, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise AstroclrError(f"evaluator 'anomaly': {name} must be an integer >= {low}, "
                                f"got {value!r}")
    if seed > 2**32 - 1:
        raise AstroclrError(f"evaluator 'anomaly': seed must be below 2**32, got {seed}")
    features = checked_features(context.representations, context, "anomaly")
    if len(features) < 3:
        raise AstroclrError("evaluator 'anomaly': needs at least three galaxies")
    flags = truth_of(context, truth, default=(truth == "flagged"))
    images = context.galaxies.images
    scorer = AnomalyScorer.fit(features, images, components, k=k, seed=seed)
    scored = scorer.raw_scores(features, images)
    fused = scorer.fuse(scored)
    ranked = np.argsort(-fused, kind="stable")
    ids = context.galaxies.ids
    plain = [v.item() if isinstance(v, np.generic) else v for v in ids[ranked[:top]]]
    shown = [(i, float(fused[r])) for i, r in zip(plain, ranked[:top])]
    path = montage(context.galaxies, shown[0][0], shown[1:], context.figures_dir / "anomaly.png",
                   title=f"The {len(shown)} most anomalous galaxies ({' + '.join(components)})",
                   first=f"1st {{id}}\nscore = {shown[0][1]:.3f}", value="score")
    label = f"fused ({' + '.join(components)})"
    metrics: dict[str, Any] = {
        "k": int(k), "components": list(components), "score": label,
        "top": [{"id": gid, "score": float(fused[r]),
                 **{c: float(v[r]) for c, v in scored.items()}} for gid, r in zip(plain, ranked)],
        "quantiles": {q: float(np.quantile(fused, float(q))) for q in ("0.5", "0.95", "0.99")}}
    lines = [f"A score per galaxy, higher = stranger: `anomaly_score` is the mean rank of "
             f"{' and '.join(f'`{c}`' for c in components)} among the run's galaxies "
             f"(`pixels`: distance to the {k}-th neighbour in a PCA of the pixels; `asymmetry`: "
             f"rotational asymmetry of the light; `representation`: distance to the {k}-th "
             f"neighbour in the representation). Each is a column of `embeddings.fits`; "
             f"`astroclr embed` scores new catalogues against the same galaxies."]
    if flags is not None and (flags == 1).any() and (flags == 0).any():
        pca, _ = pca_features(images, np.arange(len(images)), 20, seed)
        candidates = {label: fused, **{f"{c} alone": v for c, v in scored.items()},
                      "PCA + isolation forest (pixel baseline)": iforest_score(pca, seed, trees),
                      "representation + isolation forest": iforest_score(features, seed, trees)}
        found = detection(candidates, flags)
        metrics["truth"] = {"column": truth, "flagged": int((flags == 1).sum()),
                            "known": int((flags >= 0).sum()), "by_score": found}
        lines += ["", f"Against the catalogue's known oddities (`{truth}`: "
                  f"{int((flags == 1).sum())} flagged of {int((flags >= 0).sum())}):", "",
                  "| score | AUROC | precision at the number flagged |", "|---|---|---|"]
        lines += [f"| {name} | {m['auroc']:.3f} | {m['precision_at_flagged']:.3f} |"
                  for name, m in found.items()]
    lines += ["", "| rank | id | score | " + " | ".join(scored) + " |",
              "|---|---|---|" + "---|" * len(scored)]
    for n, (gid, row) in enumerate(zip(plain[:10], ranked[:10]), 1):
        lines.append(f"| {n} | {gid} | {fused[row]:.3f} | "
                     + " | ".join(f"{v[row]:.3f}" for v in scored.values()) + " |")
    return EvalResult(metrics=metrics, figures=[path], markdown="\n".join(lines),
                      columns={"anomaly_score": fused,
                               **{f"anomaly_{c}": v for c, v in scored.items()}})
