"""Checking where training runs (accelerator, devices, nodes, strategy, precision) up front."""

from __future__ import annotations

from typing import TYPE_CHECKING

from astroclr.plugin.specs import AstroclrError

if TYPE_CHECKING:
    from astroclr.resolved import TrainOptions


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (Lightning's span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


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


def trainer_error(train: "TrainOptions", exc: BaseException) -> AstroclrError:
    return AstroclrError(f"cannot train with accelerator={train.lightning_accelerator}, devices="
                         f"{train.devices}, num_nodes={train.num_nodes}, strategy="
                         f"{train.strategy}: {one_line(exc)}")


#: train.logger → (the module it needs, the extra that installs it)
_LOGGER_PACKAGES = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow")}


def check_logger(train: "TrainOptions") -> None:
    """A one-line error when ``train.logger``'s package is not installed (they are extras)."""
    import importlib

    if train.logger not in _LOGGER_PACKAGES:
        return
    module, extra = _LOGGER_PACKAGES[train.logger]
    try:
        importlib.import_module(module)
    except ImportError:
        raise AstroclrError(f"train.logger = {train.logger!r} needs the {module} package, which "
                            f"is not installed: pip install 'astroclr[{extra}]' (or leave "
                            f"train.logger = 'csv')") from None


def check_trainer_options(train: "TrainOptions") -> None:
    """Validate accelerator, devices, num_nodes, strategy and precision without training.

    Raises AstroclrError with a one-line message: call it before writing anything.
    """
    import lightning as L

    check_logger(train)
    devices = train.device_spec
    quiet_lightning()
    try:
        L.Trainer(accelerator=train.lightning_accelerator, devices=devices,
                  num_nodes=train.num_nodes, strategy=train.strategy,
                  precision=train.lightning_precision, sync_batchnorm=True, logger=False,
                  enable_checkpointing=False, enable_progress_bar=False,
                  enable_model_summary=False)
    except AstroclrError:
        raise
    except Exception as exc:  # ValueError, MisconfigurationException, RuntimeError, ...
        raise trainer_error(train, exc) from None
