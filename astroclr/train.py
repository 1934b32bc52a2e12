"""Training a SimCLR model with Lightning: trainer set-up, checkpoints, time budget."""

from __future__ import annotations

import copy
import json
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.plugins.layer_sync import LayerSync

from astroclr.config import parse_duration
from astroclr.launch import launched_rank
from astroclr.loader import training_loader
from astroclr.model import SimCLRModel, convert_global_batchnorm
from astroclr.progress import TrainingProgress
from astroclr.specs import AstroclrError

if TYPE_CHECKING:
    from astroclr.data import Galaxies


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file, then renames it into place.

    A process killed mid-write leaves the previous checkpoint intact, never a truncated one.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any,
                        storage_options: Any | None = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".partial")
        super().save_checkpoint(checkpoint, tmp, storage_options)
        with open(tmp, "rb") as fh:  # on disk before it replaces the previous checkpoint
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None
                        ) -> dict[str, Any]:
        # Lightning checkpoints hold plain tensors and containers: never unpickle objects.
        try:
            return torch.load(path, map_location=map_location or "cpu", weights_only=True)
        except Exception as exc:
            raise AstroclrError(f"checkpoint {path} is corrupt or incomplete: "
                                f"{_one_line(exc)}") from exc


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


class ScheduleSync(L.Callback):
    """With several processes, every one runs rank 0's planned schedule.

    Each process plans on its own (a time budget measures the step time); if they disagreed
    on the number of steps, the processes would wait for each other forever at the end.
    """

    def __init__(self, schedule: dict[str, Any]) -> None:
        self.schedule = schedule

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if trainer.world_size <= 1:
            return
        plan = trainer.strategy.broadcast(dict(self.schedule), src=0)
        self.schedule.clear()
        self.schedule.update(plan)
        _apply_schedule(trainer, plan)


def _apply_schedule(trainer: L.Trainer, schedule: Mapping[str, Any]) -> None:
    trainer.fit_loop.max_epochs = int(schedule["epochs"])
    trainer.fit_loop.epoch_loop.max_steps = int(schedule["max_steps"])
    model = trainer.lightning_module if trainer.lightning_module is not None else None
    if isinstance(model, SimCLRModel):
        model.total_steps = int(schedule["steps"])


class BudgetRefit(L.Callback):
    """Refits a time-budget run's step count to the step time measured in training itself.

    The plan comes from a few steps timed on a copy of the model before training; on a busy
    machine that can be far off. After ``at_step`` real steps, the rest of the budget is divided
    by the measured step time, and the step count, epochs and learning-rate schedule follow
    (early, so the cosine decay is refitted before most of it has run). Single process only:
    with several, rank 0's plan is shared and kept.
    """

    def __init__(self, schedule: dict[str, Any], budget: float, started: float, at_step: int,
                 on_refit: Any = None) -> None:
        self.schedule, self.budget, self.started = schedule, budget, started
        self.at_step, self.on_refit = at_step, on_refit
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
            per_step = (time.perf_counter() - self._t0) / self.at_step
            remaining = 0.97 * self.budget - (time.perf_counter() - self.started)
            total = max(trainer.global_step + 1, trainer.global_step + int(remaining / per_step))
            if self.schedule.get("cap_steps", -1) > 0:
                total = min(total, self.schedule["cap_steps"])
            self.schedule.update(steps=total, max_steps=total,
                                 epochs=math.ceil(total / self.schedule["steps_per_epoch"]),
                                 measured_step_seconds=per_step, refitted_at_step=done)
            _apply_schedule(trainer, self.schedule)
            if self.on_refit is not None:
                self.on_refit(self.schedule)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class GlobalBatchNormSync(LayerSync):
    """Lightning's ``sync_batchnorm`` for every accelerator: torch's SyncBatchNorm (what
    ``sync_batchnorm=True`` uses) refuses CPU tensors, so CPU (gloo) DDP runs would either fail
    or normalise each process's share of the batch on its own."""

    def apply(self, model: torch.nn.Module) -> torch.nn.Module:
        return convert_global_batchnorm(model)

    def revert(self, model: torch.nn.Module) -> torch.nn.Module:
        return model  # GlobalBatchNorm is a plain BatchNorm outside distributed training


def resolve_accelerator(name: str) -> str:
    if name == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    return name


def resolve_precision(precision: str, accelerator: str) -> str:
    """bf16 autocast on GPUs; never on CPU, where bf16 runs ~40x slower than fp32 on AVX2."""
    if precision != "auto":
        return precision
    return "bf16-mixed" if accelerator in ("gpu", "cuda") else "32-true"


def parse_devices(devices: str) -> Any:
    text = str(devices).strip()
    if text == "auto":
        return "auto"
    try:
        if "," in text:
            return [int(d) for d in text.split(",") if d.strip()]
        value = int(text)
    except ValueError:
        raise AstroclrError(f"train.devices: {devices!r} is not a count, a list like '0,1', or auto"
                            ) from None
    if value == 0 or value < -1:
        raise AstroclrError(f"train.devices: {devices!r} must be a positive count, -1 (all), a "
                            f"list like '0,1', or auto")
    return value


