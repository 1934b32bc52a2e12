"""Training curves: loss and learning rate per step, from the run's CSV log, as one figure."""

from __future__ import annotations

import csv
import math
from pathlib import Path


def read_training_log(path: Path) -> dict[str, list[tuple[int, float]]]:
    """``{"loss": [(step, value), ...], "lr": [...]}`` from Lightning's ``metrics.csv``
    (``loss_step`` per logged step, the learning-rate monitor's ``lr-*`` column); empty lists
    when the file is missing or holds no such rows. A resumed run's repeated steps keep the
    last value written."""
    series: dict[str, dict[int, float]] = {"loss": {}, "lr": {}}
    if not path.is_file():
        return {k: [] for k in series}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            try:
                step = int(float(row.get("step") or "nan"))
            except ValueError:
                continue
            for column, value in row.items():
                key = "loss" if column == "loss_step" else "lr" if (column or "").startswith(
                    "lr-") else None
                if key is None or not value:
                    continue
                number = float(value)
                if math.isfinite(number):
                    series[key][step] = number
    return {k: sorted(v.items()) for k, v in series.items()}


def plot_training_curves(log: Path, path: Path) -> Path | None:
    """Draw the loss (and the learning rate, on its own axis) against the optimiser step into
    ``path``; None when the log has no loss to draw."""
    series = read_training_log(log)
    if not series["loss"]:
        return None
    import matplotlib

    matplotlib.use("Agg")  # files only, no display (headless runs)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    steps, loss = zip(*series["loss"])
    ax.plot(steps, loss, color="tab:blue", lw=1.2, marker="." if len(steps) < 30 else None)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("training loss", color="tab:blue")
    ax.grid(alpha=0.3)
    if series["lr"]:
        twin = ax.twinx()
        lr_steps, lr = zip(*series["lr"])
        twin.plot(lr_steps, lr, color="tab:orange", lw=1.0, ls="--")
        twin.set_ylabel("learning rate", color="tab:orange")
        twin.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
