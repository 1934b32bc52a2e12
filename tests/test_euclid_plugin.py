"""A third-party survey plugin, installed like any package, works end to end.

``examples/astroclr-euclid`` is pip-installed into a separate site directory (never into the
test environment), and astroclr runs in subprocesses that see it through PYTHONPATH: it is
listed, trains on four Euclid bands resampled from two pixel grids, with its own augmentation,
and the evaluators run on the result, while no code of the core mentions Euclid.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "astroclr-euclid"
BANDS = ["VIS", "NIR_Y", "NIR_J", "NIR_H"]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The example plugin pip-installed into its own target directory."""
    src = tmp_path_factory.mktemp("src") / "astroclr-euclid"
    # Build from a copy, so the checkout gets no build/ or egg-info.
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info",
                                                               "__pycache__"))
    target = tmp_path_factory.mktemp("site")
    res = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                          "--no-build-isolation", "--no-index", "--target", str(target), str(src)],
                         capture_output=True, text=True)
    assert res.returncode == 0, f"pip install of the example plugin failed:\n{res.stderr}"
    return target


def _env(site: Path) -> dict[str, str]:
    # the site first; an outer PYTHONPATH (a checkout under test) still comes after it
    paths = [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths), OMP_NUM_THREADS="2")
    env.pop("ASTROCLR_PLUGINS", None)
    return env


def _astroclr(args: list[str], site: Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "astroclr.cli", *args], capture_output=True,
                          text=True, env=_env(site), timeout=240, cwd=cwd)


@pytest.fixture(scope="module")
def cutouts(site, tmp_path_factory) -> Path:
    """24 synthetic Euclid-like MEF cutouts, written by the plugin's own command."""
    folder = tmp_path_factory.mktemp("euclid_cutouts")
    res = _astroclr(["euclid", "synth", "--out", str(folder), "-n", "24", "--field", "7.2"], site)
    assert res.returncode == 0, res.stderr
    return folder


def test_the_examples_own_tests_pass_against_this_astroclr(site):
    """examples/astroclr-euclid/tests, as its author runs them (through astroclr.testing), with
    any 0.1.0 import path an error."""
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-W", "error::astroclr.moved.MovedWarning", str(EXAMPLE / "tests")],
                         capture_output=True, text=True, env=_env(site), timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stdout[-3000:]


def test_core_does_not_know_about_euclid():
    """Like ``grep -ri euclid astroclr/ plugins/ pyproject.toml``: no core or built-in file."""
    files = [ROOT / "pyproject.toml"]
    for folder in (ROOT / "astroclr", ROOT / "plugins"):
        files += [p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                  and p.suffix in {".py", ".toml", ".md", ".txt", ".cfg", ".json"}]
    hits = [str(p.relative_to(ROOT)) for p in files
            if "euclid" in p.read_text(encoding="utf-8", errors="replace").lower()]
    assert hits == []


def test_installed_plugin_is_listed(site):
    res = _astroclr(["plugins"], site)
    assert res.returncode == 0, res.stderr
    rows = {(line.split("│")[1].strip(), line.split("│")[2].strip()): line
            for line in res.stdout.splitlines() if line.count("│") >= 5}
    for kind, name in (("dataset", "euclid"), ("augmentation", "cosmic_rays"),
                       ("command", "euclid")):
        assert (kind, name) in rows, res.stdout
        assert "astroclr-euclid" in rows[kind, name] and "0.1.0" in rows[kind, name]


def test_four_bands_through_dataset_and_augmentations(site, cutouts):
    """Through the plugin registry in a subprocess: the dataset, then each augmentation on it."""
    script = textwrap.dedent(f"""
        import torch
        from astroclr.plugin.registry import Registry
        from astroclr.plugin.specs import validate_params

        reg = Registry()
        ds = reg.get("dataset", "euclid")
        g = ds.load(**validate_params(ds.all_params, {{"path": "{cutouts}", "size": 24}}, "dataset"))
        assert g.bands == {tuple(BANDS)!r}, g.bands
        assert g.images.shape == (24, 4, 24, 24), g.images.shape
        x = torch.from_numpy(g.images[:8].copy())
        overrides = {{"psf": {{"fwhm": [0.5, 0.9]}}, "cosmic_rays": {{"rate": 5.0}}}}
        for name in ("rotate_flip", "crop_resize", "psf", "noise", "cutout", "band_jitter",
                     "cosmic_rays"):
            spec = reg.get("augmentation", name)
            params = validate_params(spec.params, overrides.get(name, {{}}), name)
            y = spec.build(g.survey, **params)(x, torch.Generator().manual_seed(0))
            assert y.shape == x.shape and torch.isfinite(y).all(), name
            assert not torch.equal(y, x), name
        # The plugin's own augmentation hits VIS only.
        assert (y[:, 0] != x[:, 0]).any() and torch.equal(y[:, 1:], x[:, 1:])
        print("ok", g.survey.to_dict())
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=_env(site), timeout=240)
    assert res.returncode == 0, res.stderr
    assert "ok" in res.stdout and "'pixel_scale_arcsec': 0.3" in res.stdout


def test_run_trains_embeds_and_evaluates_on_four_bands(site, cutouts, tmp_path):
    out = tmp_path / "run"
    res = _astroclr([
        "run", "--dataset", "euclid", "--backbone", "smallcnn", "--out", str(out), "--quiet",
        "--batch-size", "8", "--evaluators", "probe,pca,knn",
        "--set", f"dataset.path={cutouts}", "--set", "dataset.size=24",
        "--set", "train.max_steps=3", "--set", "backbone.width=8",
        "--set", "augment.pipeline=['rotate_flip', 'psf', 'noise', 'cosmic_rays']",
        "--set", "augment.psf.fwhm=[0.5, 0.9]", "--set", "augment.cosmic_rays.p=0.5",
        "--set", "run.train_sizes=[8]", "--set", "run.eval_seeds=[0]",
        "--set", "evaluate.probe.models=['linear']", "--set", "evaluate.pca.models=['linear']",
    ], site, cwd=tmp_path)
    assert res.returncode == 0, res.stderr

    state = json.loads((out / "run.json").read_text())
    assert state["bands"] == BANDS
    assert state["status"] == "complete"
    assert state["survey"]["psf_fwhm_arcsec"]["VIS"] == pytest.approx(0.16)
    assert state["packages"]["astroclr-euclid"] == "0.1.0"

    from astropy.table import Table

    table = Table.read(out / "embeddings.fits")
    assert len(table) == 24 and table["representation"].shape == (24, 64)
    assert table.meta["BANDS"] == ",".join(BANDS) and table.meta["SURVEY"] == "euclid"
    assert set(table["label"]) <= {0, 1}

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["summary"]["bands"] == BANDS
    assert list(metrics["evaluators"]) == ["probe", "pca", "knn"]
    config = (out / "config.toml").read_text()
    assert "cosmic_rays" in config and "euclid" in config
