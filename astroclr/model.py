"""The SimCLR Lightning module: backbone → representation → lightly projection head → NT-Xent.

Two views of every galaxy are made inside ``training_step`` by the augmentation pipeline,
on the whole batch, on the training device (after Lightning moved the batch there), from a
seeded generator whose state is checkpointed, so a run and its resume are repeatable.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import lightning as L
import torch
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead
from torch import nn

if TYPE_CHECKING:
    from astroclr.augment import Pipeline


class Encoder(nn.Module):
    """Backbone plus a linear map to the representation: (B, C, H, W) → (B, representation_dim).

    This is what a trained run keeps: ``astroclr.load(run).embed`` runs exactly this module.
    """

    def __init__(self, backbone: nn.Module, representation_dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.representation = nn.Linear(int(backbone.num_features), representation_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.representation(self.backbone(x))


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor: linear warm-up to 1, then cosine decay to 0 at ``total``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


class SimCLRModel(L.LightningModule):
    """SimCLR on galaxy batches.

    The batch is a float tensor (B, C, H, W). ``augment(x, generator)`` makes each view.
    """

    def __init__(
        self,
        backbone: nn.Module,
        augment: "Pipeline | None",
        representation_dim: int = 64,
        projection_hidden_dim: int = 512,
        projection_dim: int = 128,
        temperature: float = 0.2,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        warmup_fraction: float = 0.05,
        seed: int = 0,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.encoder = Encoder(backbone, representation_dim)
        self.head = SimCLRProjectionHead(representation_dim, projection_hidden_dim, projection_dim)
        # Negatives from every process: with DDP the effective batch is the global one.
        self.criterion = NTXentLoss(temperature=temperature, gather_distributed=True)
        self.augment = augment
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup_fraction = warmup_fraction
        self.seed = seed
        self.use_channels_last = channels_last
        self._generator: torch.Generator | None = None
        self._generator_state: torch.Tensor | None = None

    # -- views -------------------------------------------------------------------------------
    def generator(self, device: torch.device) -> torch.Generator:
        """The augmentation generator on ``device``: differs per process, fixed by the seed."""
        if self._generator is None or self._generator.device != device:
            gen = torch.Generator(device=device)
            gen.manual_seed(self.seed * 1_000_003 + self.global_rank + 1)
            if self._generator_state is not None:
                gen.set_state(self._generator_state)
                self._generator_state = None
            self._generator = gen
        return self._generator

    def views(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Two independently augmented views of a batch (or the batch twice, with no pipeline)."""
        if self.augment is None:
            return x, x
        gen = self.generator(x.device)
        return self.augment(x, gen), self.augment(x, gen)

    # -- training ----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.encoder(x)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        v1, v2 = self.views(batch)
        # One pass over both views: half the kernel launches, BatchNorm sees both.
        z = self.head(self(torch.cat([v1, v2])))
        z1, z2 = z.chunk(2)
        loss = self.criterion(z1.float(), z2.float())
        self.log("loss", loss, prog_bar=True, on_step=True, on_epoch=True,
                 batch_size=batch.shape[0], sync_dist=False)
        return loss

    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = int(self.warmup_fraction * total)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: warmup_cosine(step, total, warmup))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # -- checkpoint: augmentation randomness resumes where it stopped -------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self._generator is not None:
            checkpoint["astroclr_augment_rng"] = self._generator.get_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("astroclr_augment_rng")
        if state is not None:
            self._generator_state = state.cpu() if hasattr(state, "cpu") else state
            self._generator = None

    # -- inference ---------------------------------------------------------------------------
    @torch.no_grad()
    def embed_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Representations of a batch in eval mode (restores the previous mode)."""
        was_training = self.training
        self.eval()
        try:
            return self(x.to(self.device)).float()
        finally:
            self.train(was_training)
