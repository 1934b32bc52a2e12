"""Ids are data, never paths: hostile catalogue ids for every reader and every writer.

A reader never opens a file outside the dataset folder (the id is a ``bad_id`` skip); a writer
never writes outside the run directory (the file name is made safe).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from astroclr.api import SkipGalaxy
from astroclr.plugin.specs import AstroclrError
from astroclr.runs.rundir import RunDir, safe_name
from astroclr_sdss.composites import CompositeReader
from astroclr_sdss.fits_cutouts import FitsCutoutReader

# Each leads out of <tmp>/data/images to <tmp>/secret[...] where a readable file waits.
ESCAPING = ["../../secret", "x/../../../secret", "sub/../../../secret"]
ODD = ["a\x00b", "tab\there", "L" * 300]


def _hostile(tmp_path: Path) -> list[str]:
    return ESCAPING + [str(tmp_path / "secret")] + ODD


@pytest.fixture()
def folders(tmp_path):
    images = tmp_path / "data" / "images"
    images.mkdir(parents=True)
    (images / "sub").mkdir()
    return tmp_path, images


def _fits_cube(path: Path) -> None:
    hdu = fits.PrimaryHDU(np.ones((3, 64, 64), np.float32))
    hdu.header["BANDS"] = "g,r,i"
    hdu.writeto(path)


@pytest.mark.parametrize("pattern", ["{id}.fits", "{id}_{band}.fits"])
def test_fits_reader_never_opens_a_file_outside_its_folder(folders, pattern):
    root, images = folders
    if "{band}" in pattern:
        for b in "gri":
            fits.PrimaryHDU(np.ones((64, 64), np.float32)).writeto(root / f"secret_{b}.fits")
            fits.PrimaryHDU(np.ones((64, 64), np.float32)).writeto(images / f"ok_{b}.fits")
    else:
        _fits_cube(root / "secret.fits")
        _fits_cube(images / "ok.fits")
    reader = FitsCutoutReader(images, pattern, ("g", "r", "i"), (), 64)
    assert reader.read({"id": "ok"}).shape == (3, 64, 64)
    for gid in _hostile(root):
        with pytest.raises(SkipGalaxy) as caught:
            reader.read({"id": gid})
        assert caught.value.reason == "bad_id", (gid, caught.value)


def test_composite_reader_never_opens_a_file_outside_its_folder(folders):
    root, images = folders
    rgb = np.full((64, 64, 3), 100, np.uint8)
    Image.fromarray(rgb).save(root / "secret.jpeg")
    Image.fromarray(rgb).save(images / "ok.jpeg")
    reader = CompositeReader(images, "{id}.jpeg", ("g", "r", "i"), ("i", "r", "g"), 0, 64)
    assert reader.read({"id": "ok"}).shape == (3, 64, 64)
    for gid in _hostile(root):
        with pytest.raises(SkipGalaxy) as caught:
            reader.path_for(gid)
        assert caught.value.reason == "bad_id", gid
        with pytest.raises(SkipGalaxy, match="bad_id"):
            reader.read({"id": gid})


def test_an_id_with_a_folder_inside_the_dataset_is_still_read(folders):
    _, images = folders
    _fits_cube(images / "sub" / "deep.fits")
    reader = FitsCutoutReader(images, "{id}.fits", ("g", "r", "i"), (), 64)
    assert reader.read({"id": "sub/deep"}).shape == (3, 64, 64)


@pytest.mark.parametrize("pattern", ["../{id}.fits", "/tmp/{id}.fits", "{band}.fits"])
def test_a_file_pattern_leading_elsewhere_is_a_config_error(pattern):
    from astroclr_sdss.fits_cutouts import check_pattern

    with pytest.raises(AstroclrError, match="file_pattern"):
        check_pattern(pattern)


def test_a_decompression_bomb_anywhere_is_a_counted_skip(folders):
    from test_hostile_inputs import bomb_png

    _, images = folders
    bomb_png(images / "big.png")
    reader = CompositeReader(images, "{id}.png", ("g", "r", "i"), ("i", "r", "g"), 0, 64)
    with pytest.raises(SkipGalaxy) as caught:
        reader.read({"id": "big"})
    assert caught.value.reason == "too_large"


# -- writers ------------------------------------------------------------------------------------
WRITER_IDS = ["../x", "x/../../../y", "/abs/path", "a\x00b", "L" * 300, "..", ".", "a/b", "a_b"]


def test_safe_name_is_one_plain_file_name_per_id():
    names = [safe_name(f"similar_{i}") for i in WRITER_IDS]
    for name in names:
        assert "/" not in name and "\x00" not in name and name not in (".", "..")
        assert len(name) <= 80
    assert len(set(names)) == len(names)  # "a/b" and "a_b" do not share a file
    assert safe_name("similar_1234") == "similar_1234"  # plain ids keep their name


def test_run_figure_stays_in_figures(tmp_path):
    rundir = RunDir(tmp_path / "run")
    for gid in WRITER_IDS:
        path = rundir.figure(f"similar_{gid}")
        assert path.parent == rundir.figures


def test_similar_evaluator_writes_only_inside_the_figures_folder(tmp_path):
    from astroclr.data.galaxies import Galaxies, SurveyInfo
    from astroclr.evaluate.context import EvalContext
    from astroclr_evaluators.similar import evaluate

    ids = np.array(WRITER_IDS + [f"g{i}" for i in range(6)])
    rng = np.random.default_rng(0)
    survey = SurveyInfo.create("toy", ("g", "r", "i"), 0.4, {"g": 1.4, "r": 1.3, "i": 1.2})
    galaxies = Galaxies.from_arrays(rng.random((len(ids), 3, 8, 8)), survey, ids=ids)
    run = tmp_path / "a" / "b" / "run"
    figures = run / "figures"
    figures.mkdir(parents=True)
    context = EvalContext(galaxies=galaxies, representations=rng.random((len(ids), 4)),
                          figures_dir=figures)
    result = evaluate(context, k=2, ids=list(WRITER_IDS))
    written = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert len(written) == len(WRITER_IDS)
    assert all(p.parent == figures for p in written), written
    assert sorted(Path(f) for f in result.figures) == written
