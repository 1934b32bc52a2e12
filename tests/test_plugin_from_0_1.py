"""A plugin written from the 0.1.0 docs, installed through a real entry point, still loads,
trains and evaluates in 0.2.x, and each of its old imports warns naming the new one.

Its hook module and evaluator are docs/writing-plugins.md's examples of 0.1.0 (``from
astroclr.specs import ...``, ``from astroclr.evaluate import EvalResult``, ``from astroclr.data
import Galaxies``); only the labels in its .npz file are added, for the evaluator.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

HOOKS = '''
"""Hook implementations of astroclr-mysurvey (imported by `astroclr plugins`: keep it light)."""

from astroclr import hookimpl
from astroclr.specs import DatasetSpec, EvaluatorSpec, Param

PARAMS = (
    Param("path", str, "", "an .npz file with images (N, C, H, W) and ids"),
    Param("bin", int, 1, "k x k flux-conserving binning", low=1, high=8),
)


def load(path: str, bin: int):
    import numpy as np                                   # heavy imports inside the callable

    from astroclr.data import Galaxies, SurveyInfo
    from astroclr.preprocess import Preprocessing
    from astroclr.specs import AstroclrError

    if not path:
        raise AstroclrError("dataset mysurvey: set dataset.path to an .npz file")
    with np.load(path) as data:
        raw, ids, labels = data["images"].astype(np.float32), data["ids"], data["labels"]
    preprocessing = Preprocessing(bin=bin, stretch="asinh", softening=0.5, normalize="minmax")
    survey = SurveyInfo.create("mysurvey", bands=("g", "r", "i", "z"),
                               pixel_scale=0.168 * bin,          # arcsec/px as the model sees it
                               psf_fwhm={"g": 0.75, "r": 0.70, "i": 0.60, "z": 0.65})
    return Galaxies.from_arrays(preprocessing.apply(raw), survey, ids=ids, labels=labels,
                                preprocessing=preprocessing, raw_size=raw.shape[-1])


def evaluate_nn(context, k: int):
    import numpy as np

    from astroclr.evaluate import EvalResult

    labels = context.labels()
    z = context.representations / np.linalg.norm(context.representations, axis=1, keepdims=True)
    scores = []
    for seed in context.seeds:
        split = context.split(seed)
        train, test = split.train_pool, split.test
        sim = z[test] @ z[train].T                                # cosine similarity
        nearest = np.argsort(-sim, axis=1)[:, :k]
        votes = labels[train][nearest]
        predicted = np.array([np.bincount(v).argmax() for v in votes])
        scores.append(float((predicted == labels[test]).mean()))
    mean = float(np.mean(scores))
    return EvalResult(metrics={"accuracy": mean, "per_seed": scores, "k": k},
                      markdown=f"{k}-nearest-neighbour accuracy: **{mean:.3f}** "
                               f"(mean of {len(scores)} seeds)")


@hookimpl
def astroclr_datasets():
    yield DatasetSpec("mysurvey", "MySurvey griz cutouts from an .npz file", load, params=PARAMS)


@hookimpl
def astroclr_evaluators():
    yield EvaluatorSpec("nn_vote", "k-nearest-neighbour vote on the representations",
                        evaluate_nn, params=(Param("k", int, 10, "neighbours", low=1),))
'''

WARNED = "astroclr.specs.DatasetSpec is deprecated and goes in astroclr 0.3.0; use " \
         "astroclr.api.DatasetSpec"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """astroclr-mysurvey 0.1.0 pip-installed (entry point and all) into its own directory."""
    src = tmp_path_factory.mktemp("src") / "astroclr-mysurvey"
    (src / "astroclr_mysurvey").mkdir(parents=True)
    (src / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "astroclr-mysurvey"
        version = "0.1.0"
        dependencies = ["astroclr>=0.1"]
        [project.entry-points.astroclr]
        mysurvey = "astroclr_mysurvey.hooks"
        [tool.setuptools]
        packages = ["astroclr_mysurvey"]
    """))
    (src / "astroclr_mysurvey" / "__init__.py").write_text("")
    (src / "astroclr_mysurvey" / "hooks.py").write_text(HOOKS)
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(target), str(src)],
                   check=True, capture_output=True)
    return target


