"""MoCo v2: a query encoder against a momentum key encoder, negatives from a memory bank.

The memory bank of lightly's NTXentLoss is kept out of its ``state_dict`` (a non-persistent
buffer); it is saved here as extra state, so a resumed run continues with the same negatives.
Keys are gathered from every process before they enter the bank, so the bank is the same on
every process. Shuffling BatchNorm (MoCo's guard against batch-statistics leaks across GPUs) is
not needed: BatchNorm statistics are always those of the whole global batch here.
"""

from __future__ import annotations

from typing import Any

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules import MoCoProjectionHead
from torch import nn

from astroclr.api import Method, TrainingStep
from astroclr_methods._common import follow, momentum_copy, width


class MoCo(Method):
    def __init__(self, encoder: nn.Module, hidden_dim: int, output_dim: int, temperature: float,
                 memory_bank: int, momentum: float) -> None:
        super().__init__()
        self.head = MoCoProjectionHead(width(encoder), hidden_dim, output_dim)
        self.encoder_momentum = momentum_copy(encoder)
        self.head_momentum = momentum_copy(self.head)
        self.criterion = NTXentLoss(temperature=temperature,
                                    memory_bank_size=(memory_bank, output_dim),
                                    gather_distributed=True)
        self.momentum = momentum

    def training_loss(self, views: list[torch.Tensor], encoder: nn.Module,
                      step: TrainingStep) -> torch.Tensor:
        follow([(encoder, self.encoder_momentum), (self.head, self.head_momentum)],
               self.momentum, step)
        query = self.head(encoder(views[0]))
        with torch.no_grad():
            key = self.head_momentum(self.encoder_momentum(views[1]))
        return self.criterion(query.float(), key.float())

    def get_extra_state(self) -> Any:
        bank = self.criterion.memory_bank
        return {"bank": bank.bank.detach().clone(), "bank_ptr": bank.bank_ptr.detach().clone()}

    def set_extra_state(self, state: Any) -> None:
        bank = self.criterion.memory_bank
        bank.bank.copy_(state["bank"])
        bank.bank_ptr.copy_(state["bank_ptr"])
