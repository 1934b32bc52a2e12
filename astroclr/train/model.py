"""The training module: backbone → representation (the :class:`Encoder`), trained by a method.

The views of every galaxy are made inside ``training_step`` by the augmentation pipeline, on
the whole batch, on the training device (after Lightning moved the batch there), from a seeded
generator whose state is checkpointed, so a run and its resume are repeatable. The method
(:mod:`astroclr.train.method`, a plugin: SimCLR, MoCo, BYOL, ...) turns the views into a loss.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import lightning as L
import torch
from torch import nn

from astroclr.train.method import Method, TrainingStep, continued

if TYPE_CHECKING:
    from astroclr.data.augment import Pipeline


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


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are taken over the batches of all processes.

    ``torch.nn.SyncBatchNorm`` does the same on GPUs only; this one works with any backend
    (gloo on CPU included): per-channel sums and sums of squares are all-reduced with autograd,
    so gradients also flow through the global statistics. Outside training, or with a single
    process, it is a plain BatchNorm; its state dict keys are BatchNorm's.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input, got {x.dim()}D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        if not (self.training and dist.is_available() and dist.is_initialized()
                and dist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        c = x.shape[1]
        dims = [0] + list(range(2, x.dim()))
        xf = x.float()
        count = torch.full((1,), xf.numel() / c, dtype=torch.float32, device=x.device)
        stats = all_reduce(torch.cat([xf.sum(dims), (xf * xf).sum(dims), count]))
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c:2 * c] / n - mean * mean).clamp_min(0.0)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else \
                    1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * n / (n - 1).clamp_min(1))
        shape = (1, c) + (1,) * (x.dim() - 2)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_global_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm layer of ``module`` by a GlobalBatchNorm sharing its tensors."""
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
            module, GlobalBatchNorm):
        out = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats)
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        out.running_mean, out.running_var = module.running_mean, module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, convert_global_batchnorm(child))
    return out