@pytest.fixture(scope="module")
def cutouts(tmp_path_factory) -> Path:
    """48 four-band cutouts: two classes of round galaxies, small and large."""
    rng = np.random.default_rng(0)
    labels = np.arange(48) % 2
    yy, xx = np.mgrid[:16, :16] - 7.5
    width = (1.5 + 2.5 * labels)[:, None, None, None]
    images = np.exp(-(xx ** 2 + yy ** 2)[None, None] / (2 * width ** 2)) * np.ones((1, 4, 1, 1))
    images = images + 0.02 * rng.normal(size=(48, 4, 16, 16))
    path = tmp_path_factory.mktemp("data") / "cutouts.npz"
    np.savez(path, images=images, ids=np.arange(1000, 1048), labels=labels)
    return path


def astroclr(site: Path, *args: str, warn: str = "") -> subprocess.CompletedProcess:
    paths = [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths), OMP_NUM_THREADS="2")
    env.pop("ASTROCLR_PLUGINS", None)
    flags = ["-W", warn] if warn else []
    return subprocess.run([sys.executable, *flags, "-m", "astroclr.cli", *args],
                          capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def run_dir(site, cutouts, tmp_path_factory) -> Path:
    """Two training steps on the plugin's dataset, then its evaluator."""
    out = tmp_path_factory.mktemp("runs") / "mysurvey"
    res = astroclr(site, "run", "--dataset", "mysurvey", "--set", f"dataset.path={cutouts}",
                   "--backbone", "smallcnn", "--epochs", "1", "--batch-size", "16", "--quiet",
                   "--set", "train.max_steps=2", "--set", "augment.pipeline=['rotate_flip']",
                   "--set", "run.evaluators=['nn_vote']", "--set", "run.eval_seeds=[0,1]",
                   "--set", "evaluate.nn_vote.k=3", "--out", str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def test_the_old_plugin_is_listed_with_its_package(site):
    res = astroclr(site, "plugins")
    assert res.returncode == 0 and "failed to load" not in res.stderr, res.stderr
    for name in ("mysurvey", "nn_vote"):
        line = next(ln for ln in res.stdout.splitlines() if f" {name} " in ln)
        assert "astroclr-mysurvey" in line and "0.1.0" in line


def test_its_dataset_trains_and_its_evaluator_runs(run_dir):
    doc = json.loads((run_dir / "metrics.json").read_text())["evaluators"]["nn_vote"]
    assert doc["metrics"]["k"] == 3 and len(doc["metrics"]["per_seed"]) == 2
    assert doc["metrics"]["accuracy"] > 0.5  # the two sizes differ in pixels, let alone features
    assert "3-nearest-neighbour accuracy" in (run_dir / "report.md").read_text()


def test_evaluate_reruns_its_evaluator_and_the_old_imports_warn(site, run_dir):
    res = astroclr(site, "evaluate", str(run_dir), "-e", "nn_vote", "-q",
                   warn="default::DeprecationWarning")
    assert res.returncode == 0, res.stderr[-3000:]
    hooks = "astroclr_mysurvey/hooks.py"
    # each warning points at the line of the plugin that used the old path
    assert any(hooks in ln and WARNED in ln for ln in res.stderr.splitlines()), res.stderr
    assert "use astroclr.api.EvalResult" in res.stderr and "use astroclr.api.Galaxies" in res.stderr


def test_with_deprecations_as_errors_the_failure_is_one_line_naming_the_new_import(site):
    res = astroclr(site, "plugins", warn="error::DeprecationWarning")
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if "mysurvey" in ln]
    assert lines == ["astroclr: plugin 'mysurvey' (package 'astroclr-mysurvey' 0.1.0) failed to "
                     f"load and is skipped: MovedWarning: {WARNED}"]
    assert "nn_vote" not in res.stdout and "resnet18" in res.stdout
