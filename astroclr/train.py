"""Training a SimCLR model with Lightning: trainer set-up, checkpoints, time budget."""

from __future__ import annotations

import copy
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.loggers import CSVLogger

from astroclr.config import parse_duration
from astroclr.loader import training_loader
from astroclr.model import SimCLRModel
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
        os.replace(tmp, path)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None
                        ) -> dict[str, Any]:
        # Lightning checkpoints hold plain tensors and containers: never unpickle objects.
        try:
            return torch.load(path, map_location=map_location or "cpu", weights_only=True)
        except Exception as exc:
            raise AstroclrError(f"checkpoint {path} is corrupt or incomplete: {exc}") from exc


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


class ImageDataModule(L.LightningDataModule):
    """Builds the training loader once the process's rank and world size are known."""

    def __init__(self, images: Any, batch_size: int, seed: int) -> None:
        super().__init__()
        self.images, self.batch_size, self.seed = images, batch_size, seed

    def train_dataloader(self) -> Any:
        return training_loader(self.images, self.batch_size, self.seed,
                               rank=self.trainer.global_rank, world_size=self.trainer.world_size)


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
    if "," in text:
        return [int(d) for d in text.split(",") if d.strip()]
    try:
        return int(text)
    except ValueError:
        raise AstroclrError(f"train.devices: {devices!r} is not a count, a list like '0,1', or auto"
                            ) from None


def build_trainer(train: Mapping[str, Any], run_dir: Path, max_steps: int, epochs: int,
                  progress: TrainingProgress, max_seconds: float | None = None) -> L.Trainer:
    accelerator = resolve_accelerator(train["accelerator"])
    kwargs: dict[str, Any] = dict(
        accelerator=accelerator,
        devices=parse_devices(train["devices"]),
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
        plugins=[AtomicCheckpointIO()],
        default_root_dir=str(run_dir),
        deterministic=False,
        num_sanity_val_steps=0,
    )
    # Statistics over the global batch with several processes; single-device strategies ignore it.
    kwargs["sync_batchnorm"] = True
    if max_seconds is not None:
        kwargs["max_time"] = {"seconds": max_seconds}
    try:
        return L.Trainer(**kwargs)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise AstroclrError(f"cannot set up training ({accelerator}, devices={train['devices']}, "
                            f"strategy={train['strategy']}): {exc}") from exc
    except Exception as exc:  # Lightning raises its own MisconfigurationException
        raise AstroclrError(f"cannot set up training: {exc}") from exc


def measure_step_seconds(model: SimCLRModel, images: Any, batch_size: int, accelerator: str,
                         precision: str, steps: int = 3) -> float:
    """Seconds per optimiser step, measured on a copy of the model (the real one is untouched)."""
    device = torch.device("cuda" if accelerator in ("gpu", "cuda") else "cpu")
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


def plan_schedule(train: Mapping[str, Any], n_images: int, model: SimCLRModel, images: Any
                  ) -> dict[str, Any]:
    """Epochs and steps to run. With a time budget, the step count is fitted to the budget
    from a measured step time, so the learning-rate schedule completes within it."""
    batch = min(train["batch_size"], n_images)
    steps_per_epoch = max(1, n_images // batch)
    budget = parse_duration(train["time_budget"])
    if budget is None:
        epochs = train["epochs"]
        max_steps = train["max_steps"]
        return {"epochs": epochs, "max_steps": max_steps, "budget_seconds": None,
                "steps": steps_per_epoch * epochs if max_steps < 0 else min(max_steps,
                                                                             steps_per_epoch * epochs)}
    accelerator = resolve_accelerator(train["accelerator"])
    sec = measure_step_seconds(model, images, batch, accelerator,
                               resolve_precision(train["precision"], accelerator))
    # Keep 3% for checkpoints and logging, which the measurement does not include.
    steps = max(1, int(0.97 * budget / sec))
    if train["max_steps"] > 0:
        steps = min(steps, train["max_steps"])
    epochs = math.ceil(steps / steps_per_epoch)
    return {"epochs": epochs, "max_steps": steps, "budget_seconds": budget, "steps": steps,
            "measured_step_seconds": sec}


def quiet_lightning() -> None:
    """Lightning's start-up chatter (tips, "GPU available: False") buries astroclr's own output."""
    import logging
    import warnings

    for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in (".*LeafSpec.*", ".*smaller than the logging interval.*",
                    ".*does not have many workers.*", ".*ckpt_path.*weights_only.*"):
        warnings.filterwarnings("ignore", message=pattern)


def fit(model: SimCLRModel, galaxies: "Galaxies", train: Mapping[str, Any], seed: int,
        run_dir: Path, show_progress: bool = True, ckpt_path: str | None = None) -> dict[str, Any]:
    """Train ``model`` on ``galaxies``; returns a summary (steps, seconds, loss, images/s)."""
    if train["threads"]:
        torch.set_num_threads(train["threads"])
    quiet_lightning()
    schedule = plan_schedule(train, len(galaxies), model, galaxies.images)
    progress = TrainingProgress(enabled=show_progress)
    budget = schedule["budget_seconds"]
    trainer = build_trainer(train, run_dir, schedule["max_steps"], schedule["epochs"], progress,
                            max_seconds=None if budget is None else budget * 1.15)
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
