"""What the hostile-input modules of the newer verbs share: the CLI in a subprocess, a hash of
every file of the test's world, and one check of a case (exit code, exactly one ``error:``
line naming the culprit or the line on stdout of a case that succeeds, no traceback, nothing
changed but the case's own output). The style of ``tests/test_hostile_inputs.py``."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

TINY_RUN = ["--set", "dataset.limit=40", "--set", "dataset.bin=4", "-b", "smallcnn", "--epochs",
            "1", "--set", "train.max_steps=2", "--set", "run.evaluators=[]", "--set",
            "train.accelerator=cpu", "-q"]
FAST_RECIPE = ["--set", "recipe.max_steps=2", "--set", "recipe.min_steps=2", "--set",
               "recipe.batch_size=16", "--set", "recipe.eval_every=1"]
N_GALAXIES = 40


def cli(*args: object, timeout: float = 300, env: dict | None = None
        ) -> subprocess.CompletedProcess:
    """``python -m astroclr.cli ARGS`` in a subprocess."""
    full = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore", **(env or {}))
    return subprocess.run([sys.executable, "-m", "astroclr.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=full)


def python(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -c CODE`` in a subprocess (for a signal sent from inside a verb)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, env=env)


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (links not followed) and its sha1."""
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple  # "{root}", "{run}", "{clf}", "{afile}" are filled in
    code: int
    message: tuple[str, ...]  # substrings of the error line or, for code 0, of stdout
    writes: str = ""  # the only path (relative to the world) the case may create or change


def fill(arg: object, world: "World") -> str:
    text = str(arg)
    for key, value in world.places().items():
        text = text.replace("{" + key + "}", str(value))
    return text


@dataclass
class World:
    root: Path

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def clf(self) -> Path:
        return self.root / "clf"

    def places(self) -> dict[str, Path]:
        return {"root": self.root, "run": self.run, "clf": self.clf,
                "afile": self.root / "afile.txt"}


def check(world: World, case: Case) -> subprocess.CompletedProcess:
    """Run ``case`` against ``world`` and check it (see the module docstring)."""
    before = snapshot(world.root)
    r = cli(*(fill(a, world) for a in case.args))
    after = snapshot(world.root)
    assert "Traceback" not in r.stderr + r.stdout, r.stderr[-3000:]
    assert r.returncode == case.code, (r.returncode, r.stdout[-1000:], r.stderr[-2000:])
    if case.code:
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr[-2000:]
        text = lines[0]
    else:
        text = r.stdout
    for part in case.message:
        assert part in text, (part, text)
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    allowed = {p for p in changed if case.writes and (p == case.writes
                                                      or p.startswith(case.writes + os.sep))}
    assert changed == allowed, f"files outside the case's output changed: {sorted(changed - allowed)}"
    leftovers = [p for p in after if ".parts" in p and p not in before]
    assert not leftovers, f"work folders left behind: {leftovers}"
    return r
