"""The ``finetune`` evaluator: the trained encoder fine-tuned on the same splits as ``probe`` and
``cnn``, with the same augmentations, a row in the label-efficiency table; and the recipe's
parts (stratified label choice, held-out validation, the probe as the starting head)."""

from __future__ import annotations

import numpy as np
import pytest
from test_eval_cnn import SpyAugment, TinyNet
from test_eval_probe import informative, make_galaxies

from astroclr.classify.parts import holdout, probe_head, stratified_subset
from astroclr.evaluate.context import EvalContext, run_evaluators
from astroclr.plugin.specs import AstroclrError


@pytest.fixture(autouse=True)
def one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def trained_encoder():
    """Stands in for the run's trained encoder: a fixed TinyNet with a 4-number representation."""
    import torch

    from astroclr.train.model import Encoder

    torch.manual_seed(7)
    return Encoder(TinyNet()(), 4)


FAST = {"epochs": 1, "min_steps": 20, "max_steps": 20, "batch_size": 16}


def test_finetune_runs_on_the_probe_and_cnn_splits_with_their_augmentations(tmp_path, registry):
    g = make_galaxies(n=160)
    aug = SpyAugment()
    ctx = EvalContext(g, informative(g), tmp_path / "figures", seeds=(0, 1), train_sizes=(40, 1000),
                      build_backbone=TinyNet(), augment=aug, trained_encoder=trained_encoder)
    res = run_evaluators(registry, ["probe", "finetune", "cnn", "label_efficiency"],
                         {"probe": {"models": ["linear"]},
                          "finetune": {**FAST, "sizes": [40], "eval_every": 5, "patience": 0,
                                       "val_fraction": 0.2},
                          "cnn": {**FAST, "sizes": [40]}}, ctx)
    ft, probe, cnn = (res[k].metrics for k in ("finetune", "probe", "cnn"))
    assert ft["sizes"] == cnn["sizes"] == [40]
    for seed in ("0", "1"):
        for other in (probe, cnn):
            assert ft["splits"][seed]["test_sha1"] == other["splits"][seed]["test_sha1"]
            assert ft["splits"][seed]["train_sha1"]["40"] == other["splits"][seed]["train_sha1"]["40"]
    assert ft["steps"] == [20, 20] == cnn["steps"]  # patience 0: never stops early
    # every training step of both augmented; FixMatch also augments its unlabelled batch
    assert aug.calls == 2 * 20 * 2 + 2 * 20
    assert ft["augmentations"] == ["flip"] and ft["recipe"]["freeze_bn"] is False
    assert all(0.0 <= v <= 1.0 for v in ft["validation_balanced_accuracy"])
    curves = res["label_efficiency"].metrics["curves"]
    assert "fine-tuned + FixMatch" in curves
    assert "| fine-tuned + FixMatch |" in res["label_efficiency"].markdown


def test_finetune_needs_the_runs_encoder(tmp_path, registry):
    g = make_galaxies(n=80)
    ctx = EvalContext(g, informative(g), tmp_path / "figures", seeds=(0,), train_sizes=(20,))
    with pytest.raises(AstroclrError, match="evaluator 'finetune': needs the run's trained encoder"):
        run_evaluators(registry, ["finetune"], {"finetune": FAST}, ctx)


def test_finetune_is_not_a_default_evaluator(registry):
    from astroclr.config import RUN_PARAMS

    default = next(p.default for p in RUN_PARAMS if p.name == "evaluators")
    assert "finetune" not in default and "cnn" not in default
    assert registry.get("evaluator", "finetune").params


# -- the recipe's parts -------------------------------------------------------------------------

def test_stratified_subset_keeps_proportions_and_is_seeded():
    idx = np.arange(1000)
    y = (idx % 10 < 3).astype(int)  # 30 % class 1
    a = stratified_subset(idx, y, 100, seed=3)
    assert len(a) == 100 and y[a].sum() == 30
    np.testing.assert_array_equal(a, stratified_subset(idx, y, 100, seed=3))
    assert not np.array_equal(a, stratified_subset(idx, y, 100, seed=4))


def test_holdout_keeps_every_class_on_both_sides():
    idx = np.arange(40, 60)
    y = np.r_[np.zeros(17, int), np.ones(3, int)]
    train, val = holdout(idx, y, 0.2, seed=0)
    assert len(train) + len(val) == 20 and not set(train) & set(val)
    assert set(y[np.searchsorted(idx, val)]) == {0, 1} == set(y[np.searchsorted(idx, train)])


def test_probe_head_on_raw_features_equals_the_standardised_probe():
    """The probe's standardisation folded into the head gives the same probabilities."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 5.0, size=(60, 4))
    y = (X[:, 0] + rng.normal(size=60) > 3).astype(int)
    W, b = probe_head(X, y, 2)
    logits = X @ W.T + b
    ours = np.exp(logits - logits.max(1, keepdims=True))
    ours /= ours.sum(1, keepdims=True)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, class_weight="balanced",
                                                              C=_chosen_c(X, y)))
    pipe.fit(X, y)
    np.testing.assert_allclose(ours, pipe.predict_proba(X), atol=2e-3)  # float32 head


def _chosen_c(X, y):
    import warnings

    from sklearn.linear_model import LogisticRegressionCV

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cv = LogisticRegressionCV(Cs=np.logspace(-3, 1, 7), cv=5, max_iter=2000,
                                  class_weight="balanced", scoring="balanced_accuracy")
        cv.fit((X - X.mean(0)) / X.std(0), y)
    return float(np.ravel(cv.C_)[0])
