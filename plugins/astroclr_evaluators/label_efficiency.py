"""``label_efficiency``: how many labels does each method need? One plot, one table, one ratio.

It trains nothing: it reads the results of the classifier evaluators (``probe``, ``pca``,
``untrained``, ``colours``, ``knn``, ``cnn`` — any evaluator, from any package, whose spec says
``provides="classifier"``). Its spec declares ``needs=("classifier",)``, so it runs after all of
them wherever it stands in ``run.evaluators``.

The label-efficiency ratio: the best baseline (``cnn`` if it ran, else ``pca``) reaches some
score at its largest N; the smallest N at which a ``probe`` model (the run's representation)
reaches that score gives "the probe needs X× fewer labels".
"""

from __future__ import annotations

import colorsys
import math
from typing import TYPE_CHECKING, Any, Callable, Mapping

from astroclr.api import METRIC_TITLES, fmt

if TYPE_CHECKING:
    from astroclr.api import EvalContext, EvalResult

#: one colour per feature source (the evaluator), kept across runs; an evaluator from another
#: package takes the first spare colour no other series of the figure uses
_COLOURS = {"probe": "tab:blue", "knn": "tab:cyan", "pca": "tab:orange", "untrained": "tab:gray",
            "colours": "tab:purple", "cnn": "tab:red", "finetune": "tab:green"}
_SPARE_COLOURS = ("tab:brown", "tab:pink", "tab:olive", "navy", "gold", "teal", "maroon",
                  "lime")  # not black: the majority-class line is
#: one dash per model kind (the probe's linear and MLP models, the knn vote, the networks)
_DASHES: dict[str, Any] = {"mlp": "-", "linear": "--", "knn": ":", "cnn": "-.",
                           "finetune": (0, (5, 1, 1, 1, 1, 1))}
_SPARE_DASHES: tuple[Any, ...] = ((0, (1, 3)), (0, (8, 2)), (0, (3, 1, 1, 1)), (0, (6, 2, 2, 2)),
                                  (0, (2, 2)), (0, (10, 3, 2, 3)))
BASELINE_ORDER = ("cnn", "pca")


def _assign(keys: list[str], known: Mapping[str, Any], spare: tuple[Any, ...],
            make: Callable[[int], Any]) -> dict[str, Any]:
    """Each key its known value, or the first spare value no other key has; past the spares,
    ``make(i)`` for the i-th more (a value of its own)."""
    out = {k: known[k] for k in keys if k in known}
    free = [v for v in (*spare, *known.values()) if v not in out.values()]
    extra = 0
    for k in keys:
        if k not in out:
            extra += not free
            out[k] = free.pop(0) if free else make(extra)
    return out


def _made_colour(i: int) -> str:
    r, g, b = colorsys.hsv_to_rgb((0.13 + 0.618 * i) % 1.0, 0.85, 0.55)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def series_styles(found: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[Any, Any]]:
    """``{label: (colour, dash)}``: a colour per feature source (evaluator) and a dash per model
    kind, so no two series of the figure look alike."""
    evaluators = list(dict.fromkeys(c["evaluator"] for c in found.values()))
    kinds = list(dict.fromkeys(c["model"] for c in found.values()))
    colours = _assign(evaluators, _COLOURS, _SPARE_COLOURS, _made_colour)
    dashes = _assign(kinds, _DASHES, _SPARE_DASHES, lambda i: (0, (i + 1, 1, 1, 1)))
    return {label: (colours[c["evaluator"]], dashes[c["model"]]) for label, c in found.items()}


def curves(results: Mapping[str, "EvalResult"], metric: str) -> dict[str, dict[str, Any]]:
    """Every classifier curve: ``{label: {evaluator, model, sizes, mean, std}}``."""
    out: dict[str, dict[str, Any]] = {}
    for name, result in results.items():
        m = result.metrics
        if result.kind != "classifier" or not isinstance(m, Mapping) or "models" not in m:
            continue
        for model_name, model in m["models"].items():
            sizes = sorted(int(n) for n in model["by_size"])
            out[model["label"]] = {
                "evaluator": name, "model": model_name, "sizes": sizes,
                "mean": [model["by_size"][str(n)]["mean"][metric] for n in sizes],
                "std": [model["by_size"][str(n)]["std"][metric] for n in sizes],
            }
    return out


