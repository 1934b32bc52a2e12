"""Barlow Twins: the cross-correlation of the two views' projections pushed to the identity."""

from __future__ import annotations

import torch
from lightly.loss import BarlowTwinsLoss
from lightly.models.modules import BarlowTwinsProjectionHead
from torch import nn

from astroclr.api import Method, TrainingStep
from astroclr_methods._common import width


class BarlowTwins(Method):
    def __init__(self, encoder: nn.Module, hidden_dim: int, output_dim: int,
                 lambda_param: float) -> None:
        super().__init__()
        self.head = BarlowTwinsProjectionHead(width(encoder), hidden_dim, output_dim)
        # The cross-correlation matrix is averaged over processes (lightly normalises each
        # process's share of the batch on its own, as the paper's code does).
        self.criterion = BarlowTwinsLoss(lambda_param=lambda_param, gather_distributed=True)

    def training_loss(self, views: list[torch.Tensor], encoder: nn.Module,
                      step: TrainingStep) -> torch.Tensor:
        z1, z2 = self.head(encoder(torch.cat(views))).float().chunk(2)
        return self.criterion(z1, z2)
