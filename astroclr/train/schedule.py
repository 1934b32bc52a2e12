"""How long to train: the planned schedule, fitted to a time budget and kept across resumes.

A :class:`Schedule` is frozen; the one :class:`Plan` a training run holds is replaced with a new
schedule when a callback refits it (to a measured step time), syncs it (rank 0's plan) or ends
it (the budget's hard stop). Time is read from a ``clock`` (a callable returning seconds,
``time.perf_counter`` by default), so the arithmetic is testable without waiting for it.
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

#: seconds from an arbitrary origin (``time.perf_counter``; a fake one in tests)
Clock = Callable[[], float]
#: the share of the budget the plan fills: checkpoints and logging are not in the step time
FILL = 0.97
#: training stops, whatever the plan says, at this multiple of the budget (from the start of
#: fit, calibration included): the plan is refitted as it goes, so only a machine slowing down
#: sharply near the end gets here
HARD_STOP = 1.15
#: the later refits, at these shares of the planned steps: the plan's last step lands on the
#: budget when the machine's speed drifts after the early refit (a shared machine's does, by
#: ±15 % within minutes), each from the steps since the previous refit
LATE_REFITS = (0.5, 0.75, 0.9)


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
    #: the step at which the budget's hard stop ended the run (its plan then ends there)
    stopped_at_step: int | None = None

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
    if model is not None and hasattr(model, "retarget"):
        model.retarget(schedule.steps, int(trainer.global_step))
    elif model is not None and hasattr(model, "total_steps"):
        model.total_steps = schedule.steps


def measure_step_seconds(model: Any, images: Any, batch_size: int, train: "TrainOptions",
                         steps: int = 3, device: Any = None, clock: Clock = time.perf_counter
                         ) -> float:
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
        t0 = clock()
        with autocast:
            loss = probe.batch_loss(x)  # the method's views and loss, as in training
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i > 0:  # the first step pays for allocation and kernel selection
            times.append(clock() - t0)
    return sorted(times)[len(times) // 2]


def plan_schedule(train: "TrainOptions", n_images: int, model: Any, images: Any,
                  world_size: int = 1, device: Any = None, clock: Clock = time.perf_counter
                  ) -> Schedule:
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
    sec = measure_step_seconds(model, images, batch, train, device=device, clock=clock)
    steps = max(1, int(FILL * budget / sec))
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


def refit(schedule: Schedule, step: int, step_seconds: float, elapsed: float) -> Schedule:
    """The schedule after ``step`` steps, ``elapsed`` seconds into the budget: the rest of the
    budget divided by the measured seconds per step (at least one more step; at most the user's
    ``max_steps``), epochs and the learning-rate schedule following."""
    remaining = FILL * float(schedule.budget_seconds or 0.0) - elapsed
    total = max(step + 1, step + int(remaining / step_seconds))
    if schedule.cap_steps > 0:
        total = min(total, schedule.cap_steps)
    return replace(schedule, steps=total, max_steps=total,
                   epochs=math.ceil(total / schedule.steps_per_epoch),
                   measured_step_seconds=step_seconds, refitted_at_step=step)


def stopped(schedule: Schedule, step: int) -> Schedule:
    """The schedule of a run ended by the hard stop at ``step``: the plan is what ran."""
    return replace(schedule, steps=step, max_steps=step,
                   epochs=max(1, math.ceil(step / schedule.steps_per_epoch)),
                   stopped_at_step=step)


class BudgetKeeper:
    """Keeps a time-budget run's plan on its budget, step by step (no Lightning here).

    The plan comes from a few steps timed on a copy of the model before training; on a busy
    machine that can be far off. It is refitted to the step time measured in training itself:
    early (after ``at_step`` steps, timed from the end of the first, which pays for
    allocation; before most of the cosine decay has run), then at each of
    :data:`LATE_REFITS` of the plan (from the steps since the previous refit), so its last step
    lands on the budget. Past :data:`HARD_STOP` × the budget the run ends through the plan: the
    steps that ran are the plan's steps, never a wall-clock cut the plan does not know of.

    With several processes ``share`` sends rank 0's values to every process (the refits and
    the stop happen at the same step everywhere, since they depend on step counts and shared
    values only); ``at_step=None`` keeps the plan (a resumed run) and only stops.
    """

    def __init__(self, plan: Plan, started: float, at_step: int | None,
                 clock: Clock = time.perf_counter,
                 share: Callable[[Any], Any] | None = None) -> None:
        self.plan, self.started, self.at_step = plan, started, at_step
        self.clock, self.share = clock, share
        self._mark: tuple[int, float] | None = None
        self._step0 = 0
        self._late = list(LATE_REFITS) if at_step is not None else []

    def start(self, step: int) -> None:
        """Training (re)starts at global step ``step``."""
        self._mark, self._step0 = None, step

    def after_step(self, step: int) -> bool:
        """Called after global step ``step``; True when the run must stop there."""
        now = self.clock()
        done = step - self._step0
        plan = self.plan.current
        if self.at_step is not None and done == 1:
            self._mark = (step, now)
        elif self.at_step is not None and done == self.at_step + 1 and self._mark is not None:
            self._refit(step, now)
        elif (self._late and self._mark is not None and plan.refitted_at_step is not None
              and step >= self._late[0] * plan.steps and step > self._mark[0]):
            while self._late and step >= self._late[0] * plan.steps:
                self._late.pop(0)
            self._refit(step, now)
        over = now - self.started >= HARD_STOP * float(plan.budget_seconds or 0.0)
        if self.share is not None:
            over = bool(self.share(over))
        if over and step < self.plan.current.steps:
            self.plan.replace(**stopped(self.plan.current, step).to_dict())
            return True
        return False

    def _refit(self, step: int, now: float) -> None:
        mark_step, mark_time = self._mark  # type: ignore[misc]
        new = refit(self.plan.current, step, (now - mark_time) / (step - mark_step),
                    now - self.started)
        values = new.to_dict()
        if self.share is not None:
            values = self.share(values)
        self.plan.replace(**values)
        self._mark = (step, now)


class BudgetRefit(L.Callback):
    """A :class:`BudgetKeeper` in a Lightning run: the trainer's loop limits and the model's
    learning-rate schedule follow the plan it keeps; its stop ends the loop through the plan."""

    def __init__(self, plan: Plan, started: float, at_step: int | None,
                 clock: Clock = time.perf_counter) -> None:
        self.keeper = BudgetKeeper(plan, started, at_step, clock)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.world_size > 1:
            self.keeper.share = lambda value: trainer.strategy.broadcast(value, src=0)
        self.keeper.start(trainer.global_step)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any
                           ) -> None:
        before = self.keeper.plan.current
        stop = self.keeper.after_step(trainer.global_step)
        if self.keeper.plan.current is not before:
            apply_schedule(trainer, self.keeper.plan.current)
        if stop:
            trainer.should_stop = True


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
