"""Cold-start rules for ``astroclr suggest``, compared with the linear probe against random.

For each seed's split (the evaluators' ``make_split``), N galaxies are picked from the training
pool by each rule and by stratified random picking (class proportions kept), the evaluators'
linear probe is trained on them, and its balanced accuracy on the test set is paired with
random's. The rules, all in ``suggest``'s geometry (centred representations on the unit sphere):

- ``default``: density-weighted k-means centres (``suggest``'s cold start);
- ``kmeans``: k-means centres, unweighted;
- ``typiclust``: the densest galaxy of each of N k-means clusters (Hacohen et al. 2022);
- ``invdens`` / ``invdens2``: k-means weighted by 1/sqrt(density) / 1/density;
- ``coarseK`` / ``coarseKsqrt``: K coarse k-means clusters, the budget spread equally / in
  proportion to the square root of their sizes, density-weighted centres within each.

Used for docs/quality.md (on splits the report does not use, so that choosing cannot flatter it)::

    python benchmarks/cold_start_rules.py runs/default --seeds $(seq 10 29) --n 100
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from suggest_quality import probe_score, stratified  # noqa: E402


def by_weight(x: np.ndarray, n: int, seed: int, weights: np.ndarray) -> np.ndarray:
    from astroclr.classify.suggest import centre_picks

    return centre_picks(x, n, weights, seed)[0]


def typiclust(x: np.ndarray, n: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    from astroclr.classify.suggest import density

    assign = KMeans(n_clusters=n, n_init=3, random_state=seed).fit_predict(x)
    typical = density(x, 20)
    members = (np.flatnonzero(assign == c) for c in range(n))
    return np.array([m[np.argmax(typical[m])] for m in members if len(m)])


def coarse(x: np.ndarray, n: int, seed: int, k: int, power: float) -> np.ndarray:
    """The budget spread over ``k`` coarse clusters in proportion to size**power."""
    from sklearn.cluster import KMeans

    from astroclr.classify.suggest import density

    assign = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(x)
    sizes = np.bincount(assign, minlength=k)
    share = sizes.astype(float) ** power
    share = share / share.sum() * n
    alloc = np.floor(share).astype(int)
    alloc[np.argsort(-(share - alloc))[:n - alloc.sum()]] += 1
    alloc = np.minimum(alloc, sizes)
    while alloc.sum() < n:
        alloc[np.argmax(sizes - alloc)] += 1
    dens, out = density(x), []
    for c in np.flatnonzero(alloc):
        m = np.flatnonzero(assign == c)
        out.extend(m if alloc[c] >= len(m) else m[by_weight(x[m], int(alloc[c]), seed, dens[m])])
    return np.array(out)


def rules() -> dict:
    """Each rule maps (the pool's representations, n, seed) to positions of its picks."""
    from astroclr.classify.suggest import cold_rows, density, unit

    def on_sphere(rule):  # suggest's geometry, as cold_rows computes it
        return lambda reps, n, s: rule(unit(reps), n, s)

    return {
        "default": lambda reps, n, s: cold_rows(reps, n, s)[0],  # suggest's own, not a copy
        **{name: on_sphere(rule) for name, rule in {
            "kmeans": lambda x, n, s: by_weight(x, n, s, np.ones(len(x))),
            "typiclust": typiclust,
            "invdens": lambda x, n, s: by_weight(x, n, s, density(x) ** -0.5),
            "invdens2": lambda x, n, s: by_weight(x, n, s, 1.0 / density(x)),
            **{f"coarse{k}": (lambda k: lambda x, n, s: coarse(x, n, s, k, 0.0))(k)
               for k in (2, 4, 8)},
            **{f"coarse{k}sqrt": (lambda k: lambda x, n, s: coarse(x, n, s, k, 0.5))(k)
               for k in (8, 16)},
        }.items()},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dir")
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(10, 30)))
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--label-column", default=None)
    args = p.parse_args()

    import astroclr.config as cfgmod
    from astroclr.api import make_split
    from astroclr.plugin.registry import get_registry
    from astroclr.runs.rundir import open_run

    warnings.filterwarnings("ignore", module="sklearn")
    run = open_run(args.run_dir)
    column = args.label_column or cfgmod.resolve(run.config, get_registry()).run.label_column
    _, reps = run.rundir.embedding_arrays()
    labels = run.galaxies().labels(column)
    classes = np.unique(labels[labels >= 0])
    chosen_rules = rules()
    scores: dict[str, list[float]] = {name: [] for name in ("random", *chosen_rules)}
    rare: dict[str, list[float]] = {name: [] for name in scores}
    minority = classes[np.argmin([np.sum(labels == c) for c in classes])]
    for seed in args.seeds:
        split = make_split(labels, seed, 0.25)
        pool, test = np.sort(split.train_pool), np.sort(split.test)
        picks = {"random": stratified(pool, labels, args.n, seed)}
        picks.update({name: pool[rule(reps[pool], args.n, seed)] for name, rule in chosen_rules.items()})
        for name, rows in picks.items():
            scores[name].append(probe_score(reps, labels, rows, test, classes, seed))
            rare[name].append(float(np.mean(labels[rows] == minority)))
    base = np.array(scores["random"])
    print(f"N = {args.n}, {len(args.seeds)} splits; paired with stratified random picking")
    print("| rule | balanced accuracy | − random (points, mean ± s.e.) | won | minority share |")
    print("|---|---|---|---|---|")
    for name, vals in scores.items():
        v = np.array(vals)
        d = (v - base) * 100
        se = d.std(ddof=1) / math.sqrt(len(d)) if len(d) > 1 else 0.0
        print(f"| {name} | {v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0:.3f} | "
              f"{d.mean():+.1f} ± {se:.1f} | {(d > 0).sum()}/{len(d)} | {np.mean(rare[name]):.0%} |")


if __name__ == "__main__":
    main()
