"""Which anomaly score finds a run's real oddities: every fusion of the scorer's components
against the pixel baselines, on the catalogue's known oddities.

The embedded SDSS sample flags (column ``flagged``) the 97 galaxies Galaxy Zoo 1 volunteers
called mergers or "don't know" (stars, artefacts). For each score this prints the AUROC and
the precision among the top as many galaxies as are flagged; the default of
``astroclr.api.DEFAULT_ANOMALY_COMPONENTS`` is the best fusion measured here
(docs/quality.md)::

    python benchmarks/anomaly_recall.py runs/default [--truth flagged] [--json out.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--truth", default="flagged")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from astroclr.api import ANOMALY_COMPONENTS, AnomalyScorer, pca_features
    from astroclr.session.runner import open_evaluation
    from astroclr_evaluators.anomaly import detection, iforest_score, truth_of

    context = open_evaluation(args.run)
    flags = truth_of(context, args.truth, default=False)
    images, reps = context.galaxies.images, context.representations
    scorer = AnomalyScorer.fit(reps, images, ANOMALY_COMPONENTS, k=args.k, seed=args.seed)
    raw = scorer.raw_scores(reps, images)
    scores: dict[str, np.ndarray] = {}
    for n in range(1, len(ANOMALY_COMPONENTS) + 1):
        for combo in itertools.combinations(ANOMALY_COMPONENTS, n):
            scorer.components = combo
            scores[" + ".join(combo)] = scorer.fuse(raw)
    pca, _ = pca_features(images, np.arange(len(images)), 20, args.seed)
    scores["baseline: PCA + isolation forest"] = iforest_score(pca, args.seed)
    scores["baseline: representation + isolation forest"] = iforest_score(reps, args.seed)
    found = detection(scores, flags)
    print(f"{int((flags == 1).sum())} flagged of {int((flags >= 0).sum())} known "
          f"({args.run}, k={args.k})\n")
    print("| score | AUROC | precision at the number flagged |\n|---|---|---|")
    for name, m in sorted(found.items(), key=lambda kv: -kv[1]["auroc"]):
        print(f"| {name} | {m['auroc']:.3f} | {m['precision_at_flagged']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps(found, indent=1))


if __name__ == "__main__":
    main()
