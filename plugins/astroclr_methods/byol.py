"""BYOL: an online network predicts a momentum target network's projection; no negatives."""

from __future__ import annotations

import torch
from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead
from torch import nn

from astroclr.api import Method, TrainingStep, ViewSpec
from astroclr_methods._common import follow, momentum_copy, width

#: BYOL's asymmetric blur (p 1.0 and 0.1 for its two views), in physical form: the seeing
ASYMMETRIC_VIEWS = (ViewSpec(augment={"psf": {"p": 1.0}}), ViewSpec(augment={"psf": {"p": 0.1}}))


class BYOL(Method):
    def __init__(self, encoder: nn.Module, hidden_dim: int, output_dim: int, momentum: float,
                 asymmetric: bool) -> None:
        super().__init__()
        self.head = BYOLProjectionHead(width(encoder), hidden_dim, output_dim)
        self.predictor = BYOLPredictionHead(output_dim, hidden_dim, output_dim)
        self.encoder_momentum = momentum_copy(encoder)
        self.head_momentum = momentum_copy(self.head)
        self.criterion = NegativeCosineSimilarity()
        self.momentum = momentum
        if asymmetric:
            self.views = ASYMMETRIC_VIEWS

    def training_loss(self, views: list[torch.Tensor], encoder: nn.Module,
                      step: TrainingStep) -> torch.Tensor:
        follow([(encoder, self.encoder_momentum), (self.head, self.head_momentum)],
               self.momentum, step)
        both = torch.cat(views)
        p1, p2 = self.predictor(self.head(encoder(both))).float().chunk(2)
        with torch.no_grad():
            z1, z2 = self.head_momentum(self.encoder_momentum(both)).float().chunk(2)
        return 0.5 * (self.criterion(p1, z2) + self.criterion(p2, z1))
