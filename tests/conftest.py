"""Shared fixtures: small real-data inputs, built once per session."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

# Two cores on CI: keep torch from oversubscribing them when pytest runs.
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