def _check_device_count(accelerator: str, devices: Any) -> None:
    """More devices than the machine has is an error (Lightning allows any CPU count)."""
    if accelerator == "cpu" and isinstance(devices, int) and devices > 1:
        cores = os.cpu_count() or 1
        if devices > cores:
            raise AstroclrError(f"train.devices = {devices} CPU processes, but this machine has "
                                f"only {cores} cores")


def check_trainer_options(train: Mapping[str, Any]) -> None:
    """Validate accelerator, devices, num_nodes, strategy and precision without training.

    Raises AstroclrError with a one-line message: call it before writing anything.
    """
    accelerator = resolve_accelerator(train["accelerator"])
    devices = parse_devices(train["devices"])
    _check_device_count(accelerator, devices)
    quiet_lightning()
    try:
        L.Trainer(accelerator=accelerator, devices=devices, num_nodes=train["num_nodes"],
                  strategy=train["strategy"],
                  precision=resolve_precision(train["precision"], accelerator),
                  sync_batchnorm=True, logger=False, enable_checkpointing=False,
                  enable_progress_bar=False, enable_model_summary=False)
    except AstroclrError:
        raise
    except Exception as exc:  # ValueError, MisconfigurationException, RuntimeError, ...
        raise AstroclrError(f"cannot train with accelerator={accelerator}, devices="
                            f"{train['devices']}, num_nodes={train['num_nodes']}, strategy="
                            f"{train['strategy']}: {_one_line(exc)}") from None


def build_trainer(train: Mapping[str, Any], run_dir: Path, max_steps: int, epochs: int,
                  progress: TrainingProgress, max_seconds: float | None = None) -> L.Trainer:
    accelerator = resolve_accelerator(train["accelerator"])
    devices = parse_devices(train["devices"])
    _check_device_count(accelerator, devices)
    kwargs: dict[str, Any] = dict(
        accelerator=accelerator,
        devices=devices,
        num_nodes=train["num_nodes"],
        strategy=train["strategy"],
        precision=resolve_precision(train["precision"], accelerator),
        max_epochs=epochs,
        max_steps=max_steps,
        callbacks=[progress, LastCheckpoint(run_dir / "checkpoints" / "last.ckpt",
                                               train["checkpoint_every_n_steps"])],
        logger=CSVLogger(str(run_dir), name="logs", version=""),
        log_every_n_steps=5,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,  # ShuffledBatches shards by rank itself
        # BatchNorm statistics over the global batch with several processes (on GPUs and on
        # CPU alike); single-device strategies ignore it.
        plugins=[AtomicCheckpointIO(), GlobalBatchNormSync()],
        default_root_dir=str(run_dir),
        deterministic=False,
        num_sanity_val_steps=0,
    )
    if max_seconds is not None:
        kwargs["max_time"] = {"seconds": max_seconds}
    try:
        return L.Trainer(**kwargs)
    except Exception as exc:  # ValueError, Lightning's MisconfigurationException, ...
        raise AstroclrError(f"cannot train with accelerator={accelerator}, devices="
                            f"{train['devices']}, num_nodes={train['num_nodes']}, strategy="
                            f"{train['strategy']}: {_one_line(exc)}") from None


