"""The sdss dataset's input forms: FITS cutouts, frames + catalogue, composites, the sample."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from PIL import Image

from astroclr.plugin.specs import AstroclrError, validate_params
from astroclr_sdss.synthetic import cutout_header, gaussian_image, write_frames

DATA = Path(__file__).parent / "data"
REAL_FRAME = DATA / "4_42136_SDSS_gband.fits.gz"
REAL_RA, REAL_DEC = 190.907364, 17.933109


@pytest.fixture(scope="module")
def spec():
    from astroclr.plugin.registry import Registry

    return Registry().get("dataset", "sdss")


def load(spec, **given):
    params = validate_params(spec.all_params, given, "dataset.sdss")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        galaxies = spec.load(**params)
    galaxies.warnings = [str(w.message) for w in caught]
    return galaxies


# -- sample ---------------------------------------------------------------------------------
def test_sample_is_the_default_and_unchanged(spec):
    from astroclr.data.preprocess import Preprocessing
    from astroclr_sdss.sample import load_raw_sample

    g = load(spec, limit=50)
    raw, cat = load_raw_sample(("g", "r", "i"))
    np.testing.assert_array_equal(g.images, Preprocessing().apply(raw[:50]))
    assert g.images.shape == (50, 3, 32, 32) and g.label_names == ("early", "late")
    assert list(g.ids) == list(cat["id"][:50])


def test_gz2_pool_appends_unlabelled_galaxies_after_the_labelled_sample(spec):
    plain = load(spec, limit=0)
    pooled = load(spec, pool="gz2")
    n = len(plain)
    assert len(pooled) == n + 7704
    np.testing.assert_array_equal(pooled.images[:n], plain.images)
    assert list(pooled.catalog["label"][:n]) == list(plain.catalog["label"])
    assert (pooled.catalog["label"][n:] == -1).all()
    assert set(pooled.catalog["origin"][n:]) == {"gz2"}
    assert len(set(pooled.ids)) == len(pooled)
    assert "Willett" in pooled.survey.extra["credit"]


def test_pool_with_another_input_is_an_error(spec, tmp_path):
    with pytest.raises(AstroclrError, match="pool = 'gz2' adds galaxies to the embedded sample"):
        load(spec, input="fits_cutouts", path=str(tmp_path), pool="gz2")


def test_sample_with_a_path_is_an_error(spec, tmp_path):
    with pytest.raises(AstroclrError, match="input is 'sample'"):
        load(spec, path=str(tmp_path))


# -- FITS cutouts -------------------------------------------------------------------------------
def _galaxy(size=64, flux=(100.0, 200.0, 300.0)):
    return np.stack([gaussian_image((size, size), [size / 2 - 0.5], [size / 2 - 0.5], [f])
                     for f in flux])


def test_fits_cube_per_band_and_extensions_agree(spec, tmp_path):
    cube = _galaxy()
    (tmp_path / "cube").mkdir()
    (tmp_path / "ext").mkdir()
    (tmp_path / "band").mkdir()
    # cube with the band order in its header, written (r, i, g) to test reordering
    h = cutout_header("r", 180.0, 10.0, 64)
    h["BANDS"] = "r,i,g"
    fits.PrimaryHDU(cube[[1, 2, 0]], h).writeto(tmp_path / "cube" / "7.fits")
    hdus = [fits.PrimaryHDU()] + [fits.ImageHDU(cube[i], cutout_header(b, 180.0, 10.0, 64), name=b.upper())
                                  for i, b in enumerate("gri")]
    fits.HDUList(hdus).writeto(tmp_path / "ext" / "7.fits.gz")
    for i, b in enumerate("gri"):
        fits.PrimaryHDU(cube[i], cutout_header(b, 180.0, 10.0, 64)).writeto(
            tmp_path / "band" / f"7_{b}.fits")
    results = [load(spec, input="fits_cutouts", path=str(tmp_path / d), normalize="none")
               for d in ("cube", "ext", "band")]
    expected = cube.reshape(3, 32, 2, 32, 2).sum(axis=(2, 4))
    for g in results:
        assert g.images.shape == (1, 3, 32, 32)
        assert g.ids.tolist() == [7]
        np.testing.assert_allclose(g.images[0], expected, rtol=1e-5)
        # 2x2 binning conserves flux, band by band
        np.testing.assert_allclose(g.images[0].sum(axis=(1, 2)), cube.sum(axis=(1, 2)), rtol=1e-5)


def test_binning_and_minmax_numerically(spec, tmp_path):
    raw = np.arange(3 * 4 * 4, dtype=np.float32).reshape(3, 4, 4)
    h = cutout_header("g", 1.0, 1.0, 4)
    h["BANDS"] = "g,r,i"
    fits.PrimaryHDU(raw, h).writeto(tmp_path / "1.fits")
    g = load(spec, input="fits_cutouts", path=str(tmp_path), size=4, bin=2)
    binned = raw.reshape(3, 2, 2, 2, 2).sum(axis=(2, 4))
    np.testing.assert_allclose(g.images[0], (binned - binned.min()) / (binned.max() - binned.min()),
                               rtol=1e-6)
    assert g.images.min() == 0.0 and g.images.max() == 1.0
    a = load(spec, input="fits_cutouts", path=str(tmp_path), size=4, bin=1, stretch="asinh",
             softening=2.0, normalize="none")
    np.testing.assert_allclose(a.images[0], np.arcsinh(raw / 2.0), rtol=1e-6)
    # larger files are centre-cropped to size
    c = load(spec, input="fits_cutouts", path=str(tmp_path), size=2, bin=1, normalize="none")
    np.testing.assert_array_equal(c.images[0], raw[:, 1:3, 1:3])


def test_real_frame_with_nan_edge(spec, tmp_path):
    """A real SDSS g frame as a per-band file: NaNs filled and counted, not a skip."""
    shutil.copy(REAL_FRAME, tmp_path / "42136_SDSS_gband.fits.gz")
    with fits.open(REAL_FRAME) as hdul:
        data = hdul[0].data.astype(np.float32)
    assert np.isnan(data).sum() == 49140
    g = load(spec, input="fits_cutouts", path=str(tmp_path), bands=["g"],
             file_pattern="{id}_SDSS_{band}band.fits", size=455, bin=5)
    assert g.images.shape == (1, 1, 91, 91)
    assert np.isfinite(g.images).all() and g.images.min() == 0 and g.images.max() == 1
    assert g.catalog["invalid_frac"][0] == pytest.approx(49140 / 455 / 455, rel=1e-4)
    # the same file with too strict a validity limit is a reported skip
    with pytest.raises(AstroclrError, match="mostly_invalid"):
        load(spec, input="fits_cutouts", path=str(tmp_path), bands=["g"],
             file_pattern="{id}_SDSS_{band}band.fits", size=455, bin=5, max_invalid=0.1)


def test_real_frame_through_frames_input(spec, tmp_path):
    """The real frame under its SDSS name: WCS cutout around the target's RA/Dec."""
    frames = tmp_path / "frames"
    frames.mkdir()
    shutil.copy(REAL_FRAME, frames / "frame-g-004213-6-0136.fits.gz")
    Table({"id": [42136, 1], "ra": [REAL_RA, 10.0], "dec": [REAL_DEC, 10.0]}).write(
        tmp_path / "cat.csv")
    g = load(spec, input="frames", path=str(frames), catalog=str(tmp_path / "cat.csv"),
             bands=["g"], normalize="none", bin=1)
    assert g.ids.tolist() == [42136]  # the other object is on no frame ...
    assert any("off_frames: 1" in w for w in g.warnings)  # ... and reported
    from astropy.wcs import WCS

    with fits.open(REAL_FRAME) as hdul, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = hdul[0].data.astype(np.float32)
        x, y = WCS(hdul[0].header).world_to_pixel_values(REAL_RA, REAL_DEC)
    # the 64 px around the target's pixel (226.5, 226.5), cut out unchanged
    x0, y0 = int(round(float(x))) - 32, int(round(float(y))) - 32
    assert (x0, y0) == (195, 195)
    np.testing.assert_array_equal(g.images[0, 0], data[y0 : y0 + 64, x0 : x0 + 64])


