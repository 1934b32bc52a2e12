"""Shared fixtures: small real-data inputs, built once per session."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

# Two cores on CI: keep torch from oversubscribing them when pytest runs. Under pytest-xdist
# each worker is one of the processes sharing the cores: one thread each (the controller's
# setting is inherited, so a worker overrides it).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
else:
    os.environ.setdefault("OMP_NUM_THREADS", "2")
# Probe fits in this process: worker start-up would outweigh the tests' tiny fits
# (test_eval_probe checks the worker path gives the same numbers).
os.environ.setdefault("ASTROCLR_EVAL_JOBS", "1")
# Caches (neighbour indexes) of the tests' tables in a folder of their own, not the user's.
os.environ.setdefault("ASTROCLR_CACHE", tempfile.mkdtemp(prefix="astroclr-test-cache-"))


@pytest.fixture(scope="session")
def registry():
    from astroclr.plugin.registry import get_registry

    return get_registry()


@pytest.fixture(scope="session")
def sample_galaxies():
    """The first 400 galaxies of the embedded SDSS sample, preprocessed (3, 32, 32)."""
    from astroclr_sdss.sample import load_sample

    return load_sample(limit=400)


@pytest.fixture()
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def hostile_world(tmp_path_factory):
    """One tiny trained run (40 galaxies of the sample, 16x16 px, two steps), a classifier of
    two fine-tuning steps on it, and a prepared copy of its galaxies, for the hostile-input
    modules of embed, predict, finetune, similar and the evaluators (which never change them:
    each case checks that nothing but its own output changed)."""
    import shutil

    from hostile_support import FAST_RECIPE, TINY_RUN, World, cli

    world = World(tmp_path_factory.mktemp("hostile_verbs"))
    trained = cli("run", "-o", world.run, *TINY_RUN)
    assert trained.returncode == 0, trained.stderr[-3000:]
    made = cli("finetune", world.run, "-o", world.clf, *FAST_RECIPE, "-q")
    assert made.returncode == 0, made.stderr[-3000:]
    prepared = world.root / "prepared"
    made = cli("prepare", "-o", prepared, "--set", "dataset.limit=40", "--set", "dataset.bin=4",
               "-q")
    assert made.returncode == 0, made.stderr[-3000:]
    # the same galaxies with NaN pixels in two of them
    nan_set = world.root / "prepared_nan"
    shutil.copytree(prepared, nan_set)
    images = np.load(nan_set / "images.npy", mmap_mode="r+")
    images[3, 0, 2, 2] = np.nan
    images[7] = np.inf
    images.flush()
    del images
    (world.root / "afile.txt").write_text("a regular file is in the way\n")
    return world
