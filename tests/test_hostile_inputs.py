"""Hostile inputs through the command line, as a new user would meet them.

Each case runs ``python -m astroclr.cli ...`` in a subprocess and checks: the exit code, the
one ``error:`` line on stderr naming the culprit (or the line on stdout of a case that
succeeds), no traceback, and that no file it should not touch was created or changed: every
file of the test's world is hashed before and after, and only the case's own output may differ.

One trained run (a raw FITS-cutout dataset whose catalogue holds hostile ids) serves every case.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from PIL import Image

from astroclr_sdss.synthetic import gaussian_image, write_frames

TINY = ["--set", "dataset.bin=4", "-b", "smallcnn", "--epochs", "1", "--set", "train.max_steps=2",
        "--set", "run.evaluators=[]", "--set", "train.accelerator=cpu", "-q"]
SAMPLE = ["--set", "dataset.limit=40", "--set", "dataset.bin=4"]
N_GOOD = 40


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "astroclr.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (links not followed) and its sha1."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(root))] = hashlib.sha1(p.read_bytes()).hexdigest()
    return out


def _cube(rng: np.random.Generator) -> np.ndarray:
    x, y = rng.uniform(28, 36, 2)
    return np.stack([gaussian_image((64, 64), [x], [y], [rng.uniform(50, 500)], sky_noise=0.1,
                                    rng=rng) for _ in "gri"]).astype(np.float32)


def _write_cube(path: Path, cube: np.ndarray) -> None:
    hdu = fits.PrimaryHDU(cube)
    hdu.header["BANDS"] = "g,r,i"
    hdu.writeto(path)


def bomb_png(path: Path, width: int = 40000, height: int = 40000) -> None:
    """A tiny PNG whose header claims 1.6 billion pixels: PIL refuses it as a decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


@dataclass
class World:
    root: Path
    cutouts: Path
    run: Path
    trained: subprocess.CompletedProcess
    paths: dict[str, Path] = field(default_factory=dict)