def test_fits_cutout_bad_inputs_are_counted_skips(spec, tmp_path):
    cube = _galaxy()
    for i, b in enumerate("gri"):
        for gid in ("ok", "short", "uneq", "nan", "trunc"):
            data = cube[i]
            if gid == "uneq" and b == "r":
                data = data[:60, :62]
            if gid == "nan":
                data = np.full_like(data, np.nan)
            if gid == "short" and b == "i":
                continue  # a missing band file
            fits.PrimaryHDU(data, cutout_header(b, 1.0, 1.0, 64)).writeto(tmp_path / f"{gid}_{b}.fits")
    good = (tmp_path / "trunc_g.fits").read_bytes()
    (tmp_path / "trunc_g.fits").write_bytes(good[: len(good) // 2])  # truncated
    (tmp_path / "junk_g.fits").write_bytes(b"not a fits file at all" * 200)  # corrupt
    for b in "ri":
        shutil.copy(tmp_path / f"ok_{b}.fits", tmp_path / f"junk_{b}.fits")
    g = load(spec, input="fits_cutouts", path=str(tmp_path))
    assert g.ids.tolist() == ["ok"]
    report = " | ".join(g.warnings)
    assert "skipped 5 of 6" in report
    for reason in ("missing_file: 1", "unequal_sizes: 1", "mostly_invalid: 1", "unreadable_file: 2"):
        assert reason in report
    assert g.catalog.meta["skipped"] == ("missing_file: 1, mostly_invalid: 1, unequal_sizes: 1, "
                                         "unreadable_file: 2")


# -- frames ---------------------------------------------------------------------------------------
def test_frames_wcs_cutouts_land_on_centre_in_every_band(spec, tmp_path):
    ra = np.array([150.0, 150.008, 149.994])
    dec = np.array([2.0, 2.006, 1.995])
    write_frames(tmp_path / "frames", ra, dec, bands=("g", "r", "i"))
    # object 14 claims a field we do not have: its frame comes from the columns, not a search
    Table({"objid": [11, 12, 13, 14], "ra": [*ra, ra[0]], "dec": [*dec, dec[0]],
           "run": [3918] * 4, "camcol": [3] * 4, "fld": [213] * 3 + [999]}).write(tmp_path / "cat.fits")
    g = load(spec, input="frames", path=str(tmp_path / "frames"), catalog=str(tmp_path / "cat.fits"),
             id_column="objid", field_column="fld", bin=1, normalize="none")
    assert sorted(g.ids.tolist()) == [11, 12, 13]
    assert "missing_frame: 1" in g.warnings[0] and "frame-g-003918-3-0999.fits" in g.warnings[0]
    yy, xx = np.mgrid[0:64, 0:64]
    for img in g.images:
        for band in img:
            w = np.where(band > 0.05 * band.max(), band, 0)
            cy, cx = (w * yy).sum() / w.sum(), (w * xx).sum() / w.sum()
            # Cutout2D cuts whole pixels: the source lies within half a pixel of the centre
            assert abs(cy - 31.5) <= 0.52 and abs(cx - 31.5) <= 0.52
        cents = [((np.where(b > 0.05 * b.max(), b, 0) * xx).sum() /
                  np.where(b > 0.05 * b.max(), b, 0).sum()) for b in img]
        # the bands' frames are offset by pixels: after resampling they agree to a tenth
        assert np.ptp(cents) < 0.1
        np.testing.assert_allclose(img.sum(axis=(1, 2)), 1000.0, rtol=0.02)


def test_frames_footprint_search_edges_and_missing(spec, tmp_path):
    ra = np.array([150.0, 150.0])
    dec = np.array([2.0, 2.0 + 140 * 0.396 / 3600])  # second object 10 px from a frame edge
    write_frames(tmp_path / "frames", ra, dec, bands=("g", "r"), centre=(150.0, 2.0),
                 shape=(300, 300), compress="none")
    cat = Table({"id": [1, 2, 3], "ra": [150.0, 150.0, 20.0], "dec": [2.0, dec[1], 5.0]})
    cat.write(tmp_path / "cat.vot", format="votable")
    common = dict(input="frames", path=str(tmp_path / "frames"), catalog=str(tmp_path / "cat.vot"),
                  bands=["g", "r"])
    g = load(spec, **common)  # no run/camcol/field: footprints are searched
    assert sorted(g.ids.tolist()) == [1, 2]
    near = g.catalog[g.catalog["id"] == 2]["invalid_frac"][0]
    assert 0.2 < near < 0.5  # padded and masked
    assert any("off_frames: 1" in w for w in g.warnings)
    g = load(spec, edge="skip", **common)
    assert g.ids.tolist() == [1]
    assert any("near_edge: 1" in w for w in g.warnings)
    with pytest.raises(AstroclrError, match="missing_frame"):
        load(spec, **{**common, "bands": ["g", "i"]})


def test_frames_need_a_catalogue_with_positions(spec, tmp_path):
    write_frames(tmp_path / "frames", [150.0], [2.0], bands=("g",), compress="none")
    with pytest.raises(AstroclrError, match="needs catalog"):
        load(spec, input="frames", path=str(tmp_path / "frames"), bands=["g"])
    Table({"id": [1], "right_ascension": [150.0], "dec": [2.0]}).write(tmp_path / "c.csv")
    with pytest.raises(AstroclrError, match="no RA column 'ra'.*right_ascension"):
        load(spec, input="frames", path=str(tmp_path / "frames"), catalog=str(tmp_path / "c.csv"),
             bands=["g"])


# -- composites -----------------------------------------------------------------------------------
def test_composites_crop_resize_and_channel_order(spec, tmp_path):
    rgb = np.zeros((423, 423, 3), np.uint8)
    rgb[..., 0] = 200  # R = i
    rgb[..., 1] = 100  # G = r
    rgb[..., 2] = 50  # B = g
    rgb[:105, :, :] = 255  # outside the central 212 px: must be cropped away
    Image.fromarray(rgb).save(tmp_path / "101.png")
    Image.fromarray(rgb).save(tmp_path / "102.jpeg", quality=95)
    Table({"objid": [101, 102], "gz1_class": [0, 3]}).write(tmp_path / "catalog.csv")
    g = load(spec, input="composites", path=str(tmp_path), catalog=str(tmp_path / "catalog.csv"),
             id_column="objid", crop=212, normalize="none", bin=1, file_pattern="{id}.png",
             label_column="gz1_class", label_map="0=early,1=late,2=late,3=late,4=-,5=-")
    assert g.images.shape == (2, 3, 64, 64)
    png = g.images[0]
    np.testing.assert_allclose(png.mean(axis=(1, 2)), [50, 100, 200], atol=0.5)  # g, r, i
    assert g.labels().tolist() == [0, 1] and g.label_names == ("early", "late")
    assert g.survey.pixel_scale.value == pytest.approx(0.396 * 212 / 64)


def test_gz1_like_composites_match_the_embedded_sample_layout(spec, tmp_path):
    """423 px JPEG, central 212 px → 64 px → 2×2 binning: the sample's (3, 32, 32)."""
    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (423, 423, 3), dtype=np.uint8)).save(tmp_path / f"{i}.jpeg")
    g = load(spec, input="composites", path=str(tmp_path), crop=212)
    assert g.images.shape == (3, 3, 32, 32) and sorted(g.ids.tolist()) == [0, 1, 2]
    assert g.images.min() == 0.0 and g.images.max() == 1.0


