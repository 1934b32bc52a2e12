"""Ctrl-C (SIGINT) and SIGTERM during training: a resumable checkpoint, the --resume command,
exit 130 / 143, and a resume that finishes the run.

Real CLI runs in subprocesses, signalled once their first periodic checkpoint exists (so they
are mid-training, whatever the machine's speed).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

EPOCHS, BATCH, LIMIT = 40, 16, 128  # 320 steps: far more than a test waits for
SETS = [f"dataset.limit={LIMIT}", "dataset.bin=4", "train.checkpoint_every_n_steps=2",
        "run.evaluators=[]", "train.accelerator=cpu", "train.threads=1"]


def _args(out: Path, *more: str) -> list[str]:
    args = [sys.executable, "-m", "astroclr.cli", "run", "-b", "smallcnn", "-o", str(out),
            "--epochs", str(EPOCHS), "--batch-size", str(BATCH), "-q", *more]
    for s in SETS:
        args += ["--set", s]
    return args


def _signalled(out: Path, signum: int) -> tuple[int, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(_args(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    ckpt = out / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 180
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if proc.poll() is None:
        proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    return proc.returncode, stderr


def _step(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])


def _check_interrupted(out: Path, rc: int, stderr: str, signum: int, code: int) -> int:
    assert rc == code, stderr[-3000:]
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr[-3000:]
    assert signal.Signals(signum).name in errors[0]
    assert f"astroclr run --resume {out}" in errors[0]
    step = _step(out / "checkpoints" / "last.ckpt")
    assert 0 < step < EPOCHS * LIMIT // BATCH
    assert f"checkpoint saved at step {step}" in errors[0]  # written on the signal, not before
    state = json.loads((out / "run.json").read_text())
    assert state["status"] == "training"
    assert not (out / ".lock").exists()  # the lock went with the process
    return step


def test_ctrl_c_leaves_a_checkpoint_and_the_run_resumes_to_the_end(tmp_path):
    out = tmp_path / "run"
    stopped = _check_interrupted(out, *_signalled(out, signal.SIGINT), signal.SIGINT, 130)
    # a shorter schedule for the rest: the resumed run must only finish, not train 320 steps
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "astroclr.cli", "run", "--resume", str(out), "-q",
                        "--set", f"train.max_steps={stopped + 2}"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    state = json.loads((out / "run.json").read_text())
    assert state["status"] == "complete" and state["train"]["steps"] == stopped + 2


def test_sigterm_leaves_a_checkpoint_and_exits_143(tmp_path):
    """SIGTERM is what a batch scheduler sends before it kills a job; Lightning handles it too."""
    out = tmp_path / "run"
    _check_interrupted(out, *_signalled(out, signal.SIGTERM), signal.SIGTERM, 143)


def test_a_sigterm_after_the_batch_hooks_still_checkpoints_at_the_next_batch(tmp_path):
    """Lightning's own SIGTERM check comes after the callbacks' batch-end hooks: a signal in
    between (here from the model's hook, which runs last) must not end training unsaved."""
    from astroclr.config import assemble_config, resolve
    from astroclr.plugin.registry import get_registry
    from astroclr.runs.build import build_training
    from astroclr.runs.rundir import RunDir
    from astroclr.train.trainer import Interrupted, fit

    reg = get_registry()
    cfg = resolve(assemble_config(None, SETS + ["train.epochs=2", "train.batch_size=16"],
                                  backbone="smallcnn"), reg)
    galaxies, model, _ = build_training(reg, cfg)

    def signal_at_step_2(*args):
        if model.global_step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    model.on_train_batch_end = signal_at_step_2
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted, match=r"SIGTERM \(checkpoint saved at step 3\)") as info:
        fit(model, galaxies, cfg.train, 0, RunDir(tmp_path / "run"), False, None)
    assert info.value.exit_code == 143
    assert _step(tmp_path / "run" / "checkpoints" / "last.ckpt") == 3
    assert signal.getsignal(signal.SIGTERM) is before  # the process's handler is given back
