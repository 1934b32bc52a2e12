"""The fine-tuning recipe: how a classifier is trained (see :mod:`astroclr.classify.finetune` for
why each setting is there).

Imports nothing heavy: the ``finetune`` and ``cnn`` evaluators declare their parameters from
these defaults while the CLI lists plugins."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from astroclr.plugin.specs import AstroclrError

MODES = ("finetune", "probe")
AUGMENTS = ("run", "rotate_flip", "none")
INITS = ("pretrained", "scratch")
#: how the galaxies outside the N labelled ones take part (astroclr.classify.semisup)
UNLABELLED = ("fixmatch", "ssl", "distill", "none")


@dataclass(frozen=True)
class Recipe:
    """How a classifier is trained (see the module docstring for why)."""

    mode: str = "finetune"
    epochs: int = 30
    min_steps: int = 200
    max_steps: int = 2000
    batch_size: int = 128
    lr: float = 1e-3
    encoder_lr: float = 1e-3
    layer_decay: float = 1.0
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.1
    val_fraction: float = 0.0
    eval_every: int = 20
    patience: int = 6
    freeze_bn: bool = False
    probe_init: bool = True
    augment: str = "run"
    #: ``pretrained``: the run's encoder; ``scratch``: the same network from random weights
    #: (the supervised baseline: no probe head, labelled galaxies alone)
    init: str = "pretrained"
    unlabelled: str = "fixmatch"
    #: unlabelled galaxies per step (FixMatch's mu x batch)
    unlabelled_batch: int = 128
    unlabelled_weight: float = 1.0
    #: FixMatch's confidence threshold on the aligned pseudo-label
    threshold: float = 0.95

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise AstroclrError(f"--mode {self.mode!r}: choose {' or '.join(MODES)}")
        if self.augment not in AUGMENTS:
            raise AstroclrError(f"augment {self.augment!r}: choose one of {', '.join(AUGMENTS)}")
        if self.init not in INITS:
            raise AstroclrError(f"--init {self.init!r}: choose {' or '.join(INITS)}")
        if self.unlabelled not in UNLABELLED:
            raise AstroclrError(f"--unlabelled {self.unlabelled!r}: choose one of "
                                f"{', '.join(UNLABELLED)}")
        if not 0.0 < self.threshold <= 1.0:
            raise AstroclrError(f"recipe threshold must be in (0, 1], got {self.threshold}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise AstroclrError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        for name in ("epochs", "batch_size", "eval_every", "unlabelled_batch"):
            if getattr(self, name) < 1:
                raise AstroclrError(f"recipe {name} must be >= 1, got {getattr(self, name)}")
        # A NaN or negative rate trains "successfully" into NaN weights: refused before work.
        for name, low, closed in (("lr", 0.0, False), ("encoder_lr", 0.0, False),
                                  ("layer_decay", 0.0, False), ("weight_decay", 0.0, True),
                                  ("warmup_fraction", 0.0, True)):
            value = getattr(self, name)
            if not math.isfinite(value) or value < low or (value == low and not closed):
                raise AstroclrError(f"recipe {name} must be a finite number "
                                    f"{'>=' if closed else '>'} {low:g}, got {value}")
        if self.warmup_fraction > 1.0:
            raise AstroclrError(f"recipe warmup_fraction must be in [0, 1], got "
                                f"{self.warmup_fraction}")
        for name in ("min_steps", "patience"):
            if getattr(self, name) < 0:
                raise AstroclrError(f"recipe {name} must be >= 0, got {getattr(self, name)}")

    @property
    def semi_supervised(self) -> bool:
        """Whether unlabelled galaxies take part (never from scratch: that is the baseline
        trained on the labels alone)."""
        return self.unlabelled != "none" and self.init == "pretrained" and self.mode != "probe"

    def steps(self, n_labels: int) -> int:
        """Optimiser steps for N labels: the ``cnn`` evaluator's rule."""
        steps = max(math.ceil(n_labels / self.batch_size) * self.epochs, self.min_steps)
        return min(steps, self.max_steps) if self.max_steps > 0 else steps

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Recipe":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})
