"""The GPU check cannot rot: its dry run runs every stage on the CPU, and no stage's error is
swallowed (a failed stage prints its traceback and the script exits 1)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
STAGES = ["1. CUDA-only tests", "2. training", "3. embedding", "4. input ceiling",
          "5. peak GPU memory", "summary"]


def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_dry_run_runs_every_stage_on_the_cpu_and_succeeds(tmp_path):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")  # the CPU even on a GPU machine
    result = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--out", str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-2000:]
    for title in STAGES:
        assert f"== {title}" in out, out
    assert "FAILED" not in out and "Traceback" not in out, out
    assert "no result" not in out, out  # every stage produced its figures
    for name in ("summary.json", "embed.json", "train_gpu_preset_b4.json"):
        assert (tmp_path / name).is_file(), name


def test_a_failed_stage_prints_its_traceback_and_the_others_still_run(capsys):
    module = gpu_check()
    stages = module.Stages()

    def broken():
        raise KeyError("temperature")

    assert stages.run("broken stage", broken) is None
    assert stages.run("good stage", lambda: 42) == 42
    out = capsys.readouterr().out
    assert "Traceback" in out and "KeyError: 'temperature'" in out
    assert "FAILED: broken stage" in out
    assert stages.failed == ["broken stage"]


def test_a_child_that_exits_non_zero_fails_its_stage():
    module = gpu_check()
    stages = module.Stages()
    argv = ["-c", "import sys; sys.exit(3)"]
    stages.run("child", module.run_child, argv, 30, False)
    assert stages.failed == ["child"]
