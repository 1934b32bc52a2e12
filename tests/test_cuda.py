"""What only a CUDA device can check (skipped elsewhere; ``benchmarks/gpu_check.py`` runs them),
and the GPU check's behaviour on a machine without one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import astroclr
from astroclr.data.augment import build_pipeline, resolve_augment_config

ROOT = Path(__file__).resolve().parent.parent
ALL = ["crop_resize", "rotate_flip", "psf", "band_jitter", "noise", "cutout"]
no_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_gpu_check_without_cuda_says_so_in_one_line_and_succeeds():
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device: gpu_check would run in full")
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_check: no CUDA device"), result.stdout


@pytest.mark.cuda
@no_cuda
def test_pipeline_never_synchronises_with_the_host(registry, sample_galaxies):
    names, params = resolve_augment_config(registry, {"pipeline": ALL})
    pipe = build_pipeline(registry, sample_galaxies.survey, names, params)
    x = torch.from_numpy(sample_galaxies.images[:256]).cuda()
    gen = torch.Generator(device="cuda").manual_seed(0)
    pipe(x, gen)  # first call: the per-band constants are copied to the device once
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = pipe(x, gen)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert (out != x).flatten(1).any(1).all()  # rotate_flip applies to every image


@pytest.mark.cuda
@no_cuda
def test_a_short_gpu_run_trains_in_bf16_and_embeds(tmp_path):
    run = astroclr.run(out=tmp_path / "gpu", preset="gpu", backbone="resnet18", batch_size=64,
                       max_steps=4, epochs=1, progress=False, evaluators=["probe"],
                       sets=("dataset.limit=400", "train.embed_batch_size=256",
                             "train.checkpoint_every_n_steps=2"))
    state = json.loads((run.dir / "run.json").read_text())
    assert state["status"] == "complete"
    assert state["train"]["steps"] == 4
    assert "bf16" in state["train"]["precision"] and state["train"]["device"].startswith("cuda")
    config = (run.dir / "config.toml").read_text()
    assert 'accelerator = "gpu"' in config
    loaded = astroclr.load(run.dir)
    reps = loaded.embed(torch.zeros(8, 3, 32, 32).numpy())
    assert reps.shape == (8, 64)
