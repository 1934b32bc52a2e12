"""Training a classifier from a few labels: a linear probe, or fine-tuning the whole encoder.

The recipe (:class:`Recipe`) and why each part is there:

- **Linear probe first** (``probe_init``): the head starts as the cross-validated, class-weighted
  logistic regression on the frozen representation (standardisation folded into its weights),
  so fine-tuning starts from the probe's accuracy instead of a random head whose large early
  gradients wreck the pre-trained features (LP-FT, Kumar et al. 2022).
- **Layer-wise learning rates**: the head trains at ``lr``, the encoder's top at ``encoder_lr``
  and each block below it at ``layer_decay`` times the one above: early filters stay close to
  their pre-training, late ones adapt.
- **Frozen batch-norm statistics** (``freeze_bn``): with 100 labels a batch is most of the
  training set, and re-estimated statistics drift from the ones the encoder was trained with.
- **Class weights** inverse to frequency, as every evaluator uses: the headline metric is
  balanced accuracy.
- **Augmentations**: the run's own pipeline (rotation/flip, seeing, band gains, noise, crop,
  cutout) by default, as the supervised ``cnn`` baseline uses; ``rotate_flip`` or ``none``.
- **Early stopping** on a held-out, stratified part of the labels (``val_fraction``): the
  weights with the best validation balanced accuracy (ties: lower loss) are kept, checked every
  ``eval_every`` steps from step 0 (the probe itself), and training stops after ``patience``
  checks without improvement.

Training runs in Lightning (one device); the steps follow the ``cnn`` evaluator's rule
(``epochs`` passes over the N labels, at least ``min_steps``, at most ``max_steps``).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from astroclr.plugin.specs import AstroclrError
from astroclr.train.devices import quiet_lightning
from astroclr.train.model import warmup_cosine

if TYPE_CHECKING:
    from astroclr.data.augment import Pipeline

MODES = ("finetune", "probe")
AUGMENTS = ("run", "rotate_flip", "none")


@dataclass(frozen=True)
class Recipe:
    """How a classifier is trained (see the module docstring for why)."""

    mode: str = "finetune"
    epochs: int = 30
    min_steps: int = 200
    max_steps: int = 2000
    batch_size: int = 128
    lr: float = 1e-3
    encoder_lr: float = 3e-4
    layer_decay: float = 0.8
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.1
    val_fraction: float = 0.2
    eval_every: int = 20
    patience: int = 6
    freeze_bn: bool = True
    probe_init: bool = True
    augment: str = "run"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise AstroclrError(f"--mode {self.mode!r}: choose {' or '.join(MODES)}")
        if self.augment not in AUGMENTS:
            raise AstroclrError(f"augment {self.augment!r}: choose one of {', '.join(AUGMENTS)}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise AstroclrError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        for name in ("epochs", "batch_size", "eval_every"):
            if getattr(self, name) < 1:
                raise AstroclrError(f"recipe {name} must be >= 1, got {getattr(self, name)}")

    def steps(self, n_labels: int) -> int:
        """Optimiser steps for N labels: the ``cnn`` evaluator's rule."""
        steps = max(math.ceil(n_labels / self.batch_size) * self.epochs, self.min_steps)
        return min(steps, self.max_steps) if self.max_steps > 0 else steps

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Recipe":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


# -- choosing galaxies --------------------------------------------------------------------------

