"""Hostile inputs to ``astroclr finetune`` through the command line (see hostile_support.py for
what every case checks: exit code, one ``error:`` line, no traceback, inputs unchanged)."""

from __future__ import annotations

import json
import os

import pytest
from hostile_support import FAST_RECIPE, Case, check, cli, python, snapshot

OUT = ("-o", "{root}/ft_out")

CASES = [
    # recipe ranges, before any work
    *[Case(f"recipe.{key}={value}", ("finetune", "{run}", *OUT, "--set", f"recipe.{key}={value}",
                                     "-q"), 2, (f"recipe.{key}",))
      for key, value in (("lr", "nan"), ("layer_decay", "-0.5"), ("weight_decay", "-0.0001"))],
    # command-line ranges: one line, not Typer's box
    Case("--seed -1", ("finetune", "{run}", *OUT, "--seed", "-1", "-q"), 2, ("--seed",)),
    Case("a huge --seed", ("finetune", "{run}", *OUT, "--seed", str(2**40), "-q"), 2,
         ("--seed",)),
    Case("--labels 0", ("finetune", "{run}", *OUT, "--labels", "0", "-q"), 2, ("--labels",)),
    Case("an unknown --mode", ("finetune", "{run}", *OUT, "--mode", "magic", "-q"), 2,
         ("--mode",)),
    # settings that do not apply
    Case("--set train.devices=9", ("finetune", "{run}", *OUT, "--set", "train.devices=9", "-q"),
         2, ("train.devices=9", "do not apply")),
    Case("--set recipe.colour=1", ("finetune", "{run}", *OUT, "--set", "recipe.colour=1", "-q"),
         2, ("unknown recipe key",)),
    Case("--set dataset.size=32 (the embedded sample is 64 px)",
         ("finetune", "{run}", *OUT, "--set", "dataset.size=32", "-q"), 2,
         ("size = 32", "does not apply")),
    Case("another evaluator's table", ("finetune", "{run}", *OUT, "--set",
                                       "evaluate.anomaly.k=3", "-q"), 2, ("evaluate.anomaly.k",)),
    # outputs
    Case("--out under a regular file", ("finetune", "{run}", "-o", "{afile}/clf", "-q"), 2,
         ("cannot write --out", "afile.txt")),
    Case("--out inside the run", ("finetune", "{run}", "-o", "{run}/clf", "-q"), 2,
         ("inside", "reads")),
    Case("--out is the run", ("finetune", "{run}", "-o", "{run}", "-q"), 2, ("run",)),
    Case("--out is a regular file", ("finetune", "{run}", "-o", "{afile}", "-q"), 2,
         ("afile.txt", "not a directory")),
    Case("--out holds a classifier", ("finetune", "{run}", "-o", "{clf}", "-q"), 2,
         ("--overwrite",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_finetune(hostile_world, case):
    check(hostile_world, case)


@pytest.mark.parametrize("key, value", [
    ("lr", float("nan")), ("lr", -1e-3), ("lr", 0.0), ("encoder_lr", 0.0),
    ("encoder_lr", float("inf")), ("layer_decay", -0.5), ("layer_decay", 0.0),
    ("weight_decay", -1e-4), ("weight_decay", float("nan")), ("warmup_fraction", 1.5),
    ("warmup_fraction", -0.1), ("patience", -1), ("min_steps", -1),
    ("val_fraction", float("nan")), ("epochs", 0), ("batch_size", 0),
])
def test_a_recipe_out_of_range_is_refused_naming_the_field(key, value):
    from astroclr.api import AstroclrError
    from astroclr.classify.recipe import Recipe

    with pytest.raises(AstroclrError, match=key):
        Recipe(**{key: value})


def test_the_default_recipe_and_its_edges_are_accepted():
    from astroclr.classify.recipe import Recipe

    Recipe()
    Recipe(weight_decay=0.0, warmup_fraction=0.0, patience=0, min_steps=0, layer_decay=1.0)
    Recipe(warmup_fraction=1.0)


def test_nan_galaxies_are_left_out_of_training_and_counted(hostile_world, tmp_path):
    out = tmp_path / "clf"
    case = Case("prepared set with NaN galaxies",
                ("finetune", "{run}", "-o", str(out), "--set", "dataset.input=prepared",
                 "--set", "dataset.path={root}/prepared_nan", *FAST_RECIPE, "-q"), 0,
                ("skipped 2 labelled galaxies", "classifier"))
    check(hostile_world, case)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["skipped_nonfinite"] == 2
    ids = set(metrics["train_ids"]) | set(metrics["val_ids"])
    assert len(ids) == 38


def test_diverged_training_writes_no_classifier(hostile_world, tmp_path):
    """A learning rate so large that the weights become NaN: refused after training, before
    anything is written (a NaN classifier labels every galaxy with one class)."""
    out = tmp_path / "clf"
    case = Case("lr 1e30", ("finetune", "{run}", "-o", str(out), *FAST_RECIPE,
                            "--set", "recipe.lr=1e30", "--set", "recipe.encoder_lr=1e30",
                            "--set", "recipe.probe_init=false", "-q"), 2,
                ("diverged", "nothing was written"))
    check(hostile_world, case)
    assert not out.exists()


def test_a_signal_during_training_says_how_to_continue(hostile_world, tmp_path):
    out = tmp_path / "clf"
    before = snapshot(hostile_world.run)
    r = python(
        "import os, signal, time\n"
        "import astroclr.classify.finetune as ft\n"
        "def stopped(*a, **k):\n"
        "    os.kill(os.getpid(), signal.SIGTERM); time.sleep(30)\n"
        "ft.train_classifier = stopped\n"
        "from astroclr.cli import main\n"
        f"main(['finetune', {str(hostile_world.run)!r}, '-o', {str(out)!r}, '-q'])\n")
    assert r.returncode == 143, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "SIGTERM" in lines[0], r.stderr[-2000:]
    assert f"continue with: astroclr finetune {hostile_world.run}" in lines[0]
    assert not out.exists() and snapshot(hostile_world.run) == before


def test_an_out_locked_by_a_live_finetune_is_refused_at_once(hostile_world, tmp_path):
    """Two finetunes into one directory: the second fails before any work, naming the first
    (here this process, holding the OS lock), and leaves the directory as it was."""
    from astroclr.lock import acquire, release

    out = tmp_path / "clf"
    out.mkdir()
    held = acquire(out, "finetune")
    try:
        r = cli("finetune", hostile_world.run, "-o", out, *FAST_RECIPE, "-q")
        assert sorted(p.name for p in out.iterdir()) == [".lock"]
    finally:
        release(held)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr[-2000:]
    assert "in use by another astroclr finetune" in lines[0] and f"pid {os.getpid()}" in lines[0]


def test_a_finetune_holds_its_out_while_it_trains_and_leaves_no_lock(hostile_world, tmp_path):
    """While training, ``--out`` is locked (another writer is refused); the classifier written,
    the lock is gone."""
    out = tmp_path / "clf"
    r = python(
        "import astroclr.classify.finetune as ft\n"
        "from astroclr.lock import acquire\n"
        "from astroclr.api import AstroclrError\n"
        "real = ft.train_classifier\n"
        "def checked(*a, **k):\n"
        "    try:\n"
        f"        acquire({str(out)!r}, 'test')\n"
        "        print('NOT LOCKED')\n"
        "    except AstroclrError as exc:\n"
        "        print('LOCKED:', exc)\n"
        "    return real(*a, **k)\n"
        "ft.train_classifier = checked\n"
        "from astroclr.cli import main\n"
        f"main(['finetune', {str(hostile_world.run)!r}, '-o', {str(out)!r}, "
        f"*{list(FAST_RECIPE)!r}, '-q'])\n")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "LOCKED:" in r.stdout and "in use by another astroclr finetune" in r.stdout, r.stdout
    assert (out / "classifier.json").is_file() and not (out / ".lock").exists()
