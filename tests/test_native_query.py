"""Query images in the survey's own form: read by the run's dataset plugin (``read_image``)
with the run's dataset parameters, so a SkyServer 423 px JPEG, the form the embedded SDSS
sample was made from, works as ``astroclr similar --image`` and ``model.embed(path)``.

The JPEG is made from a galaxy of a tiny real run as the sample's cutouts were made from the
SkyServer images, in reverse: its 64 px cutout enlarged to the central 212 px of a 423 px
frame of dark sky.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from astropy.table import Table
from PIL import Image

import astroclr
from astroclr.plugin.specs import AstroclrError

SETS = ["dataset.limit=60", "dataset.bin=4", "train.max_steps=2", "train.threads=1",
        "run.evaluators=[]"]
ROW = 7


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("native") / "run"
    astroclr.run(out=out, backbone="smallcnn", epochs=1, progress=False, sets=SETS)
    return out


@pytest.fixture(scope="module")
def galaxy():
    from astroclr_sdss.sample import load_raw_sample

    images, catalog = load_raw_sample()
    return images[ROW], int(catalog["id"][ROW])


def skyserver_jpeg(image: np.ndarray, path) -> None:
    """A 423 px JPEG whose central 212 px hold ``image`` (g, r, i) as R, G, B = i, r, g."""
    rgb = Image.fromarray(image[::-1].transpose(1, 2, 0).astype(np.uint8))
    frame = np.full((423, 423, 3), 4, np.uint8)
    o = (423 - 212) // 2
    frame[o:o + 212, o:o + 212] = np.asarray(rgb.resize((212, 212), Image.BICUBIC))
    Image.fromarray(frame).save(path, quality=95)


def test_a_skyserver_jpeg_is_cropped_and_resized_as_the_sample_was(run_dir, galaxy, tmp_path):
    image, _ = galaxy
    skyserver_jpeg(image, tmp_path / "g.jpeg")
    model = astroclr.load(run_dir, device="cpu")
    raw = model.read_images([tmp_path / "g.jpeg"])
    assert raw.shape == (1, 3, 64, 64) and raw.dtype == np.float32
    # JPEG and two resamplings away from the stored cutout (0-255 values), no further
    assert np.abs(raw[0] - image).mean() < 2.0
    np.testing.assert_allclose(model.embed(tmp_path / "g.jpeg"), model.embed(raw), atol=1e-6)


def test_similar_with_a_skyserver_jpeg_finds_the_galaxy_itself(run_dir, galaxy, tmp_path):
    image, objid = galaxy
    skyserver_jpeg(image, tmp_path / "g.jpeg")
    res = subprocess.run([sys.executable, "-m", "astroclr.cli", "similar", str(run_dir),
                          "--image", str(tmp_path / "g.jpeg"), "-k", "3", "-o",
                          str(tmp_path / "m.png")], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, COLUMNS="200"))
    assert res.returncode == 0, res.stderr
    found = Table.read(tmp_path / "m.csv")
    assert int(found["id"][0]) == objid


def test_a_cutout_already_at_the_raw_size_is_taken_as_it_is(run_dir, galaxy, tmp_path):
    image, _ = galaxy
    Image.fromarray(image[::-1].transpose(1, 2, 0).astype(np.uint8)).save(tmp_path / "c.png")
    raw = astroclr.load(run_dir, device="cpu").read_images([tmp_path / "c.png"])
    np.testing.assert_array_equal(raw[0], image)


@pytest.mark.parametrize("name, content, words", [
    ("notes.txt", b"not an image", "reads a SkyServer gri JPEG"),
    ("small.png", None, "smaller than crop = 212"),
    ("broken.jpeg", b"\xff\xd8\xff not really", "broken.jpeg: UnidentifiedImageError"),
])
def test_a_file_of_another_kind_says_what_would_be_accepted(run_dir, tmp_path, name, content,
                                                            words):
    path = tmp_path / name
    if content is None:
        Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(path)
    else:
        path.write_bytes(content)
    with pytest.raises(AstroclrError) as info:
        astroclr.load(run_dir, device="cpu").embed(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and words in message
    assert "FITS cutout" in message  # what else it would take
