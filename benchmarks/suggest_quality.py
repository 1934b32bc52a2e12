"""Does ``astroclr suggest`` spend a labelling budget better than random picking?

On a run's own seeded splits (the evaluators' ``make_split``: a stratified test set of
``--test-fraction``, the rest the pool a labeller may pick from; the catalogue's labels play the
labeller), for each seed:

- **cold**: N galaxies (``--sizes``, default 50, 100, 200) picked from the pool by ``suggest``'s
  cold start (density-weighted k-means centres) and by stratified random picking (class
  proportions kept: a baseline that knows the labels);
- **warm**: ``--rounds`` rounds (default 3) of ``--batch`` (default 50) more, after a first
  batch: ``suggest`` (uncertain + diverse, from its own cold first batch), uncertainty sampling
  alone (Lewis & Gale 1994, the published baseline, from a random first batch) and random;

each set is scored by the balanced accuracy on the seed's test set of the evaluators' linear
probe (standardised, class-weighted logistic regression) trained on it, and, with
``--finetune`` (slow: a fine-tuning per set), of the run's encoder fine-tuned on it with the
default recipe. Differences are paired over seeds (suggest − random, same split).

Writes ``--out`` (JSON: every score, the paired differences) and ``--figure`` (PNG).

Run: ``python benchmarks/suggest_quality.py RUN_DIR [--seeds 0 1 2 3 4] [--finetune]``.
Toy size (minutes on a laptop): ``--sizes 10 20 --batch 10 --rounds 2 --seeds 0 1`` on a run
of a few hundred galaxies.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np


def probe_score(reps: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray,
                classes: np.ndarray, seed: int) -> float:
    """Balanced accuracy on ``test`` of the evaluators' linear probe trained on ``train``."""
    from astroclr.api import Task, classification_metrics, linear_model

    task = Task(seed=seed, split=None, train_idx=np.sort(train), test_idx=test, classes=classes,
                labels=labels)
    out = linear_model(reps)(task)
    proba = out[0] if isinstance(out, tuple) else out
    return float(classification_metrics(labels[test], proba, classes)["balanced_accuracy"])


def finetune_scorer(run_dir: str, galaxies: Any, max_steps: int | None) -> Callable[..., float]:
    """A scorer that trains as the ``finetune`` evaluator does (its own ``fit_and_predict``,
    the default recipe: the run's encoder, self-distillation on the galaxies outside the
    labelled ones and the test set) on ``train`` and returns the balanced accuracy on
    ``test``."""
    from types import SimpleNamespace

    import astroclr
    import astroclr.config as cfgmod
    from astroclr.api import Recipe, Task, classification_metrics, select_augment
    from astroclr.classify.parts import fresh_copy
    from astroclr.data.augment import pipeline_from_config
    from astroclr.plugin.registry import get_registry
    from astroclr.runs.rundir import open_run
    from astroclr_evaluators.finetune import fit_and_predict

    run = open_run(run_dir)
    cfg = cfgmod.resolve(run.config, get_registry())
    model = astroclr.load(run_dir, device="cpu")
    spec = Recipe(mode="finetune", **({"max_steps": max_steps, "min_steps": min(200, max_steps)}
                                      if max_steps else {}))
    pipeline = pipeline_from_config(get_registry(), galaxies.survey, cfg.augment)
    augment = select_augment(spec.augment, pipeline, galaxies.survey)
    context = SimpleNamespace(galaxies=galaxies, device=cfg.train.device, config=cfg.tables(),
                              trained_encoder=lambda: fresh_copy(model.encoder),
                              build_backbone=None)
    log: dict[str, list] = {}

    def score(reps, labels, train, test, classes, seed) -> float:
        task = Task(seed=seed, split=None, train_idx=np.sort(train), test_idx=test,
                    classes=classes, labels=labels)
        out = fit_and_predict(context, task, spec, augment, log)
        proba = out[0] if isinstance(out, tuple) else out
        return float(classification_metrics(labels[test], proba, classes)["balanced_accuracy"])

    return score


