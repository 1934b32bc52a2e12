"""Distributed training: a real 2-process DDP run on CPU (gloo), compared with one process.

With augmentation off (both views are the image), a 2-process run with per-process batch B
sees the same global batch of 2B images at its first step as a 1-process run with batch 2B:
with negatives gathered from both processes (SimCLR, MoCo's memory bank), BatchNorm statistics
over the global batch, and a centre averaged over processes (DINO), the mean of the two
processes' first-step losses equals the single process's loss, for every method tested. At the
end both processes hold the very same state: weights, momentum encoders (EMA), memory bank,
centre.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

B, LIMIT = 8, 64
SETS = [f"dataset.limit={LIMIT}", "dataset.bin=4", "augment.pipeline=[]", "run.evaluators=[]",
        "train.accelerator=cpu", "train.checkpoint_every_n_steps=0", "train.threads=1"]

SCRIPT = textwrap.dedent('''
    import hashlib, json, sys
    from pathlib import Path
    import lightning as L
    import astroclr.train.trainer as T
    from astroclr import config as cfgmod
    from astroclr.plugin.registry import get_registry
    from astroclr.config import assemble_config
    from astroclr.runs.build import build_training
    from astroclr.runs.rundir import RunDir

    out, devices, batch, strategy = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
    sets = json.loads(sys.argv[5])

    class FirstStep(L.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.global_step != 1:
                return
            r = trainer.global_rank
            rec = {"loss": float(outputs["loss"]), "rank": r, "world": trainer.world_size,
                   "image_sums": [float(v) for v in batch.double().sum((1, 2, 3))],
                   "seed": module.generator(batch.device).initial_seed(),
                   "bn": type(module.encoder.backbone.net[0][1]).__name__}
            (out / f"first_step_rank{r}.json").write_text(json.dumps(rec))

    build = T.build_trainer
    def build_trainer(*a, **k):
        trainer = build(*a, **k)
        trainer.callbacks.append(FirstStep())
        return trainer
    T.build_trainer = build_trainer

    reg = get_registry()
    cfg = cfgmod.resolve(assemble_config(None, sets + [f"train.devices={devices!r}",
                         f"train.strategy={strategy!r}"], backbone="smallcnn", epochs=1,
                         batch_size=batch), reg)
    out.mkdir(parents=True, exist_ok=True)
    galaxies, model, _ = build_training(reg, cfg)
    summary = T.fit(model, galaxies, cfg.train, cfg.run.seed, RunDir(out), False, None)
    def tensors(state, prefix=""):  # extra state (MoCo's memory bank) is a dict of tensors
        for k, v in state.items():
            if isinstance(v, dict):
                yield from tensors(v, prefix + k + ".")
            elif hasattr(v, "numpy"):
                yield prefix + k, v
    summary["state"] = {k: hashlib.sha1(v.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
                        for k, v in tensors(model.state_dict())}
    (out / f"summary_rank{summary['global_rank']}.json").write_text(json.dumps(summary))
''')


def _run(tmp_path: Path, name: str, devices: int, batch: int, strategy: str,
         method: str) -> Path:
    script = tmp_path / "ddp_script.py"
    script.write_text(SCRIPT)
    out = tmp_path / name
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    for var in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "NODE_RANK", "MASTER_PORT"):
        env.pop(var, None)
    r = subprocess.run([sys.executable, str(script), str(out), str(devices), str(batch), strategy,
                        json.dumps(SETS + [f"train.method={method!r}"])],
                       capture_output=True, text=True, timeout=240, env=env)
    assert r.returncode == 0, r.stderr[-4000:]
    return out


def _first(out: Path, rank: int) -> dict:
    return json.loads((out / f"first_step_rank{rank}.json").read_text())


# Every method: in-batch negatives (simclr), a memory bank of gathered keys and a momentum
# encoder (moco), EMA only (byol), EMA and an all-reduced centre (dino), variance and
# covariance over the gathered batch (vicreg), an averaged cross-correlation (barlowtwins).
# The last two add no cross-process state of their own: marked slow (-m "not slow" skips them).
@pytest.fixture(scope="module", params=["simclr", "moco", "byol", "dino",
                                        pytest.param("vicreg", marks=pytest.mark.slow),
                                        pytest.param("barlowtwins", marks=pytest.mark.slow)])
def runs(tmp_path_factory, request):
    tmp = tmp_path_factory.mktemp(f"ddp_{request.param}")
    return (_run(tmp, "ddp", 2, B, "ddp", request.param),
            _run(tmp, "single", 1, 2 * B, "auto", request.param), request.param)


def test_two_process_run_completes(runs):
    ddp, _, _ = runs
    summary = json.loads((ddp / "summary_rank0.json").read_text())
    assert summary["world_size"] == 2
    # 64 images, 8 per process and step: 4 steps per epoch, each over a global batch of 16
    assert summary["steps"] == LIMIT // (2 * B)
    assert (ddp / "checkpoints" / "last.ckpt").is_file()
    assert _first(ddp, 0)["bn"] == "GlobalBatchNorm"


def test_each_process_reads_its_own_shard_of_the_same_global_batch(runs):
    ddp, single, _ = runs
    r0, r1, one = _first(ddp, 0), _first(ddp, 1), _first(single, 0)
    assert len(r0["image_sums"]) == len(r1["image_sums"]) == B
    assert not set(np.round(r0["image_sums"], 4)) & set(np.round(r1["image_sums"], 4))
    np.testing.assert_allclose(sorted(r0["image_sums"] + r1["image_sums"]),
                               sorted(one["image_sums"]), rtol=1e-6)


def test_every_process_ends_with_the_same_state(runs):
    """Weights, BatchNorm statistics, momentum encoders, memory bank and centre: identical."""
    ddp, _, _ = runs
    s0, s1 = (json.loads((ddp / f"summary_rank{r}.json").read_text())["state"] for r in (0, 1))
    assert s0.keys() == s1.keys() and len(s0) > 10
    assert [k for k in s0 if s0[k] != s1[k]] == []


def test_augmentation_streams_differ_per_process(runs):
    ddp, _, _ = runs
    assert _first(ddp, 0)["seed"] != _first(ddp, 1)["seed"]


def test_first_step_loss_equals_single_process_on_global_batch(runs):
    ddp, single, method = runs
    if method == "barlowtwins":
        pytest.skip("lightly's Barlow Twins normalises each process's share of the batch on its "
                    "own (as the paper's code does): its loss is not the single-process one")
    mean = (_first(ddp, 0)["loss"] + _first(ddp, 1)["loss"]) / 2
    assert mean == pytest.approx(_first(single, 0)["loss"], rel=1e-4, abs=1e-5)


# -- bad distributed options: one line, exit 2, nothing trained ------------------------------

def _cli(args: list[str], capsys) -> tuple[int, str]:
    from astroclr.cli import main

    with pytest.raises(SystemExit) as info:
        main(args)
    return int(info.value.code), capsys.readouterr().err


@pytest.mark.parametrize("option, expected", [
    (["--strategy", "no_such_strategy"], "strategy"),
    (["--accelerator", "cpu", "--devices", "4096"], "only"),
    (["--devices", "two"], "devices"),
])
def test_bad_distributed_options_are_one_line_errors(tmp_path, capsys, option, expected):
    out = tmp_path / "run"
    code, err = _cli(["run", "-b", "smallcnn", "-o", str(out), "-q", "--epochs", "1",
                      *[a for s in SETS for a in ("--set", s)], *option], capsys)
    assert code == 2, err
    assert "Traceback" not in err
    # (calling main() twice in one process makes the CLI warn about plugin commands: ignored)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], err
    assert not (out / "checkpoints").exists() and not (out / "model.pt").exists()


def test_check_trainer_options_validates_without_training(registry):
    from astroclr.config import assemble_config, resolve
    from astroclr.plugin.specs import AstroclrError
    from astroclr.train.devices import check_trainer_options

    def train(**options):
        sets = [f"train.{k}={v!r}" for k, v in {"accelerator": "cpu", **options}.items()]
        return resolve(assemble_config(None, sets), registry).train

    check_trainer_options(train())
    check_trainer_options(train(devices="2", strategy="ddp"))
    with pytest.raises(AstroclrError, match="strategy=nope"):
        check_trainer_options(train(strategy="nope"))
    with pytest.raises(AstroclrError):
        check_trainer_options(train(accelerator="gpu") if not _has_gpu() else
                              train(accelerator="gpu", devices="512"))


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()
