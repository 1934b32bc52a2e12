"""What a self-supervised method plugin builds: a :class:`Method`, the objective of training.

The core owns the student encoder (backbone → representation), the optimiser, the schedule and
the augmented views; a method owns its heads, its loss and any extra state (momentum encoder,
memory bank, centre). Everything a method holds is a submodule, a parameter or a buffer of the
training module, so it is saved in every checkpoint and a killed run resumes exactly; state that
a library keeps out of ``state_dict`` (lightly's memory bank) is saved with ``get_extra_state``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from astroclr.plugin.specs import ViewSpec


@dataclass(frozen=True)
class TrainingStep:
    """Where training stands, for the schedules a method runs (momentum, teacher temperature)."""

    #: optimiser steps done so far (0 at the first step; restored on resume)
    step: int
    #: optimiser steps planned for the whole run (refitted early in a time-budget run)
    total_steps: int
    epoch: int
    #: the step at which the plan last changed, and the fraction done then: the rest of the
    #: run is spread over the steps left, so a refit never makes a schedule jump
    anchor_step: int = 0
    anchor_progress: float = 0.0

    @property
    def progress(self) -> float:
        """Fraction of the run done, 0 … 1, continuous across refits of the plan."""
        return continued(self.step, self.total_steps, self.anchor_step, self.anchor_progress)


def continued(step: int, total: int, anchor_step: int, anchor_progress: float) -> float:
    """Fraction done at ``step`` of a run of ``total`` steps that was ``anchor_progress`` done at
    ``anchor_step``: linear from the anchor to 1 at ``total``, clipped to 0 … 1."""
    if step <= anchor_step:
        return min(1.0, max(0.0, anchor_progress))
    done = anchor_progress + (1.0 - anchor_progress) * (step - anchor_step) / max(
        1, total - anchor_step)
    return min(1.0, max(0.0, done))


class Method(nn.Module):
    """A self-supervised objective: turns augmented views into a training loss.

    Subclasses implement :meth:`training_loss`. Every process of a distributed run makes the
    same calls in the same order, so state updated outside the optimiser (an exponential moving
    average of the student, a memory bank of gathered keys) stays identical on every process.
    """

    #: the views of each image the method trains on: the configured pipeline, twice
    views: tuple[ViewSpec, ...] = (ViewSpec(), ViewSpec())

    def training_loss(self, views: list[torch.Tensor], encoder: nn.Module,
                      step: TrainingStep) -> torch.Tensor:
        """The loss of one batch. ``views[i]`` is the batch augmented as ``self.views[i]``
        declares; ``encoder(x)`` maps (B, C, H, W) to the (B, representation_dim) student
        representation that gradients train."""
        raise NotImplementedError

    def after_backward(self, step: TrainingStep) -> None:
        """Called after the backward pass, before the optimiser step (e.g. freeze a layer)."""

    def kept_encoder(self, encoder: nn.Module) -> nn.Module:
        """The encoder the run keeps and embeds with: the student, unless the method's own
        copy represents better (DINO's teacher)."""
        return encoder
