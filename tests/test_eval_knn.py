"""kNN evaluator and the KNNMonitor training callback."""

from __future__ import annotations

import numpy as np
import pytest
from test_eval_probe import informative, make_galaxies

from astroclr.evaluate.context import EvalContext, run_evaluators


def test_knn_proba_by_hand():
    from astroclr_evaluators.knn import knn_proba

    train = np.array([[1.0, 0.0], [2.0, 0.1], [0.0, 1.0]])  # cosine: scale does not matter
    y = np.array([0, 0, 1])
    test = np.array([[5.0, 0.2], [0.1, 3.0]])
    p = knn_proba(train, y, test, np.array([0, 1]), k=1, weights="uniform")
    np.testing.assert_array_equal(p, [[1, 0], [0, 1]])
    p3 = knn_proba(train, y, test, np.array([0, 1]), k=3, weights="uniform")
    np.testing.assert_allclose(p3, [[2 / 3, 1 / 3], [2 / 3, 1 / 3]])
    # k larger than the training set is capped, not an error
    assert knn_proba(train, y, test, np.array([0, 1]), k=50).shape == (2, 2)


def test_knn_evaluator(tmp_path, registry):
    g = make_galaxies(n=200, n_classes=3)
    ctx = EvalContext(g, informative(g), tmp_path / "f", seeds=(0, 1), train_sizes=(30, 1000))
    res = run_evaluators(registry, ["probe", "knn"],
                         {"probe": {"models": ["linear"]}, "knn": {"k": 5}}, ctx)
    m = res["knn"].metrics
    assert m["kind"] == "classifier" and m["k"] == 5
    assert m["splits"] == res["probe"].metrics["splits"]
    top = m["models"]["knn"]["by_size"][str(m["sizes"][-1])]
    assert top["mean"]["accuracy"] > 0.9
    noise = np.random.default_rng(1).normal(size=(200, 16)).astype(np.float32)
    ctx2 = EvalContext(g, noise, tmp_path / "g", seeds=(0,), train_sizes=(1000,))
    m2 = run_evaluators(registry, ["knn"], {}, ctx2)["knn"].metrics
    assert m2["models"]["knn"]["by_size"][str(m2["sizes"][-1])]["mean"]["accuracy"] < 0.6


def test_knn_monitor_logs_during_training(tmp_path):
    import lightning as L
    import torch
    from torch import nn

    from astroclr_evaluators.knn import KNNMonitor

    torch.set_num_threads(1)
    g = make_galaxies(n=120)
    labels = g.labels()

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(128, 8))
            self.embedded_in_eval = []

        def embed_tensor(self, x):
            self.embedded_in_eval.append(not self.training)
            return self.net(x)

        def training_step(self, batch, _):
            (x,) = batch
            return self.net(x).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(
        torch.from_numpy(g.images)), batch_size=60)
    monitor = KNNMonitor.from_galaxies(g, n=100, every_n_epochs=2, k=5)
    assert len(monitor.labels) == 100
    module = Module()
    trainer = L.Trainer(max_epochs=4, callbacks=[monitor], logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu",
                        default_root_dir=tmp_path)
    trainer.fit(module, data)
    assert [e for e, _ in monitor.history] == [1, 3]
    assert all(0.0 <= a <= 1.0 for _, a in monitor.history)
    assert "knn_accuracy" in trainer.callback_metrics
    assert module.embedded_in_eval and all(module.embedded_in_eval)
    assert module.training  # mode restored
    # informative features: the monitor's accuracy is high
    class Oracle(nn.Module):
        training = False
        device = torch.device("cpu")

        def embed_tensor(self, x):
            return x[:, 0, :2, :].mean(-1)  # the rows the label brightens

    assert monitor.accuracy(Oracle()) > 0.9
    assert set(np.unique(labels)) == {0, 1}


def test_knn_monitor_needs_two_classes():
    from astroclr.plugin.specs import AstroclrError
    from astroclr_evaluators.knn import KNNMonitor

    with pytest.raises(AstroclrError, match="two label classes"):
        KNNMonitor(np.zeros((10, 1, 4, 4), np.float32), np.zeros(10, int))