def warmup_cosine(step: int, total: int, warmup: int,
                  anchor: tuple[int, float] = (0, 0.0)) -> float:
    """Learning-rate factor: linear warm-up to 1, then cosine decay to 0 at ``total``.

    ``anchor`` = (step, decay fraction done then) where the plan last changed; the decay goes on
    from there to ``total``, so a refit moves the end, never the current learning rate."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * decay_progress(step, total, warmup, anchor)))


def decay_progress(step: int, total: int, warmup: int, anchor: tuple[int, float]) -> float:
    """Fraction of the cosine decay done at ``step`` (0 until the warm-up ends)."""
    if anchor[0] <= warmup:
        return continued(step - warmup, total - warmup, 0, 0.0)
    return continued(step, total, anchor[0], anchor[1])


class SelfSupervisedModel(L.LightningModule):
    """A self-supervised method training an encoder on galaxy batches.

    The batch is a float tensor (B, C, H, W). ``view_pipelines[i]`` makes the method's view
    ``i`` (``pipeline(x, generator)``, then resized to ``view_resize[i]`` of the side); with no
    pipelines every view is the batch itself.
    """

    def __init__(
        self,
        encoder: Encoder,
        method: Method,
        view_pipelines: "Sequence[Pipeline] | None",
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        warmup_fraction: float = 0.05,
        seed: int = 0,
        channels_last: bool = False,
        view_resize: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.method = method
        n_views = len(method.views)
        self.view_pipelines = list(view_pipelines) if view_pipelines is not None else None
        if self.view_pipelines is not None and len(self.view_pipelines) != n_views:
            raise ValueError(f"{len(self.view_pipelines)} view pipelines for {n_views} views")
        self.view_resize = list(view_resize) if view_resize is not None else \
            [float(v.resize) for v in method.views]
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup_fraction = warmup_fraction
        self.seed = seed
        self.use_channels_last = channels_last
        # Optimiser steps of the whole run, for the learning-rate schedule; set by
        # astroclr.train.trainer.fit (None: ask the trainer, which builds the data loader to count).
        self.total_steps: int | None = None
        # Where the plan last changed, as (step, fraction done) of the method's schedules and of
        # the learning rate's decay: a time-budget refit late in training used to move the
        # cosine's end under it, so the learning rate jumped (up when the plan grew).
        self._plan_anchor: tuple[int, float] = (0, 0.0)
        self._lr_anchor: tuple[int, float] = (0, 0.0)
        self._warmup_steps = 0
        self._generator: torch.Generator | None = None
        # Generator states restored from a checkpoint: one per process of the saving run.
        self._generator_states: list[torch.Tensor] | None = None

    @property
    def augment(self) -> "Pipeline | None":
        """The first view's pipeline (None: views are the batch itself)."""
        return self.view_pipelines[0] if self.view_pipelines else None

    # -- views -------------------------------------------------------------------------------
    def generator(self, device: torch.device) -> torch.Generator:
        """The augmentation generator on ``device``: differs per process, fixed by the seed.

        After a resume, each process continues its own stream from the checkpoint (the states
        of every process are saved). If the number of processes changed, the streams of the new
        processes are seeded from (seed, rank, step) instead: still reproducible, not identical.
        """
        if self._generator is None or self._generator.device != device:
            gen = torch.Generator(device=device)
            rank = self.global_rank
            gen.manual_seed(self.seed * 1_000_003 + rank + 1)
            states = self._generator_states
            if states is not None:
                if len(states) == self._world_size():
                    gen.set_state(states[rank].to(torch.uint8).cpu())
                else:
                    gen.manual_seed((self.seed * 1_000_003 + rank + 1) * 7919 + self.global_step)
                self._generator_states = None
            self._generator = gen
        return self._generator

    def _world_size(self) -> int:
        trainer = self._trainer
        return int(trainer.world_size) if trainer is not None else 1

    def views(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The method's augmented views of a batch, made in order from one generator.

        Consecutive views made by the same pipeline (SimCLR's two) are augmented as one batch
        of the copies: every image still draws its own parameters, and a pipeline call's fixed
        cost (some hundred small ops, kernel launches on a GPU) is paid once. On a busy 2-core
        CPU one call on 512 images took 0.6 of two calls on 256; on an idle one the difference
        was within the noise of a training step."""
        pipes = self.view_pipelines or [None] * len(self.view_resize)
        out: list[torch.Tensor] = []
        i = 0
        while i < len(pipes):
            j = i + 1
            while j < len(pipes) and pipes[j] is pipes[i]:
                j += 1
            if pipes[i] is None:
                made = [x] * (j - i)
            else:
                copies = x if j - i == 1 else torch.cat([x] * (j - i))
                made = list(pipes[i](copies, self.generator(x.device)).split(x.shape[0]))
            for v, resize in zip(made, self.view_resize[i:j]):
                if resize != 1.0:
                    side = max(1, round(x.shape[-1] * resize))
                    v = nn.functional.interpolate(v, size=(side, side), mode="bilinear",
                                                  antialias=True, align_corners=False)
                if self.use_channels_last:
                    v = v.contiguous(memory_format=torch.channels_last)
                out.append(v)
            i = j
        return out

    # -- training ----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.encoder(x)

    def training_position(self) -> TrainingStep:
        return TrainingStep(step=int(self.global_step),
                            total_steps=max(1, int(self.total_steps or 1)),
                            epoch=int(self.current_epoch), anchor_step=self._plan_anchor[0],
                            anchor_progress=self._plan_anchor[1])

    def retarget(self, total: int, step: int) -> None:
        """Make the run ``total`` steps long from ``step`` on, every schedule continuous there."""
        if self.total_steps and total != self.total_steps and step > 0:
            self._plan_anchor = (step, continued(step, self.total_steps, *self._plan_anchor))
            if step > self._warmup_steps:
                self._lr_anchor = (step, decay_progress(step, self.total_steps,
                                                        self._warmup_steps, self._lr_anchor))
        self.total_steps = total

    def batch_loss(self, batch: torch.Tensor) -> torch.Tensor:
        """The method's loss on a batch: views, then the method (no logging)."""
        return self.method.training_loss(self.views(batch), self.encoder, self.training_position())

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss = self.batch_loss(batch)
        self.log("loss", loss, prog_bar=True, on_step=True, on_epoch=True,
                 batch_size=batch.shape[0], sync_dist=False)
        return loss

    def on_after_backward(self) -> None:
        self.method.after_backward(self.training_position())

    def trained_encoder(self) -> nn.Module:
        """The encoder the run keeps (``model.pt``) and embeds with."""
        return self.method.kept_encoder(self.encoder)

    def configure_optimizers(self) -> Any:
        # Momentum encoders and frozen layers are not trained by the optimiser.
        params = [p for p in self.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        total = self.total_steps or int(self.trainer.estimated_stepping_batches)
        total = max(1, int(total))
        self._warmup_steps = warmup = int(self.warmup_fraction * total)
        # total_steps and the anchor are read at every step: a time-budget run refits the plan.
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: warmup_cosine(step, max(1, int(self.total_steps or total)), warmup,
                                            self._lr_anchor))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # -- checkpoint: augmentation randomness resumes where it stopped -------------------------
    # Every process runs this (Lightning builds the checkpoint on all ranks, rank 0 writes it),
    # so the states of all processes are gathered and saved.
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.view_pipelines is None:
            return
        state = self.generator(self.device).get_state()
        if self._world_size() > 1:
            gathered = self.all_gather(state.to(self.device))  # (world_size, n) on every rank
            states = [s.cpu().clone() for s in gathered]
        else:
            states = [state]
        checkpoint["astroclr_augment_rng"] = states
        checkpoint["astroclr_torch_rng"] = torch.get_rng_state()
        checkpoint["astroclr_plan"] = {"total_steps": self.total_steps,
                                       "plan_anchor": list(self._plan_anchor),
                                       "lr_anchor": list(self._lr_anchor)}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        states = checkpoint.get("astroclr_augment_rng")
        if isinstance(states, torch.Tensor):  # checkpoints written before per-process states
            states = [states]
        if states is not None:
            self._generator_states = [s.cpu() for s in states]
            self._generator = None
        plan = checkpoint.get("astroclr_plan")
        if isinstance(plan, dict):  # absent in checkpoints written before 0.2.0: no anchors then
            self.total_steps = plan.get("total_steps") or self.total_steps
            self._plan_anchor = tuple(plan.get("plan_anchor", (0, 0.0)))
            self._lr_anchor = tuple(plan.get("lr_anchor", (0, 0.0)))
        torch_state = checkpoint.get("astroclr_torch_rng")
        if torch_state is not None:
            torch.set_rng_state(torch_state.cpu())

    # -- inference ---------------------------------------------------------------------------
    @torch.no_grad()
    def embed_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Representations of a batch in eval mode (restores the previous mode)."""
        was_training = self.training
        self.eval()
        try:
            x = x.to(self.device)
            if self.use_channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return self.trained_encoder()(x).float()
        finally:
            self.train(was_training)
