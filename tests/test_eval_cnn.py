"""The supervised CNN baseline: same galaxies, same augmentations, its own wall-clock."""

from __future__ import annotations

import pytest
from test_eval_probe import informative, make_galaxies

from astroclr.evaluate.context import EvalContext, run_evaluators
from astroclr.plugin.specs import AstroclrError


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny convolutions: one thread avoids OpenMP spin-waits on a busy 2-core machine
    (measured 0.5 s vs 14 s for the same 80 steps)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class TinyNet:
    """A backbone factory: conv + pool, (B, 2, 8, 8) -> (B, 8); counts how often it is built."""

    def __init__(self):
        self.built = 0

    def __call__(self):
        import torch.nn as nn

        self.built += 1
        net = nn.Sequential(nn.Conv2d(2, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        net.num_features = 8
        return net


class SpyAugment:
    """An augmentation pipeline that records what it saw (flip, seeded by the generator)."""

    names = ["flip"]

    def __init__(self):
        self.calls = 0
        self.first = None

    def __call__(self, x, generator):
        import torch

        self.calls += 1
        if self.first is None:
            self.first = torch.rand(1, generator=generator).item()
        return torch.flip(x, dims=[-1])


def _ctx(tmp_path, **kw):
    g = make_galaxies(n=160)
    return EvalContext(g, informative(g), tmp_path / "figures", seeds=(0, 1),
                       train_sizes=(40, 1000), build_backbone=TinyNet(), **kw)


FAST = {"epochs": 1, "min_steps": 40, "max_steps": 40, "batch_size": 32, "lr": 0.01}


def test_cnn_same_splits_as_probe_and_learns(tmp_path, registry):
    aug = SpyAugment()
    ctx = _ctx(tmp_path, augment=aug)
    res = run_evaluators(registry, ["probe", "cnn"],
                         {"probe": {"models": ["linear"]}, "cnn": {**FAST, "sizes": [40]}}, ctx)
    cnn, probe = res["cnn"].metrics, res["probe"].metrics
    assert cnn["sizes"] == [40]
    for seed in ("0", "1"):
        assert cnn["splits"][seed]["test_sha1"] == probe["splits"][seed]["test_sha1"]
        assert cnn["splits"][seed]["train_sha1"]["40"] == probe["splits"][seed]["train_sha1"]["40"]
    assert ctx.build_backbone.built == 2  # a fresh backbone per seed and size
    assert aug.calls == 2 * 40  # every training step augmented
    assert cnn["augmented"] is True and cnn["steps"] == [40, 40]
    assert len(cnn["train_seconds"]) == 2 and cnn["train_seconds_total"] > 0
    assert cnn["models"]["cnn"]["by_size"]["40"]["mean"]["balanced_accuracy"] > 0.75
    assert "flip" in res["cnn"].markdown and "Wall-clock" in res["cnn"].markdown


def test_cnn_without_augment_and_capped_sizes(tmp_path, registry):
    aug = SpyAugment()
    ctx = _ctx(tmp_path, augment=aug)
    ctx.seeds = (0,)
    res = run_evaluators(registry, ["cnn"], {"cnn": {**FAST, "min_steps": 3, "max_steps": 3,
                                                     "sizes": [5000], "augment": False}}, ctx)
    m = res["cnn"].metrics
    assert m["sizes"] == [len(ctx.split(0).train_pool)]  # capped at the pool
    assert aug.calls == 0 and m["augmented"] is False


def test_cnn_is_deterministic_per_seed(tmp_path, registry):
    runs = []
    for i in range(2):
        ctx = _ctx(tmp_path / str(i), augment=SpyAugment())
        ctx.seeds = (0,)
        m = run_evaluators(registry, ["cnn"], {"cnn": {**FAST, "min_steps": 5, "max_steps": 5,
                                                       "sizes": [40]}}, ctx)["cnn"].metrics
        runs.append(m["models"]["cnn"]["by_size"]["40"]["per_seed"][0]["confusion"])
    assert runs[0] == runs[1]


def test_steps_rule():
    """cnn and finetune share the recipe's rule: epochs passes, bounded by min and max steps."""
    from astroclr.classify.recipe import Recipe

    assert Recipe(batch_size=100, epochs=3, min_steps=0, max_steps=0).steps(1000) == 30
    assert Recipe(batch_size=100, epochs=3, min_steps=200, max_steps=0).steps(50) == 200
    assert Recipe(batch_size=100, epochs=30, min_steps=200, max_steps=2000).steps(10000) == 2000


def test_cnn_needs_a_backbone(tmp_path, registry):
    g = make_galaxies(n=40)
    ctx = EvalContext(g, informative(g), tmp_path / "f")
    with pytest.raises(AstroclrError, match="evaluator 'cnn': needs build_backbone"):
        run_evaluators(registry, ["cnn"], {}, ctx)
