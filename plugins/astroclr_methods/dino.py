"""DINO: a student matches a momentum teacher's centred, sharpened prototype distribution.

Self-distillation without labels or negatives. The teacher sees the two global views, the
student those and any local views (multi-crop: smaller crops at a lower resolution, off by
default). The teacher's centre (a buffer of lightly's DINOLoss, averaged over every process)
and its weights are in the checkpoint. The run keeps the teacher's encoder by default: in DINO
it represents better than the student throughout training.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import torch
from lightly.loss import DINOLoss
from lightly.models.modules import DINOProjectionHead
from torch import nn

from astroclr.api import Method, TrainingStep, ViewSpec
from astroclr_methods._common import follow, momentum_copy, width


def _copyable(head: DINOProjectionHead) -> DINOProjectionHead:
    """The head with its prototype layer weight-normalised by a parametrization: lightly uses
    the deprecated ``torch.nn.utils.weight_norm``, whose modules cannot be deep-copied (pytorch
    #103001), and a momentum teacher and the step-time probe are copies. Same weights, same
    frozen norm."""
    layer = head.last_layer
    frozen = not layer.weight_g.requires_grad
    nn.utils.remove_weight_norm(layer)
    nn.utils.parametrizations.weight_norm(layer)
    layer.parametrizations.weight.original0.requires_grad_(not frozen)
    return head


class DINO(Method):
    def __init__(self, encoder: nn.Module, hidden_dim: int, output_dim: int, prototypes: int,
                 momentum: float, teacher_temp: float, warmup_teacher_temp: float,
                 teacher_temp_warmup: float, student_temp: float, center_momentum: float,
                 freeze_last_layer: int, local_views: int, local_scale: Sequence[float],
                 local_size: float, keep: str) -> None:
        super().__init__()
        # output_dim is the bottleneck before the (weight-normalised) prototype layer.
        with warnings.catch_warnings():  # lightly's weight_norm deprecation, undone by _copyable
            warnings.simplefilter("ignore", FutureWarning)
            head = DINOProjectionHead(width(encoder), hidden_dim, output_dim, prototypes,
                                      freeze_last_layer=freeze_last_layer)
        self.head = _copyable(head)
        self.teacher_encoder = momentum_copy(encoder)
        self.teacher_head = momentum_copy(self.head)
        self.criterion = DINOLoss(output_dim=prototypes, warmup_teacher_temp=warmup_teacher_temp,
                                  teacher_temp=teacher_temp, warmup_teacher_temp_epochs=1,
                                  student_temp=student_temp, center_momentum=center_momentum)
        self.momentum = momentum
        self.teacher_temp = (warmup_teacher_temp, teacher_temp, teacher_temp_warmup)
        self.keep = keep
        local = ViewSpec(augment={"crop_resize": {"scale": list(local_scale), "p": 1.0}},
                         resize=local_size)
        self.views = (ViewSpec(), ViewSpec()) + (local,) * local_views

    def _teacher_temperature(self, step: TrainingStep) -> float:
        """Linear warm-up of the teacher temperature over the first fraction of the run."""
        start, end, fraction = self.teacher_temp
        if fraction <= 0 or step.progress >= fraction:
            return end
        return start + (end - start) * step.progress / fraction

    def training_loss(self, views: list[torch.Tensor], encoder: nn.Module,
                      step: TrainingStep) -> torch.Tensor:
        follow([(encoder, self.teacher_encoder), (self.head, self.teacher_head)],
               self.momentum, step)
        global_views = torch.cat(views[:2])
        with torch.no_grad():
            teacher = self.teacher_head(self.teacher_encoder(global_views)).float().chunk(2)
        student = list(self.head(encoder(global_views)).float().chunk(2))
        if len(views) > 2:  # local views share one size: one pass
            student += list(self.head(encoder(torch.cat(views[2:]))).float().chunk(len(views) - 2))
        return self.criterion(list(teacher), student, teacher_temp=self._teacher_temperature(step))

    def after_backward(self, step: TrainingStep) -> None:
        self.head.cancel_last_layer_gradients(current_epoch=step.epoch)

    def kept_encoder(self, encoder: nn.Module) -> nn.Module:
        return self.teacher_encoder if self.keep == "teacher" else encoder
