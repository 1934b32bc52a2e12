"""Unit tests of the Euclid plugin, through astroclr's public plugin API.

Run from the plugin's folder, with the plugin installed (``pip install -e .``)::

    python -m pytest tests
"""

from __future__ import annotations

import numpy as np
import pytest
from astroclr_euclid.resample import resample, target_wcs
from astroclr_euclid.synthetic import band_wcs, write_sample
from astropy.io import fits

from astroclr import testing
from astroclr.api import ConfigError


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    folder = tmp_path_factory.mktemp("euclid")
    write_sample(folder, n=6, field_arcsec=7.2, seed=1)
    return folder


@pytest.fixture(scope="module")
def registry():
    # The installed entry point registers the plugin; no code here names its module.
    return testing.registry()


def load(registry, **params):
    """The dataset loaded as a run loads it: declared defaults under ``params``, validated."""
    spec = registry.get("dataset", "euclid")
    return spec.load(**testing.validate_params(spec, params))


def test_downsampling_onto_an_aligned_grid_sums_blocks():
    rng = np.random.default_rng(0)
    vis = rng.random((30, 30)).astype(np.float32)
    w_in = band_wcs(150.0, 2.0, 0.1, 30, (0.0, 0.0))
    out = resample(vis, w_in, target_wcs(150.0, 2.0, 0.3, 10), 10)
    blocks = vis.reshape(10, 3, 10, 3).sum(axis=(1, 3))
    np.testing.assert_allclose(out, blocks, rtol=1e-4)


def test_upsampling_splits_each_pixel_evenly_and_conserves_flux():
    rng = np.random.default_rng(2)
    nisp = rng.random((10, 10)).astype(np.float32)
    w_in = band_wcs(150.0, 2.0, 0.3, 10, (0.0, 0.0))
    out = resample(nisp, w_in, target_wcs(150.0, 2.0, 0.1, 30), 30)
    np.testing.assert_allclose(out.sum(), nisp.sum(), rtol=1e-4)
    np.testing.assert_allclose(out[:3, :3], nisp[0, 0] / 9, rtol=1e-4)


def test_offset_grids_and_off_footprint_pixels():
    rng = np.random.default_rng(1)
    nisp = rng.random((10, 10)).astype(np.float32)
    w_in = band_wcs(150.0, 2.0, 0.3, 10, (0.3, -0.2))  # sub-pixel offset grid
    out = resample(nisp, w_in, target_wcs(150.0, 2.0, 0.1, 24), 24)
    assert np.isfinite(out).all()
    big = resample(nisp, w_in, target_wcs(150.0, 2.0, 0.1, 60), 60)
    assert np.isnan(big[0, 0]) and np.isnan(big[-1, -1])  # corners lie off the input


def test_dataset_has_four_bands_on_one_grid(registry, sample):
    galaxies = load(registry, path=str(sample), size=24)
    assert galaxies.bands == ("VIS", "NIR_Y", "NIR_J", "NIR_H")
    assert galaxies.images.shape == (6, 4, 24, 24)
    assert galaxies.survey.pixel_scale.value == pytest.approx(0.3)
    assert galaxies.survey.psf_fwhm["VIS"].value == pytest.approx(0.16)
    assert set(galaxies.labels()) <= {0, 1}
    assert galaxies.label_names == ("bulge", "disc")


def test_noise_is_known_without_normalisation(registry, sample):
    survey = load(registry, path=str(sample), size=24, stretch="linear", normalize="none").survey
    assert survey.noise["VIS"] == pytest.approx(0.005 * 3)   # 3x3 VIS pixels summed
    assert survey.noise["NIR_H"] == pytest.approx(0.05)


def test_cosmic_rays_hit_only_vis(registry, sample):
    import torch

    spec = registry.get("augmentation", "cosmic_rays")
    survey = load(registry, path=str(sample), size=24).survey
    fn = spec.build(survey, rate=5.0, max_hits=8, length=[0.0, 6.0], amplitude=[0.5, 1.0],
                    width=0.7, bands=["VIS"])
    x = torch.rand(16, 4, 24, 24) * 0.1
    y = fn(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    assert (y[:, 0] != x[:, 0]).any()
    assert torch.equal(y[:, 1:], x[:, 1:])
    y2 = fn(x, torch.Generator().manual_seed(0))
    assert torch.equal(y, y2)  # reproducible from the generator


def test_cosmic_rays_reject_an_unknown_band(registry, sample):
    survey = load(registry, path=str(sample), size=24, bands=["NIR_J", "NIR_H"]).survey
    with pytest.raises(ConfigError, match="VIS not among the bands"):
        registry.get("augmentation", "cosmic_rays").build(
            survey, rate=2.0, max_hits=8, length=[0.0, 6.0], amplitude=[0.2, 1.0], width=0.7,
            bands=["VIS"])


def test_a_cutout_without_a_band_is_skipped_with_a_warning(registry, tmp_path, sample):
    import shutil

    for f in sorted(sample.glob("*.fits"))[:3]:
        shutil.copy(f, tmp_path / f.name)
    broken = sorted(tmp_path.glob("*.fits"))[0]
    with fits.open(broken) as hdul:
        fits.HDUList([hdul[0].copy(), hdul["VIS"].copy()]).writeto(broken, overwrite=True)
    with pytest.warns(RuntimeWarning, match="skipped 1 of 3 files"):
        galaxies = load(registry, path=str(tmp_path), size=24)
    assert len(galaxies) == 2
