"""The report section shared by the built-in classifier evaluators.

The classifier loop, metrics and standard models live in the core (``astroclr.api``:
``evaluate_classifiers``, ``feature_models``, ...), so a third-party evaluator needs nothing
from this plugin.
"""

from __future__ import annotations

from typing import Any, Mapping

from astroclr.api import METRIC_TITLES, SCALAR_METRICS, fmt


def markdown_section(metrics: Mapping[str, Any], intro: str) -> str:
    """The standard report section: intro, a table at the largest N, a confusion matrix."""
    sizes = metrics["sizes"]
    n_max = str(sizes[-1])
    seeds = metrics["seeds"]
    lines = [intro, "",
             f"{metrics['n_labelled']} labelled galaxies ({metrics['n_unlabelled']} unlabelled "
             f"left out), test set of {metrics['n_test']} per seed, seeds {seeds}; "
             f"mean ± std over seeds, at N = {n_max} training galaxies:", ""]
    header = ["model"] + [METRIC_TITLES[m] for m in SCALAR_METRICS]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for name, model in metrics["models"].items():
        entry = model["by_size"][n_max]
        cells = [fmt(entry["mean"][m], entry["std"][m]) for m in SCALAR_METRICS]
        lines.append(f"| {model['label']} | " + " | ".join(cells) + " |")
    base = metrics["majority_baseline"]
    cells = [fmt(base["mean"][m], base["std"][m]) for m in SCALAR_METRICS]
    lines.append("| majority class | " + " | ".join(cells) + " |")
    lines.append("")
    names = metrics["class_names"]
    for name, model in metrics["models"].items():
        entry = model["by_size"][n_max]
        per = entry["per_class_mean"]
        lines.append(f"Per class, {model['label']}: " + "; ".join(
            f"{c}: precision {fmt(per[c]['precision'])}, recall {fmt(per[c]['recall'])}, "
            f"F1 {fmt(per[c]['f1'])}" for c in names) + ".")
        lines.append("")
    if len(sizes) > 1:
        lines.append("Balanced accuracy against the number of training galaxies N:")
        lines.append("")
        lines.append("| model | " + " | ".join(f"N={n}" for n in sizes) + " |")
        lines.append("|---|" + "---|" * len(sizes))
        for name, model in metrics["models"].items():
            cells = [fmt(model["by_size"][str(n)]["mean"]["balanced_accuracy"],
                         model["by_size"][str(n)]["std"]["balanced_accuracy"]) for n in sizes]
            lines.append(f"| {model['label']} | " + " | ".join(cells) + " |")
        lines.append("")
    first = next(iter(metrics["models"].values()))
    conf = first["by_size"][n_max]["confusion_sum"]
    lines.append(f"Confusion matrix of {first['label']} at N = {n_max}, summed over seeds "
                 f"(rows: true class, columns: predicted):")
    lines.append("")
    lines.append("| true \\ predicted | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    for name, row in zip(names, conf):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    notes = sorted({s["note"] for model in metrics["models"].values()
                    for e in model["by_size"].values() for s in e["per_seed"] if "note" in s})
    if notes:
        lines.append("")
        lines.extend(f"Note: {n}." for n in notes)
    return "\n".join(lines) + "\n"
