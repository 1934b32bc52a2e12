"""The plugin contract as a third-party author meets it: a Legacy-Survey-like package with
string ids, a continuous target and a regression evaluator (the one docs/writing-plugins.md
shows, run as written), installed through a real entry point."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from astroclr import testing
from astroclr.api import (
    AstroclrError,
    BackboneSpec,
    EvalContext,
    EvalResult,
    EvaluatorSpec,
    Galaxies,
    PluginError,
    Registry,
    SurveyInfo,
    evaluate_classifiers,
    feature_models,
    hookimpl,
)

ROOT = Path(__file__).resolve().parents[1]

HOOKS = '''
from astroclr.api import DatasetSpec, Param, hookimpl
from astroclr_legacy.photoz import SPEC

@hookimpl
def astroclr_datasets():
    yield DatasetSpec("legacy", "synthetic g, r, z cutouts with string ids and photo-z",
                      "astroclr_legacy.dataset:load",
                      params=(Param("n", int, 120, "galaxies", low=10),),
                      preprocessing={"bin": 1, "stretch": "linear", "softening": 1.0,
                                     "normalize": "minmax"},
                      suggested={"psf": {"fwhm": [0.6, 1.2]}})

@hookimpl
def astroclr_evaluators():
    yield SPEC
'''

DATASET = '''
import numpy as np
from astroclr.api import Galaxies, Preprocessing, SurveyInfo

def load(n, bin, stretch, softening, normalize):
    """Round galaxies whose size grows with redshift; the label says which half of z."""
    rng = np.random.default_rng(0)
    z = rng.uniform(0.02, 0.4, n)
    yy, xx = np.mgrid[:16, :16] - 7.5
    r2 = (xx ** 2 + yy ** 2)[None, None]
    width = (1.0 + 8.0 * z)[:, None, None, None]
    raw = np.exp(-r2 / (2 * width ** 2)) * np.array([1.0, 1.5, 2.0])[None, :, None, None]
    raw = (raw + 0.02 * rng.normal(size=(n, 3, 16, 16))).astype(np.float32)
    prep = Preprocessing(bin=bin, stretch=stretch, softening=softening, normalize=normalize)
    survey = SurveyInfo.create("legacy", ("g", "r", "z"), pixel_scale=0.262 * bin,
                               psf_fwhm={"g": 1.3, "r": 1.2, "z": 1.1})
    galaxies = Galaxies.from_arrays(prep.apply(raw), survey,
                                    ids=[f"LS-{i:04d}" for i in range(n)],
                                    labels=(z > np.median(z)).astype(int),
                                    preprocessing=prep, raw_size=16, label_names=("near", "far"))
    galaxies.catalog["photo_z"] = z
    return galaxies
'''


def docs_example() -> str:
    """The regression evaluator module exactly as docs/writing-plugins.md shows it."""
    text = (ROOT / "docs" / "writing-plugins.md").read_text()
    match = re.search(r"<!-- example: regression evaluator -->\n```python\n(.*?)```", text, re.S)
    assert match, "docs/writing-plugins.md lost its tested regression example"
    return match.group(1)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """astroclr-legacy pip-installed (entry point and all) into a separate site directory."""
    src = tmp_path_factory.mktemp("src") / "astroclr-legacy"
    pkg = src / "astroclr_legacy"
    pkg.mkdir(parents=True)
    (src / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "astroclr-legacy"
        version = "0.3.0"
        [project.entry-points.astroclr]
        legacy = "astroclr_legacy.hooks"
        [tool.setuptools]
        packages = ["astroclr_legacy"]
    """))
    (pkg / "__init__.py").write_text("")
    (pkg / "hooks.py").write_text(HOOKS)
    (pkg / "dataset.py").write_text(DATASET)
    (pkg / "photoz.py").write_text(docs_example())
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(target), str(src)],
                   check=True, capture_output=True)
    return target