def test_composite_bad_inputs(spec, tmp_path):
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(tmp_path / "1.jpeg")
    (tmp_path / "2.jpeg").write_bytes(b"\xff\xd8 truncated")
    Image.fromarray(np.zeros((100, 100), np.uint8)).save(tmp_path / "3.jpeg")  # grey
    Table({"id": [1, 2, 3, 4]}).write(tmp_path / "cat.csv")
    g = load(spec, input="composites", path=str(tmp_path), catalog=str(tmp_path / "cat.csv"))
    assert g.ids.tolist() == [1]
    msg = g.warnings[0]
    assert "bad_image: 1" in msg and "missing_file: 1" in msg and "unreadable_file: 1" in msg


def test_frames_truncated_frame_and_all_nan_are_counted(spec, tmp_path):
    paths = write_frames(tmp_path / "frames", [150.0, 150.002], [2.0, 2.002], bands=("g", "r"),
                         field=213)
    write_frames(tmp_path / "frames", [150.5], [2.5], bands=("g", "r"), field=214,
                 compress="none")
    nan_frame = tmp_path / "frames" / "frame-g-003918-3-0214.fits"
    with fits.open(nan_frame, mode="update") as hdul:
        hdul[0].data[:] = np.nan
    blob = paths["r"].read_bytes()
    paths["r"].write_bytes(blob[: len(blob) // 3])  # a truncated download
    Table({"id": [1, 2, 3], "ra": [150.0, 150.002, 150.5], "dec": [2.0, 2.002, 2.5],
           "run": [3918] * 3, "camcol": [3] * 3, "field": [213, 213, 214]}).write(tmp_path / "c.csv")
    with pytest.raises(AstroclrError, match=r"every galaxy was skipped \(mostly_invalid: 1, "
                                            r"unreadable_file: 2\)"):
        load(spec, input="frames", path=str(tmp_path / "frames"), catalog=str(tmp_path / "c.csv"),
             bands=["g", "r"])
