"""Does the run's anomaly score notice a catalogue that does not look like the run's galaxies?

Fits the scorer (``astroclr.api.AnomalyScorer``, the run's default components) on a random
part of a run's galaxies and scores the rest as they are and shifted (worse seeing: a 3x3 box
blur; more noise: Gaussian, sigma as a fraction of the [0, 1] range). Prints, per copy, the
fraction above the fitted galaxies' 99th percentile (``OOD_FRAC`` of ``embed``/``predict``)
and the median score. Used for docs/quality.md::

    python benchmarks/ood_shift.py runs/default [--reference 3000] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def blur3(x: np.ndarray) -> np.ndarray:
    pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    return sum(pad[:, :, i:i + x.shape[2], j:j + x.shape[3]]
               for i in range(3) for j in range(3)) / 9.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--reference", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from astroclr.api import AnomalyScorer
    from astroclr.session.runner import open_evaluation

    context = open_evaluation(args.run)
    images = np.asarray(context.galaxies.images, dtype=np.float32)
    reps = context.representations
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(images))
    ref, held = np.sort(order[:args.reference]), np.sort(order[args.reference:])
    scorer = AnomalyScorer.fit(reps[ref], images[ref], seed=args.seed)
    cut = scorer.percentile(99.0)
    x = images[held]
    copies = {"as they are": x, "blurred (3x3)": blur3(x),
              "blurred, noise 0.08": blur3(x) + rng.normal(0, 0.08, x.shape),
              "noise 0.08": x + rng.normal(0, 0.08, x.shape),
              "noise 0.3": x + rng.normal(0, 0.3, x.shape)}
    print(f"scorer fitted on {len(ref)} galaxies of {args.run}; {len(held)} scored\n")
    print("| copy | above the 99th percentile | median score |\n|---|---|---|")
    for name, y in copies.items():
        s = scorer.score(reps[held] if scorer.needs_representations else None,
                         y.astype(np.float32))["score"]
        print(f"| {name} | {np.mean(s > cut):.2%} | {np.median(s):+.2f} |")


if __name__ == "__main__":
    main()
