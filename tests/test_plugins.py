"""Plugin discovery, listing and failure modes, through real entry points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from astroclr import hookimpl
from astroclr.plugin import hookspecs
from astroclr.plugin.registry import PluginError, Registry
from astroclr.plugin.specs import BackboneSpec, Param


def _make_distribution(root: Path, dist: str, module: str, source: str) -> Path:
    """Write a plugin distribution (pyproject + module) that registers ``module``."""
    pkg = root / dist
    pkg.mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "{dist}"
        version = "1.2.3"
        [project.entry-points.astroclr]
        {module} = "{module}"
        [tool.setuptools]
        py-modules = ["{module}"]
    """))
    (pkg / f"{module}.py").write_text(textwrap.dedent(source))
    return pkg


GOOD = """
    from astroclr import hookimpl
    from astroclr.plugin.specs import BackboneSpec

    def build(in_channels, image_size):
        import torch.nn as nn
        net = nn.Sequential(nn.Conv2d(in_channels, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        net.num_features = 8
        return net

    @hookimpl
    def astroclr_backbones():
        yield BackboneSpec("tinynet", "a one-layer test backbone", build)
"""


def hook_example(hook) -> str:
    """The example in a hook spec's docstring (after its ``::``): what a plugin author copies,
    installed and run below as it stands there."""
    return textwrap.dedent(hook.__doc__.split("::\n", 1)[1])


# The example of the astroclr_methods hook: SimSiam from lightly's parts.
SIMSIAM = hook_example(hookspecs.astroclr_methods)
BROKEN = "raise ImportError('this plugin needs a library that is not installed')\n"
MISSPELLED = """
    from astroclr import hookimpl

    @hookimpl
    def astroclr_backbone():   # no such hook: astroclr_backbones
        return []
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """Four plugin distributions pip-installed into a separate site directory."""
    root = tmp_path_factory.mktemp("dists")
    target = tmp_path_factory.mktemp("site")
    for dist, module, source in (("astroclr-tiny", "astroclr_tiny", GOOD),
                                 ("astroclr-broken", "astroclr_broken", BROKEN),
                                 ("astroclr-misspelled", "astroclr_misspelled", MISSPELLED),
                                 ("astroclr-simsiam", "astroclr_simsiam", SIMSIAM)):
        pkg = _make_distribution(root, dist, module, source)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                        "--no-build-isolation", "--no-index", "--target", str(target / dist),
                        str(pkg)], check=True, capture_output=True)
    return target


def _astroclr(args: list[str], paths: list[Path], **env: str) -> subprocess.CompletedProcess:
    outer = [p for p in [os.environ.get("PYTHONPATH")] if p]  # a checkout under test
    environ = dict(os.environ, PYTHONPATH=os.pathsep.join([*map(str, paths), *outer]), **env)
    return subprocess.run([sys.executable, "-m", "astroclr.cli", *args], capture_output=True,
                          text=True, env=environ, timeout=120)


def test_installed_plugin_is_listed_with_its_package_and_version(site):
    res = _astroclr(["plugins"], [site / "astroclr-tiny"])
    assert res.returncode == 0, res.stderr
    line = next(ln for ln in res.stdout.splitlines() if "tinynet" in ln)
    assert "astroclr-tiny" in line and "1.2.3" in line
    assert "resnet18" in res.stdout  # built-ins come through the same group


def test_environment_variable_restricts_external_plugins(site):
    res = _astroclr(["plugins"], [site / "astroclr-tiny"], ASTROCLR_PLUGINS="")
    assert res.returncode == 0, res.stderr
    assert "tinynet" not in res.stdout
    assert "resnet18" in res.stdout


def test_plugin_that_fails_to_import_is_one_line_and_the_rest_works(site):
    res = _astroclr(["plugins"], [site / "astroclr-tiny", site / "astroclr-broken"])
    assert res.returncode == 0, res.stderr
    assert res.stderr.splitlines() == [
        "astroclr: plugin 'astroclr_broken' (package 'astroclr-broken' 1.2.3) failed to load and "
        "is skipped: ImportError: this plugin needs a library that is not installed"]
    assert "tinynet" in res.stdout


def test_hook_without_spec_fails_at_startup(site):
    res = _astroclr(["plugins"], [site / "astroclr-misspelled"])
    assert res.returncode != 0
    assert "astroclr_backbone" in res.stderr and "astroclr-misspelled" in res.stderr


def test_third_party_method_is_listed_and_trains(site, tmp_path):
    paths = [site / "astroclr-simsiam"]
    res = _astroclr(["plugins"], paths)
    assert res.returncode == 0, res.stderr
    line = next(ln for ln in res.stdout.splitlines() if "simsiam" in ln)
    assert "method" in line and "astroclr-simsiam" in line
    out = tmp_path / "run"
    res = _astroclr(["run", "--method", "simsiam", "-b", "smallcnn", "-o", str(out), "-q",
                     "--epochs", "1", "--batch-size", "16", "--set", "dataset.limit=48",
                     "--set", "dataset.bin=4", "--set", "run.evaluators=[]",
                     "--set", "method.weight=2.0"], paths, OMP_NUM_THREADS="1")
    assert res.returncode == 0, res.stderr[-3000:]
    state = json.loads((out / "run.json").read_text())
    assert state["method"] == "simsiam" and state["train"]["steps"] == 3
    assert "method = \"simsiam\"" in (out / "config.toml").read_text()
    assert "weight = 2.0" in (out / "config.toml").read_text()
    res = _astroclr(["run", "--method", "simsim", "-o", str(tmp_path / "r2"), "-q"], paths)
    assert res.returncode == 2
    assert "unknown method 'simsim'; available:" in res.stderr and "simsiam" in res.stderr


def test_unknown_name_lists_available(registry):
    with pytest.raises(PluginError, match=r"unknown backbone 'resnet19'; available: .*resnet18"):
        registry.get("backbone", "resnet19")


class _Dup:
    @hookimpl
    def astroclr_backbones(self):
        yield BackboneSpec("resnet18", "a second resnet18", lambda c, s: None)


def test_a_name_provided_twice_is_an_error():
    reg = Registry()
    with reg.registered(_Dup(), "dup"):
        with pytest.raises(PluginError, match="provided twice"):
            reg.parts("backbone")
    assert reg.parts("backbone")["resnet18"].package == "astroclr"


class _Params:
    @hookimpl
    def astroclr_backbones(self):
        yield BackboneSpec("p", "params", lambda c, s, width: None,
                           params=(Param("width", int, 8, "channels", low=1, high=64),))


def test_plugin_registered_in_code_is_found_and_removed():
    reg = Registry()
    with reg.registered(_Params(), "params"):
        assert reg.get("backbone", "p").params[0].name == "width"
    with pytest.raises(PluginError):
        reg.get("backbone", "p")
