"""Resume: a run killed with SIGKILL mid-epoch continues where it stopped.

Real runs through the CLI (the killed one in a subprocess): 16x16 images, small CNN, a few
dozen steps. The resumed run must end at the planned step count with the same final weights
as an uninterrupted run (deterministic CPU ops, same data order, same augmentation stream),
for every method: its own state (momentum encoder, memory bank, centre) resumes too.
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

import astroclr
from astroclr.plugin.specs import AstroclrError
from astroclr.runs.rundir import open_run

EPOCHS, BATCH, LIMIT = 3, 16, 128  # 8 steps per epoch, 24 in all
TOTAL = EPOCHS * (LIMIT // BATCH)
SETS = [f"dataset.limit={LIMIT}", "dataset.bin=4", "train.checkpoint_every_n_steps=2",
        'augment.pipeline=["rotate_flip","noise"]', "run.evaluators=[]", "train.accelerator=cpu",
        "train.threads=1"]


def _cli_args(out: Path, sets: list[str] = SETS) -> list[str]:
    args = ["run", "-b", "smallcnn", "-o", str(out), "--epochs", str(EPOCHS),
            "--batch-size", str(BATCH), "-q"]
    for s in sets:
        args += ["--set", s]
    return args


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "astroclr.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def _ckpt_step(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])


def _killed(out: Path, sets: list[str] = SETS) -> Path:
    """A CLI run killed with SIGKILL as soon as its first checkpoint exists."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "astroclr.cli", *_cli_args(out, sets)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    ckpt = out / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    try:
        while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert ckpt.exists(), proc.stderr.read().decode()[-2000:]
    return out


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory) -> Path:
    return _killed(tmp_path_factory.mktemp("resume") / "run")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("straight") / "run"
    astroclr.run(out=out, backbone="smallcnn", epochs=EPOCHS, batch_size=BATCH, sets=SETS,
                 progress=False)
    return out


def test_killed_run_is_unfinished_and_says_so(killed_run):
    step = _ckpt_step(killed_run / "checkpoints" / "last.ckpt")
    assert 0 < step < TOTAL, f"the run was killed at step {step} of {TOTAL}: not mid-run"
    state = json.loads((killed_run / "run.json").read_text())
    assert state["status"] == "training"
    assert not (killed_run / "model.pt").exists()
    with pytest.raises(AstroclrError, match="resume"):
        astroclr.load(killed_run)
    with pytest.raises(AstroclrError, match="embeddings"):
        open_run(killed_run).embeddings()


def test_resume_with_other_backbone_is_refused_and_run_left_intact(killed_run):
    before = {p: p.read_bytes() for p in killed_run.rglob("*") if p.is_file()}
    r = _cli("run", "--resume", str(killed_run), "-b", "resnet18", "-q")
    assert r.returncode == 2
    assert "backbone" in r.stderr and "Traceback" not in r.stderr
    assert {p: p.read_bytes() for p in killed_run.rglob("*") if p.is_file()} == before


def test_resume_completes_with_planned_steps_and_same_weights(killed_run, uninterrupted):
    r = _cli("run", "--resume", str(killed_run), "-q")
    assert r.returncode == 0, r.stderr[-3000:]
    state = json.loads((killed_run / "run.json").read_text())
    assert state["status"] == "complete"
    assert state["train"]["steps"] == TOTAL
    assert _ckpt_step(killed_run / "checkpoints" / "last.ckpt") == TOTAL
    resumed = torch.load(killed_run / "model.pt", weights_only=True)
    straight = torch.load(uninterrupted / "model.pt", weights_only=True)
    assert resumed.keys() == straight.keys()
    for name in straight:
        torch.testing.assert_close(resumed[name], straight[name], rtol=1e-5, atol=1e-6,
                                   msg=lambda m: f"{name}: {m}")
    model = astroclr.load(killed_run, device="cpu")
    assert model.encoder is not None


def test_corrupt_checkpoint_is_one_line_error_and_left_intact(tmp_path, killed_run):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(killed_run, run)
    (run / "run.json").write_text(json.dumps({**json.loads((run / "run.json").read_text()),
                                              "status": "training"}))
    ckpt = run / "checkpoints" / "last.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])  # truncated
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    r = _cli("run", "--resume", str(run), "-q")
    assert r.returncode == 2
    assert "corrupt or incomplete" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    """Checkpoints are data: an object that would run code when unpickled is rejected."""
    from astroclr.train.trainer import AtomicCheckpointIO

    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "loops": {}, "payload": _Evil()}, path)
    with pytest.raises(AstroclrError, match="corrupt or incomplete"):
        AtomicCheckpointIO().load_checkpoint(path)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


# -- every method -----------------------------------------------------------------------------

def _tensors(state: dict, prefix: str = ""):
    for key, value in state.items():
        if isinstance(value, dict):  # extra state: MoCo's memory bank
            yield from _tensors(value, prefix + key + ".")
        elif isinstance(value, torch.Tensor):
            yield prefix + key, value


# Each method's options, and the state of its own the checkpoint must hold. A memory bank
# smaller than the keys of the run, so that it wraps around; DINO with multi-crop.
METHODS = {
    "moco": (["method.memory_bank=40"], ["method._extra_state.bank", "method.encoder_momentum."]),
    "byol": ([], ["method.encoder_momentum.", "method.head_momentum."]),
    "vicreg": ([], ["method.head."]),
    "barlowtwins": ([], ["method.head."]),
    "dino": (["method.local_views=2", "method.prototypes=64"],
             ["method.criterion.center", "method.teacher_encoder.", "method.teacher_head."]),
}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_method_resumes_to_the_uninterrupted_state(tmp_path, method):
    options, own_state = METHODS[method]
    sets = SETS + [f"train.method={method!r}"] + options
    killed = _killed(tmp_path / "killed", sets)
    assert 0 < _ckpt_step(killed / "checkpoints" / "last.ckpt") < TOTAL
    r = _cli("run", "--resume", str(killed), "-q")
    assert r.returncode == 0, r.stderr[-3000:]
    straight = tmp_path / "straight"
    astroclr.run(out=straight, backbone="smallcnn", epochs=EPOCHS, batch_size=BATCH, sets=sets,
                 progress=False)
    resumed, uninterrupted = (
        dict(_tensors(torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]))
        for run in (killed, straight))
    assert resumed.keys() == uninterrupted.keys()
    for part in own_state:
        assert any(k.startswith(part) for k in resumed), f"{part} is not in the checkpoint"
    for name in uninterrupted:
        torch.testing.assert_close(resumed[name], uninterrupted[name], rtol=1e-5, atol=1e-6,
                                   msg=lambda m: f"{method} {name}: {m}")
    assert json.loads((killed / "run.json").read_text())["method"] == method
