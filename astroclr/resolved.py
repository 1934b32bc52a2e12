"""The configuration's core tables, declared once, and the resolved configuration.

``[run]`` and ``[train]`` are pydantic models (:class:`RunOptions`, :class:`TrainOptions`): each
key's type, default, range and help text is written here and nowhere else. Validation,
``astroclr config``'s defaults, the docs' reference tables, ``run(epochs=...)``'s keyword
shortcuts and the keys a resumed run must keep all read these declarations.

:func:`astroclr.config.resolve` validates the merged tables and returns a :class:`Config`. The
core reads typed attributes (``cfg.train.batch_size``, ``cfg.train.budget_seconds``,
``cfg.train.on_gpu``); plugin parameters stay plain tables (``cfg.dataset``, ``cfg.backbone``,
``cfg.method``, ``cfg.augment``, ``cfg.evaluate``), since their keys are the plugins' own.
``cfg.tables()`` gives the plain nested dict that ``config.toml`` holds.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Any, Literal, Mapping

from pydantic import Field, field_validator

from astroclr.plugin.errors import ConfigError
from astroclr.plugin.validation import Float, Int, Table

#: ``Field(json_schema_extra=KEEP)``: a key a resumed run must keep (changing it would make
#: the checkpoint meaningless for the run)
KEEP = {"keep_on_resume": True}

DEFAULT_EVALUATORS = ("probe", "pca", "untrained", "colours", "knn", "umap", "similar",
                      "retrieval", "anomaly", "label_efficiency")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr)?\s*$")


def parse_duration(text: str) -> float | None:
    """'10m' → 600.0 seconds; '' → None. Units: s, m, h (default s)."""
    if not text:
        return None
    match = _DURATION.match(str(text))
    if not match:
        raise ConfigError(f"train.time_budget: {text!r} is not a duration such as '90s', '10m', '1h'")
    value = float(match.group(1))
    unit = (match.group(2) or "s")[0]
    seconds = value * {"s": 1, "m": 60, "h": 3600}[unit]
    if seconds <= 0:
        raise ConfigError(f"train.time_budget: {text!r} must be positive")
    return seconds


class RunOptions(Table):
    """The ``[run]`` table: what to run, the seed, and how the evaluation is set up."""

    where = "run"

    dataset: str = Field("sdss", description="dataset plugin (astroclr plugins); sdss with no "
                         "input is the embedded Galaxy Zoo 1 sample", json_schema_extra=KEEP)
    backbone: str = Field("resnet18", description="backbone plugin: resnet18, resnet34, resnet50, "
                          "smallcnn, ... (astroclr plugins)", json_schema_extra=KEEP)
    seed: Int = Field(0, ge=0, description="seed for weights, data order, augmentations and "
                      "splits", json_schema_extra=KEEP)
    evaluators: tuple[str, ...] = Field(DEFAULT_EVALUATORS, description="evaluator plugins to "
                                        "run after training, in order")
    label_column: str = Field("label", description="catalogue column with integer labels (-1 "
                              "unlabelled)")
    # Five splits: with three, the spread at N = 100 let a lucky draw of splits rank the
    # baselines differently from ten splits (docs/quality.md).
    eval_seeds: tuple[Annotated[Int, Field(ge=0)], ...] = Field(
        (0, 1, 2, 3, 4), min_length=1, description="one labelled train/test split per seed")
    train_sizes: tuple[Annotated[Int, Field(ge=1)], ...] = Field(
        (100, 300, 1000, 3000, 10000),
        description="numbers of labelled galaxies for the label-efficiency curve")
    test_fraction: Float = Field(0.25, ge=0.01, le=0.99, description="fraction of labelled "
                                 "galaxies held out for testing")


class TrainOptions(Table):
    """The ``[train]`` table, and what follows from it on this machine."""

    where = "train"

    method: str = Field("simclr", description="self-supervised method plugin: simclr, moco, "
                        "byol, vicreg, barlowtwins, dino, ... (astroclr plugins); its parameters "
                        "go in [method]", json_schema_extra=KEEP)
    epochs: Int = Field(8, ge=1, description="passes over the dataset (see also time_budget)")
    max_steps: Int = Field(-1, ge=-1, description="stop after this many optimiser steps (-1: "
                           "no limit)")
    time_budget: str = Field("6m", description="wall-clock budget for training, e.g. '8m', "
                             "'1h', '90s'; the schedule is fitted to it (empty: train for "
                             "`epochs`)")
    batch_size: Int = Field(256, ge=2, description="images per batch (each gives two views)",
                            json_schema_extra=KEEP)
    lr: Float = Field(2e-3, ge=0.0, description="peak learning rate (AdamW)")
    weight_decay: Float = Field(1e-4, ge=0.0, description="AdamW weight decay")
    warmup_fraction: Float = Field(0.05, ge=0.0, le=0.5, description="fraction of steps with "
                                   "linear warm-up")
    representation_dim: Int = Field(64, ge=1, description="size of the representation",
                                    json_schema_extra=KEEP)
    projection_hidden_dim: Int = Field(512, ge=1, description="hidden width of the method's "
                                       "projection head (and predictor)", json_schema_extra=KEEP)
    projection_dim: Int = Field(128, ge=1, description="output size of the method's "
                                "projection head", json_schema_extra=KEEP)
    accelerator: str = Field("auto", description="Lightning accelerator: auto, cpu, gpu, cuda, "
                             "mps")
    devices: str = Field("1", description="Lightning devices: a count, a list such as '0,1', "
                         "or 'auto'")
    num_nodes: Int = Field(1, ge=1, description="number of nodes for distributed training")
    strategy: str = Field("auto", description="Lightning strategy: auto, ddp, ddp_spawn, fsdp, "
                          "...")
    precision: str = Field("auto", description="auto (bf16-mixed on CUDA, 32-true on CPU) or a "
                           "Lightning precision")
    checkpoint_every_n_steps: Int = Field(200, ge=0, description="also checkpoint every N steps "
                                          "(0: epochs only)")
    threads: Int = Field(0, ge=0, description="CPU threads for torch (0: leave torch's default)")
    embed_batch_size: Int = Field(512, ge=1, description="images per batch when embedding")
    logger: Literal["csv", "tensorboard", "mlflow"] = Field(
        "csv", description="also log training to tensorboard or mlflow (extras: pip install "
        "'astroclr[tensorboard]'); logs/metrics.csv is always written")

    @field_validator("time_budget")
    @classmethod
    def _a_duration(cls, text: str) -> str:
        parse_duration(text)  # raises the one-line ConfigError naming train.time_budget
        return text

    @cached_property
    def budget_seconds(self) -> float | None:
        """The time budget in seconds (None: train for ``epochs``)."""
        return parse_duration(self.time_budget)

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
    def from_tables(cls, tables: Mapping[str, Any]) -> "Config":
        """The configuration of validated tables (``[run]`` and ``[train]`` as dicts or models)."""
        run, train = tables["run"], tables["train"]
        return cls(run=run if isinstance(run, RunOptions) else RunOptions.check(run),
                   train=train if isinstance(train, TrainOptions) else TrainOptions.check(train),
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
        return {"run": self.run.table(), "train": self.train.table(), "dataset": _thaw(self.dataset),
                "backbone": _thaw(self.backbone), "method": _thaw(self.method),
                "augment": _thaw(self.augment),
                "evaluate": _thaw(self.evaluate)}


def _frozen(table: Mapping[str, Any]) -> dict[str, Any]:
    # A private copy: a plugin mutating its parameters cannot change the resolved config.
    return _thaw(table)


def _thaw(table: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _thaw(v) if isinstance(v, Mapping) else copy.deepcopy(v) for k, v in table.items()}