def _ok(x: Any) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def label_ratio(found: Mapping[str, Mapping[str, Any]], metric: str) -> dict[str, Any]:
    """The ratio and a sentence saying it — or saying why it cannot be stated."""
    title = METRIC_TITLES.get(metric, metric)
    simclr = {k: c for k, c in found.items() if c["evaluator"] == "probe"}
    if not simclr:
        return {"ratio": None, "statement": "No label-efficiency ratio: the probe evaluator did "
                "not run before label_efficiency."}
    base_name = next((b for b in BASELINE_ORDER if any(c["evaluator"] == b
                                                       for c in found.values())), None)
    if base_name is None:
        return {"ratio": None, "statement": "No label-efficiency ratio: neither cnn nor pca ran "
                "before label_efficiency, so there is no baseline to compare with."}
    # the baseline's best model at its largest N
    best_label, target, base_n = None, -math.inf, 0
    for label, c in found.items():
        if c["evaluator"] != base_name or not _ok(c["mean"][-1]):
            continue
        if c["mean"][-1] > target:
            best_label, target, base_n = label, c["mean"][-1], c["sizes"][-1]
    if best_label is None:
        return {"ratio": None, "statement": f"No label-efficiency ratio: the {base_name} "
                f"baseline has no {title} value."}
    # the smallest N at which any probe model reaches it
    hit_label, hit_n = None, None
    for label, c in simclr.items():
        for n, v in zip(c["sizes"], c["mean"]):
            if _ok(v) and v >= target and (hit_n is None or n < hit_n):
                hit_label, hit_n = label, n
                break
    info = {"metric": metric, "baseline": best_label, "baseline_n": base_n,
            "baseline_value": target}
    if hit_n is None:
        largest = max(c["sizes"][-1] for c in simclr.values())
        best = max(v for c in simclr.values() for v in c["mean"] if _ok(v)) if any(
            _ok(v) for c in simclr.values() for v in c["mean"]) else math.nan
        return {**info, "ratio": None, "simclr": None, "simclr_n": None, "statement": (
            f"No label-efficiency ratio: the representation's probe does not reach the {best_label} "
            f"{title} of {fmt(target)} (N = {base_n}) at any N up to {largest} "
            f"(its best: {fmt(best)}).")}
    ratio = base_n / hit_n
    if ratio >= 1:
        words = f"{ratio:.3g}× fewer labels"
    else:
        words = f"{1 / ratio:.3g}× more labels"
    return {**info, "ratio": ratio, "simclr": hit_label, "simclr_n": hit_n, "statement": (
        f"Label efficiency: {hit_label} reaches the {title} of {best_label} at N = {base_n} "
        f"({fmt(target)}) with N = {hit_n} labelled galaxies: {words}.")}


def _plot(found: Mapping[str, Mapping[str, Any]], metric: str, path: Any,
          baseline: float | None) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display (headless runs)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    styles = series_styles(found)
    for label, c in found.items():
        xs = [n for n, v in zip(c["sizes"], c["mean"]) if _ok(v)]
        ys = [v for v in c["mean"] if _ok(v)]
        es = [s if _ok(s) else 0.0 for v, s in zip(c["mean"], c["std"]) if _ok(v)]
        if not xs:
            continue
        ax.errorbar(xs, ys, yerr=es, label=label, marker="o", ms=4, capsize=3,
                    color=styles[label][0], ls=styles[label][1])
    if baseline is not None and _ok(baseline):
        ax.axhline(baseline, color="k", lw=0.8, ls=":", label="majority class")
    ax.set_xscale("log")
    ax.set_xlabel("labelled training galaxies N")
    ax.set_ylabel(METRIC_TITLES.get(metric, metric))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def evaluate(context: "EvalContext", metric: str = "balanced_accuracy") -> "EvalResult":
    from astroclr.api import EvalResult

    found = curves(context.results, metric)
    if not found:
        note = ("No classifier evaluator (probe, pca, untrained, colours, knn, cnn, ...) is in "
                "run.evaluators: nothing to compare.")
        return EvalResult(metrics={"metric": metric, "curves": {}, "ratio": None,
                                   "statement": note}, markdown=note)
    context.figures_dir.mkdir(parents=True, exist_ok=True)
    path = context.figures_dir / "label_efficiency.png"
    majority = next((r.metrics["majority_baseline"]["mean"].get(metric)
                     for r in context.results_of_kind("classifier").values()
                     if "majority_baseline" in r.metrics), None)
    _plot(found, metric, path, majority)
    ratio = label_ratio(found, metric)

    sizes = sorted({n for c in found.values() for n in c["sizes"]})
    title = METRIC_TITLES.get(metric, metric)
    lines = [f"{title} (mean ± std over seeds) against the number N of labelled training "
             f"galaxies; every method is trained and tested on the same galaxies.", "",
             "| method | " + " | ".join(f"N={n}" for n in sizes) + " |",
             "|---|" + "---|" * len(sizes)]
    for label, c in found.items():
        by_n = dict(zip(c["sizes"], zip(c["mean"], c["std"])))
        cells = [fmt(*by_n[n]) if n in by_n else "–" for n in sizes]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if majority is not None:
        lines.append("| majority class | " + " | ".join([fmt(majority)] * len(sizes)) + " |")
    lines += ["", ratio["statement"], ""]
    # headline 1: the report opens with this table and figure (the map follows)
    return EvalResult(metrics={"metric": metric, "curves": found, **ratio},
                      figures=[path], markdown="\n".join(lines), headline=1)
