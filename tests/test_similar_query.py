"""``astroclr similar``: every query form end to end on a tiny real run (the CLI in a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

import astroclr
from astroclr.plugin.specs import AstroclrError

TINY = ("dataset.limit=60", "dataset.bin=4", "train.max_steps=2", "run.evaluators=[]")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "astroclr.cli", "similar", *map(str, args)],
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, COLUMNS="200"))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("similar") / "run"
    return astroclr.run(out=out, dataset="sdss", backbone="smallcnn", epochs=1, sets=TINY,
                        progress=False)


@pytest.fixture(scope="module")
def raw():
    """Raw cutouts of the sample: rows 0-59 are the run's galaxies, the rest new to it."""
    from astroclr_sdss.sample import load_raw_sample

    images, catalog = load_raw_sample()
    return images[:80], np.asarray(catalog["id"][:80])


def test_query_by_id_writes_montage_and_table(run):
    table = run.embeddings()
    qid = int(table["id"][3])
    res = cli(run.dir, "--id", qid, "-k", 5)
    assert res.returncode == 0, res.stderr
    montage = run.dir / "figures" / f"similar_{qid}.png"
    found = Table.read(montage.with_suffix(".csv"))
    assert montage.stat().st_size > 1000
    assert list(found["rank"]) == [1, 2, 3, 4, 5] and qid not in list(found["id"])
    assert np.all(np.diff(found["distance"]) >= 0)
    assert f"{found['id'][0]}\t{found['distance'][0]:.4f}" in res.stdout


def _files(tmp_path, image):
    """The same cutout as a composite PNG, one FITS HDU per band (named, shuffled) and a cube."""
    from PIL import Image

    Image.fromarray(image[::-1].transpose(1, 2, 0).astype(np.uint8)).save(tmp_path / "q.png")
    hdus = [fits.ImageHDU(image[i], header=fits.Header({"FILTER": b}))
            for i, b in enumerate("gri")]
    fits.HDUList([fits.PrimaryHDU(), hdus[2], hdus[0], hdus[1]]).writeto(tmp_path / "q_bands.fits")
    cube = fits.PrimaryHDU(image)
    cube.header["BANDS"] = "g,r,i"
    cube.writeto(tmp_path / "q_cube.fits")
    return [tmp_path / "q.png", tmp_path / "q_bands.fits", tmp_path / "q_cube.fits"]


def test_query_by_image_files_of_every_kind(run, raw, tmp_path):
    images, ids = raw
    files = _files(tmp_path, images[7])  # a galaxy of the run, as raw files
    res = cli(run.dir, *[a for f in files for a in ("--image", f)], "-k", 3, "--results",
              tmp_path / "found.fits", "-o", tmp_path / "m.png")
    assert res.returncode == 0, res.stderr
    found = Table.read(tmp_path / "found.fits")
    found.convert_bytestring_to_unicode()
    assert list(found["query"]) == ["q.png"] * 3 + ["q_bands.fits"] * 3 + ["q_cube.fits"] * 3
    by_file = np.asarray(found["id"]).reshape(3, 3)
    assert (by_file == by_file[0]).all()  # all three files read as the same image
    # embedded on the fly with the run's preprocessing, the galaxy finds itself first
    assert by_file[0, 0] == ids[7] and found["distance"][0] < 1e-4
    assert (tmp_path / "m.png").stat().st_size > 1000


def test_image_of_the_wrong_size_or_bands_is_one_line(run, raw, tmp_path):
    images, _ = raw
    fits.PrimaryHDU(images[0][:, :32, :32]).writeto(tmp_path / "small.fits")
    fits.PrimaryHDU(np.concatenate([images[0], images[0][:1]])).writeto(tmp_path / "four.fits")
    # read as the sdss dataset reads its FITS cutouts (its read_image): its words, the run's need
    for name, found in (("small.fits", "32x32 px is smaller than the 64 px cutout"),
                        ("four.fits", "cube of shape (4, 64, 64) has no axis of 3 bands")):
        res = cli(run.dir, "--image", tmp_path / name)
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert res.returncode == 2 and len(lines) == 1, res.stderr
        assert found in lines[0] and "3 bands (g, r, i) of 64x64 px" in lines[0]


def test_query_by_table_against_another_catalogue(run, tmp_path):
    table = run.embeddings()
    queries = Table({"id": table["id"][:4], "representation": table["representation"][:4]})
    queries.write(tmp_path / "queries.fits")
    other = Table({"id": np.array([f"other-{i}" for i in range(30)]),
                   "representation": table["representation"][30:]})
    other.write(tmp_path / "other.fits")
    res = cli(run.dir, "--table", tmp_path / "queries.fits", "--against", tmp_path / "other.fits",
              "-k", 2)
    assert res.returncode == 0, res.stderr
    found = Table.read(run.dir / "figures" / "similar_queries_and_3_more_in_other.csv")
    assert len(found) == 8 and all(str(i).startswith("other-") for i in found["id"])
    assert [str(q) for q in found["query"][::2]] == [str(i) for i in table["id"][:4]]


def test_query_by_table_excludes_the_galaxy_itself(run, tmp_path):
    from astroclr.session.similar import similar

    table = run.embeddings()
    Table({"id": table["id"][:2], "representation": table["representation"][:2]}).write(
        tmp_path / "two.fits")
    found = similar(run.dir, table=tmp_path / "two.fits", k=59, out=tmp_path / "two.png").table
    assert len(found) == 2 * 59
    for q in table["id"][:2]:
        assert str(q) not in {str(i) for i, qq in zip(found["id"], found["query"]) if qq == str(q)}


def test_exactly_one_kind_of_query(run):
    from astroclr.session.similar import similar

    with pytest.raises(AstroclrError, match="give one kind of query"):
        similar(run.dir)
    with pytest.raises(AstroclrError, match=r"got --id, --table"):
        similar(run.dir, ids=["1"], table="t.fits")
    with pytest.raises(AstroclrError, match="must be .fits or .csv"):
        similar(run.dir, ids=[str(run.embeddings()["id"][0])], results="x.txt")
