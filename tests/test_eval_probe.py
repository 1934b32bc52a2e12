"""The shared classifier machinery and the probe / pca / untrained evaluators."""

from __future__ import annotations

import numpy as np
import pytest

from astroclr.data.galaxies import Galaxies, SurveyInfo
from astroclr.evaluate.context import EvalContext, run_evaluators
from astroclr.plugin.specs import AstroclrError


def make_galaxies(n: int = 240, n_classes: int = 2, unlabelled: int = 0, seed: int = 0,
                  size: int = 8) -> Galaxies:
    """Small random images whose labels are visible in the pixels (class brightens a corner)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes
    rng.shuffle(labels)
    images = rng.normal(0.0, 1.0, size=(n, 2, size, size)).astype(np.float32)
    for c in range(n_classes):
        images[labels == c, 0, c, :] += 3.0
    labels[:unlabelled] = -1
    survey = SurveyInfo.create("toy", ("g", "r"), 0.4, {"g": 1.2, "r": 1.1})
    names = tuple(f"class{c}" for c in range(n_classes))
    return Galaxies.from_arrays(images, survey, ids=np.arange(1000, 1000 + n), labels=labels,
                                label_names=names)


def informative(galaxies: Galaxies, dim: int = 16, strength: float = 3.0, seed: int = 1):
    """Representations where the label shifts a few coordinates: a good probe must find it."""
    rng = np.random.default_rng(seed)
    labels = galaxies.labels()
    reps = rng.normal(size=(len(galaxies), dim)).astype(np.float32)
    for c in np.unique(labels[labels >= 0]):
        reps[labels == c, c % dim] += strength
    return reps


def context(galaxies, reps, tmp_path, **kw) -> EvalContext:
    kw.setdefault("train_sizes", (20, 60, 1000))
    return EvalContext(galaxies, reps, tmp_path / "figures", **kw)


# -- metrics against scikit-learn on a hand-made case ------------------------------------------

def test_metrics_match_hand_computed_and_sklearn():
    from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

    from astroclr.api import classification_metrics

    y = np.array([0, 0, 0, 1, 1, 1])
    p1 = np.array([0.1, 0.6, 0.2, 0.7, 0.4, 0.9])  # predicted: 0 1 0 1 0 1
    proba = np.stack([1 - p1, p1], axis=1)
    m = classification_metrics(y, proba, [0, 1], ["a", "b"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion"] == [[2, 1], [1, 2]]
    # AUC by hand: of the 9 (positive, negative) pairs, 8 are ordered correctly
    assert m["roc_auc"] == pytest.approx(8 / 9)
    pred = (p1 > 0.5).astype(int)
    assert m["precision_macro"] == pytest.approx(precision_score(y, pred, average="macro"))
    assert m["recall_macro"] == pytest.approx(recall_score(y, pred, average="macro"))
    assert m["f1_macro"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p1))
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["a"]["support"] == 3


def test_metrics_multiclass_one_vs_rest():
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    from astroclr.api import classification_metrics

    rng = np.random.default_rng(3)
    y = np.repeat([0, 1, 2], 10)
    proba = rng.dirichlet([1, 1, 1], size=30)
    proba[np.arange(30), y] += 0.5
    proba /= proba.sum(1, keepdims=True)
    m = classification_metrics(y, proba, [0, 1, 2])
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, proba, multi_class="ovr"))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, proba.argmax(1)))
    assert np.asarray(m["confusion"]).shape == (3, 3)
    assert np.asarray(m["confusion"]).sum() == 30


def test_auc_undefined_with_one_class_in_test():
    from astroclr.api import classification_metrics

    m = classification_metrics(np.array([1, 1]), np.array([[0.2, 0.8], [0.6, 0.4]]), [0, 1])
    assert np.isnan(m["roc_auc"]) and m["accuracy"] == 0.5


def test_mean_std_over_seeds():
    from astroclr.api import mean_std

    assert mean_std([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))
    assert mean_std([0.5]) == (0.5, 0.0)
    assert mean_std([float("nan"), 1.0, 3.0]) == pytest.approx((2.0, np.sqrt(2)))


# -- probe ---------------------------------------------------------------------------------------

def test_probe_learns_informative_representations(tmp_path, registry):
    g = make_galaxies()
    ctx = context(g, informative(g), tmp_path, seeds=(0, 1))
    res = run_evaluators(registry, ["probe"], {"probe": {"max_iter": 100}}, ctx)["probe"]
    m = res.metrics
    assert m["kind"] == "classifier" and m["seeds"] == [0, 1]
    pool = len(ctx.split(0).train_pool)
    assert m["sizes"] == [20, 60, pool]  # 1000 capped at the pool
    for model in ("linear", "mlp"):
        top = m["models"][model]["by_size"][str(pool)]
        assert top["mean"]["balanced_accuracy"] > 0.9
        assert len(top["per_seed"]) == 2 and top["n_train"] == pool
        assert np.asarray(top["confusion_sum"]).sum() == 2 * len(ctx.split(0).test)
    assert m["majority_baseline"]["mean"]["balanced_accuracy"] == pytest.approx(0.5)
    assert "SimCLR probe (linear)" in res.markdown and "majority class" in res.markdown


def test_fits_on_worker_processes_give_the_same_numbers(tmp_path, registry, monkeypatch):
    g = make_galaxies(n=160)
    ctx = context(g, informative(g, strength=1.0), tmp_path, seeds=(0, 1), train_sizes=(30, 1000))
    config = {"probe": {"max_iter": 50}}
    here = run_evaluators(registry, ["probe"], config, ctx)["probe"].metrics
    monkeypatch.setenv("ASTROCLR_EVAL_JOBS", "2")
    workers = run_evaluators(registry, ["probe"], config, ctx)["probe"].metrics
    for model in ("linear", "mlp"):
        for n, entry in here["models"][model]["by_size"].items():
            other = workers["models"][model]["by_size"][n]
            assert [s["seed"] for s in other["per_seed"]] == [0, 1]
            # equal up to the BLAS's summation order, which may differ between processes
            for mine, theirs in zip(entry["per_seed"], other["per_seed"]):
                assert theirs["balanced_accuracy"] == pytest.approx(mine["balanced_accuracy"],
                                                                    abs=1e-3)


def test_probe_on_noise_is_near_chance(tmp_path, registry):
    """The other side of the coin: without information, no skill (guards against leakage)."""
    g = make_galaxies(n=300)
    reps = np.random.default_rng(5).normal(size=(300, 16)).astype(np.float32)
    ctx = context(g, reps, tmp_path, seeds=(0, 1, 2))
    m = run_evaluators(registry, ["probe"], {"probe": {"models": ["linear"]}}, ctx)["probe"].metrics
    top = m["models"]["linear"]["by_size"][str(m["sizes"][-1])]
    assert 0.3 < top["mean"]["balanced_accuracy"] < 0.7


def test_probe_multiclass_and_unlabelled(tmp_path, registry):
    g = make_galaxies(n=300, n_classes=3, unlabelled=30)
    ctx = context(g, informative(g), tmp_path, seeds=(0,))
    m = run_evaluators(registry, ["probe"], {"probe": {"models": ["linear"]}}, ctx)["probe"].metrics
    assert m["classes"] == [0, 1, 2] and m["class_names"] == ["class0", "class1", "class2"]
    assert m["n_unlabelled"] == 30 and m["n_labelled"] == 270
    top = m["models"]["linear"]["by_size"][str(m["sizes"][-1])]
    assert np.asarray(top["confusion_sum"]).shape == (3, 3)
    assert top["mean"]["balanced_accuracy"] > 0.9 and top["mean"]["roc_auc"] > 0.95
    # unlabelled galaxies are never trained or tested on
    split = ctx.split(0)
    assert not np.isin(np.arange(30), np.concatenate([split.test, split.train_pool])).any()


def test_probe_on_real_sample(tmp_path, registry, sample_galaxies):
    """Real SDSS images and labels; representations from the label plus noise."""
    labels = sample_galaxies.labels()
    rng = np.random.default_rng(0)
    reps = rng.normal(size=(len(labels), 8)).astype(np.float32)
    reps[:, 0] += 2.5 * (labels == 1)
    ctx = context(sample_galaxies, reps, tmp_path, seeds=(0,), train_sizes=(100,))
    m = run_evaluators(registry, ["probe"], {"probe": {"models": ["linear"]}}, ctx)["probe"].metrics
    assert m["class_names"] == ["early", "late"]
    assert m["models"]["linear"]["by_size"]["100"]["mean"]["roc_auc"] > 0.85


def test_one_class_training_set_predicts_that_class():
    from astroclr.api import Task, linear_model
    from astroclr.evaluate.splits import make_split

    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    split = make_split(labels, 0, 0.25)
    train = split.train_pool[labels[split.train_pool] == 1][:2]
    task = Task(0, split, train, split.test, np.array([0, 1]), labels)
    proba, note = linear_model(np.eye(8))(task)
    assert (proba[:, 1] == 1).all() and "one class" in note


# -- the same galaxies for every method ------------------------------------------------------------

def test_probe_pca_untrained_see_identical_splits(tmp_path, registry):
    import torch

    from astroclr.api import ids_digest

    g = make_galaxies(n=200)

    def build():
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * 8 * 8, 12))

    def embed(net):
        with torch.no_grad():
            return net(torch.from_numpy(g.images)).numpy()

    ctx = context(g, informative(g), tmp_path, seeds=(0, 1), build_backbone=build,
                  embed_with=embed)
    seen: dict[str, list] = {}
    import astroclr.evaluate.classifiers as common

    original = common.evaluate_classifiers

    def spy(context, evaluator, models, *a, **kw):
        kw["on_task"] = lambda model, task: seen.setdefault(evaluator, []).append(
            (model, task.seed, tuple(task.train_idx), tuple(task.test_idx)))
        return original(context, evaluator, models, *a, **kw)

    for mod in ("probe", "pca", "untrained"):
        module = __import__(f"astroclr_evaluators.{mod}", fromlist=["x"])
        module.evaluate_classifiers = spy
    try:
        res = run_evaluators(registry, ["probe", "pca", "untrained"],
                             {n: {"models": ["linear"]} for n in ("probe", "pca", "untrained")}, ctx)
    finally:
        for mod in ("probe", "pca", "untrained"):
            __import__(f"astroclr_evaluators.{mod}", fromlist=["x"]).evaluate_classifiers = original
    assert seen["probe"] == seen["pca"] == seen["untrained"]
    assert len(seen["probe"]) == 2 * 3  # seeds x sizes
    for _, seed, train, test in seen["probe"]:
        assert not set(train) & set(test)
        assert test == tuple(ctx.split(seed).test)
    digests = [res[n].metrics["splits"] for n in ("probe", "pca", "untrained")]
    assert digests[0] == digests[1] == digests[2]
    assert digests[0]["1"]["test_sha1"] == ids_digest(g.ids[ctx.split(1).test])
    assert digests[0]["0"]["test_sha1"] != digests[0]["1"]["test_sha1"]
    trained = digests[0]["1"]["train_sha1"]
    assert len(trained) == 3
    assert all(v == ids_digest(g.ids[ctx.split(1).train(int(n))]) for n, v in trained.items())


def test_ids_digest_names_a_set_as_every_earlier_metrics_json_did():
    import hashlib

    from astroclr.api import ids_digest

    ids = np.array([587722, 12, 99000001, 3])
    # the value split records have always held: SHA-1 of the sorted ids, one per line
    assert ids_digest(ids) == hashlib.sha1(b"3\n12\n587722\n99000001").hexdigest()
    assert ids_digest(ids[::-1]) == ids_digest(ids)
    assert ids_digest(ids[:3]) != ids_digest(ids)


def test_ordered_ids_digest_tells_another_order_apart():
    from astroclr.api import ids_digest

    ids = np.array(["b", "a", "c"])
    assert ids_digest(ids, ordered=True) != ids_digest(ids[::-1], ordered=True)
    assert ids_digest(np.sort(ids), ordered=True) == ids_digest(ids)  # sorted: the same text


def test_ids_digest_is_the_same_whatever_the_chunking(monkeypatch):
    import hashlib

    import astroclr.files as files

    ids = np.arange(10)
    whole = hashlib.sha1("\n".join(map(str, ids)).encode()).hexdigest()
    monkeypatch.setattr(files, "DIGEST_CHUNK", 3)
    assert files.ids_digest(ids) == files.ids_digest(ids, ordered=True) == whole


# -- PCA ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fit_on", ["pool", "train"])
def test_pca_never_fitted_on_test_images(tmp_path, registry, monkeypatch, fit_on):
    """Record the rows each PCA fit saw: exactly 'all but the seed's test set' (or the N
    training galaxies), never a test image."""
    import astroclr.evaluate.baselines as pca

    g = make_galaxies(n=160, unlabelled=10)
    ctx = context(g, informative(g, dim=6), tmp_path, seeds=(0, 1), train_sizes=(30, 1000))
    fitted: list[np.ndarray] = []
    original = pca.fit_pca
    monkeypatch.setattr(pca, "fit_pca", lambda X, n, seed: fitted.append(X.copy())
                        or original(X, n, seed))
    m = run_evaluators(registry, ["pca"], {"pca": {"models": ["linear"], "fit_on": fit_on}},
                       ctx)["pca"].metrics
    flat = g.images.reshape(len(g), -1)
    pool = len(ctx.split(0).train_pool)
    # fits happen lazily in loop order: size by size, seed by seed, once per key
    keys = [(0, None), (1, None)] if fit_on == "pool" else [(0, 30), (1, 30), (0, pool), (1, pool)]
    assert len(fitted) == len(keys)
    for X, (seed, n) in zip(fitted, keys):
        split = ctx.split(seed)
        if fit_on == "pool":
            expected = np.setdiff1d(np.arange(len(g)), split.test)
        else:
            expected = np.sort(split.train(n))
        np.testing.assert_array_equal(X, flat[expected])
        test_rows = {flat[i].tobytes() for i in split.test}
        assert not any(r.tobytes() in test_rows for r in X), "PCA saw test images"
    if fit_on == "pool":
        for key, info in m["pca_fits"].items():
            assert info["n_fit"] == len(g) - len(ctx.split(int(key)).test)
            assert info["components"] == 6
    assert m["feature_dim"] == 6


def test_pca_beats_majority_on_pixel_signal(tmp_path, registry):
    g = make_galaxies(n=200)
    ctx = context(g, informative(g, dim=8), tmp_path, seeds=(0,))
    m = run_evaluators(registry, ["pca"], {"pca": {"models": ["linear"]}}, ctx)["pca"].metrics
    assert m["models"]["linear"]["by_size"][str(m["sizes"][-1])]["mean"]["accuracy"] > 0.8


# -- bad input --------------------------------------------------------------------------------------

def _with_labels(labels, n=60):
    g = make_galaxies(n=n)
    g.catalog["label"] = np.asarray(labels, dtype=np.int64)
    return g


@pytest.mark.parametrize("evaluator", ["probe", "pca"])
def test_no_labels_is_a_clear_error(tmp_path, registry, evaluator):
    g = _with_labels(np.full(60, -1))
    with pytest.raises(AstroclrError, match=rf"evaluator '{evaluator}': no labelled galaxies"):
        run_evaluators(registry, [evaluator], {}, context(g, informative(g), tmp_path))


def test_one_class_is_a_clear_error(tmp_path, registry):
    g = _with_labels(np.r_[np.zeros(50), -np.ones(10)])
    with pytest.raises(AstroclrError, match=r"evaluator 'probe': need at least two label classes"):
        run_evaluators(registry, ["probe"], {}, context(g, informative(g), tmp_path))


def test_missing_label_column_is_a_clear_error(tmp_path, registry):
    g = make_galaxies(n=60)
    ctx = context(g, informative(g), tmp_path, label_column="morphology")
    with pytest.raises(AstroclrError, match=r"evaluator 'probe': .*no label column 'morphology'"):
        run_evaluators(registry, ["probe"], {}, ctx)


def test_bad_representations_are_a_clear_error(tmp_path, registry):
    g = make_galaxies(n=60)
    reps = informative(g)
    reps[3, 2] = np.nan
    with pytest.raises(AstroclrError, match=r"evaluator 'probe': representations of 1 galaxies"):
        run_evaluators(registry, ["probe"], {}, context(g, reps, tmp_path))
    with pytest.raises(AstroclrError, match=r"must be \(N=60, D\)"):
        run_evaluators(registry, ["probe"], {}, context(g, reps[:10], tmp_path))


def test_untrained_needs_a_backbone(tmp_path, registry):
    g = make_galaxies(n=60)
    with pytest.raises(AstroclrError, match=r"evaluator 'untrained': needs build_backbone"):
        run_evaluators(registry, ["untrained"], {}, context(g, informative(g), tmp_path))


def test_params_are_validated(registry):
    from astroclr.evaluate.context import resolve_evaluator_params

    resolved = resolve_evaluator_params(registry, ["probe", "pca"], {"pca": {"fit_on": "train"}})
    assert resolved["probe"]["models"] == ["linear", "mlp"] and resolved["pca"]["fit_on"] == "train"
    with pytest.raises(AstroclrError, match="not one of"):
        resolve_evaluator_params(registry, ["probe"], {"probe": {"models": ["forest"]}})