def stratified(pool: np.ndarray, labels: np.ndarray, n: int, seed: int,
               exclude: np.ndarray | None = None) -> np.ndarray:
    """``n`` galaxies of ``pool`` not in ``exclude``, class proportions kept, seeded."""
    from astroclr.classify.parts import stratified_subset

    rest = np.setdiff1d(pool, exclude if exclude is not None else [])
    return stratified_subset(rest, labels[rest], n, seed)


def picks(strategy: str, reps: np.ndarray, labels: np.ndarray, pool: np.ndarray, n: int,
          seed: int, have: np.ndarray | None = None) -> np.ndarray:
    """``n`` more galaxies of ``pool`` (rows of the dataset) by ``strategy``, given the
    galaxies ``have`` already labelled (dataset rows)."""
    from astroclr.classify.suggest import suggest_rows

    if strategy == "random":
        return stratified(pool, labels, n, seed + 7919 * (0 if have is None else len(have)), have)
    local = None if have is None else np.searchsorted(pool, have)
    rows, *_ = suggest_rows(reps[pool], n, local, None if have is None else labels[have],
                            seed=seed, strategy="uncertainty" if strategy == "uncertainty"
                            else "diverse")
    return pool[rows]


def run_seed(seed: int, reps: np.ndarray, labels: np.ndarray, scorers: dict[str, Callable],
             sizes: list[int], batch: int, rounds: int, test_fraction: float) -> dict[str, Any]:
    from astroclr.api import make_split

    split = make_split(labels, seed, test_fraction)
    pool, test = np.sort(split.train_pool), np.sort(split.test)
    classes = np.unique(labels[labels >= 0])
    out: dict[str, Any] = {"cold": {}, "warm": {}, "pool": int(len(pool)), "test": int(len(test))}
    for method in ("suggest", "random"):
        for n in sizes:
            chosen = picks(method, reps, labels, pool, n, seed)
            for model, score in scorers.items():
                out["cold"].setdefault(f"{method}/{model}", {})[str(n)] = \
                    score(reps, labels, chosen, test, classes, seed)
    if rounds < 0:
        return out
    starts = {"suggest": picks("suggest", reps, labels, pool, batch, seed),
              "uncertainty": picks("random", reps, labels, pool, batch, seed),
              "random": picks("random", reps, labels, pool, batch, seed)}
    for method, have in starts.items():
        for r in range(rounds + 1):
            if r:
                have = np.concatenate([have, picks(method, reps, labels, pool, batch, seed, have)])
            for model, score in scorers.items():
                out["warm"].setdefault(f"{method}/{model}", {})[str(len(have))] = \
                    score(reps, labels, have, test, classes, seed)
    return out


def paired(per_seed: list[dict[str, Any]], regime: str, a: str, b: str) -> dict[str, Any]:
    """``a - b`` per N, paired over seeds: mean, std, wins of ``a``."""
    out = {}
    for n in per_seed[0][regime][a]:
        d = np.array([s[regime][a][n] - s[regime][b][n] for s in per_seed])
        out[n] = {"mean": float(d.mean()), "std": float(d.std(ddof=1)) if len(d) > 1 else 0.0,
                  "wins": int((d > 0).sum()), "seeds": len(d)}
    return out


