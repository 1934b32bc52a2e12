"""Training with Lightning: the trainer, atomic checkpoints, exact mid-epoch resume, ``fit``."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.plugins.layer_sync import LayerSync

from astroclr.files import atomic_path
from astroclr.plugin.specs import AstroclrError
from astroclr.progress import TrainingProgress
from astroclr.train.devices import one_line, quiet_lightning, trainer_error
from astroclr.train.launch import launched_rank
from astroclr.train.loader import training_loader
from astroclr.train.model import SelfSupervisedModel, convert_global_batchnorm
from astroclr.train.schedule import (
    BudgetRefit,
    Clock,
    Plan,
    ScheduleSync,
    apply_schedule,
    plan_schedule,
    refit_step,
    stored_schedule,
    write_schedule,
)

if TYPE_CHECKING:
    from astroclr.data.galaxies import Galaxies
    from astroclr.resolved import TrainOptions


class TrainingFiles(Protocol):
    """Where training writes: the run directory's paths it needs, named by the run directory
    (:class:`astroclr.runs.rundir.RunDir` is one), so that training never spells a file name
    of the run's layout nor imports the layer that owns it."""

    @property
    def path(self) -> Path: ...  # Lightning's root folder; named in resume hints

    @property
    def logs(self) -> Path: ...

    @property
    def last_checkpoint(self) -> Path: ...

    @property
    def schedule(self) -> Path: ...


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file, then renames it into place.

    A process killed mid-write leaves the previous checkpoint intact, never a truncated one.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any,
                        storage_options: Any | None = None) -> None:
        with atomic_path(path) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None
                        ) -> dict[str, Any]:
        # Lightning checkpoints hold plain tensors and containers: never unpickle objects.
        try:
            return torch.load(path, map_location=map_location or "cpu", weights_only=True)
        except Exception as exc:
            raise AstroclrError(f"checkpoint {path} is corrupt or incomplete: "
                                f"{one_line(exc)}") from exc


class LastCheckpoint(L.Callback):
    """Keeps one resumable checkpoint, ``last.ckpt``: every N steps and at each epoch end.

    One file rather than one per epoch: a ResNet checkpoint with optimiser state is ~100 MB.
    """

    def __init__(self, path: Path, every_n_steps: int) -> None:
        self.path, self.every_n_steps = path, every_n_steps

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0:
            trainer.save_checkpoint(self.path)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.save_checkpoint(self.path)


class Interrupted(AstroclrError):
    """Training stopped by SIGINT or SIGTERM after writing a resumable checkpoint; the CLI exits
    with ``exit_code`` (128 + the signal: 130 for Ctrl-C, 143 for SIGTERM)."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + int(signum)


class _StopTraining(BaseException):
    """Raised from a callback to leave ``trainer.fit``; Lightning re-raises a BaseException
    after its own clean-up (``on_exception``, teardown), unlike a KeyboardInterrupt, which it
    turns into ``sys.exit(1)``."""


class StopOnSignal(L.Callback):
    """Ctrl-C (SIGINT) and SIGTERM (what a scheduler sends before killing a job) during
    training: the current batch finishes, ``last.ckpt`` is written, training stops.

    Without this, Lightning catches the KeyboardInterrupt inside ``trainer.fit`` and exits 1
    with no checkpoint and no word, and turns SIGTERM into its SIGTERMException. Its handler
    is installed once ``fit`` starts and raises that exception at the end of the batch, after
    the callbacks' ``on_train_batch_end``: a SIGTERM that came after this callback's hook ran
    ended training with no checkpoint of its own (CI caught it: the test signals just after a
    periodic checkpoint). So once training starts, SIGTERM is taken back from Lightning; it
    is only this process's (the callback runs with one process). A second signal stops at
    once, keeping the last periodic checkpoint.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, path: Path) -> None:
        self.path = path
        self.signum: int | None = None
        self.saved_step: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # handlers can only be set in the main thread
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning registered its own SIGTERM handler after install(); its teardown puts
        # back the one it found (ours), and restore() the one before that.
        if self._previous:
            signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt  # asked twice: stop now
        self.signum = signum

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if self.signum is None:
            return
        trainer.save_checkpoint(self.path)
        self.saved_step = int(trainer.global_step)
        raise _StopTraining()


