"""Hostile inputs to ``astroclr predict`` through the command line (see hostile_support.py for
what every case checks: exit code, one ``error:`` line, no traceback, inputs unchanged)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from astropy.table import Table
from hostile_support import N_GALAXIES, Case, check, cli, python, snapshot


def _variants(good: dict) -> dict[str, tuple[object, str]]:
    """Deviating classifier.json documents and the field each error must name."""
    def without(key):
        return {k: v for k, v in good.items() if k != key}

    return {
        "empty": ({}, "format"),
        "a list": ([], "whole document"),
        "no classes": (without("classes"), "classes"),
        "classes as text": ({**good, "classes": "0,1"}, "classes"),
        "a class name short": ({**good, "class_names": good["class_names"][:1]}, "class_names"),
        "image_size negative": ({**good, "image_size": -16}, "image_size"),
        "bands not a list": ({**good, "bands": "gri"}, "bands"),
        "preprocessing unknown key": ({**good, "preprocessing": {**good["preprocessing"],
                                                                 "gamma": 2}}, "preprocessing"),
        "backbone_params a list": ({**good, "backbone_params": []}, "backbone_params"),
        "another format": ({**good, "format": "something-else"}, "format"),
    }


@pytest.fixture(scope="module")
def world(hostile_world):
    import torch

    root = hostile_world.root
    good = json.loads((hostile_world.clf / "classifier.json").read_text())
    for name, (doc, _) in _variants(good).items():
        bad = root / "bad_clf" / name.replace(" ", "_")
        if not bad.exists():
            shutil.copytree(hostile_world.clf, bad)
            (bad / "classifier.json").write_text(json.dumps(doc))
    nan_clf = root / "nan_clf"
    if not nan_clf.exists():
        shutil.copytree(hostile_world.clf, nan_clf)
        weights = torch.load(nan_clf / "weights.pt", weights_only=True)
        last = [k for k, v in weights.items() if v.is_floating_point()][-1]
        weights[last] = torch.full_like(weights[last], float("nan"))
        torch.save(weights, nan_clf / "weights.pt")
    (root / "existing_p.fits").write_bytes(b"not to be replaced\n")
    hostile_world.variants = _variants(good)
    return hostile_world


def _cases() -> list[Case]:
    cases = [
        Case("--out under a regular file", ("predict", "{clf}", "-o", "{afile}/p.fits", "-q"),
             2, ("cannot write --out", "afile.txt")),
        Case("--out inside the classifier", ("predict", "{clf}", "-o", "{clf}/p.fits", "-q"), 2,
             ("inside", "reads")),
        Case("--out is an existing file", ("predict", "{clf}", "-o", "{root}/existing_p.fits",
                                           "-q"), 2, ("exists", "--overwrite")),
        Case("a classifier of NaN weights", ("predict", "{root}/nan_clf", "-o",
                                             "{root}/p_nan.fits", "-q"), 2,
             ("weights.pt", "NaN")),
        Case("--devices 2 with fewer batches than processes",
             ("predict", "{clf}", "-o", "{root}/p_dev.fits", "--accelerator", "cpu",
              "--devices", "2", "--set", "train.embed_batch_size=64", "-q"), 2,
             ("2 processes",)),
        # settings that do not apply: the classifier fixes the preprocessing, inference reads
        # no training keys, and no evaluator runs
        Case("--set dataset.size=32", ("predict", "{clf}", "-o", "{root}/p_size.fits", "--set",
                                       "dataset.size=32", "-q"), 2,
             ("size = 32", "does not apply")),
        Case("--set train.max_steps=5", ("predict", "{clf}", "-o", "{root}/p_train.fits",
                                         "--set", "train.max_steps=5", "-q"), 2,
             ("train.max_steps", "does not apply")),
        Case("another evaluator's table", ("predict", "{clf}", "-o", "{root}/p_eval.fits",
                                           "--set", "evaluate.anomaly.k=3", "-q"), 2,
             ("evaluate.anomaly.k", "only dataset.* and train.*")),
    ]
    good = {"format": "astroclr-classifier", "classes": [0, 1], "class_names": ["a", "b"],
            "preprocessing": {"bin": 4}}
    for name, (_, field) in list(_variants(good).items())[:3]:  # the rest in-process below
        cases.append(Case(f"classifier.json {name}",
                          ("predict", "{root}/bad_clf/" + name.replace(" ", "_"), "-o",
                           "{root}/p_meta.fits", "-q"), 2, ("classifier.json", field)))
    return cases


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_predict(world, case):
    check(world, case)


@pytest.mark.parametrize("name", list(_variants({"format": "astroclr-classifier",
                                                  "classes": [0, 1], "class_names": ["a", "b"],
                                                  "preprocessing": {"bin": 4}})))
def test_every_deviating_classifier_json_is_one_error_naming_the_field(world, name):
    from astroclr.api import AstroclrError
    from astroclr.classify.classifier import read_info

    field = world.variants[name][1]
    with pytest.raises(AstroclrError) as caught:
        read_info(world.root / "bad_clf" / name.replace(" ", "_"))
    message = str(caught.value)
    assert "classifier.json" in message and field in message and "\n" not in message


def test_nan_galaxies_are_skipped_and_counted(world, tmp_path):
    out = tmp_path / "p.fits"
    r = cli("predict", world.clf, "-o", out, "--set", "dataset.input=prepared", "--set",
            f"dataset.path={world.root / 'prepared_nan'}", "-q")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert f"skipped 2 of {N_GALAXIES} galaxies" in r.stdout
    table = Table.read(out)
    assert len(table) == N_GALAXIES - 2
    probs = np.stack([table[c] for c in table.colnames if c.startswith("prob_")], axis=1)
    assert np.isfinite(probs).all()


def test_two_predicts_into_one_out_at_once(world, tmp_path):
    """One writes the table; the other fails with one line (the lock, or the finished file),
    and no work folder is left behind."""
    out = tmp_path / "p.fits"
    args = [sys.executable, "-m", "astroclr.cli", "predict", str(world.clf), "-o", str(out), "-q"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    assert sorted(c for c, _, _ in results) == [0, 2], [(c, e[-1500:]) for c, _, e in results]
    loser = next(e for c, _, e in results if c == 2)
    assert "Traceback" not in loser and len(loser.strip().splitlines()) == 1, loser
    assert "in use" in loser or "exists" in loser, loser
    assert len(Table.read(out)) == N_GALAXIES
    assert [p.name for p in tmp_path.iterdir()] == ["p.fits"]


def test_a_signal_during_inference_says_how_to_continue(world, tmp_path):
    out = tmp_path / "p.fits"
    before = snapshot(world.clf)
    r = python(
        "import os, signal, time\n"
        "import astroclr.train.infer as infer\n"
        "def stopped(*a, **k):\n"
        "    os.kill(os.getpid(), signal.SIGINT); time.sleep(30)\n"
        "infer.infer = stopped\n"
        "from astroclr.cli import main\n"
        f"main(['predict', {str(world.clf)!r}, '-o', {str(out)!r}, '-q'])\n")
    assert r.returncode == 130, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"continue with: astroclr predict {world.clf}" in lines[0]
    assert snapshot(world.clf) == before
