"""What several methods share: the representation width, momentum copies and their update."""

from __future__ import annotations

import copy
from typing import Iterable

from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.utils.scheduler import cosine_schedule
from torch import nn

from astroclr.api import TrainingStep


def width(encoder: nn.Module) -> int:
    """Features the encoder gives a head: the representation size."""
    return int(encoder.representation.out_features)


def momentum_copy(module: nn.Module) -> nn.Module:
    """A frozen copy that follows ``module`` by exponential moving average."""
    twin = copy.deepcopy(module)
    deactivate_requires_grad(twin)
    return twin


def follow(pairs: Iterable[tuple[nn.Module, nn.Module]], start: float, step: TrainingStep) -> None:
    """Move each momentum copy towards its online module. The momentum rises from ``start`` to
    1 over the run on a cosine (BYOL's schedule): the same value on every process, from the
    step counter restored on resume, so copies stay identical across processes and resumes."""
    m = cosine_schedule(step.step, step.total_steps, start, 1.0)
    for online, twin in pairs:
        update_momentum(online, twin, m)
