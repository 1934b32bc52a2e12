"""``similar``: montages of each example galaxy's nearest neighbours in representation space.

The qualitative check of the reference work: do the galaxies SimCLR places closest to a
spiral look like spirals? Examples are the ``ids`` given, else chosen at random — one per
class first (so every class is shown), then any galaxy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from astroclr.api import AstroclrError, checked_features, class_names, safe_name

if TYPE_CHECKING:
    from astroclr.api import EvalContext, EvalResult


def choose_examples(context: "EvalContext", n: int, seed: int) -> list[int]:
    """Rows of ``n`` example galaxies: one per label class first, then random others."""
    rng = np.random.default_rng(seed)
    try:
        labels = context.labels()
    except AstroclrError:
        labels = np.full(len(context.galaxies), -1)
    chosen: list[int] = []
    for c in np.unique(labels[labels >= 0]):
        if len(chosen) < n:
            chosen.append(int(rng.choice(np.flatnonzero(labels == c))))
    rest = np.setdiff1d(np.arange(len(labels)), chosen)
    extra = rng.choice(rest, min(n - len(chosen), len(rest)), replace=False)
    return chosen + [int(i) for i in extra]


def evaluate(context: "EvalContext", k: int = 8, examples: int = 4, ids: Sequence[str] = (),
             seed: int = 0) -> "EvalResult":
    from astroclr.api import EvalResult, index_of, montage, nearest

    features = checked_features(context.representations, context, "similar")
    if len(features) < 2:
        raise AstroclrError("evaluator 'similar': needs at least two galaxies")
    gal_ids = context.galaxies.ids
    try:
        rows = ([index_of(gal_ids, i, "the dataset") for i in ids] if ids
                else choose_examples(context, examples, seed))
    except AstroclrError as exc:
        raise AstroclrError(f"evaluator 'similar': {exc}") from None
    try:
        labels = context.labels()
    except AstroclrError:
        labels = None
    figures, found, lines = [], {}, []
    for row in rows:
        qid = gal_ids[row].item() if isinstance(gal_ids[row], np.generic) else gal_ids[row]
        neighbours = nearest(gal_ids, features, qid, k, "the dataset")
        label = ""
        if labels is not None and labels[row] >= 0:
            label = f" ({class_names(context, [int(labels[row])])[0]})"
        # Ids are data: safe_name keeps the file inside figures/ whatever the id holds.
        path = montage(context.galaxies, qid, neighbours,
                       context.figures_dir / f"{safe_name(f'similar_{qid}')}.png",
                       title=f"Nearest to {qid}{label} (cosine distance)")
        figures.append(path)
        found[str(qid)] = [{"id": i, "distance": d} for i, d in neighbours]
        same = ""
        if labels is not None and labels[row] >= 0:
            nb_rows = [index_of(gal_ids, i) for i, _ in neighbours]
            nb_labels = labels[nb_rows]
            known = nb_labels >= 0
            if known.any():
                frac = float(np.mean(nb_labels[known] == labels[row]))
                same = f"; {frac:.0%} of its labelled neighbours share its label"
        lines.append(f"- {qid}{label}: mean distance "
                     f"{np.mean([d for _, d in neighbours]):.3f}{same}")
    md = (f"The {k} galaxies nearest (cosine distance of the mean-subtracted representations) to "
          f"{len(rows)} example galaxies; the query is first in each montage.\n\n"
          + "\n".join(lines))
    return EvalResult(metrics={"k": int(k), "neighbours": found}, figures=figures, markdown=md)