HOSTILE_IDS = {"../outside": "bad_id", "ABSOLUTE": "bad_id", "L" * 300: "bad_id",
               "missing1": "missing_file"}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(0)
    cutouts = root / "data" / "cutouts"
    cutouts.mkdir(parents=True)
    ids = [f"g{i:03d}" for i in range(N_GOOD)]
    for gid in ids:
        _write_cube(cutouts / f"{gid}.fits", _cube(rng))
    _write_cube(root / "data" / "outside.fits", _cube(rng))  # must never be read
    hostile = [str(root / "data" / "outside") if h == "ABSOLUTE" else h for h in HOSTILE_IDS]
    Table({"id": ids + hostile}).write(root / "data" / "cat.csv")

    # catalogue values that are not numbers / not integer classes
    (root / "data" / "cat_badra.csv").write_text("id,ra,dec\n" + "".join(
        f"{gid},{'abc' if i == 3 else 150.0},2.0\n" for i, gid in enumerate(ids)))
    t = Table({"id": ids, "cls": [0.0, 1.0] * (N_GOOD // 2)})
    t["cls"][5] = 0.5
    t.write(root / "data" / "cat_floatlabel.csv")

    # composites: the first image is a decompression bomb
    comp = root / "data" / "composites"
    comp.mkdir()
    bomb_png(comp / "1.png")
    for i in (2, 3):
        Image.fromarray(rng.integers(0, 255, (80, 80, 3), dtype=np.uint8)).save(comp / f"{i}.jpeg")

    # frames whose only catalogue galaxy lies on none of them
    write_frames(root / "data" / "frames", [150.0], [2.0], bands=("g", "r"), shape=(200, 200),
                 compress="none")
    Table({"id": [7], "ra": [20.0], "dec": [-5.0]}).write(root / "data" / "cat_off.csv")

    (root / "afile.txt").write_text("a regular file is in the way\n")
    run = root / "run"
    trained = cli("run", "-o", run, "--set", "dataset.input=fits_cutouts", "--set",
                  f"dataset.path={cutouts}", "--set", f"dataset.catalog={root / 'data' / 'cat.csv'}",
                  "--set", "dataset.file_pattern={id}.fits", *TINY)
    w = World(root, cutouts, run, trained)
    if trained.returncode == 0:
        blocked = root / "blocked_run"  # a run whose figures/ is a file: nothing can be drawn
        shutil.copytree(run, blocked)
        shutil.rmtree(blocked / "figures", ignore_errors=True)
        (blocked / "figures").write_text("not a folder\n")
        w.paths["blocked"] = blocked
    # directories locked by a live process (this one: the OS lock held for the module)
    from astroclr.lock import acquire

    for name in ("locked_run", "locked_prep"):
        (root / name).mkdir()
        acquire(root / name, "run")
    return w


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple  # "{root}", "{run}", "{afile}", "{blocked}" are filled in
    code: int
    message: tuple[str, ...]  # substrings of the error line (stderr) or, for code 0, of stdout
    writes: str = ""  # the only path (relative to the world) the case may create or change


CASES = [
    Case("run --out under a regular file",
         ("run", "-o", "{afile}/run", *SAMPLE, *TINY), 2, ("cannot write --out", "afile.txt")),
    Case("run --out is a regular file",
         ("run", "-o", "{afile}", *SAMPLE, *TINY), 2, ("afile.txt", "not a directory")),
    Case("run --out locked by a live process",
         ("run", "-o", "{root}/locked_run", *SAMPLE, *TINY), 2,
         ("locked_run", "in use", f"pid {os.getpid()}", socket.gethostname())),
    Case("prepare --out under a regular file",
         ("prepare", "-o", "{afile}/prep", *SAMPLE, "-q"), 2, ("cannot write --out", "afile.txt")),
    Case("prepare --out locked by a live process",
         ("prepare", "-o", "{root}/locked_prep", *SAMPLE, "-q"), 2,
         ("locked_prep", "in use", f"pid {os.getpid()}")),
    Case("evaluate a run whose figures/ is a file",
         ("evaluate", "{blocked}", "-q"), 2, ("figures", "not a directory")),
    Case("similar --out under a regular file",
         ("similar", "{run}", "--id", "g001", "--out", "{afile}/m.png"), 2,
         ("cannot write --out", "afile.txt")),
    Case("similar, default montage where figures/ is a file",
         ("similar", "{blocked}", "--id", "g001"), 2, ("figures", "not a directory")),
    Case("similar --out with an unknown image suffix",
         ("similar", "{run}", "--id", "g001", "--out", "{root}/m.xyz"), 2,
         ("m.xyz", "not an image format")),
    Case("similar --id with a path in it",
         ("similar", "{run}", "--id", "../../../etc/x"), 2, ("'../../../etc/x' is not in",)),
    Case("augment preview --out under a regular file",
         ("augment", "preview", *SAMPLE, "--out", "{afile}/p.png"), 2,
         ("cannot write --out", "afile.txt")),
    Case("augment preview --out is a directory",
         ("augment", "preview", *SAMPLE, "--out", "{root}/data"), 2, ("is a directory",)),
    Case("sdss download --out under a regular file",
         ("sdss", "download", "--catalog", "{root}/data/cat_off.csv", "--out", "{afile}/frames",
          "--no-progress"), 2, ("cannot write --out", "afile.txt")),
    Case("resume with another backbone",
         ("run", "--resume", "{run}", "-b", "resnet18", "-q"), 2,
         ("backbone 'smallcnn'", "'resnet18'")),
    Case("resume with another backbone parameter",
         ("run", "--resume", "{run}", "--set", "backbone.width=8", "-q"), 2,
         ("backbone.width = 32, not 8",)),
    Case("catalogue ids that are paths (prepare)",
         ("prepare", "-o", "{root}/prep_ids", "--set", "dataset.input=fits_cutouts",
          "--set", "dataset.path={root}/data/cutouts", "--set", "dataset.catalog={root}/data/cat.csv",
          "--set", "dataset.file_pattern={id}.fits", "--set", "dataset.bin=4", "-q"), 0,
         ("prepared 40 galaxies", "bad_id: 3", "missing_file: 1"), writes="prep_ids"),
    Case("catalogue RA that is not a number",
         ("prepare", "-o", "{root}/prep_badra", "--set", "dataset.input=fits_cutouts",
          "--set", "dataset.path={root}/data/cutouts",
          "--set", "dataset.catalog={root}/data/cat_badra.csv", "--set", "dataset.bin=4", "-q"), 0,
         ("prepared 39 galaxies", "bad_position: 1"), writes="prep_badra"),
    Case("catalogue label that is not an integer class",
         ("prepare", "-o", "{root}/prep_label", "--set", "dataset.input=fits_cutouts",
          "--set", "dataset.path={root}/data/cutouts",
          "--set", "dataset.catalog={root}/data/cat_floatlabel.csv",
          "--set", "dataset.label_column=cls", "-q"), 2,
         ("row 5 (id g005)", "label '0.5'", "'cls'", "unmapped_label")),
    Case("catalogue label not an integer, unmapped_label = skip",
         ("prepare", "-o", "{root}/prep_label_skip", "--set", "dataset.input=fits_cutouts",
          "--set", "dataset.path={root}/data/cutouts",
          "--set", "dataset.catalog={root}/data/cat_floatlabel.csv", "--set", "dataset.bin=4",
          "--set", "dataset.label_column=cls", "--set", "dataset.unmapped_label=skip", "-q"), 0,
         ("prepared 39 galaxies", "bad_label: 1"), writes="prep_label_skip"),
    Case("decompression bomb as the first composite",
         ("prepare", "-o", "{root}/prep_bomb", "--set", "dataset.input=composites",
          "--set", "dataset.path={root}/data/composites", "--set", "dataset.file_pattern={id}.png",
          "--set", "dataset.size=64", "-q"), 0,
         ("prepared 2 galaxies", "too_large: 1"), writes="prep_bomb"),
    Case("prepare whose only galaxy is off every frame",
         ("prepare", "-o", "{root}/prep_off", "--set", "dataset.input=frames",
          "--set", "dataset.path={root}/data/frames", "--set", "dataset.catalog={root}/data/cat_off.csv",
          "--set", 'dataset.bands=["g","r"]', "-q"), 2,
         ("no galaxies to prepare", "off_frames: 1", "skipped.csv"), writes="prep_off"),
]


def _fill(arg: str, world: World) -> str:
    return (str(arg).replace("{root}", str(world.root)).replace("{run}", str(world.run))
            .replace("{afile}", str(world.root / "afile.txt"))
            .replace("{blocked}", str(world.paths.get("blocked", world.root / "no-blocked-run"))))


def test_the_shared_run_trained(world):
    assert world.trained.returncode == 0, world.trained.stderr[-3000:]
    assert "Traceback" not in world.trained.stderr


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(world, case):
    assert world.trained.returncode == 0, "the shared run did not train"
    before = snapshot(world.root)
    r = cli(*(_fill(a, world) for a in case.args))
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
    allowed = {p for p in changed if case.writes and p.startswith(case.writes + os.sep)}
    assert changed == allowed, f"files outside the case's output changed: {sorted(changed - allowed)}"


def test_a_run_on_raw_files_keeps_its_skip_report(world):
    """The skips of a raw-file dataset are in run.json, skipped.csv and the report."""
    assert world.trained.returncode == 0, world.trained.stderr[-3000:]
    state = json.loads((world.run / "run.json").read_text())
    assert state["skipped"] == {"bad_id": 3, "missing_file": 1} and state["skipped_total"] == 4
    rows = Table.read(world.run / "skipped.csv", format="ascii.csv")
    assert sorted(rows["reason"]) == ["bad_id", "bad_id", "bad_id", "missing_file"]
    assert "bad_id" in (world.run / "report.md").read_text()
    emb = Table.read(world.run / "embeddings.fits")
    assert len(emb) == N_GOOD and all(str(i).startswith("g") for i in emb["id"])


def test_prepare_with_nothing_left_names_the_reasons_and_writes_the_report(world):
    r = cli("prepare", "-o", world.root / "prep_off2", "--set", "dataset.input=frames",
            "--set", f"dataset.path={world.root / 'data' / 'frames'}",
            "--set", f"dataset.catalog={world.root / 'data' / 'cat_off.csv'}",
            "--set", 'dataset.bands=["g","r"]', "-q")
    assert r.returncode == 2 and "off_frames: 1" in r.stderr
    rows = Table.read(world.root / "prep_off2" / "skipped.csv", format="ascii.csv")
    assert list(rows["reason"]) == ["off_frames"] and list(rows["id"]) == [7]


def test_a_stale_lock_of_a_dead_process_is_taken_over(world):
    out = world.root / "stale_prep"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (out / ".lock").write_text(json.dumps({"pid": int(dead), "host": socket.gethostname(),
                                           "started": "2026-01-01T00:00:00", "what": "prepare"}))
    r = cli("prepare", "-o", out, *SAMPLE, "-q")
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "meta.json").is_file() and not (out / ".lock").exists()


def test_two_runs_into_one_new_out_at_once(world):
    """One fails at once with one line; the other finishes a clean run of its own."""
    out = world.root / "race"
    args = [sys.executable, "-m", "astroclr.cli", "run", "-o", str(out), *SAMPLE, *TINY]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], [(c, e[-1500:]) for c, _, e in results]
    loser = next(e for c, _, e in results if c == 2)
    assert "Traceback" not in loser and len(loser.strip().splitlines()) == 1
    assert "in use" in loser or "already holds a run" in loser
    state = json.loads((out / "run.json").read_text())
    assert state["status"] == "complete" and not (out / ".lock").exists()
    assert not list(out.rglob("*.partial"))
