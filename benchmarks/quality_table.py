"""Print a label-efficiency table (balanced accuracy, mean ± std over seeds) from run directories.

Each run directory must have been evaluated (``astroclr run`` or ``astroclr evaluate``); rows are
the SimCLR linear probe of each run, then the baselines of the first run (PCA, untrained
backbone, central colours) when they ran there. Used for docs/quality.md::

    python benchmarks/quality_table.py runs/default runs/T05 ...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

BASELINES = (("pca", "linear"), ("pca", "mlp"), ("untrained", "linear"), ("untrained", "mlp"),
             ("colours", "linear"))


def rows_of(run: Path, evaluator: str, model: str) -> dict[str, str] | None:
    metrics = json.loads((run / "metrics.json").read_text())["evaluators"]
    try:
        by_size = metrics[evaluator]["metrics"]["models"][model]["by_size"]
    except KeyError:
        return None
    return {n: f"{r['mean']['balanced_accuracy']:.3f} ± {r['std']['balanced_accuracy']:.3f}"
            for n, r in by_size.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    table: list[tuple[str, dict[str, str]]] = []
    for run in args.runs:
        row = rows_of(run, "probe", "linear")
        if row is not None:
            steps = json.loads((run / "run.json").read_text()).get("train", {}).get("steps")
            table.append((f"SimCLR linear probe: {run.name} ({steps} steps)", row))
    for evaluator, model in BASELINES:
        row = rows_of(args.runs[0], evaluator, model)
        if row is not None:
            table.append((f"{evaluator} ({model})", row))
    sizes = sorted({n for _, r in table for n in r}, key=int)
    print("| method | " + " | ".join(f"N={n}" for n in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for name, row in table:
        print(f"| {name} | " + " | ".join(row.get(n, "") for n in sizes) + " |")


if __name__ == "__main__":
    main()
