"""The unlabelled galaxies in fine-tuning: what a semi-supervised recipe adds to each step.

``Recipe.unlabelled`` chooses how the galaxies outside the N labelled ones (their labels never
read; in the evaluators, never a galaxy of the test split) take part:

- ``fixmatch`` (Sohn et al. 2020): a weakly augmented view (rotation/flip and a small shift)
  of each unlabelled galaxy gives a pseudo-label; where the network is confident (softmax
  above ``threshold``) the strongly augmented view (the run's whole physical pipeline) is
  trained towards it. Predictions are first aligned to the labelled class distribution
  (ReMixMatch's distribution alignment, Berthelot et al. 2020), so that the 72/28
  early/late imbalance does not turn the pseudo-labels into the majority class, and the
  unlabelled term is class-weighted like the labelled one (the metric is balanced accuracy).
- ``ssl``: the self-supervised loss kept on the unlabelled galaxies (NT-Xent between two
  views through a projection head, lightly's), the hybrid of Walmsley et al. 2022.
- ``distill``: self-distillation (SimCLR v2, Chen et al. 2020): the network is first
  fine-tuned on the labels alone (the teacher); a second copy of the pre-trained network
  then learns the labels and, on the unlabelled galaxies, the teacher's soft predictions of a
  weak view from a strong view.
- ``none``: the labelled galaxies alone.

Each returns a loss term added to the labelled cross-entropy, with weight
``unlabelled_weight``; the batches of unlabelled galaxies are drawn from their own seeded
stream, so a run is repeatable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from astroclr.classify.recipe import Recipe
    from astroclr.data.augment import Pipeline

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
#: the running mean of predictions that alignment divides by: about the last 100 batches
#: (ReMixMatch keeps the last 128), so it follows the network within a 200-step recipe
ALIGN_MOMENTUM = 0.99


class UnlabelledStream:
    """Seeded batches of unlabelled galaxies: a fresh permutation per pass, sorted reads."""

    def __init__(self, images: np.ndarray, rows: np.ndarray, batch_size: int, seed: int) -> None:
        self.images, self.rows = images, np.asarray(rows, dtype=np.int64)
        self.batch_size = min(int(batch_size), len(self.rows))
        self.rng = np.random.default_rng([seed, 3])
        self.order = np.empty(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def next(self) -> torch.Tensor:
        if len(self.order) < self.batch_size:
            self.order = np.concatenate([self.order, self.rng.permutation(len(self.rows))])
        pick, self.order = self.order[:self.batch_size], self.order[self.batch_size:]
        rows = np.sort(self.rows[pick])
        return torch.from_numpy(np.asarray(self.images[rows], dtype=np.float32))


def weak_pipeline(survey: Any) -> "Pipeline":
    """FixMatch's weak view: rotation/flip and a shift of up to 1/16 of the image, no
    resampling of the scale (the strong view is the run's whole pipeline)."""
    from astroclr.data.augment import build_pipeline, resolve_augment_config
    from astroclr.plugin.registry import get_registry

    registry = get_registry()
    names, params = resolve_augment_config(registry, {
        "pipeline": ["crop_resize", "rotate_flip"],
        "crop_resize": {"p": 1.0, "scale": [1.0, 1.0], "jitter": 0.0625}})
    return build_pipeline(registry, survey, names, params)


class UnlabelledTerm(nn.Module):
    """The unlabelled part of a fine-tuning step (see the module docstring)."""

    def __init__(self, recipe: "Recipe", stream: UnlabelledStream, weak: Augment | None,
                 strong: Augment | None, class_weight: torch.Tensor,
                 prior: np.ndarray, representation_dim: int,
                 teacher: nn.Module | None = None) -> None:
        super().__init__()
        self.kind, self.recipe, self.stream = recipe.unlabelled, recipe, stream
        self.weak, self.strong = weak, strong
        self.register_buffer("class_weight", class_weight.clone())
        p = torch.as_tensor(prior, dtype=torch.float32)
        self.register_buffer("prior", p / p.sum())
        # running mean of the network's predictions on unlabelled galaxies (alignment)
        self.register_buffer("running", torch.full_like(p, 1.0 / len(p)))
        self.seen = 0
        self.head: nn.Module | None = None
        # not a submodule: the teacher is fixed, outside the optimiser and the state dict
        self.__dict__["teacher"] = teacher.eval() if teacher is not None else None
        if self.kind == "ssl":
            from lightly.loss import NTXentLoss
            from lightly.models.modules import SimCLRProjectionHead

            self.head = SimCLRProjectionHead(representation_dim, 512, 128)
            self.criterion = NTXentLoss(temperature=0.1)
        self.last: dict[str, float] = {}

    def _view(self, fn: Augment | None, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return fn(x, gen) if fn is not None else x

    def loss(self, net: nn.Module, x_lab: torch.Tensor, y_lab: torch.Tensor,
             gen: torch.Generator) -> torch.Tensor:
        """Labelled cross-entropy plus the unlabelled term, in one forward pass where the
        method allows (batch-norm statistics over labelled and unlabelled galaxies alike)."""
        xu = self.stream.next().to(x_lab.device, non_blocking=True)
        if self.kind == "fixmatch":
            return self._fixmatch(net, x_lab, y_lab, xu, gen)
        if self.kind == "distill":
            return self._distill(net, x_lab, y_lab, xu, gen)
        return self._ssl(net, x_lab, y_lab, xu, gen)

    def _distill(self, net: nn.Module, x_lab: torch.Tensor, y_lab: torch.Tensor,
                 xu: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        assert self.teacher is not None
        with torch.no_grad():
            target = torch.softmax(self.teacher(self._view(self.weak, xu, gen)).float(), dim=1)
        logits = net(torch.cat([x_lab, self._view(self.strong, xu, gen)])).float()
        lab, unl = logits[:len(x_lab)], logits[len(x_lab):]
        sup = nn.functional.cross_entropy(lab, y_lab, weight=self.class_weight)
        unsup = -(target * torch.log_softmax(unl, dim=1)).sum(1).mean()
        self.last = {"unsup": float(unsup.detach())}
        return sup + self.recipe.unlabelled_weight * unsup

    def _fixmatch(self, net: nn.Module, x_lab: torch.Tensor, y_lab: torch.Tensor,
                  xu: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        r = self.recipe
        with torch.no_grad():
            p = torch.softmax(net(self._view(self.weak, xu, gen)).float(), dim=1)
            if self.seen == 0:  # a few hundred steps: start from the first batch, not uniform
                self.running.copy_(p.mean(0))
            else:
                self.running.mul_(ALIGN_MOMENTUM).add_((1 - ALIGN_MOMENTUM) * p.mean(0))
            self.seen += 1
            p = p * (self.prior / self.running.clamp_min(1e-6))
            p = p / p.sum(1, keepdim=True)
            conf, pseudo = p.max(1)
            mask = (conf >= r.threshold).float()
        strong = self._view(self.strong, xu, gen)
        logits = net(torch.cat([x_lab, strong])).float()
        lab, unl = logits[:len(x_lab)], logits[len(x_lab):]
        sup = nn.functional.cross_entropy(lab, y_lab, weight=self.class_weight)
        w = self.class_weight[pseudo] * mask
        per = nn.functional.cross_entropy(unl, pseudo, reduction="none")
        unsup = (w * per).sum() / max(1.0, float(len(xu)))
        self.last = {"mask": float(mask.mean()), "unsup": float(unsup.detach())}
        return sup + r.unlabelled_weight * unsup

    def _ssl(self, net: nn.Module, x_lab: torch.Tensor, y_lab: torch.Tensor,
             xu: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        encoder, head = net[0], net[-1]
        v1, v2 = self._view(self.strong, xu, gen), self._view(self.strong, xu, gen)
        reps = encoder(torch.cat([x_lab, v1, v2]))
        lab, u = reps[:len(x_lab)], reps[len(x_lab):]
        sup = nn.functional.cross_entropy(head(lab).float(), y_lab, weight=self.class_weight)
        assert self.head is not None
        z1, z2 = self.head(u).float().chunk(2)
        unsup = self.criterion(z1, z2)
        self.last = {"unsup": float(unsup.detach())}
        return sup + self.recipe.unlabelled_weight * unsup


def unlabelled_rows(n_total: int, labelled: np.ndarray, excluded: np.ndarray | None = None
                    ) -> np.ndarray:
    """Rows of a dataset of ``n_total`` galaxies usable as unlabelled: every row but the
    labelled ones and the ``excluded`` ones (an evaluation's test split)."""
    keep = np.ones(int(n_total), dtype=bool)
    keep[np.asarray(labelled, dtype=np.int64)] = False
    if excluded is not None:
        keep[np.asarray(excluded, dtype=np.int64)] = False
    return np.flatnonzero(keep)
