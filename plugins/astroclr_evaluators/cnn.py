"""``cnn``: the supervised baseline — the same backbone trained from scratch on the labels.

The reference work's claim is that SimCLR + a small classifier matches a supervised CNN. The
honest comparison trains the *same* architecture (``context.build_backbone()``, fresh random
weights) with a linear head, on the *same* N labelled galaxies of the *same* split, with the
*same* augmentations, and tests it on the same test galaxies. It is slow on a CPU, so it is
not in the default evaluator list and ``sizes`` can limit which N are run.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from astroclr.api import AstroclrError, Recipe, Task, checked_labels, evaluate_classifiers
from astroclr_evaluators.common import markdown_section

if TYPE_CHECKING:
    from astroclr.api import EvalContext, EvalResult


_RECIPE = Recipe()


def train_and_predict(context: "EvalContext", task: Task, *, epochs: int, max_steps: int,
                      min_steps: int, lr: float, weight_decay: float, batch_size: int,
                      augment: bool, log: dict[str, Any]) -> np.ndarray:
    """Train backbone + linear head on ``task``'s training galaxies; test-set probabilities."""
    import torch
    from torch import nn

    device = torch.device(context.device)
    torch.manual_seed(task.seed)  # same initial weights for a seed, whatever N
    backbone = context.build_backbone()
    features = int(getattr(backbone, "num_features"))
    model = nn.Sequential(backbone, nn.Linear(features, len(task.classes))).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    # the fine-tuning recipe's rule: epochs passes, at least min_steps (small N would otherwise
    # barely train), at most max_steps to bound the cost
    steps = Recipe(epochs=epochs, min_steps=min_steps, max_steps=max_steps,
                   batch_size=batch_size).steps(len(task.train_idx))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps,
                                                pct_start=0.1)
    gen = torch.Generator(device=device.type).manual_seed(task.seed)
    rng = np.random.default_rng(task.seed)
    images = context.galaxies.images
    y_all = np.searchsorted(task.classes, task.y_train)
    bs = min(batch_size, len(task.train_idx))
    use_aug = augment and context.augment is not None
    # Class weights inverse to frequency, as the probes use: all methods optimise for the
    # balanced accuracy they are compared on.
    counts = np.bincount(y_all, minlength=len(task.classes)).astype(np.float64)
    class_weight = torch.as_tensor(np.where(counts > 0, counts.sum() / np.maximum(counts, 1)
                                            / len(task.classes), 0.0),
                                   dtype=torch.float32, device=device)
    order = np.empty(0, dtype=np.int64)
    model.train()
    start = time.perf_counter()
    for _ in range(steps):
        if len(order) < bs:  # a fresh permutation per epoch
            order = np.concatenate([order, rng.permutation(len(task.train_idx))])
        pick, order = order[:bs], order[bs:]
        rows = task.train_idx[pick]
        sort = np.argsort(rows)  # sorted reads are fast on a memory map
        x = torch.from_numpy(np.asarray(images[rows[sort]], dtype=np.float32)).to(device)
        y = torch.from_numpy(y_all[pick][sort]).to(device)
        if use_aug:
            x = context.augment(x, gen)
        loss = nn.functional.cross_entropy(model(x), y, weight=class_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    log.setdefault("train_seconds", []).append(time.perf_counter() - start)
    log.setdefault("steps", []).append(steps)
    log.setdefault("final_loss", []).append(float(loss.detach()))

    model.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(task.test_idx), 256):
            rows = task.test_idx[s:s + 256]
            x = torch.from_numpy(np.asarray(images[rows], dtype=np.float32)).to(device)
            out.append(torch.softmax(model(x), dim=1).float().cpu().numpy())
    return np.concatenate(out)


def evaluate(context: "EvalContext", sizes: Sequence[int] = (), epochs: int = _RECIPE.epochs,
             max_steps: int = _RECIPE.max_steps, min_steps: int = _RECIPE.min_steps,
             lr: float = _RECIPE.lr, weight_decay: float = _RECIPE.weight_decay,
             batch_size: int = _RECIPE.batch_size, augment: bool = True) -> "EvalResult":
    from astroclr.api import EvalResult

    if context.build_backbone is None:
        raise AstroclrError("evaluator 'cnn': needs build_backbone in the evaluation context "
                            "(run it from a training run)")
    checked_labels(context, "cnn")
    log: dict[str, Any] = {}

    def model(task: Task) -> np.ndarray:
        return train_and_predict(context, task, epochs=epochs, max_steps=max_steps,
                                 min_steps=min_steps, lr=lr, weight_decay=weight_decay,
                                 batch_size=batch_size, augment=augment, log=log)

    start = time.perf_counter()
    metrics = evaluate_classifiers(context, "cnn", {"cnn": model},
                                   {"cnn": "supervised CNN (same backbone)"}, sizes=sizes)
    total = time.perf_counter() - start
    aug = bool(augment and context.augment is not None)
    metrics.update({"train_seconds_total": total, "train_seconds": log["train_seconds"],
                    "steps": log["steps"], "final_loss": log["final_loss"],
                    "augmented": aug, "device": str(context.device),
                    "hyperparameters": {"epochs": epochs, "max_steps": max_steps,
                                        "min_steps": min_steps, "lr": lr,
                                        "weight_decay": weight_decay,
                                        "batch_size": batch_size}})
    names = getattr(context.augment, "names", None) if aug else None
    intro = (f"Baseline: the run's backbone trained from scratch with a linear head, supervised "
             f"(cross-entropy, AdamW, lr {lr}, batch {batch_size}, {epochs} epochs bounded to "
             f"{min_steps}–{max_steps or '∞'} steps) on the same N labelled galaxies, "
             + (f"with the run's augmentations ({', '.join(names)})" if names else
                "with the run's augmentations" if aug else "without augmentation")
             + f". Wall-clock of all its training: {total:.1f} s on {context.device} "
             f"(not included in the SimCLR training time).")
    return EvalResult(metrics=metrics, markdown=markdown_section(metrics, intro))