def measure_step_seconds(model: SimCLRModel, images: Any, batch_size: int, accelerator: str,
                         precision: str, steps: int = 3, device: Any = None) -> float:
    """Seconds per optimiser step, measured on a copy of the model (the real one is untouched)."""
    device = torch.device(device if device is not None else
                          "cuda" if accelerator in ("gpu", "cuda") else "cpu")
    probe = copy.deepcopy(model).to(device).train()
    opt = torch.optim.AdamW(probe.parameters(), lr=0.0)
    n = min(batch_size, len(images))
    x = torch.from_numpy(images[:n].astype("float32")).to(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision.startswith("bf16"))
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        with autocast:
            v1, v2 = probe.views(x)
            z = probe.head(probe(torch.cat([v1, v2])))
            z1, z2 = z.chunk(2)
            loss = probe.criterion(z1.float(), z2.float())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i > 0:  # the first step pays for allocation and kernel selection
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def plan_schedule(train: Mapping[str, Any], n_images: int, model: SimCLRModel, images: Any,
                  world_size: int = 1, device: Any = None) -> dict[str, Any]:
    """Epochs and steps to run. With a time budget, the step count is fitted to the budget
    from a measured step time, so the learning-rate schedule completes within it.

    ``batch_size`` is per process: with ``world_size`` processes an epoch has
    ``world_size`` times fewer steps, each over a ``world_size`` times larger global batch.
    """
    batch = min(train["batch_size"], n_images)
    steps_per_epoch = max(1, (n_images // batch) // max(1, world_size))
    budget = parse_duration(train["time_budget"])
    if budget is None:
        epochs = train["epochs"]
        max_steps = train["max_steps"]
        return {"epochs": epochs, "max_steps": max_steps, "budget_seconds": None,
                "steps": steps_per_epoch * epochs if max_steps < 0 else min(max_steps,
                                                                             steps_per_epoch * epochs)}
    accelerator = resolve_accelerator(train["accelerator"])
    sec = measure_step_seconds(model, images, batch, accelerator,
                               resolve_precision(train["precision"], accelerator), device=device)
    # Keep 3% for checkpoints and logging, which the measurement does not include.
    steps = max(1, int(0.97 * budget / sec))
    if train["max_steps"] > 0:
        steps = min(steps, train["max_steps"])
    epochs = math.ceil(steps / steps_per_epoch)
    return {"epochs": epochs, "max_steps": steps, "budget_seconds": budget, "steps": steps,
            "measured_step_seconds": sec, "cap_steps": train["max_steps"],
            "steps_per_epoch": steps_per_epoch}


def quiet_lightning() -> None:
    """Lightning's start-up chatter (tips, "GPU available: False") buries astroclr's own output."""
    import logging
    import warnings

    for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in (".*LeafSpec.*", ".*smaller than the logging interval.*",
                    ".*does not have many workers.*", ".*ckpt_path.*weights_only.*",
                    # ImageDataModule resumes the data order itself (see resume_position)
                    ".*dataloader is not resumable.*", ".*resuming from a checkpoint that ended.*"):
        warnings.filterwarnings("ignore", message=pattern)


def fit(model: SimCLRModel, galaxies: "Galaxies", train: Mapping[str, Any], seed: int,
        run_dir: Path, show_progress: bool = True, ckpt_path: str | None = None) -> dict[str, Any]:
    """Train ``model`` on ``galaxies``; returns a summary (steps, seconds, loss, images/s)."""
    if train["threads"]:
        torch.set_num_threads(train["threads"])
    quiet_lightning()
    started = time.perf_counter()
    progress = TrainingProgress(enabled=show_progress)
    budget = parse_duration(train["time_budget"])
    # The schedule is set once the world size is known (it sets the steps per epoch).
    trainer = build_trainer(train, run_dir, -1, 1, progress,
                            max_seconds=None if budget is None else budget * 1.15)
    schedule_file = Path(run_dir) / "checkpoints" / "schedule.json"
    schedule = _stored_schedule(schedule_file, train) if ckpt_path is not None else None
    if schedule is None:
        try:
            device = trainer.strategy.root_device
        except Exception:  # a strategy that knows its device only once launched
            device = None
        schedule = plan_schedule(train, len(galaxies), model, galaxies.images,
                                 world_size=trainer.world_size, device=device)
    schedule["world_size"] = int(trainer.world_size)
    _apply_schedule(trainer, schedule)
    # The learning-rate schedule's length, known without asking Lightning: its
    # estimated_stepping_batches would build the loader before the checkpoint is restored.
    model.total_steps = int(schedule["steps"])
    trainer.callbacks.append(ScheduleSync(schedule))
    writes = trainer.global_rank == 0 and launched_rank() == 0
    if writes:
        _write_schedule(schedule_file, schedule, train)
    if budget is not None and ckpt_path is None:  # a fresh plan: plan_schedule timed it
        # Time past an epoch end when the plan allows: the epoch's checkpoint is part of the cost.
        at_step = min(8, max(2, schedule["steps"] // 10))
        if schedule["steps_per_epoch"] + 1 <= schedule["steps"] // 3:
            at_step = max(at_step, schedule["steps_per_epoch"] + 1)
        trainer.callbacks.append(BudgetRefit(
            schedule, budget, started, at_step=at_step,
            on_refit=(lambda plan: _write_schedule(schedule_file, plan, train)) if writes else None))
    data = ImageDataModule(galaxies.images, min(train["batch_size"], len(galaxies)), seed)
    start = time.perf_counter()
    try:
        trainer.fit(model, datamodule=data, ckpt_path=ckpt_path)
    finally:
        progress.close()
    seconds = time.perf_counter() - start
    if trainer.interrupted:
        raise AstroclrError("training was interrupted; resume with: astroclr run --resume "
                            f"{run_dir}")
    return {
        "steps": int(trainer.global_step),
        "epochs": int(trainer.current_epoch),
        "planned": schedule,
        "train_seconds": round(seconds, 2),
        "final_loss": progress.last_loss,
        "images_per_second": progress.images_per_second,
        "device": str(trainer.strategy.root_device),
        "precision": str(trainer.precision),
        "world_size": int(trainer.world_size),
        "global_rank": int(trainer.global_rank),
    }


# The planned schedule is kept next to the checkpoints: a resumed run continues the same plan
# (a time budget is not measured again, which could plan a different number of steps).
_SCHEDULE_KEYS = ("epochs", "max_steps", "time_budget", "batch_size", "devices", "num_nodes")


def _write_schedule(path: Path, schedule: Mapping[str, Any], train: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"schedule": dict(schedule), "train": {k: train[k] for k in _SCHEDULE_KEYS}}
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def _stored_schedule(path: Path, train: Mapping[str, Any]) -> dict[str, Any] | None:
    """The resumed run's plan, unless the options that set it were changed on resume."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.get("train") != {k: train[k] for k in _SCHEDULE_KEYS}:
        return None
    return dict(data["schedule"])
