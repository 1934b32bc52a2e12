"""The command line: instant help, one-line errors with exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys


def astroclr(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "astroclr.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ, COLUMNS="200"))


def test_help_lists_commands_without_importing_torch():
    code = ("import sys; from astroclr.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "run" in res.stdout and "plugins" in res.stdout
    assert res.stdout.strip().endswith("NO-TORCH")


def test_the_command_modules_import_neither_pydantic_nor_the_schema():
    """Options show the schema's help from a generated plain module: building every core
    command costs no pydantic (150-250 ms) and no torch."""
    code = ("import sys, astroclr.cli\nastroclr.cli.load_commands()\n"
            "print(sorted(m for m in ('pydantic', 'torch', 'astroclr.resolved') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_unknown_backbone_is_one_line_with_choices(tmp_path):
    res = astroclr("run", "--backbone", "resnet19", "--out", str(tmp_path / "r"))
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "unknown backbone 'resnet19'" in lines[0] and "resnet18" in lines[0]
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "r").exists()


def test_out_of_range_value_names_the_key(tmp_path):
    res = astroclr("run", "--set", "train.temperature=0", "--out", str(tmp_path / "r"))
    assert res.returncode == 2
    assert "train.temperature" in res.stderr and "minimum" in res.stderr


def test_config_prints_resolved_toml():
    res = astroclr("config", "--set", "train.epochs=3")
    assert res.returncode == 0, res.stderr
    assert "[train]" in res.stdout and "epochs = 3" in res.stdout

