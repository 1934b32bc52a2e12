"""How long to train: the planned schedule, fitted to a time budget and kept across resumes.

A :class:`Schedule` is frozen; the one :class:`Plan` a training run holds is replaced with a new
schedule when a callback refits it (to a measured step time) or syncs it (rank 0's plan).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import lightning as L
import torch

from astroclr.files import read_json, write_json

if TYPE_CHECKING:
    from astroclr.resolved import TrainOptions


@dataclass(frozen=True)
class Schedule:
    """Epochs and optimiser steps of one training run."""

    epochs: int
    max_steps: int
    steps: int
    steps_per_epoch: int
    budget_seconds: float | None = None
    measured_step_seconds: float | None = None
    #: the user's max_steps cap on a budget-fitted plan (-1: none)
    cap_steps: int = -1
    world_size: int = 1
    refitted_at_step: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Schedule":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values.setdefault("steps_per_epoch", 1)
        return cls(**values)


class Plan:
    """The current schedule of a run, shared by the callbacks that may replace it."""

    def __init__(self, schedule: Schedule, on_change: Callable[[Schedule], None] | None = None
                 ) -> None:
        self.current, self.on_change = schedule, on_change

    def replace(self, trainer: L.Trainer | None = None, **changes: Any) -> Schedule:
        self.current = replace(self.current, **changes)
        if trainer is not None:
            apply_schedule(trainer, self.current)
        if self.on_change is not None:
            self.on_change(self.current)
        return self.current


def apply_schedule(trainer: L.Trainer, schedule: Schedule) -> None:
    """Set the trainer's loop limits and the model's learning-rate schedule length."""
    trainer.fit_loop.max_epochs = schedule.epochs
    trainer.fit_loop.epoch_loop.max_steps = schedule.max_steps
    model = trainer.lightning_module
    if model is not None and hasattr(model, "total_steps"):
        model.total_steps = schedule.steps


def measure_step_seconds(model: Any, images: Any, batch_size: int, train: "TrainOptions",
                         steps: int = 3, device: Any = None) -> float:
    """Seconds per optimiser step, measured on a copy of the model (the real one is untouched)."""
    device = torch.device(device if device is not None else train.device)
    probe = copy.deepcopy(model).to(device).train()
    opt = torch.optim.AdamW([p for p in probe.parameters() if p.requires_grad], lr=0.0)
    n = min(batch_size, len(images))
    x = torch.from_numpy(images[:n].astype("float32")).to(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16,
                              enabled=train.lightning_precision.startswith("bf16"))
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        with autocast:
            loss = probe.batch_loss(x)  # the method's views and loss, as in training
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i > 0:  # the first step pays for allocation and kernel selection
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def plan_schedule(train: "TrainOptions", n_images: int, model: Any, images: Any,
                  world_size: int = 1, device: Any = None) -> Schedule:
    """Epochs and steps to run. With a time budget, the step count is fitted to the budget
    from a measured step time, so the learning-rate schedule completes within it.

    ``batch_size`` is per process: with ``world_size`` processes an epoch has
    ``world_size`` times fewer steps, each over a ``world_size`` times larger global batch.
    """
    batch = min(train.batch_size, n_images)
    steps_per_epoch = max(1, (n_images // batch) // max(1, world_size))
    budget = train.budget_seconds
    if budget is None:
        steps = steps_per_epoch * train.epochs
        if train.max_steps >= 0:
            steps = min(train.max_steps, steps)
        return Schedule(epochs=train.epochs, max_steps=train.max_steps, steps=steps,
                        steps_per_epoch=steps_per_epoch, world_size=world_size)
    sec = measure_step_seconds(model, images, batch, train, device=device)
    # Keep 3% for checkpoints and logging, which the measurement does not include.
    steps = max(1, int(0.97 * budget / sec))
    if train.max_steps > 0:
        steps = min(steps, train.max_steps)
    return Schedule(epochs=math.ceil(steps / steps_per_epoch), max_steps=steps, steps=steps,
                    steps_per_epoch=steps_per_epoch, budget_seconds=budget,
                    measured_step_seconds=sec, cap_steps=train.max_steps, world_size=world_size)


class ScheduleSync(L.Callback):
    """With several processes, every one runs rank 0's planned schedule.

    Each process plans on its own (a time budget measures the step time); if they disagreed
    on the number of steps, the processes would wait for each other forever at the end.
    """

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if trainer.world_size <= 1:
            return
        shared = trainer.strategy.broadcast(self.plan.current.to_dict(), src=0)
        self.plan.replace(trainer, **shared)


class BudgetRefit(L.Callback):
    """Refits a time-budget run's step count to the step time measured in training itself.

    The plan comes from a few steps timed on a copy of the model before training; on a busy
    machine that can be far off. After ``at_step`` real steps, the rest of the budget is divided
    by the measured step time, and the step count, epochs and learning-rate schedule follow
    (early, so the cosine decay is refitted before most of it has run). Single process only:
    with several, rank 0's plan is shared and kept.
    """

    def __init__(self, plan: Plan, started: float, at_step: int) -> None:
        self.plan, self.started, self.at_step = plan, started, at_step
        self._t0: float | None = None
        self._step0 = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0, self._step0 = None, trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any
                           ) -> None:
        if trainer.world_size > 1:
            return
        done = trainer.global_step - self._step0
        if done == 1:  # the first step pays for allocation; time from here
            self._t0 = time.perf_counter()
        elif done == self.at_step + 1 and self._t0 is not None:
            plan = self.plan.current
            per_step = (time.perf_counter() - self._t0) / self.at_step
            remaining = 0.97 * plan.budget_seconds - (time.perf_counter() - self.started)
            total = max(trainer.global_step + 1, trainer.global_step + int(remaining / per_step))
            if plan.cap_steps > 0:
                total = min(total, plan.cap_steps)
            self.plan.replace(trainer, steps=total, max_steps=total,
                              epochs=math.ceil(total / plan.steps_per_epoch),
                              measured_step_seconds=per_step, refitted_at_step=done)


def refit_step(schedule: Schedule) -> int:
    """When to refit a fresh budget plan: past the first epoch end when the plan allows, so the
    epoch's checkpoint is part of the measured cost."""
    at_step = min(8, max(2, schedule.steps // 10))
    if schedule.steps_per_epoch + 1 <= schedule.steps // 3:
        at_step = max(at_step, schedule.steps_per_epoch + 1)
    return at_step


# The planned schedule is kept next to the checkpoints: a resumed run continues the same plan
# (a time budget is not measured again, which could plan a different number of steps).
_SCHEDULE_KEYS = ("epochs", "max_steps", "time_budget", "batch_size", "devices", "num_nodes")


def write_schedule(path: Path, schedule: Schedule, train: "TrainOptions") -> None:
    write_json(path, {"schedule": schedule.to_dict(),
                      "train": {k: getattr(train, k) for k in _SCHEDULE_KEYS}})


def stored_schedule(path: Path, train: "TrainOptions") -> Schedule | None:
    """The resumed run's plan, unless the options that set it were changed on resume."""
    data = read_json(path)
    if not isinstance(data, dict) or data.get("train") != {k: getattr(train, k)
                                                          for k in _SCHEDULE_KEYS}:
        return None
    return Schedule.from_dict(data["schedule"])
