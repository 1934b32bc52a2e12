"""Model plugins: a pretrained encoder shipped as a pip-installable package, found through a
real ``astroclr`` entry point, listed by ``astroclr models`` and used as ``--model NAME``.

The package is built from a tiny real run (exported with ``astroclr export``) and
pip-installed into its own target directory, never into the test environment; astroclr runs
in subprocesses that see it through PYTHONPATH, as in test_euclid_plugin.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

import astroclr
from astroclr.plugin.registry import Registry
from astroclr.plugin.specs import ModelSpec, PluginError

SETS = ["dataset.limit=60", "dataset.bin=4", "train.max_steps=2", "train.threads=1",
        "run.evaluators=[]"]

HOOKS = '''
from pathlib import Path

from astroclr.api import ModelSpec, hookimpl


@hookimpl
def astroclr_models():
    yield ModelSpec("tiny-sdss", "two steps of SimCLR on 60 SDSS galaxies",
                    Path(__file__).parent / "model")
'''


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("modelplugin") / "run"
    astroclr.run(out=out, backbone="smallcnn", epochs=1, progress=False, sets=SETS)
    return out


@pytest.fixture(scope="module")
def site(run_dir, tmp_path_factory) -> Path:
    """astroclr-tinymodel, its package directory inside, pip-installed into a target dir."""
    from astroclr.session.export import export

    src = tmp_path_factory.mktemp("src") / "astroclr-tinymodel"
    pkg = src / "astroclr_tinymodel"
    pkg.mkdir(parents=True)
    export(run_dir, pkg / "model")
    (src / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "astroclr-tinymodel"
        version = "0.2.0"
        [project.entry-points.astroclr]
        tinymodel = "astroclr_tinymodel.hooks"
        [tool.setuptools]
        packages = ["astroclr_tinymodel"]
        [tool.setuptools.package-data]
        astroclr_tinymodel = ["model/*"]
    """))
    (pkg / "__init__.py").write_text("")
    (pkg / "hooks.py").write_text(HOOKS)
    target = tmp_path_factory.mktemp("site")
    res = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                          "--no-build-isolation", "--no-index", "--target", str(target), str(src)],
                         capture_output=True, text=True)
    assert res.returncode == 0, f"pip install of the model plugin failed:\n{res.stderr}"
    shutil.rmtree(src)  # only the installed copy remains
    return target


def astroclr_cli(site: Path, *args: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="2", COLUMNS="250")
    env.pop("ASTROCLR_PLUGINS", None)
    return subprocess.run([sys.executable, "-m", "astroclr.cli", *args], capture_output=True,
                          text=True, env=env, timeout=300)


def test_models_lists_the_installed_model_with_its_package_and_card(site):
    res = astroclr_cli(site, "models")
    assert res.returncode == 0, res.stderr
    row = next(line for line in res.stdout.splitlines() if "tiny-sdss" in line)
    assert "astroclr-tinymodel" in row and "0.2.0" in row
    assert "smallcnn" in res.stdout and "sdss g,r,i" in res.stdout  # the card's summary


def test_embed_with_model_name_uses_the_installed_package(site, run_dir, tmp_path):
    out = tmp_path / "e.fits"
    res = astroclr_cli(site, "embed", "--model", "tiny-sdss", "--out", str(out), "-q")
    assert res.returncode == 0, res.stderr
    got, stored = Table.read(out), Table.read(run_dir / "embeddings.fits")
    np.testing.assert_allclose(got["representation"], stored["representation"], atol=1e-6)


def test_an_unknown_model_name_lists_the_available_ones(site, tmp_path):
    res = astroclr_cli(site, "embed", "--model", "nope", "--out", str(tmp_path / "e.fits"))
    assert res.returncode == 2
    assert "unknown model 'nope'; available: tiny-sdss" in res.stderr


def test_a_run_directory_and_a_model_name_together_are_refused(site, run_dir, tmp_path):
    res = astroclr_cli(site, "embed", str(run_dir), "--model", "tiny-sdss", "--out",
                       str(tmp_path / "e.fits"))
    assert res.returncode == 2 and "both given" in res.stderr


def test_load_by_model_name_in_python(run_dir, tmp_path):
    from astroclr.session.export import export

    folder = export(run_dir, tmp_path / "pkg").path

    class Plugin:
        @staticmethod
        @astroclr.hookimpl
        def astroclr_models():
            yield ModelSpec("here", "a package in tmp_path", folder)

    import astroclr.plugin.registry as reg

    registry = reg.get_registry()
    with registry.registered(Plugin, "test-models"):
        model = astroclr.load(model="here", device="cpu")
    assert model.run_dir == folder and model.bands == ("g", "r", "i")


def test_a_model_spec_path_must_be_a_directory_callable_or_reference():
    with pytest.raises(PluginError, match="'models/x' is not a 'package.module:attribute'"):
        ModelSpec("x", "", "models/x")
    with pytest.raises(PluginError, match="path must be a directory"):
        ModelSpec("x", "", 3)


def test_models_are_a_kind_of_part_with_named_lookup_errors():
    registry = Registry(load_entry_points=False)
    assert registry.parts("model") == {}
    with pytest.raises(PluginError, match="unknown model 'x'; available: \\(none installed\\)"):
        registry.get("model", "x")
