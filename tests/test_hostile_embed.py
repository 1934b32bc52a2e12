"""Hostile inputs to ``astroclr embed`` through the command line (see hostile_support.py for
what every case checks: exit code, one ``error:`` line, no traceback, inputs unchanged)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from astropy.table import Table
from hostile_support import N_GALAXIES, Case, check, cli, python

PREP = ("--set", "dataset.input=prepared", "--set", "dataset.path={root}/prepared")
PREP_NAN = ("--set", "dataset.input=prepared", "--set", "dataset.path={root}/prepared_nan")

BAD_STATES = {
    "empty": {},
    "a list": [],
    "no bands": {"status": "complete", "image_size": 16, "preprocessing": {"bin": 4}},
    "image_size as text": {"status": "complete", "bands": ["g", "r", "i"], "image_size": "16",
                           "preprocessing": {"bin": 4}},
    "unknown status": {"status": "exploded", "bands": ["g", "r", "i"], "image_size": 16,
                       "preprocessing": {"bin": 4}},
    "bad preprocessing": {"status": "complete", "bands": ["g", "r", "i"], "image_size": 16,
                          "preprocessing": {"bin": 4, "stretch": "cubic"}},
}
FIELDS = {"empty": "status", "a list": "whole document", "no bands": "bands",
          "image_size as text": "image_size", "unknown status": "status",
          "bad preprocessing": "preprocessing"}


@pytest.fixture(scope="module")
def world(hostile_world):
    """The shared world plus runs whose run.json deviates, and one of NaN weights."""
    import torch

    root = hostile_world.root
    for name, doc in BAD_STATES.items():
        bad = root / "bad_state" / name.replace(" ", "_")
        if not bad.exists():
            shutil.copytree(hostile_world.run, bad)
            (bad / "run.json").write_text(json.dumps(doc))
    nan_run = root / "nan_weights_run"
    if not nan_run.exists():
        shutil.copytree(hostile_world.run, nan_run)
        weights = torch.load(nan_run / "model.pt", weights_only=True)
        first = next(k for k, v in weights.items() if v.is_floating_point())
        weights[first] = torch.full_like(weights[first], float("nan"))
        torch.save(weights, nan_run / "model.pt")
    (root / "a_dir.fits").mkdir(exist_ok=True)
    (root / "existing.fits").write_bytes(b"not to be replaced\n")
    return hostile_world


CASES = [
    # outputs, before any work
    Case("--out under a regular file", ("embed", "{run}", "-o", "{afile}/e.fits", "-q"), 2,
         ("cannot write --out", "afile.txt")),
    Case("--out is a directory", ("embed", "{run}", "-o", "{root}/a_dir.fits", "-q"), 2,
         ("a_dir.fits", "is a directory")),
    Case("--out is the run's own embeddings.fits",
         ("embed", "{run}", "-o", "{run}/embeddings.fits", "-q"), 2,
         ("embeddings.fits", "inside", "reads")),
    Case("--out is an existing file", ("embed", "{run}", "-o", "{root}/existing.fits", "-q"), 2,
         ("existing.fits", "exists", "--overwrite")),
    # metadata of the run
    *[Case(f"run.json {name}", ("embed", "{root}/bad_state/" + name.replace(" ", "_"), "-o",
                                 "{root}/e_state.fits", "-q"), 2, ("run.json", FIELDS[name]))
      for name in list(BAD_STATES)[:3]],  # the rest in-process below
    Case("a model of NaN weights", ("embed", "{root}/nan_weights_run", "-o", "{root}/e_nan.fits",
                                    "-q"), 2, ("model.pt", "NaN")),
    # ranges, before work
    Case("--devices 2 with fewer batches than processes",
         ("embed", "{run}", "-o", "{root}/e_dev.fits", "--accelerator", "cpu", "--devices", "2",
          "--set", "train.embed_batch_size=64", "-q"), 2, ("1 batch", "2 processes")),
    Case("a dataset unlike the run leaves no work folder",
         ("embed", "{run}", "-o", "{root}/e_bin.fits", "--set", "dataset.bin=2", "-q"), 2,
         ("32x32",)),
    Case("an unknown --set table", ("embed", "{run}", "-o", "{root}/e_set.fits", "--set",
                                    "recipe.lr=0.1", "-q"), 2, ("only dataset.* and train.*",)),
    Case("a training key", ("embed", "{run}", "-o", "{root}/e_lr.fits", "--set", "train.lr=0.1",
                            "-q"), 2, ("train.lr", "does not apply")),
    Case("a file-only dataset key with the sample", ("embed", "{run}", "-o",
                                                     "{root}/e_crop.fits", "--set",
                                                     "dataset.crop=32", "-q"), 2,
         ("crop = 32", "does not apply")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_embed(world, case):
    check(world, case)


@pytest.mark.parametrize("name", list(BAD_STATES))
def test_every_deviating_run_json_is_one_error_naming_the_field(world, name):
    from astroclr.api import AstroclrError
    from astroclr.runs.rundir import open_run

    with pytest.raises(AstroclrError) as caught:
        open_run(world.root / "bad_state" / name.replace(" ", "_"))
    message = str(caught.value)
    assert "run.json" in message and FIELDS[name] in message and "\n" not in message


def test_the_run_state_is_typed(world):
    from astroclr.runs.rundir import RunDir
    from astroclr.runs.state import RunStatus

    state, doc = RunDir(world.run).run_state()
    assert state.status is RunStatus.COMPLETE and state.bands == doc["bands"]


def test_nan_galaxies_are_skipped_and_counted(world, tmp_path):
    out = tmp_path / "emb.fits"
    r = cli("embed", world.run, "-o", out, *[a.replace("{root}", str(world.root))
                                             for a in PREP_NAN], "-q")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert f"skipped 2 of {N_GALAXIES} galaxies" in r.stdout, r.stdout
    table = Table.read(out)
    assert len(table) == N_GALAXIES - 2 and table.meta["NSKIPPED"] == "2"
    assert np.isfinite(table["representation"]).all()
    ids = list(Table.read(world.root / "prepared_nan" / "catalog.fits")["id"])
    assert ids[3] not in list(table["id"]) and ids[7] not in list(table["id"])


def test_overwrite_replaces_an_existing_output(world, tmp_path):
    out = tmp_path / "emb.fits"
    out.write_bytes(b"old\n")
    r = cli("embed", world.run, "-o", out, "--overwrite", "-q")
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(Table.read(out)) == N_GALAXIES


def test_a_resumed_part_of_other_pixels_with_the_same_ids_is_not_reused(world, tmp_path):
    """The parts of an interrupted embed of one set are not resumed by another set with the
    same ids but other pixels (the resume key holds a digest of the pixels, not only ids)."""
    import astroclr
    from astroclr.config import resolve
    from astroclr.plugin.registry import get_registry
    from astroclr.train.infer import infer, model_fingerprint

    model = astroclr.load(world.run, device="cpu")
    train = resolve({"run": {"evaluators": []}, "train": {"accelerator": "cpu"}},
                    get_registry()).train
    first = np.load(world.root / "prepared" / "images.npy")
    other = first[::-1].copy()  # other pixels, the same ids in the same order
    ids = np.arange(len(first)).astype(str)
    work = tmp_path / ".x.fits.parts"
    fingerprint = model_fingerprint(model.encoder)
    a = np.array(infer(model.encoder, first, ids, work, train, 16, fingerprint=fingerprint))
    b = np.array(infer(model.encoder, other, ids, work, train, 16, fingerprint=fingerprint))
    np.testing.assert_allclose(b, a[::-1], atol=1e-5)


@pytest.mark.parametrize("signame, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_during_inference_says_how_to_continue(world, tmp_path, signame, code):
    out = tmp_path / "emb.fits"
    r = python(
        "import os, signal, time\n"
        "import astroclr.train.infer as infer\n"
        "def stopped(*a, **k):\n"
        f"    os.kill(os.getpid(), signal.{signame}); time.sleep(30)\n"
        "infer.infer = stopped\n"
        "from astroclr.cli import main\n"
        f"main(['embed', {str(world.run)!r}, '-o', {str(out)!r}, '-q'])\n")
    assert r.returncode == code, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert signame in lines[0] and f"continue with: astroclr embed {world.run}" in lines[0]
    assert "run --resume" not in lines[0] and not out.exists()