def resume_position(trainer: L.Trainer, batches_per_epoch: int) -> tuple[int, int]:
    """(epoch, batches already trained in it) from the trainer's restored loop progress.

    Lightning restores its loop counters from the checkpoint before it asks for the training
    loader, and iterates the loader it gets without re-shuffling for the resumed epoch, so the
    loader must start at the right permutation and batch itself. The checkpoint may have been
    written after a batch (mid-epoch, or the epoch's last one) or at the epoch's end.
    """
    fit_loop = trainer.fit_loop
    epoch_started = fit_loop.epoch_progress.current.processed
    epoch_done = fit_loop.epoch_progress.current.completed
    done = fit_loop.epoch_loop.batch_progress.current.processed
    if done <= 0:
        return epoch_started, 0
    if done >= batches_per_epoch:  # the epoch was finished: the next one starts afresh
        return epoch_done + 1, 0
    return epoch_started, done


class ImageDataModule(L.LightningDataModule):
    """Builds the training loader once the process's rank and world size are known.

    When training resumes from a checkpoint, the loader continues the interrupted epoch's
    permutation after the batches already trained, so the data order equals an uninterrupted
    run's.
    """

    def __init__(self, images: Any, batch_size: int, seed: int) -> None:
        super().__init__()
        self.images, self.batch_size, self.seed = images, batch_size, seed

    def train_dataloader(self) -> Any:
        loader = training_loader(self.images, self.batch_size, self.seed,
                                 rank=self.trainer.global_rank, world_size=self.trainer.world_size)
        sampler = loader.sampler
        epoch, start = resume_position(self.trainer, len(sampler))
        sampler.set_epoch(epoch)
        sampler.start_batch = start
        return loader


class GlobalBatchNormSync(LayerSync):
    """Lightning's ``sync_batchnorm`` for every accelerator: torch's SyncBatchNorm (what
    ``sync_batchnorm=True`` uses) refuses CPU tensors, so CPU (gloo) DDP runs would either fail
    or normalise each process's share of the batch on its own."""

    def apply(self, model: torch.nn.Module) -> torch.nn.Module:
        return convert_global_batchnorm(model)

    def revert(self, model: torch.nn.Module) -> torch.nn.Module:
        return model  # GlobalBatchNorm is a plain BatchNorm outside distributed training


def training_loggers(train: "TrainOptions", rundir: TrainingFiles) -> list[Any]:
    """Lightning's CSV logger into ``logs/`` (always: the report's curves read it), and the one
    ``train.logger`` asks for besides (``logs/tensorboard``, or an MLflow store ``logs/mlruns``)."""
    from astroclr.train.devices import check_logger

    check_logger(train)
    loggers: list[Any] = [CSVLogger(str(rundir.path), name=rundir.logs.name, version="")]
    if train.logger == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(str(rundir.logs), name="tensorboard", version=""))
    elif train.logger == "mlflow":
        from lightning.pytorch.loggers import MLFlowLogger

        loggers.append(MLFlowLogger(experiment_name="astroclr", run_name=rundir.path.name,
                                    tracking_uri=(rundir.logs / "mlruns").resolve().as_uri()))
    return loggers


def build_trainer(train: "TrainOptions", rundir: TrainingFiles, progress: TrainingProgress
                  ) -> L.Trainer:
    """A Lightning trainer for ``train``'s devices, checkpointing into ``rundir``; its loop
    limits are set once the schedule is planned (see :func:`apply_schedule`), and a time
    budget is kept by :class:`BudgetRefit` (not Lightning's ``max_time``, which would stop the
    loop at a step the plan does not know of)."""
    kwargs: dict[str, Any] = dict(
        accelerator=train.lightning_accelerator,
        devices=train.device_spec,
        num_nodes=train.num_nodes,
        strategy=train.strategy,
        precision=train.lightning_precision,
        max_epochs=1,
        max_steps=-1,
        # the learning rate joins the loss in logs/metrics.csv: the report's training curves
        callbacks=[progress, LastCheckpoint(rundir.last_checkpoint, train.checkpoint_every_n_steps),
                   LearningRateMonitor(logging_interval="step")],
        logger=training_loggers(train, rundir),
        # Every step: the curve of a short run has its points, and the loss is read back from
        # the device at every step anyway (the progress bar shows it).
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,  # ShuffledBatches shards by rank itself
        # BatchNorm statistics over the global batch with several processes (on GPUs and on
        # CPU alike); single-device strategies ignore it.
        plugins=[AtomicCheckpointIO(), GlobalBatchNormSync()],
        default_root_dir=str(rundir.path),
        deterministic=False,
        num_sanity_val_steps=0,
    )
    try:
        return L.Trainer(**kwargs)
    except Exception as exc:  # ValueError, Lightning's MisconfigurationException, ...
        raise trainer_error(train, exc) from None