def astroclr(site: Path, *args: str) -> subprocess.CompletedProcess:
    paths = [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    return subprocess.run([sys.executable, "-m", "astroclr.cli", *args], capture_output=True,
                          text=True, env=env, timeout=600)


RUN = ["--dataset", "legacy", "--backbone", "smallcnn", "--epochs", "1", "--batch-size", "32",
       "--quiet", "--set", "train.max_steps=2", "--set", "run.eval_seeds=[0,1]",
       "--set", "run.train_sizes=[20,60]", "--set", "evaluate.photoz.column=photo_z"]


@pytest.fixture(scope="module")
def run_dir(site, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "legacy"
    res = astroclr(site, "run", *RUN, "--out", str(out), "--set",
                   "run.evaluators=['label_efficiency','probe','pca','photoz']")
    assert res.returncode == 0, res.stderr
    return out


def test_str_ids_round_trip_through_the_run(run_dir):
    from astropy.table import Table

    table = testing.open_run(run_dir).embeddings()
    assert table["id"][0] == "LS-0000" and table["id"].dtype.kind == "U"
    assert Table.read(run_dir / "embeddings.fits")["photo_z"].dtype.kind == "f"


def test_regression_metrics_sit_next_to_the_shared_pca_baseline(run_dir):
    doc = json.loads((run_dir / "metrics.json").read_text())["evaluators"]
    photoz = doc["photoz"]["metrics"]
    assert photoz["kind"] == "regressor" and photoz["target_column"] == "photo_z"
    assert set(photoz["models"]) == {"representation", "pca"}
    n = str(photoz["sizes"][-1])
    assert photoz["models"]["pca"]["by_size"][n]["mean"]["r2"] > 0.5  # size carries z
    assert set(photoz["splits"]) == {"0", "1"}
    # the classifiers' splits are on the label column; theirs are shared among themselves
    assert doc["probe"]["metrics"]["splits"] == doc["pca"]["metrics"]["splits"]
    report = (run_dir / "report.md").read_text()
    assert "Regression of `photo_z`" in report and "PCA baseline (ridge)" in report


def test_label_efficiency_runs_after_the_classifiers_whatever_the_order(run_dir):
    curves = json.loads((run_dir / "metrics.json").read_text())["evaluators"][
        "label_efficiency"]["metrics"]["curves"]
    assert {c["evaluator"] for c in curves.values()} == {"probe", "pca"}


def test_evaluate_reruns_a_run_with_str_ids(site, run_dir):
    res = astroclr(site, "evaluate", str(run_dir), "-e", "photoz", "-q")
    assert res.returncode == 0, res.stderr
    assert json.loads((run_dir / "metrics.json").read_text())["evaluators"].keys() == {"photoz"}


def test_dataset_suggestions_apply_unless_the_user_sets_them(site):
    res = astroclr(site, "config", "--dataset", "legacy")
    assert "fwhm = [\n    0.6,\n    1.2,\n]" in res.stdout or "fwhm = [ 0.6, 1.2" in res.stdout \
        or "fwhm = [0.6, 1.2]" in res.stdout, res.stdout
    res = astroclr(site, "config", "--dataset", "legacy", "--set", "augment.psf.fwhm=[1.0, 2.0]")
    assert "0.6" not in res.stdout.split("[augment.psf]")[1].split("[")[1]


def test_core_declares_the_preprocessing_parameters_a_dataset_inherits(site):
    res = astroclr(site, "config", "--dataset", "legacy", "--set", "dataset.stretch=log")
    assert res.returncode == 2
    assert "dataset.stretch: 'log' is not one of: linear, asinh" in res.stderr


@pytest.mark.parametrize("setting, message", [
    ("evaluate.photoz.column=nope",
     "evaluator 'photoz': evaluate.photoz.column = 'nope' is not a column of dataset 'legacy'"),
    ("run.label_column=photo_z",
     "evaluator 'probe' needs integer class labels, but run.label_column = 'photo_z' holds"),
])
def test_a_target_column_is_checked_before_anything_is_written(site, tmp_path, setting, message):
    out = tmp_path / "bad"
    res = astroclr(site, "run", *RUN, "--out", str(out), "--set",
                   "run.evaluators=['probe','photoz']", "--set", setting)
    assert res.returncode == 2, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in res.stderr
    assert not out.exists()


# -- in process: the registry's checks -------------------------------------------------------------

def _galaxies(n: int = 80) -> Galaxies:
    rng = np.random.default_rng(1)
    survey = SurveyInfo.create("t", ("g", "r"), pixel_scale=0.4, psf_fwhm={"g": 1, "r": 1})
    labels = np.arange(n) % 2
    return Galaxies.from_arrays(rng.random((n, 2, 8, 8), dtype=np.float32), survey,
                                ids=[f"G{i}" for i in range(n)], labels=labels)


def test_a_third_party_classifier_joins_the_curve_without_importing_a_plugin(tmp_path):
    class Plugin:
        @hookimpl
        def astroclr_evaluators(self):
            def evaluate(context):
                models, labels = feature_models(context.representations, ["linear"], "mine")
                return EvalResult(metrics=evaluate_classifiers(context, "mine", models, labels))

            yield EvaluatorSpec("mine", "a third-party classifier", evaluate,
                                provides="classifier", target="class")

    g = _galaxies()
    reps = np.c_[g.labels(), np.random.default_rng(2).normal(size=(80, 3))].astype(np.float32)
    ctx = EvalContext(g, reps, tmp_path, seeds=(0,), train_sizes=(20,))
    res = testing.run_evaluators(ctx, ["label_efficiency", "mine"],
                                 registry=testing.registry(Plugin()))
    assert list(res) == ["mine", "label_efficiency"]
    assert {c["evaluator"] for c in res["label_efficiency"].metrics["curves"].values()} == {"mine"}


def test_a_hook_yielding_the_wrong_spec_type_names_the_plugin():
    class Wrong:
        @hookimpl
        def astroclr_datasets(self):
            yield BackboneSpec("oops", "not a dataset", "x.y:z")

    registry = Registry(load_entry_points=False)
    with registry.registered(Wrong(), "wrongplugin"):
        with pytest.raises(PluginError, match="plugin 'wrongplugin' .*astroclr_datasets\\(\\) "
                                              "yielded BackboneSpec, not a DatasetSpec"):
            registry.parts("dataset")


def test_a_module_attr_reference_loads_on_first_use_and_names_a_bad_one():
    spec = EvaluatorSpec("x", "d", "astroclr.evaluate.metrics:mean_std")
    assert spec.evaluate([1.0, 3.0]) == (2.0, pytest.approx(1.4142, abs=1e-4))
    with pytest.raises(PluginError, match="evaluator 'y': cannot load 'nowhere.mod:f'"):
        EvaluatorSpec("y", "d", "nowhere.mod:f").evaluate(None)
    with pytest.raises(PluginError, match="is not a 'package.module:attribute' reference"):
        EvaluatorSpec("z", "d", "no colon here")


def test_a_continuous_target_is_split_by_quantiles(tmp_path):
    g = _galaxies(200)
    g.catalog["z"] = np.linspace(0.0, 1.0, 200)
    g.catalog["z"][:10] = np.nan
    ctx = EvalContext(g, np.zeros((200, 2), np.float32), tmp_path, test_fraction=0.25)
    split = ctx.split(0, "z")
    assert len(split.test) + len(split.train_pool) == 190 and not set(split.test) & set(range(10))
    # every decile of z is in the test set
    assert len(np.unique(np.floor(np.asarray(g.catalog["z"])[split.test] * 10 - 1e-9))) >= 9
    assert ctx.split(0, "z") is split and ctx.split(0).test.tolist() != split.test.tolist()


def test_baselines_are_computed_once_and_never_see_the_test_set(tmp_path, monkeypatch):
    import astroclr.evaluate.baselines as B

    g = _galaxies()
    ctx = EvalContext(g, np.zeros((80, 4), np.float32), tmp_path)
    fits = []
    original = B.fit_pca
    monkeypatch.setattr(B, "fit_pca", lambda X, n, seed: fits.append(X) or original(X, n, seed))
    split = ctx.split(0)
    a = ctx.baseline("pca", split)
    assert ctx.baseline("pca", split) is a and len(fits) == 1
    assert a.shape == (80, 4) and ctx.baseline_info("pca", split)["rows"].tolist() == sorted(
        set(range(80)) - set(split.test.tolist()))
    assert ctx.baseline("colours").shape == (80, 3)
    with pytest.raises(AstroclrError, match="unknown baseline 'pixels'; baselines: pca"):
        ctx.baseline("pixels")