def figure(result: dict[str, Any], path: str) -> None:
    """Balanced accuracy against N for each regime measured (a cold-only run draws no empty
    warm panel), and the paired differences with their standard errors: the curves' spreads
    over splits overlap where the paired differences do not."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_seed = result["per_seed"]
    regimes = [r for r in ("cold", "warm") if per_seed[0][r]]
    fig, axes = plt.subplots(1, len(regimes) + 1, figsize=(5 * (len(regimes) + 1), 4),
                             squeeze=False)
    for ax, regime in zip(axes[0], regimes):
        for curve in per_seed[0][regime]:
            ns = list(per_seed[0][regime][curve])
            vals = np.array([[s[regime][curve][n] for n in ns] for s in per_seed])
            x = [int(n) for n in ns]
            ax.errorbar(x, vals.mean(0), yerr=vals.std(0), marker="o", capsize=3, label=curve)
        ax.set_xlabel("labelled galaxies N")
        ax.set_ylabel("balanced accuracy (test set)")
        ax.set_title(f"{regime} start, {len(per_seed)} seeds (mean ± std)")
        ax.legend(fontsize=7)
    ax = axes[0][-1]
    for name, rows in result["paired"].items():
        ns = list(rows)
        mean = np.array([rows[n]["mean"] for n in ns]) * 100
        se = np.array([rows[n]["std"] / np.sqrt(rows[n]["seeds"]) for n in ns]) * 100
        ax.errorbar([int(n) for n in ns], mean, yerr=se, marker="o", capsize=3, label=name)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("labelled galaxies N")
    ax.set_ylabel("paired difference (points)")
    ax.set_title("suggest − other, same split (mean ± s.e.)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dir")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200])
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--rounds", type=int, default=3,
                   help="warm rounds after a first batch; -1: the cold start only")
    p.add_argument("--test-fraction", type=float, default=0.25)
    p.add_argument("--label-column", default=None)
    p.add_argument("--finetune", action="store_true", help="also fine-tune on every set (slow)")
    p.add_argument("--finetune-steps", type=int, default=None,
                   help="cap the recipe's steps (toy runs only; the default recipe otherwise)")
    p.add_argument("--out", default="suggest_quality.json")
    p.add_argument("--figure", default="suggest_quality.png")
    args = p.parse_args()

    import astroclr.config as cfgmod
    from astroclr.evaluate.ids import same_ids
    from astroclr.files import write_json
    from astroclr.plugin.registry import get_registry
    from astroclr.runs.rundir import open_run

    run = open_run(args.run_dir)
    column = args.label_column or cfgmod.resolve(run.config, get_registry()).run.label_column
    ids, reps = run.rundir.embedding_arrays()
    galaxies = run.galaxies()
    if not same_ids(ids, galaxies.ids):
        raise SystemExit(f"{run.rundir.embeddings} does not list the dataset's galaxies in order")
    labels = galaxies.labels(column)
    scorers: dict[str, Callable] = {"probe": probe_score}
    if args.finetune:
        scorers["finetune"] = finetune_scorer(args.run_dir, galaxies, args.finetune_steps)
    start = time.perf_counter()
    per_seed = []
    for seed in args.seeds:
        per_seed.append(run_seed(seed, reps, labels, scorers, args.sizes, args.batch,
                                 args.rounds, args.test_fraction))
        print(f"seed {seed}: done ({time.perf_counter() - start:.0f} s)", flush=True)
    result: dict[str, Any] = {
        "run": str(Path(args.run_dir).resolve()), "label_column": column,
        "galaxies": int(len(labels)), "seeds": args.seeds, "sizes": args.sizes,
        "batch": args.batch, "rounds": args.rounds, "test_fraction": args.test_fraction,
        "finetune_steps": args.finetune_steps, "seconds": time.perf_counter() - start,
        "per_seed": per_seed, "paired": {}}
    for model in scorers:
        result["paired"][f"cold suggest - random ({model})"] = paired(
            per_seed, "cold", f"suggest/{model}", f"random/{model}")
        for other in ("random", "uncertainty") if args.rounds >= 0 else ():
            result["paired"][f"warm suggest - {other} ({model})"] = paired(
                per_seed, "warm", f"suggest/{model}", f"{other}/{model}")
    write_json(args.out, result)
    figure(result, args.figure)
    print("\n| comparison | N | mean difference (balanced acc.) | std | suggest wins |")
    print("|---|---|---|---|---|")
    for name, rows in result["paired"].items():
        for n, d in rows.items():
            print(f"| {name} | {n} | {d['mean']:+.3f} | {d['std']:.3f} | "
                  f"{d['wins']}/{d['seeds']} |")
    print(f"\n{args.out}, {args.figure}")


if __name__ == "__main__":
    main()
