"""``knn``: k-nearest-neighbour accuracy (cosine) — and ``KNNMonitor`` to watch it in training.

kNN needs no training of its own, so it measures the geometry of the representation space
directly: do galaxies of the same type sit next to each other (by angle, as SimCLR's loss
compares them)? It runs on the same splits and sizes as the probe.

``KNNMonitor`` is a Lightning callback: every ``every_n_epochs`` epochs it embeds a fixed
labelled subset with ``pl_module.embed_tensor(x)`` and logs ``knn_accuracy`` (test accuracy of
a cosine kNN classifier on a fixed seeded split of that subset), so a training run shows
whether its representations are getting more useful, not just whether the loss falls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from astroclr.api import Task, checked_features, evaluate_classifiers
from astroclr_evaluators.common import markdown_section

if TYPE_CHECKING:
    from astroclr.api import EvalContext, EvalResult, Galaxies


def knn_proba(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, classes: np.ndarray,
              k: int, weights: str = "distance") -> np.ndarray:
    """Class probabilities of a cosine kNN vote (neighbours' similarity-weighted, or uniform).

    Written with numpy rather than scikit-learn so that the training callback runs on any
    array and the ``distance`` weighting uses cosine *similarity* (which cannot divide by 0
    for a duplicate galaxy, unlike scikit-learn's 1/distance).
    """
    def unit(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, dtype=np.float32)
        return a / np.clip(np.linalg.norm(a, axis=1, keepdims=True), 1e-12, None)

    k = max(1, min(int(k), len(train_x)))
    tr, te = unit(train_x), unit(test_x)
    onehot = (np.asarray(train_y)[:, None] == classes[None, :]).astype(np.float32)
    out = np.zeros((len(te), len(classes)))
    for start in range(0, len(te), 1024):  # bounded memory: 1024 x N similarities at a time
        sim = te[start:start + 1024] @ tr.T
        nn = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        w = np.take_along_axis(sim, nn, axis=1)
        # similarity in [-1, 1] -> weight in [0, 1]; uniform votes otherwise
        w = (w + 1.0) / 2.0 if weights == "distance" else np.ones_like(w)
        votes = np.einsum("qk,qkc->qc", w, onehot[nn])
        out[start:start + len(votes)] = votes
    total = out.sum(axis=1, keepdims=True)
    return np.where(total > 0, out / np.clip(total, 1e-12, None), 1.0 / len(classes))


def evaluate(context: "EvalContext", k: int = 20, weights: str = "distance") -> "EvalResult":
    from astroclr.api import EvalResult

    features = checked_features(context.representations, context, "knn")

    def model(task: Task) -> np.ndarray:
        return knn_proba(features[task.train_idx], task.y_train, features[task.test_idx],
                         task.classes, k, weights)

    metrics = evaluate_classifiers(context, "knn", {"knn": model},
                                   {"knn": f"{context.method_title} kNN (k={k}, cosine)"})
    metrics["k"] = int(k)
    metrics["weights"] = weights
    intro = (f"k-nearest-neighbour classifier on the representations: cosine similarity, "
             f"k = {k} (capped at N), {'similarity-weighted' if weights == 'distance' else 'uniform'}"
             f" votes. No training: this measures whether same-type galaxies are neighbours.")
    return EvalResult(metrics=metrics, markdown=markdown_section(metrics, intro))


def _make_monitor() -> type:
    """Define KNNMonitor on first use: importing Lightning costs seconds, and the ``knn``
    evaluator itself does not need it."""
    from lightning.pytorch.callbacks import Callback

    class KNNMonitor(Callback):  # type: ignore[misc, valid-type]
        """Log ``knn_accuracy`` of a labelled subset every ``every_n_epochs`` training epochs.

        ``images`` (n, C, H, W) and integer ``labels`` (n,; -1 = unlabelled, dropped) are a fixed
        subset, split once into kNN "train" and "test" galaxies with ``seed`` (stratified, the
        same :func:`astroclr.evaluate.splits.make_split` as the evaluators). The LightningModule must have
        ``embed_tensor(x) -> Tensor`` returning representations; it is called under
        ``torch.no_grad()`` in batches of ``batch_size`` on the module's device. The module's
        training mode is restored afterwards. ``history`` keeps ``(epoch, accuracy)`` pairs.

        Example::

            monitor = KNNMonitor.from_galaxies(galaxies, n=2000, every_n_epochs=5)
            trainer = lightning.Trainer(callbacks=[monitor], ...)
        """

        def __init__(self, images: Any, labels: Any, every_n_epochs: int = 1, k: int = 20,
                     test_fraction: float = 0.25, seed: int = 0, batch_size: int = 256,
                     log_name: str = "knn_accuracy") -> None:
            super().__init__()
            from astroclr.api import make_split

            labels = np.asarray(labels).astype(np.int64)
            if every_n_epochs < 1:
                raise ValueError("KNNMonitor: every_n_epochs must be at least 1")
            self.images = images
            self.labels = labels
            split = make_split(labels, seed, test_fraction)  # raises for fewer than two classes
            self.train_idx, self.test_idx = np.sort(split.train_pool), split.test
            self.classes = np.unique(labels[labels >= 0])
            self.every_n_epochs = int(every_n_epochs)
            self.k = int(k)
            self.batch_size = int(batch_size)
            self.log_name = log_name
            self.history: list[tuple[int, float]] = []

        @classmethod
        def from_galaxies(cls, galaxies: "Galaxies", label_column: str = "label", n: int = 2000,
                          seed: int = 0, **kwargs: Any) -> "KNNMonitor":
            """A monitor on up to ``n`` labelled galaxies drawn at random (with ``seed``)."""
            labels = galaxies.labels(label_column)
            labelled = np.flatnonzero(labels >= 0)
            rng = np.random.default_rng(seed)
            chosen = np.sort(rng.choice(labelled, min(n, len(labelled)), replace=False))
            images = np.asarray(galaxies.images[chosen], dtype=np.float32)
            return cls(images, labels[chosen], seed=seed, **kwargs)

        def embed(self, pl_module: Any) -> np.ndarray:
            """Representations of the subset's images (n, D)."""
            import torch

            device = getattr(pl_module, "device", torch.device("cpu"))
            was_training = pl_module.training
            out = []
            try:
                pl_module.eval()
                with torch.no_grad():
                    for start in range(0, len(self.labels), self.batch_size):
                        x = torch.as_tensor(np.asarray(self.images[start:start + self.batch_size]),
                                            dtype=torch.float32).to(device)
                        out.append(pl_module.embed_tensor(x).detach().float().cpu().numpy())
            finally:
                pl_module.train(was_training)
            return np.concatenate(out)

        def accuracy(self, pl_module: Any) -> float:
            feats = self.embed(pl_module)
            proba = knn_proba(feats[self.train_idx], self.labels[self.train_idx],
                              feats[self.test_idx], self.classes, self.k)
            pred = self.classes[np.argmax(proba, axis=1)]
            return float(np.mean(pred == self.labels[self.test_idx]))

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            epoch = int(trainer.current_epoch)
            if (epoch + 1) % self.every_n_epochs:
                return
            acc = self.accuracy(pl_module)
            self.history.append((epoch, acc))
            pl_module.log(self.log_name, acc, prog_bar=True, on_epoch=True, on_step=False)

    return KNNMonitor


def __getattr__(name: str) -> Any:
    # PEP 562: ``from astroclr_evaluators.knn import KNNMonitor`` builds the class lazily
    if name == "KNNMonitor":
        cls = _make_monitor()
        globals()["KNNMonitor"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