def fit(model: SelfSupervisedModel, galaxies: "Galaxies", train: "TrainOptions", seed: int,
        rundir: TrainingFiles, show_progress: bool = True, ckpt_path: str | None = None,
        *, clock: Clock = time.perf_counter) -> dict[str, Any]:
    """Train ``model`` on ``galaxies``, checkpointing and logging into ``rundir``; returns a
    summary (steps, seconds, loss, images/s).

    ``clock`` is what a time budget is measured with (a fake one makes the plan testable)."""
    if not hasattr(rundir, "last_checkpoint"):  # a bare path: the layout's names are not ours
        raise TypeError(f"fit writes into a run directory's TrainingFiles (astroclr.runs.rundir."
                        f"RunDir), not {type(rundir).__name__} {rundir!r}")
    if train.threads:
        torch.set_num_threads(train.threads)
    quiet_lightning()
    started = clock()
    progress = TrainingProgress(enabled=show_progress)
    budget = train.budget_seconds
    # The schedule is set once the world size is known (it sets the steps per epoch).
    trainer = build_trainer(train, rundir, progress)
    schedule = stored_schedule(rundir.schedule, train) if ckpt_path is not None else None
    if schedule is None:
        try:
            device = trainer.strategy.root_device
        except Exception:  # a strategy that knows its device only once launched
            device = None
        schedule = plan_schedule(train, len(galaxies), model, galaxies.images,
                                 world_size=trainer.world_size, device=device, clock=clock)
    writes = trainer.global_rank == 0 and launched_rank() == 0
    plan = Plan(schedule, (lambda s: write_schedule(rundir.schedule, s, train)) if writes else None)
    plan.replace(world_size=int(trainer.world_size))
    apply_schedule(trainer, plan.current)
    # The learning-rate schedule's length, known without asking Lightning: its
    # estimated_stepping_batches would build the loader before the checkpoint is restored.
    model.total_steps = plan.current.steps
    trainer.callbacks.append(ScheduleSync(plan))
    if budget is not None and plan.current.budget_seconds is not None:
        # A fresh plan was timed by plan_schedule and is refitted; a resumed one is kept, and
        # only the hard stop applies (to this process's time).
        at_step = refit_step(plan.current) if ckpt_path is None else None
        trainer.callbacks.append(BudgetRefit(plan, started, at_step, clock))
    data = ImageDataModule(galaxies.images, min(train.batch_size, len(galaxies)), seed)
    # One process only: with several, each would stop at its own batch and the collective
    # checkpoint write would wait forever; distributed runs keep Lightning's handling.
    stop = StopOnSignal(rundir.last_checkpoint) if trainer.world_size == 1 else None
    if stop is not None:
        trainer.callbacks.append(stop)
        stop.install()
    start = time.perf_counter()
    try:
        trainer.fit(model, datamodule=data, ckpt_path=ckpt_path)
    except (_StopTraining, SystemExit) as exc:  # SystemExit: Lightning's SIGTERMException/exit(1)
        signum = stop.signum if stop is not None else None
        if signum is None:
            signum = signal.SIGTERM if type(exc).__name__ == "SIGTERMException" else None
        if signum is None:
            raise
        raise _interrupted(rundir, signum, stop.saved_step if stop else None) from None
    finally:
        progress.close()
        if stop is not None:
            stop.restore()
    seconds = time.perf_counter() - start
    if stop is not None and stop.signum is not None:  # the signal came after the last batch
        raise _interrupted(rundir, stop.signum, int(trainer.global_step))
    if trainer.interrupted:
        raise AstroclrError("training was interrupted; resume with: astroclr run --resume "
                            f"{rundir.path}")
    return {
        "steps": int(trainer.global_step),
        "epochs": int(trainer.current_epoch),
        "planned": plan.current.to_dict(),
        "train_seconds": round(seconds, 2),
        "final_loss": progress.last_loss,
        "images_per_second": progress.images_per_second,
        "device": str(trainer.strategy.root_device),
        "precision": str(trainer.precision),
        "world_size": int(trainer.world_size),
        "global_rank": int(trainer.global_rank),
    }


def _interrupted(rundir: TrainingFiles, signum: int, step: int | None) -> Interrupted:
    name = signal.Signals(signum).name
    saved = (f"checkpoint saved at step {step}" if step is not None
             else "the last periodic checkpoint is kept")
    return Interrupted(f"training stopped by {name} ({saved}); continue it with: astroclr run "
                       f"--resume {rundir.path}", signum)
