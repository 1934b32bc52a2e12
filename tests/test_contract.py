"""The plugin contract's promises: the public names, the version, the 0.1.0 paths kept as
warning aliases (one table: astroclr/moved.py, the same rows as CHANGELOG.md's), and
astroclr.testing."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import astroclr.api as api
from astroclr import testing
from astroclr.moved import GONE, MOVED, PACKAGES, MovedWarning

ROOT = Path(__file__).resolve().parents[1]
ROWS = [(module, name, target) for module, names in MOVED.items()
        for name, target in names.items()]


def _load(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_every_public_name_resolves_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        missing = [name for name in api.__all__ if getattr(api, name, None) is None]
    assert missing == []
    assert dir(api) == api.__all__ == sorted(api.__all__)


def test_star_import_of_the_api_works_in_a_fresh_interpreter():
    code = "from astroclr.api import *; print(len(dir()))"
    res = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                         text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr


def test_internals_are_not_in_the_contract():
    for internal in ("Recipe", "train_classifier", "Encoder", "blas_threads", "checked_split"):
        assert internal not in api.__all__
    assert api.Recipe is _load("astroclr.classify.recipe.Recipe")  # the built-ins still use it


def test_api_version_is_an_int_and_public():
    assert isinstance(api.API_VERSION, int) and "API_VERSION" in api.__all__


def test_the_version_is_spelled_the_same_in_pyproject_and_the_package():
    import astroclr

    pyproject = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    assert astroclr.__version__ == pyproject.group(1) == "0.2.0"
    assert f"## [{astroclr.__version__}]" in (ROOT / "CHANGELOG.md").read_text()


@pytest.mark.parametrize("module, name, target", ROWS, ids=[f"{m}.{n}" for m, n, _ in ROWS])
def test_an_old_path_warns_naming_its_replacement_and_gives_the_same_object(module, name,
                                                                            target):
    old = importlib.import_module(module)
    with pytest.warns(MovedWarning, match=re.escape(f"{module}.{name} is deprecated and goes "
                                                    f"in astroclr 0.3.0; use {target}")):
        value = getattr(old, name)
    assert value is _load(target)


def test_the_warning_points_at_the_line_that_used_the_old_path():
    with pytest.warns(DeprecationWarning) as caught:
        from astroclr.specs import DatasetSpec  # noqa: F401
    assert caught[0].filename == __file__


def test_an_alias_module_names_what_it_keeps():
    import astroclr.specs

    with pytest.raises(AttributeError, match="astroclr.specs' .* has no 'KINDS'; it keeps: "):
        astroclr.specs.KINDS  # noqa: B018
    assert "validate_params" in dir(astroclr.specs)


def test_a_removed_api_name_says_what_replaces_it():
    with pytest.raises(AttributeError, match="PREPROCESSING_PARAMS' since 0.2.0: give "
                                             r"DatasetSpec\(preprocessing=...\)"):
        api.PREPROCESSING_PARAMS  # noqa: B018


def test_every_alias_module_is_three_lines_of_the_table():
    for module in MOVED:
        if module in PACKAGES:
            continue
        path = ROOT / (module.replace(".", "/") + ".py")
        code = [ln for ln in path.read_text().split('"""')[-1].splitlines() if ln.strip()]
        assert code == ["from astroclr.moved import alias",
                        "__getattr__, __dir__, __all__ = alias(__name__)"], path


def test_the_changelog_migration_table_is_the_alias_table():
    text = (ROOT / "CHANGELOG.md").read_text()
    table = text.split("<!-- migration table:")[1].split("\n\n")[0]
    rows = re.findall(r"^\| `([\w.]+)` \| (.+) \|$", table, re.M)
    expected = [(f"{m}.{n}", f"`{t}`") for m, n, t in ROWS]
    expected += [(old, f"(removed) {what}") for old, what in GONE.items()]
    assert rows == expected


# -- astroclr.testing --------------------------------------------------------------------------

