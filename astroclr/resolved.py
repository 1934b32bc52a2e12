"""The resolved configuration: frozen, typed, with derived facts worked out once.

:func:`astroclr.config.resolve` validates the merged tables and returns a :class:`Config`. The
core reads typed attributes (``cfg.train.batch_size``, ``cfg.train.budget_seconds``,
``cfg.train.on_gpu``); plugin parameters stay plain tables (``cfg.dataset``, ``cfg.backbone``,
``cfg.method``, ``cfg.augment``, ``cfg.evaluate``), since their keys are the plugins' own.
``cfg.tables()`` gives the plain nested dict that ``config.toml`` holds.
"""

from __future__ import annotations

import copy
import os
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from typing import Any, Mapping


@dataclass(frozen=True)
class RunOptions:
    """The ``[run]`` table."""

    dataset: str
    backbone: str
    seed: int
    evaluators: tuple[str, ...]
    label_column: str
    eval_seeds: tuple[int, ...]
    train_sizes: tuple[int, ...]
    test_fraction: float


@dataclass(frozen=True)
class TrainOptions:
    """The ``[train]`` table, and what follows from it on this machine."""

    method: str
    epochs: int
    max_steps: int
    time_budget: str
    batch_size: int
    lr: float
    weight_decay: float
    warmup_fraction: float
    representation_dim: int
    projection_hidden_dim: int
    projection_dim: int
    accelerator: str
    devices: str
    num_nodes: int
    strategy: str
    precision: str
    checkpoint_every_n_steps: int
    threads: int
    embed_batch_size: int
    logger: str = "csv"
    #: derived: the time budget in seconds (None: train for ``epochs``)
    budget_seconds: float | None = field(default=None, compare=False)

    @property
    def distributed(self) -> bool:
        """Several processes (devices or nodes) train together."""
        return self.devices not in ("1", "auto") or self.num_nodes > 1

    @cached_property
    def lightning_accelerator(self) -> str:
        """``auto`` resolved: "gpu" when CUDA is available, else "cpu"."""
        if self.accelerator != "auto":
            return self.accelerator
        import torch

        return "gpu" if torch.cuda.is_available() else "cpu"

    @property
    def on_gpu(self) -> bool:
        return self.lightning_accelerator in ("gpu", "cuda")

    @property
    def device(self) -> str:
        """The torch device type astroclr embeds and evaluates on."""
        return "cuda" if self.on_gpu else "cpu"

    @property
    def lightning_precision(self) -> str:
        """bf16 autocast on GPUs; never on CPU, where bf16 runs ~40x slower than fp32 on AVX2."""
        if self.precision != "auto":
            return self.precision
        return "bf16-mixed" if self.on_gpu else "32-true"

    @cached_property
    def device_spec(self) -> Any:
        """``devices`` as Lightning takes it: a count, a list of indices, or "auto"."""
        from astroclr.plugin.specs import ConfigError

        text = str(self.devices).strip()
        if text == "auto":
            return "auto"
        try:
            value: Any = [int(d) for d in text.split(",") if d.strip()] if "," in text else int(text)
        except ValueError:
            raise ConfigError(f"train.devices: {self.devices!r} is not a count, a list like "
                              f"'0,1', or auto") from None
        if isinstance(value, int) and (value == 0 or value < -1):
            raise ConfigError(f"train.devices: {self.devices!r} must be a positive count, -1 "
                              f"(all), a list like '0,1', or auto")
        if self.lightning_accelerator == "cpu" and isinstance(value, int) and value > 1:
            cores = os.cpu_count() or 1
            if value > cores:
                raise ConfigError(f"train.devices = {value} CPU processes, but this machine has "
                                  f"only {cores} cores")
        return value

    def table(self) -> dict[str, Any]:
        """The options as written in ``[train]`` (derived facts left out)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "budget_seconds"}


@dataclass(frozen=True)
class Config:
    """A validated run configuration."""

    run: RunOptions
    train: TrainOptions
    dataset: Mapping[str, Any] = field(default_factory=dict)
    backbone: Mapping[str, Any] = field(default_factory=dict)
    method: Mapping[str, Any] = field(default_factory=dict)
    augment: Mapping[str, Any] = field(default_factory=dict)
    evaluate: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_tables(cls, tables: Mapping[str, Any], budget_seconds: float | None) -> "Config":
        run = dict(tables["run"])
        for key in ("evaluators", "eval_seeds", "train_sizes"):
            run[key] = tuple(run[key])
        return cls(run=RunOptions(**run),
                   train=TrainOptions(**tables["train"], budget_seconds=budget_seconds),
                   dataset=_frozen(tables["dataset"]), backbone=_frozen(tables["backbone"]),
                   method=_frozen(tables.get("method", {})), augment=_frozen(tables["augment"]),
                   evaluate=_frozen(tables["evaluate"]))

    @property
    def augment_params(self) -> dict[str, dict[str, Any]]:
        """Each augmentation's parameters, by name (the pipeline list left out)."""
        return {k: dict(v) for k, v in self.tables()["augment"].items() if k != "pipeline"}

    @property
    def pipeline(self) -> list[str]:
        return list(self.augment["pipeline"])

    def tables(self) -> dict[str, Any]:
        """The plain nested tables (as in ``config.toml``), a private copy."""
        run = asdict(self.run)
        for key in ("evaluators", "eval_seeds", "train_sizes"):
            run[key] = list(run[key])
        return {"run": run, "train": self.train.table(), "dataset": _thaw(self.dataset),
                "backbone": _thaw(self.backbone), "method": _thaw(self.method),
                "augment": _thaw(self.augment),
                "evaluate": _thaw(self.evaluate)}


def _frozen(table: Mapping[str, Any]) -> dict[str, Any]:
    # A private copy: a plugin mutating its parameters cannot change the resolved config.
    return _thaw(table)


def _thaw(table: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _thaw(v) if isinstance(v, Mapping) else copy.deepcopy(v) for k, v in table.items()}
