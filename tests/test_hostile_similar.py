"""Hostile inputs to ``astroclr similar --image/--table/--against`` through the command line
(see hostile_support.py for what every case checks)."""

from __future__ import annotations

import gzip
import shutil
import struct
import zlib

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from hostile_support import Case, check, cli
from PIL import Image


def bomb_png(path, width: int = 40000, height: int = 40000) -> None:
    """A tiny PNG whose header claims 1.6 billion pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


NAN_ROWS = (0, 5, 39)


@pytest.fixture(scope="module")
def world(hostile_world):
    root = hostile_world.root / "similar"
    if not root.exists():
        root.mkdir()
        table = Table.read(hostile_world.run / "embeddings.fits")
        reps = np.array(table["representation"])
        reps[NAN_ROWS[0]] = np.nan
        reps[NAN_ROWS[1], 3] = np.inf
        reps[NAN_ROWS[2]] = -np.inf
        table["representation"] = reps
        table.write(root / "nan.fits")
        keep = np.setdiff1d(np.arange(len(table)), NAN_ROWS)
        table[keep].write(root / "clean.fits")  # the same table without the NaN rows
        nan_run = root / "nan_run"  # a run whose own embeddings.fits holds NaN rows
        shutil.copytree(hostile_world.run, nan_run)
        table.write(nan_run / "embeddings.fits", overwrite=True)
        bomb_png(root / "bomb.png")
        header = fits.Header({"SIMPLE": True, "BITPIX": -32, "NAXIS": 3, "NAXIS1": 200000,
                              "NAXIS2": 200000, "NAXIS3": 3})
        (root / "huge.fits").write_bytes(header.tostring().encode() + b"\0" * 2880)
        good = fits.PrimaryHDU(np.ones((3, 64, 64), np.float32))
        good.header["BANDS"] = "g,r,i"
        good.writeto(root / "good.fits")
        packed = gzip.compress((root / "good.fits").read_bytes())
        (root / "corrupt.fits.gz").write_bytes(packed[:200] + b"\x00garbage" * 50)
        fits.PrimaryHDU(np.full((3, 64, 64), 3e38, np.float32)).writeto(root / "big.fits")
        rgb = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(root / "good.png")
    return hostile_world


CASES = [
    Case("a decompression bomb", ("similar", "{run}", "--image", "{root}/similar/bomb.png",
                                  "-o", "{root}/s1.png"), 2, ("bomb.png", "too large")),
    Case("a header declaring 447 GiB", ("similar", "{run}", "--image",
                                        "{root}/similar/huge.fits", "-o", "{root}/s2.png"), 2,
         ("huge.fits",)),
    Case("a corrupt .fits.gz", ("similar", "{run}", "--image", "{root}/similar/corrupt.fits.gz",
                                "-o", "{root}/s3.png"), 2, ("corrupt.fits.gz", "cannot read")),
    Case("a 3e38-valued image", ("similar", "{run}", "--image", "{root}/similar/big.fits",
                                 "-o", "{root}/s4.png"), 2, ("big.fits", "non-finite")),
    Case("-k 0", ("similar", "{run}", "--id", "x", "-k", "0"), 2, ("-k",)),
    Case("--results is the --table it reads",
         ("similar", "{run}", "--table", "{root}/similar/nan.fits", "--results",
          "{root}/similar/nan.fits", "-o", "{root}/s5.png"), 2, ("nan.fits", "input")),
    Case("--results is the --against it reads",
         ("similar", "{run}", "--table", "{root}/similar/nan.fits", "--against",
          "{run}/embeddings.fits", "--results", "{run}/embeddings.fits", "-o", "{root}/s6.png"),
         2, ("embeddings.fits", "input")),
    Case("--out is the --image it reads",
         ("similar", "{run}", "--image", "{root}/similar/good.png", "-o",
          "{root}/similar/good.png"), 2, ("good.png", "input")),
    # a file astropy cannot identify: one line, not astropy's 50-line table of formats
    Case("an --against file that is no table",
         ("similar", "{run}", "--table", "{root}/similar/clean.fits", "--against", "{afile}",
          "-o", "{root}/s7.png"), 2, ("afile.txt", "cannot read")),
    Case("a --table file that is no table",
         ("similar", "{run}", "--table", "{afile}", "-o", "{root}/s8.png"), 2,
         ("afile.txt", "cannot read")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_similar(world, case):
    check(world, case)


def _neighbours(stdout: str) -> list[tuple[str, float]]:
    rows = [line.split("\t") for line in stdout.splitlines() if "\t" in line]
    return [(r[-2], float(r[-1])) for r in rows]


def test_nan_rows_of_the_against_table_are_left_out_and_counted(world):
    ids = list(Table.read(world.run / "embeddings.fits")["id"])
    query = str(ids[10])
    r = cli("similar", world.run, "--id", query, "--against", world.root / "similar/nan.fits",
            "-k", "5", "-o", world.root / "similar_out/a.png")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "skipped 3 rows" in r.stdout
    found = _neighbours(r.stdout)
    assert len(found) == 5 and all(d < 2.0 for _, d in found)
    assert not {str(ids[i]) for i in NAN_ROWS} & {i for i, _ in found}
    # the same neighbours as in the table without those rows
    clean = cli("similar", world.run, "--id", query, "--against",
                world.root / "similar/clean.fits", "-k", "5",
                "-o", world.root / "similar_out/b.png")
    assert clean.returncode == 0, clean.stderr[-2000:]
    assert found == _neighbours(clean.stdout)


def test_nan_rows_of_a_query_table_are_skipped_and_counted(world):
    r = cli("similar", world.run, "--table", world.root / "similar/nan.fits", "-k", "3",
            "-o", world.root / "similar_out/t.png")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "skipped 3 rows" in r.stdout
    table = Table.read(world.root / "similar_out/t.csv")
    assert len(set(table["query"])) == 37 and (np.asarray(table["distance"]) < 2.0).all()


def test_nan_rows_of_the_runs_own_embeddings_are_left_out(world):
    ids = list(Table.read(world.run / "embeddings.fits")["id"])
    r = cli("similar", world.root / "similar/nan_run", "--id", str(ids[10]), "-k", "4",
            "-o", world.root / "similar_out/n.png")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    found = _neighbours(r.stdout)
    assert len(found) == 4 and all(d < 2.0 for _, d in found)


def test_against_an_embed_parquet_needs_no_pandas(world, tmp_path):
    pytest.importorskip("pyarrow")
    out = tmp_path / "emb.parquet"
    made = cli("embed", world.run, "-o", out, "-q")
    assert made.returncode == 0, made.stderr[-2000:]
    ids = list(Table.read(world.run / "embeddings.fits")["id"])
    r = cli("similar", world.run, "--id", str(ids[0]), "--against", out, "-k", "3",
            "-o", tmp_path / "m.png")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert len(_neighbours(r.stdout)) == 3
