"""Fine-tuning variants against the same network from scratch, paired over splits.

Runs the ``finetune`` evaluator once per variant (each a set of recipe fields) on a finished
run's splits, and prints balanced accuracy (mean ± std over splits) with each variant's paired
difference to the ``scratch`` variant (mean ± standard error, splits won). Nothing in the run
is written; the per-split numbers go to ``--json``. Used for docs/quality.md::

    python benchmarks/finetune_table.py runs/default --seeds 0 1 2 3 4 --sizes 100 300 \\
        --variant fixmatch unlabelled=fixmatch --variant none unlabelled=none \\
        --variant scratch init=scratch --json finetune_table.json

A variant is ``NAME KEY=VALUE ...`` (fields of ``astroclr.api.Recipe``; values parsed as TOML).
``--unlabelled-set KEY=VALUE`` (repeatable, dataset keys, e.g. ``dataset.pool="gz2"``) loads the
run's dataset with those settings for the fine-tuning: its extra galaxies must come after the
run's own, in order, and join the unlabelled ones (never labelled, never tested; the splits are
the run's, checked by their digests in ``--json``).
Training is the expensive part (about a minute per fit on a 2-core CPU at the default recipe);
the fits run one after another, one heavy job at a time.

``--baseline-from JSON`` takes the baseline variant's per-split results from an earlier
``--json`` instead of fitting it again (the ``scratch`` fits do not depend on the run's encoder,
only on its splits and recipe): refused unless every split and label count has the same test
and training galaxies (digests) as this run's.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np


def parse_value(text: str):
    import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def with_unlabelled(context, run: Path, sets: list[str], registry):
    """``context`` over the run's dataset loaded with ``sets``: the run's galaxies first (the
    splits only ever draw labelled ones), then the extra ones, unlabelled."""
    import dataclasses

    import astroclr.config as cfgmod
    from astroclr.runs.build import load_dataset
    from astroclr.runs.rundir import open_run

    raw = cfgmod.assemble_config(open_run(run).config, sets)
    galaxies = load_dataset(registry, cfgmod.resolve(raw, registry))
    own = len(context.galaxies)
    if not np.array_equal(np.asarray(galaxies.ids[:own]), np.asarray(context.galaxies.ids)):
        raise SystemExit(f"--unlabelled-set {' '.join(sets)}: the run's galaxies are not the "
                         f"first {own} of that dataset, in order")
    labels = galaxies.labels(context.label_column)
    if (labels[own:] >= 0).any():
        raise SystemExit(f"--unlabelled-set {' '.join(sets)}: the extra galaxies carry labels")
    reps = np.zeros((len(galaxies), context.representations.shape[1]), dtype=np.float32)
    reps[:own] = context.representations  # the extra rows are never labelled nor tested
    print(f"unlabelled: {len(galaxies) - own} extra galaxies ({' '.join(sets)})", flush=True)
    return dataclasses.replace(context, galaxies=galaxies, representations=reps, _splits={},
                               _baselines={})


def stored_baseline(path: Path, name: str, context, seeds: list[int], sizes: list[int]) -> dict:
    """Variant ``name`` of an earlier ``--json``, checked to have fitted exactly this run's
    splits: the same test and training galaxies for every seed and label count."""
    stored = json.loads(path.read_text()).get(name)
    if stored is None:
        raise SystemExit(f"--baseline-from {path}: no variant {name!r} in it")
    ids = np.asarray(context.galaxies.ids)
    for seed in seeds:
        split = context.split(seed)
        info, ours = stored["splits"].get(str(seed)), split.digests(ids, sizes)
        if info is None or info["test_sha1"] != ours["test_sha1"]:
            raise SystemExit(f"--baseline-from {path}: split {seed} is not this run's")
        for n in sizes:
            if info["train_sha1"].get(str(n)) != ours["train_sha1"][str(n)]:
                raise SystemExit(f"--baseline-from {path}: split {seed}, N={n} has other "
                                 "training galaxies than this run's (or was not fitted)")
    order = list(stored["splits"])  # per-split lists follow the stored splits' order
    per = {str(n): [stored["balanced_accuracy"][str(n)][order.index(str(s))] for s in seeds]
           for n in sizes}
    print(f"{name}: from {path} (splits checked)", flush=True)
    return {**stored, "balanced_accuracy": per, "from": str(path)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--variant", nargs="+", action="append", required=True,
                        metavar="NAME [KEY=VALUE ...]")
    parser.add_argument("--baseline", default="scratch", help="variant the others are paired with")
    parser.add_argument("--baseline-from", type=Path, metavar="JSON",
                        help="the baseline's results from an earlier --json (same splits)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--unlabelled-set", action="append", default=[], metavar="KEY=VALUE",
                        help="dataset settings adding unlabelled galaxies after the run's own")
    args = parser.parse_args()

    from astroclr.evaluate.context import run_evaluators
    from astroclr.plugin.registry import get_registry
    from astroclr.session.runner import open_evaluation

    seeds = ",".join(map(str, args.seeds))
    context = open_evaluation(args.run, [f"run.eval_seeds=[{seeds}]"])
    registry = get_registry()
    if args.unlabelled_set:
        context = with_unlabelled(context, args.run, args.unlabelled_set, registry)
    results: dict[str, dict] = {}
    if args.baseline_from:
        results[args.baseline] = stored_baseline(args.baseline_from, args.baseline, context,
                                                 args.seeds, args.sizes)
    for name, *fields in args.variant:
        recipe = {k: parse_value(v) for k, v in (f.split("=", 1) for f in fields)}
        start = time.perf_counter()
        res = run_evaluators(registry, ["finetune"],
                             {"finetune": {"sizes": args.sizes, **recipe}}, context)
        m = res["finetune"].metrics
        per = {n: [r["balanced_accuracy"] for r in by["per_seed"]]
               for n, by in m["models"]["finetune"]["by_size"].items()}
        results[name] = {"recipe": recipe, "unlabelled_set": args.unlabelled_set,
                         "balanced_accuracy": per,
                         "seconds": round(time.perf_counter() - start, 1),
                         "steps": m.get("steps"), "splits": m["splits"]}
        print(f"{name}: {time.perf_counter() - start:.0f} s "
              + " ".join(f"N={n} {np.mean(v):.3f}" for n, v in per.items()), flush=True)
        if args.json:  # after each variant: a long measurement keeps what it finished
            args.json.write_text(json.dumps(results, indent=1))
    base = results.get(args.baseline)
    sizes = sorted({n for r in results.values() for n in r["balanced_accuracy"]}, key=int)
    print("\n| variant | " + " | ".join(f"N={n}" for n in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for name, r in results.items():
        cells = []
        for n in sizes:
            v = np.asarray(r["balanced_accuracy"].get(n, []))
            cell = f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0:.3f}" if len(v) else ""
            if base is not None and name != args.baseline and len(v):
                d = (v - np.asarray(base["balanced_accuracy"][n])) * 100
                se = d.std(ddof=1) / math.sqrt(len(d)) if len(d) > 1 else 0.0
                cell += f" ({d.mean():+.1f} ± {se:.1f}, {int((d > 0).sum())}/{len(d)})"
                r.setdefault("paired_vs_" + args.baseline, {})[n] = {
                    "mean_points": float(d.mean()), "se_points": float(se),
                    "won": int((d > 0).sum()), "splits": int(len(d))}
            cells.append(cell)
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
