"""The examples and generated references in docs/ work as documented."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def test_embed_api_example_runs(tmp_path):
    """examples/embed_api.py: astroclr.run with a tiny budget, then load(...).embed(images)."""
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="2")
    res = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "embed_api.py"), "--out", str(out),
         "--steps", "3", "--limit", "200", "--batch-size", "16"],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "embedded (100, 3, 64, 64) -> (100, 64)" in res.stdout
    assert "max difference to the run's embeddings.fits: 0.00e+00" in res.stdout
    vectors = np.load(out / "embed_api_vectors.npy")
    assert vectors.shape == (100, 64) and np.isfinite(vectors).all()


def test_generated_references_are_up_to_date():
    """docs/cli.md, docs/config.md and astroclr/cli/schema_help.py match the code (regenerate:
    python docs/gen_cli_reference.py)."""
    res = subprocess.run([sys.executable, str(ROOT / "docs" / "gen_cli_reference.py"), "--check"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 0, res.stderr
