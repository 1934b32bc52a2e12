"""Does the run's shift check notice a catalogue that does not look like the run's galaxies?

Fits the scorer (``astroclr.api.AnomalyScorer``, the run's default components) on a random
part of a run's galaxies and scores the rest as they are and shifted (worse seeing: a 3x3 box
blur; more noise: Gaussian, sigma as a fraction of the [0, 1] range). Prints, per copy, what
``embed``/``predict`` write and warn on (``astroclr.classify.shift``): ``OOD_FRAC``, the
fraction beyond the fitted galaxies' 99th percentile of the shift views, and ``OOD_SHFT``,
the largest median shift of a view in units of the reference's spread; and the median
anomaly score. Used for docs/quality.md::

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
    from astroclr.classify.shift import measure
    from astroclr.session.runner import open_evaluation

    context = open_evaluation(args.run)
    images = np.asarray(context.galaxies.images, dtype=np.float32)
    reps = context.representations
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(images))
    ref, held = np.sort(order[:args.reference]), np.sort(order[args.reference:])
    scorer = AnomalyScorer.fit(reps[ref], images[ref], seed=args.seed)
    x = images[held]
    copies = {"same survey (held out)": x, "blurred (3x3)": blur3(x),
              "blurred, noise 0.08": blur3(x) + rng.normal(0, 0.08, x.shape),
              "noise 0.02": x + rng.normal(0, 0.02, x.shape),
              "noise 0.08": x + rng.normal(0, 0.08, x.shape),
              "noise 0.3": x + rng.normal(0, 0.3, x.shape)}
    print(f"scorer fitted on {len(ref)} galaxies of {args.run}; {len(held)} scored\n")
    print("| copy | OOD_FRAC | OOD_SHFT (view) | warns | median anomaly score |\n"
          "|---|---|---|---|---|")
    for name, y in copies.items():
        y = y.astype(np.float32)
        scored = scorer.score(reps[held] if scorer.needs_representations else None, y)
        shift = measure(scorer, {c: v for c, v in scored.items() if c != "score"}, y)
        print(f"| {name} | {shift.frac:.1%} | {shift.median:+.2f} ({shift.view}) | "
              f"{'yes' if shift.warns else 'no'} | {np.median(scored['score']):+.2f} |")

if __name__ == "__main__":
    main()
