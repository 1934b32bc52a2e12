"""Progress display, one look for every step: training (loss, images/s, ETA), preparing a
dataset, embedding, evaluating. Rich draws the bars; Lightning is imported only when the
training callback is asked for, so a ``prepare`` does not pay for it."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)


def make_progress(enabled: bool = True) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"),
        TimeRemainingColumn(), console=console, disable=not enabled, transient=False,
    )


def __getattr__(name: str) -> Any:
    if name == "TrainingProgress":
        cls = _training_progress()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _training_progress() -> type:
    import lightning as L

    class TrainingProgress(_TrainingProgress, L.Callback):
        """Shows steps, loss and throughput; records images/s for the report.

        Throughput excludes the first steps (allocation, warm-up) so it reflects the steady
        state."""

    TrainingProgress.__module__ = __name__
    return TrainingProgress


class _TrainingProgress:
    """The training bar's behaviour (the Lightning callback is :data:`TrainingProgress`)."""

    def __init__(self, enabled: bool = True, skip_steps: int = 2) -> None:
        self.enabled = enabled
        self.skip_steps = skip_steps
        self.images_per_second: float | None = None
        self.last_loss: float | None = None
        self._progress: Progress | None = None
        self._task: Any = None
        self._t0: float | None = None
        self._n0 = 0
        self._images = 0

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if trainer.global_rank != 0:
            self.enabled = False
        total = int(trainer.estimated_stepping_batches)
        self._progress = make_progress(self.enabled)
        self._progress.start()
        self._task = self._progress.add_task("training", total=total, completed=trainer.global_step,
                                             info="")

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        self._images += int(batch.shape[0])
        if step - self._n0 == self.skip_steps or self._t0 is None and step >= self.skip_steps:
            self._t0, self._n0, self._images = time.perf_counter(), step, 0
        elif self._t0 is not None and step > self._n0:
            self.images_per_second = self._images * trainer.world_size / (
                time.perf_counter() - self._t0)
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None:
            self.last_loss = float(loss.detach())
        if self._progress is not None:
            rate = f"{self.images_per_second:,.0f} img/s" if self.images_per_second else "…"
            info = f"loss {self.last_loss:.3f}  {rate}  epoch {trainer.current_epoch + 1}"
            total = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None
            self._progress.update(self._task, completed=step, info=info, total=total)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self.close()

    def on_exception(self, trainer: Any, pl_module: Any,
                     exception: BaseException) -> None:
        self.close()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


@contextmanager
def step(description: str, total: int | None = None, enabled: bool = True,
         completed: int = 0) -> Iterator[Any]:
    """A progress bar for one step (preparing, embedding, an evaluator), starting at
    ``completed`` (a resumed step); yields ``advance(n=1, info=None)``, ``info`` a short text
    shown after the count (a rate, what was skipped)."""
    progress = make_progress(enabled)
    with progress:
        task = progress.add_task(description, total=total, completed=completed, info="")

        def advance(n: int = 1, info: str | None = None) -> None:
            if info is None:
                progress.advance(task, n)
            else:
                progress.update(task, advance=n, info=info)

        yield advance
        if total is not None:
            progress.update(task, completed=total)
