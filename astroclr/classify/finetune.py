"""Training a classifier from a few labels: a linear probe, or fine-tuning the whole encoder.

The recipe (:class:`~astroclr.classify.recipe.Recipe`) and why each part is there:

- **Linear probe first** (``probe_init``): the head starts as the cross-validated, class-weighted
  logistic regression on the frozen representation (standardisation folded into its weights),
  so fine-tuning starts from the probe's accuracy instead of a random head whose large early
  gradients wreck the pre-trained features (LP-FT, Kumar et al. 2022).
- **One learning rate, updated batch-norm statistics, all N labels** by default: the ``cnn``
  baseline's recipe (1e-3 everywhere, statistics re-estimated, no labels held out), from the
  probe-initialised encoder. Measured on the default run over three splits (docs/quality.md),
  it scored 0.777 / 0.812 / 0.837 at N = 100 / 300 / 1000 against 0.729 / 0.797 / 0.810 for
  the cautious recipe (encoder 3e-4 × 0.8 per block, frozen statistics, early stopping on a
  fifth of the labels) and 0.771 / 0.801 / 0.819 for the linear probe alone: with a few hundred
  labels, a held-out fifth costs more than early stopping on it gains, and its 20–60 galaxies
  pick the stopping step by noise.
- **Layer-wise learning rates** (``encoder_lr``, ``layer_decay`` < 1) and **frozen batch-norm
  statistics** (``freeze_bn``) remain options, for encoders whose pre-training should be kept
  closer.
- **Class weights** inverse to frequency, as every evaluator uses: the headline metric is
  balanced accuracy.
- **Augmentations**: the run's own pipeline (rotation/flip, seeing, band gains, noise, crop,
  cutout) by default, as the supervised ``cnn`` baseline uses; ``rotate_flip`` or ``none``.
- **Early stopping**, when ``val_fraction`` > 0, on a held-out, stratified part of the labels: the
  weights with the best validation balanced accuracy (ties: lower loss) are kept, checked every
  ``eval_every`` steps from step 0 (the probe itself), and training stops after ``patience``
  checks without improvement.

Training runs in Lightning (one device); the steps follow the ``cnn`` evaluator's rule
(``epochs`` passes over the N labels, at least ``min_steps``, at most ``max_steps``).
"""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any, Iterator

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from astroclr.classify.parts import class_weights, forward_all, probe_head, set_head
from astroclr.classify.recipe import Recipe
from astroclr.classify.semisup import UnlabelledStream, UnlabelledTerm, weak_pipeline
from astroclr.train.devices import quiet_lightning
from astroclr.train.model import warmup_cosine

if TYPE_CHECKING:
    from astroclr.data.augment import Pipeline

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
                 augment: "Pipeline | None", seed: int, total_steps: int,
                 unlabelled: "UnlabelledTerm | None" = None) -> None:
        super().__init__()
        self.net = net
        self.unlabelled = unlabelled
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
        if self._gen is None or self._gen.device != x.device:
            self._gen = torch.Generator(device=x.device).manual_seed(self.seed)
        if self.augment is not None:
            x = self.augment(x, self._gen)
        if self.unlabelled is not None:
            loss = self.unlabelled.loss(self.net, x, y, self._gen)
        else:
            loss = nn.functional.cross_entropy(self(x), y, weight=self.class_weight)
        self.last_loss = float(loss.detach())
        return loss

    def configure_optimizers(self) -> Any:
        r = self.recipe
        blocks = encoder_blocks(self.net[0])
        groups = [{"params": p, "lr": r.encoder_lr * r.layer_decay ** (len(blocks) - 1 - i)}
                  for i, p in enumerate(blocks) if p]
        groups.append({"params": list(self.net[-1].parameters()), "lr": r.lr})
        if self.unlabelled is not None and self.unlabelled.head is not None:
            groups.append({"params": list(self.unlabelled.head.parameters()), "lr": r.lr})
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


def train_classifier(net: nn.Module, images: np.ndarray, train_rows: np.ndarray,
                     y_train: np.ndarray, val_rows: np.ndarray, y_val: np.ndarray,
                     n_classes: int, recipe: Recipe, *, augment: "Pipeline | None" = None,
                     seed: int = 0, device: str = "cpu", n_labels: int | None = None,
                     progress: bool = False, unlabelled_rows: np.ndarray | None = None,
                     survey: Any = None) -> dict[str, Any]:
    """Train ``net`` (an encoder + linear head, see :func:`classifier_net`) on the labelled
    rows; returns a log (steps, seconds, validation history and best scores).

    ``y_*`` hold class indices 0..K-1; ``n_labels`` (default: train + validation) sets the
    number of steps. In ``probe`` mode only the head is fitted (to the frozen representation).
    With a semi-supervised recipe, ``unlabelled_rows`` (galaxies whose labels are never read)
    take part as :mod:`astroclr.classify.semisup` describes; ``survey`` builds its weak view.
    """
    dev = torch.device(device)
    net.to(dev)
    weight = class_weights(y_train, n_classes)
    start = time.perf_counter()
    log: dict[str, Any] = {"mode": recipe.mode, "n_train": int(len(train_rows)),
                           "n_val": int(len(val_rows))}
    if recipe.mode == "probe" or (recipe.probe_init and recipe.init == "pretrained"):
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
        term = None
        if recipe.semi_supervised and unlabelled_rows is not None and len(unlabelled_rows):
            teacher = None
            if recipe.unlabelled == "distill":  # the teacher: the same start, labels alone
                teacher = copy.deepcopy(net)
                log["teacher"] = train_classifier(
                    teacher, images, train_rows, y_train, val_rows, y_val, n_classes,
                    recipe.model_copy(update={"unlabelled": "none"}), augment=augment,
                    seed=seed, device=device, n_labels=n_labels)
            term = UnlabelledTerm(recipe, UnlabelledStream(images, unlabelled_rows,
                                                           recipe.unlabelled_batch, seed),
                                  weak_pipeline(survey) if survey is not None else None,
                                  augment, torch.as_tensor(weight, dtype=torch.float32),
                                  np.bincount(y_train, minlength=n_classes).astype(np.float64),
                                  int(net[-1].in_features), teacher)
            log.update(unlabelled=recipe.unlabelled, n_unlabelled=int(len(unlabelled_rows)))
        module = FineTuner(net, recipe, torch.as_tensor(weight, dtype=torch.float32),
                           augment if recipe.augment != "none" else None, seed, steps, term)
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
        if term is not None:
            log.update(unlabelled_last=term.last)
        if stopper is not None:
            log.update(best_step=stopper.best_step, history=stopper.history)
    if len(val_rows):
        probs = torch.softmax(torch.from_numpy(forward_all(net, images, val_rows, dev)),
                              dim=1).numpy()
        log["validation"] = validation_scores(probs, y_val, weight)
    log["seconds"] = round(time.perf_counter() - start, 2)
    return log