def test_testing_imports_nothing_heavy():
    code = ("import sys, astroclr.testing; "
            "print(sorted(m for m in ('numpy', 'torch', 'astropy') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=300)
    assert res.stdout.strip() == "[]", res.stderr


def test_validate_params_fills_defaults_as_a_run_does(registry):
    psf = testing.validate_params(registry.get("augmentation", "psf"), {"p": 0.3})
    assert psf["p"] == 0.3 and psf["fwhm"] == [1.0, 2.5]          # p comes with the core
    sdss = testing.validate_params(registry.get("dataset", "sdss"), {"bin": 4})
    assert sdss["bin"] == 4 and sdss["stretch"] == "linear"      # inherited preprocessing


def test_validate_params_rejects_a_bad_value_with_the_users_message(registry):
    with pytest.raises(api.ConfigError, match="augment.psf.p: 2.0 is above the maximum 1.0"):
        testing.validate_params(registry.get("augmentation", "psf"), {"p": 2.0})


def test_validate_params_takes_the_0_1_form():
    params = (api.Param("k", int, 10, "neighbours", low=1),)
    assert testing.validate_params(params, {}, "evaluate.nn") == {"k": 10}
    with pytest.raises(api.ConfigError, match="evaluate.nn: unknown parameter 'j'"):
        testing.validate_params(params, {"j": 1}, "evaluate.nn")


def test_resolve_config_gives_the_runs_frozen_configuration():
    cfg = testing.resolve_config({"run": {"dataset": "sdss"}}, sets=["dataset.limit=50"],
                                 epochs=1)
    assert cfg.dataset["limit"] == 50 and cfg.train.epochs == 1


class _Half:
    @api.hookimpl
    def astroclr_evaluators(self):
        def evaluate(context, models):
            features = context.representations[:, :2]
            rows, labels = api.feature_models(features, models, "half")
            return api.EvalResult(metrics=api.evaluate_classifiers(context, "half", rows, labels))

        yield api.EvaluatorSpec("half", "probe on two columns", evaluate, provides="classifier",
                                target="class", params=(api.Param("models", list, ["linear"],
                                                                  "probes", item_type=str),))


def test_run_evaluators_orders_by_needs_and_fills_defaults(tmp_path):
    galaxies = testing.synthetic_galaxies(80, str_ids=True)
    reps = np.c_[galaxies.labels(), np.random.default_rng(0).normal(size=(80, 3))]
    context = api.EvalContext(galaxies, reps.astype(np.float32), tmp_path, seeds=(0,),
                              train_sizes=(20,))
    reg = testing.registry(_Half())
    results = testing.run_evaluators(context, ["label_efficiency", "half"], registry=reg)
    assert list(results) == ["half", "label_efficiency"]
    assert set(results["half"].metrics["models"]) == {"linear"}


def test_synthetic_galaxies_are_seeded_and_labelled():
    a, b = testing.synthetic_galaxies(30, bands=("g", "r", "i"), classes=3), \
        testing.synthetic_galaxies(30, bands=("g", "r", "i"), classes=3)
    assert a.images.shape == (30, 3, 16, 16) and a.images.dtype == np.float32
    assert np.array_equal(a.images, b.images) and sorted(set(a.labels())) == [0, 1, 2]


def test_open_run_names_a_folder_without_a_run(tmp_path):
    with pytest.raises(api.AstroclrError):
        testing.open_run(tmp_path)


def _docs_example(name: str) -> str:
    text = (ROOT / "docs" / "writing-plugins.md").read_text()
    match = re.search(rf"<!-- example: {name} -->\n```python\n(.*?)```", text, re.S)
    assert match, f"docs/writing-plugins.md lost its tested example {name!r}"
    return match.group(1)


def test_the_docs_plugin_unit_tests_pass_on_the_docs_plugin(tmp_path):
    """docs/writing-plugins.md's astroclr-mysurvey (hooks.py, reader.py) and its unit tests
    through astroclr.testing, run as written."""
    pkg = tmp_path / "astroclr_mysurvey"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "hooks.py").write_text(_docs_example("mysurvey hooks"))
    (pkg / "reader.py").write_text(_docs_example("mysurvey reader"))
    (tmp_path / "test_mysurvey.py").write_text(_docs_example("plugin unit tests"))
    paths = [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "test_mysurvey.py"], capture_output=True, text=True, cwd=tmp_path,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(paths)), timeout=300)
    assert res.returncode == 0, res.stdout[-3000:]
    assert "3 passed" in res.stdout
