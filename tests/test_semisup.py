"""Semi-supervised fine-tuning and its baseline: the unlabelled galaxies a recipe trains on (never
a test galaxy, never a labelled one), the FixMatch and SSL terms, and ``--init scratch``
starting from random weights on the labels alone (the ``cnn`` evaluator's code path)."""

from __future__ import annotations

import numpy as np
import pytest
from test_eval_cnn import TinyNet
from test_eval_finetune import FAST, one_torch_thread, trained_encoder  # noqa: F401 - fixture
from test_eval_probe import informative, make_galaxies

import astroclr.classify.semisup as semisup
from astroclr.classify.recipe import Recipe
from astroclr.evaluate.context import EvalContext, run_evaluators
from astroclr.plugin.specs import AstroclrError


@pytest.fixture()
def streams(monkeypatch):
    """Records the rows of every unlabelled stream built and every batch it serves."""
    seen: list[dict] = []
    init, nxt = semisup.UnlabelledStream.__init__, semisup.UnlabelledStream.next

    def spy_init(self, images, rows, batch_size, seed):
        init(self, images, rows, batch_size, seed)
        seen.append({"rows": np.asarray(rows).copy(), "served": []})
        self._record = seen[-1]["served"]

    def spy_next(self):
        before = self.order.copy() if len(self.order) >= self.batch_size else None
        batch = nxt(self)
        if before is not None:
            self._record.append(np.sort(self.rows[before[:self.batch_size]]))
        return batch

    monkeypatch.setattr(semisup.UnlabelledStream, "__init__", spy_init)
    monkeypatch.setattr(semisup.UnlabelledStream, "next", spy_next)
    return seen


def context(tmp_path, n=160, unlabelled=20):
    g = make_galaxies(n=n, unlabelled=unlabelled)
    return EvalContext(g, informative(g), tmp_path / "figures", seeds=(0,), train_sizes=(40,),
                       build_backbone=TinyNet(), trained_encoder=trained_encoder)


@pytest.mark.parametrize("kind", ["fixmatch", "ssl", "distill"])
def test_unlabelled_galaxies_are_outside_the_labelled_ones_and_the_test_split(tmp_path, registry,
                                                                              streams, kind):
    ctx = context(tmp_path)
    res = run_evaluators(registry, ["finetune"],
                         {"finetune": {**FAST, "sizes": [40], "unlabelled": kind,
                                       "unlabelled_batch": 16}}, ctx)["finetune"]
    split = ctx.split(0)
    assert len(streams) == 1
    rows = streams[0]["rows"]
    assert not np.isin(rows, split.test).any()          # never a test galaxy
    assert not np.isin(rows, split.train(40)).any()          # never a labelled one
    # the pool's unlabelled galaxies (label -1) and the train pool's unchosen ones take part
    assert np.isin(np.flatnonzero(ctx.labels() < 0), rows).all()
    assert len(rows) == len(ctx.galaxies) - len(split.test) - 40
    assert streams[0]["served"] and all(np.isin(b, rows).all() for b in streams[0]["served"])
    assert res.metrics["n_unlabelled"] == [len(rows)]


def test_no_unlabelled_galaxies_with_unlabelled_none(tmp_path, registry, streams):
    res = run_evaluators(registry, ["finetune"],
                         {"finetune": {**FAST, "sizes": [40], "unlabelled": "none"}},
                         context(tmp_path))["finetune"]
    assert streams == [] and res.metrics["n_unlabelled"] == [0]


def test_cnn_is_the_scratch_recipe_on_the_labels_alone(tmp_path, registry, streams):
    ctx = context(tmp_path)
    cnn = run_evaluators(registry, ["cnn"], {"cnn": {**FAST, "sizes": [40]}}, ctx)["cnn"]
    assert streams == []  # the supervised baseline never sees an unlabelled galaxy
    assert cnn.metrics["recipe"]["init"] == "scratch"
    assert cnn.metrics["recipe"]["probe_init"] is False and cnn.metrics["steps"] == [20]


def test_fixmatch_masks_pseudo_labels_below_the_threshold():
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(8, 2))
    images = np.random.default_rng(0).normal(size=(50, 2, 2, 2)).astype(np.float32)
    gen = torch.Generator().manual_seed(0)
    for threshold, some in ((1.0, False), (0.5, True)):
        term = semisup.UnlabelledTerm(Recipe(unlabelled="fixmatch", threshold=threshold),
                                      semisup.UnlabelledStream(images, np.arange(50), 16, 0),
                                      None, None, torch.ones(2), np.array([30.0, 20.0]), 8)
        x, y = torch.from_numpy(images[:8]), torch.zeros(8, dtype=torch.long)
        loss = term.loss(net, x, y, gen)
        assert torch.isfinite(loss)
        assert (term.last["mask"] > 0) is some  # a softmax of 2 classes is never 1.0 exactly
        assert (term.last["unsup"] > 0) is some


def test_unlabelled_rows_leave_out_labelled_and_excluded():
    rows = semisup.unlabelled_rows(10, np.array([1, 2]), np.array([5, 9]))
    assert rows.tolist() == [0, 3, 4, 6, 7, 8]


@pytest.mark.parametrize("field, value", [("init", "imagenet"), ("unlabelled", "mixmatch"),
                                          ("threshold", 0.0), ("unlabelled_batch", 0)])
def test_recipe_refuses_unknown_semi_supervised_settings(field, value):
    with pytest.raises(AstroclrError, match=f"recipe.{field}"):
        Recipe(**{field: value})


def test_scratch_and_probe_recipes_use_no_unlabelled_galaxies():
    assert Recipe().semi_supervised
    assert not Recipe(init="scratch").semi_supervised
    assert not Recipe(mode="probe").semi_supervised
    assert not Recipe(unlabelled="none").semi_supervised


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from test_classify import TINY

    import astroclr

    out = tmp_path_factory.mktemp("semisup") / "run"
    astroclr.run(out=out, backbone="smallcnn", epochs=1, progress=False,
                 sets=[TINY[i + 1] for i in range(0, len(TINY), 2)])
    return out


@pytest.mark.parametrize("init", ["pretrained", "scratch"])
def test_finetune_init_scratch_starts_from_random_weights(tiny_run, tmp_path, capsys, init):
    import torch
    from test_classify import FAST, cli

    import astroclr

    out = tmp_path / "clf"
    # a learning rate of 1e-9: the weights stay where they started (seed 3: not the run.s own
    # initial weights, which a two-step run has barely left)
    code, _, err = cli(["finetune", str(tiny_run), "--out", str(out), "--labels", "40",
                        "--init", init, "--unlabelled", "none", "--quiet", *FAST, "--seed", "3",
                        "--set", "recipe.lr=1e-9", "--set", "recipe.encoder_lr=1e-9"], capsys)
    assert code == 0, err
    run = astroclr.load(tiny_run, device="cpu").encoder.state_dict()
    clf = astroclr.load_classifier(out, device="cpu").net[0].state_dict()
    convs = [k for k, v in run.items() if v.dim() == 4]
    gap = max(float((run[k] - clf[k]).abs().max()) for k in convs)
    if init == "pretrained":
        assert gap < 1e-5
    else:
        assert gap > 1e-2  # other weights altogether
        assert astroclr.load_classifier(out).info.recipe["init"] == "scratch"
    assert torch.isfinite(torch.cat([v.flatten().float() for v in clf.values()])).all()