def stratified_subset(idx: np.ndarray, y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` of the galaxies ``idx`` (labels ``y``) with class proportions kept, seeded; each
    class present keeps at least one member when ``n`` allows."""
    if n >= len(idx):
        return np.asarray(idx)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    share = np.maximum(1, np.floor(counts * n / len(idx))).astype(int)
    while share.sum() > n:  # a class at its floor of one cannot give more
        share[np.argmax(share)] -= 1
    rest = n - share.sum()
    frac = counts * n / len(idx) - share
    for i in np.argsort(-frac)[:rest]:
        share[i] += 1
    parts = [rng.permutation(idx[y == c])[:k] for c, k in zip(classes, share)]
    return np.sort(np.concatenate(parts))


def holdout(idx: np.ndarray, y: np.ndarray, fraction: float, seed: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """A stratified (train, validation) split of ``idx``; every class keeps a training member,
    and a class of two or more gives at least one galaxy to validation."""
    if fraction <= 0:
        return np.asarray(idx), np.empty(0, dtype=np.int64)
    rng = np.random.default_rng([seed, 1])
    train, val = [], []
    for c in np.unique(y):
        members = rng.permutation(idx[y == c])
        k = min(max(1, int(round(len(members) * fraction))), len(members) - 1)
        val.append(members[:k])
        train.append(members[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


# -- the linear probe as a head -----------------------------------------------------------------

def probe_head(features: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """A linear head (W (K, D), b (K,)) on raw features: standardisation + class-weighted
    logistic regression, its strength cross-validated (balanced accuracy) on these galaxies.

    ``y`` holds class indices 0..K-1. The standardisation is folded into W and b, and a binary
    model's single logit z becomes the two logits (0, z), which softmax turns into the same
    probabilities.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

    mu = features.mean(axis=0)
    sigma = features.std(axis=0)
    sigma = np.where(sigma > 1e-8, sigma, 1.0)
    z = (features - mu) / sigma
    counts = np.bincount(y, minlength=n_classes)
    folds = int(min(5, counts[counts > 0].min()))
    if folds >= 2:
        clf = LogisticRegressionCV(Cs=np.logspace(-3, 1, 7), cv=folds, max_iter=2000,
                                   class_weight="balanced", scoring="balanced_accuracy")
    else:
        clf = LogisticRegression(max_iter=2000, C=1.0, class_weight="balanced")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", FutureWarning)
        clf.fit(z, y)
    coef, intercept = np.asarray(clf.coef_), np.asarray(clf.intercept_)
    present = np.asarray(clf.classes_)
    W = np.zeros((n_classes, features.shape[1]))
    b = np.full(n_classes, -1e4)  # a class absent from these labels is never predicted
    if len(present) == 2 and coef.shape[0] == 1:
        W[present[1]], b[present[1]] = coef[0], intercept[0]
        W[present[0]], b[present[0]] = 0.0, 0.0
    else:
        W[present], b[present] = coef, intercept
    W_raw = W / sigma
    b_raw = b - W_raw @ mu
    return W_raw.astype(np.float32), b_raw.astype(np.float32)


def set_head(net: nn.Module, W: np.ndarray, b: np.ndarray) -> None:
    head = net[-1]
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(W))
        head.bias.copy_(torch.from_numpy(b))


@torch.no_grad()
def forward_all(module: nn.Module, images: np.ndarray, idx: np.ndarray, device: torch.device,
                batch_size: int = 256) -> np.ndarray:
    """``module`` in eval mode over the images ``idx`` (sorted reads), in ``idx`` order."""
    was = module.training
    module.eval()
    out = []
    try:
        for a in range(0, len(idx), batch_size):
            rows = idx[a:a + batch_size]
            x = torch.from_numpy(np.asarray(images[rows], dtype=np.float32)).to(device)
            out.append(module(x).float().cpu().numpy())
    finally:
        module.train(was)
    return np.concatenate(out) if out else np.empty((0, 0), dtype=np.float32)


# -- fine-tuning --------------------------------------------------------------------------------

def encoder_blocks(encoder: nn.Module) -> list[list[nn.Parameter]]:
    """The encoder's parameters in blocks from the input up (the backbone's top-level stages,
    then the representation layer), for layer-wise learning rates."""
    m = encoder.backbone
    while True:
        kids = [c for c in m.children() if any(True for _ in c.parameters())]
        if len(kids) == 1:
            m = kids[0]
            continue
        break
    blocks = [list(c.parameters()) for c in kids] or [list(encoder.backbone.parameters())]
    return blocks + [list(encoder.representation.parameters())]


class LabelledBatches(Dataset):
    """Indexing with an array of positions returns (images, class indices), sorted reads."""

    def __init__(self, images: np.ndarray, rows: np.ndarray, y: np.ndarray) -> None:
        self.images, self.rows, self.y = images, rows, y

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, pos: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        pos = pos[np.argsort(self.rows[pos])]  # sorted reads are fast on a memory map
        x = torch.from_numpy(np.asarray(self.images[self.rows[pos]], dtype=np.float32))
        return x, torch.from_numpy(self.y[pos].astype(np.int64))


class RandomBatches(Sampler[np.ndarray]):
    """``steps`` batches of positions: a fresh seeded permutation per pass over the data."""

    def __init__(self, n: int, batch_size: int, steps: int, seed: int) -> None:
        self.n, self.batch_size, self.steps, self.seed = n, min(batch_size, n), steps, seed

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[np.ndarray]:
        rng = np.random.default_rng([self.seed, 2])
        order = np.empty(0, dtype=np.int64)
        for _ in range(self.steps):
            if len(order) < self.batch_size:
                order = np.concatenate([order, rng.permutation(self.n)])
            pick, order = order[:self.batch_size], order[self.batch_size:]
            yield pick


class FineTuner(L.LightningModule):
    """Encoder + head trained end to end with layer-wise learning rates and frozen BN stats."""

    def __init__(self, net: nn.Module, recipe: Recipe, class_weight: torch.Tensor,
                 augment: "Pipeline | None", seed: int, total_steps: int) -> None:
        super().__init__()
        self.net = net
        self.recipe = recipe
        self.register_buffer("class_weight", class_weight)
        self.augment = augment
        self.seed = seed
        self.total_steps = total_steps
        self._gen: torch.Generator | None = None

    def train(self, mode: bool = True) -> "FineTuner":
        super().train(mode)
        if mode and self.recipe.freeze_bn:
            for m in self.net.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        if self.augment is not None:
            if self._gen is None or self._gen.device != x.device:
                self._gen = torch.Generator(device=x.device).manual_seed(self.seed)
            x = self.augment(x, self._gen)
        loss = nn.functional.cross_entropy(self(x), y, weight=self.class_weight)
        self.last_loss = float(loss.detach())
        return loss

    def configure_optimizers(self) -> Any:
        r = self.recipe
        blocks = encoder_blocks(self.net[0])
        groups = [{"params": p, "lr": r.encoder_lr * r.layer_decay ** (len(blocks) - 1 - i)}
                  for i, p in enumerate(blocks) if p]
        groups.append({"params": list(self.net[-1].parameters()), "lr": r.lr})
        opt = torch.optim.AdamW(groups, weight_decay=r.weight_decay)
        warmup = int(r.warmup_fraction * self.total_steps)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: warmup_cosine(step, max(1, self.total_steps), warmup))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def validation_scores(proba: np.ndarray, y: np.ndarray, weight: np.ndarray) -> dict[str, float]:
    """Balanced accuracy, accuracy and class-weighted cross-entropy of probabilities."""
    from sklearn.metrics import balanced_accuracy_score

    pred = np.argmax(proba, axis=1)
    p = np.clip(proba[np.arange(len(y)), y], 1e-12, 1.0)
    w = weight[y]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bal = float(balanced_accuracy_score(y, pred))
    return {"balanced_accuracy": bal, "accuracy": float((pred == y).mean()),
            "loss": float(-(w * np.log(p)).sum() / w.sum()), "n": int(len(y))}


class EarlyStopping(L.Callback):
    """Validates every ``eval_every`` steps (and at step 0), keeps the best weights in memory,
    stops after ``patience`` checks without improvement, and restores the best at the end."""

    def __init__(self, images: np.ndarray, rows: np.ndarray, y: np.ndarray, weight: np.ndarray,
                 every: int, patience: int) -> None:
        self.images, self.rows, self.y, self.weight = images, rows, y, weight
        self.every, self.patience = every, patience
        self.best: tuple[float, float] | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_step = 0
        self.best_scores: dict[str, float] = {}
        self.bad = 0
        self.history: list[dict[str, float]] = []

    def check(self, trainer: L.Trainer, module: FineTuner) -> None:
        was = module.training
        probs = torch.softmax(torch.from_numpy(
            forward_all(module.net, self.images, self.rows, module.device)), dim=1).numpy()
        module.train(was)  # FineTuner.train, which keeps batch-norm statistics frozen
        scores = validation_scores(probs, self.y, self.weight)
        step = int(trainer.global_step)
        self.history.append({"step": step, **scores})
        key = (scores["balanced_accuracy"], -scores["loss"])
        if self.best is None or key > self.best:
            self.best, self.best_step, self.best_scores, self.bad = key, step, scores, 0
            self.best_state = {k: v.detach().clone() for k, v in module.net.state_dict().items()}
        else:
            self.bad += 1
            if self.patience and self.bad >= self.patience:
                trainer.should_stop = True

    def on_train_start(self, trainer: L.Trainer, module: FineTuner) -> None:
        self.check(trainer, module)

    def on_train_batch_end(self, trainer: L.Trainer, module: FineTuner, *args: Any) -> None:
        if trainer.global_step % self.every == 0:
            self.check(trainer, module)

    def on_train_end(self, trainer: L.Trainer, module: FineTuner) -> None:
        if not self.history or self.history[-1]["step"] != trainer.global_step:
            self.check(trainer, module)
        if self.best_state is not None:
            module.net.load_state_dict(self.best_state)


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Weights inverse to class frequency (mean 1 over the galaxies), as the evaluators use."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    return np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / n_classes, 0.0)


def train_classifier(net: nn.Module, images: np.ndarray, train_rows: np.ndarray,
                     y_train: np.ndarray, val_rows: np.ndarray, y_val: np.ndarray,
                     n_classes: int, recipe: Recipe, *, augment: "Pipeline | None" = None,
                     seed: int = 0, device: str = "cpu", n_labels: int | None = None,
                     progress: bool = False) -> dict[str, Any]:
    """Train ``net`` (an encoder + linear head, see :func:`classifier_net`) on the labelled
    rows; returns a log (steps, seconds, validation history and best scores).

    ``y_*`` hold class indices 0..K-1; ``n_labels`` (default: train + validation) sets the
    number of steps. In ``probe`` mode only the head is fitted (to the frozen representation).
    """
    dev = torch.device(device)
    net.to(dev)
    weight = class_weights(y_train, n_classes)
    start = time.perf_counter()
    log: dict[str, Any] = {"mode": recipe.mode, "n_train": int(len(train_rows)),
                           "n_val": int(len(val_rows))}
    if recipe.mode == "probe" or recipe.probe_init:
        feats = forward_all(net[0], images, train_rows, dev)
        W, b = probe_head(feats, y_train, n_classes)
        set_head(net, W, b)
    if recipe.mode == "probe":
        log["steps"] = 0
    else:
        quiet_lightning()
        import warnings

        # the frozen batch-norm layers are in eval mode on purpose (freeze_bn)
        warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")
        n = n_labels if n_labels is not None else len(train_rows) + len(val_rows)
        steps = recipe.steps(n)
        stopper = EarlyStopping(images, val_rows, y_val, weight, recipe.eval_every,
                                recipe.patience) if len(val_rows) else None
        module = FineTuner(net, recipe, torch.as_tensor(weight, dtype=torch.float32),
                           augment if recipe.augment != "none" else None, seed, steps)
        loader = DataLoader(LabelledBatches(images, train_rows, y_train),
                            sampler=RandomBatches(len(train_rows), recipe.batch_size, steps, seed),
                            batch_size=None, num_workers=0)
        trainer = L.Trainer(accelerator="gpu" if dev.type == "cuda" else "cpu", devices=1,
                            max_epochs=1, max_steps=steps, logger=False,
                            enable_checkpointing=False, enable_progress_bar=progress,
                            enable_model_summary=False, num_sanity_val_steps=0,
                            limit_val_batches=0, callbacks=[stopper] if stopper else [],
                            deterministic=False)
        torch.manual_seed(seed)
        trainer.fit(module, train_dataloaders=loader)
        net.eval()
        log.update(steps=int(trainer.global_step), planned_steps=steps)
        if stopper is not None:
            log.update(best_step=stopper.best_step, history=stopper.history)
    if len(val_rows):
        probs = torch.softmax(torch.from_numpy(forward_all(net, images, val_rows, dev)),
                              dim=1).numpy()
        log["validation"] = validation_scores(probs, y_val, weight)
    log["seconds"] = round(time.perf_counter() - start, 2)
    return log


def fresh_copy(module: nn.Module) -> nn.Module:
    """A deep copy (a trained encoder is fine-tuned without changing the caller's)."""
    return copy.deepcopy(module)


def select_augment(kind: str, pipeline: "Pipeline | None", survey: Any = None) -> "Pipeline | None":
    """The augmentations of a recipe: the run's ``pipeline`` (``run``), its rotation/flip step
    alone (``rotate_flip``; built with default parameters when the run has none), or None."""
    from astroclr.data.augment import Pipeline, build_pipeline, resolve_augment_config

    if kind == "none":
        return None
    if kind == "run":
        return pipeline
    steps = [s for s in (pipeline.steps if pipeline is not None else []) if s.name == "rotate_flip"]
    if steps:
        return Pipeline(steps)
    if survey is None:
        return None
    from astroclr.plugin.registry import get_registry

    registry = get_registry()
    names, params = resolve_augment_config(registry, {"pipeline": ["rotate_flip"]})
    return build_pipeline(registry, survey, names, params)
