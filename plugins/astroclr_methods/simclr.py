"""SimCLR: NT-Xent between two views, negatives from the whole (global) batch."""

from __future__ import annotations

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead
from torch import nn

from astroclr.api import Method, TrainingStep
from astroclr_methods._common import width


class SimCLR(Method):
    def __init__(self, encoder: nn.Module, hidden_dim: int, output_dim: int,
                 temperature: float) -> None:
        super().__init__()
        self.head = SimCLRProjectionHead(width(encoder), hidden_dim, output_dim)
        # Negatives from every process: with DDP the effective batch is the global one.
        self.criterion = NTXentLoss(temperature=temperature, gather_distributed=True)

    def training_loss(self, views: list[torch.Tensor], encoder: nn.Module,
                      step: TrainingStep) -> torch.Tensor:
        # One pass over both views: half the kernel launches, BatchNorm sees both.
        z1, z2 = self.head(encoder(torch.cat(views))).chunk(2)
        return self.criterion(z1.float(), z2.float())
