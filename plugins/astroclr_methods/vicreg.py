"""VICReg: invariance between views, variance and covariance regularised; no negatives."""

from __future__ import annotations

import torch
from lightly.loss import VICRegLoss
from lightly.models.modules.heads import VICRegProjectionHead
from torch import nn

from astroclr.api import Method, TrainingStep
from astroclr_methods._common import width


class VICReg(Method):
    def __init__(self, encoder: nn.Module, hidden_dim: int, output_dim: int, lambda_param: float,
                 mu_param: float, nu_param: float) -> None:
        super().__init__()
        self.head = VICRegProjectionHead(width(encoder), hidden_dim, output_dim, num_layers=2)
        # Variance and covariance over the global batch with several processes.
        self.criterion = VICRegLoss(lambda_param=lambda_param, mu_param=mu_param,
                                    nu_param=nu_param, gather_distributed=True)

    def training_loss(self, views: list[torch.Tensor], encoder: nn.Module,
                      step: TrainingStep) -> torch.Tensor:
        z1, z2 = self.head(encoder(torch.cat(views))).float().chunk(2)
        return self.criterion(z1, z2)
