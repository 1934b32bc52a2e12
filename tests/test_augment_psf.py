"""The psf augmentation: flux conservation, FWHM reached, per-band physics, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from astroclr.data.augment import build_pipeline, resolve_augment_config
from astroclr.data.galaxies import SurveyInfo
from astroclr.plugin.specs import ConfigError

SCALE = 0.2  # arcsec / px
NATIVE = {"g": 0.6, "r": 0.5, "i": 0.4}  # arcsec: 3, 2.5, 2 px


@pytest.fixture(scope="module")
def survey():
    return SurveyInfo.create("synthetic", ("g", "r", "i"), SCALE, NATIVE)


def blur(registry, survey, **given):
    names, params = resolve_augment_config(registry, {"pipeline": ["psf"], "psf": given})
    params["psf"]["p"] = 1.0
    return build_pipeline(registry, survey, names, params)


def gaussian_source(size: int, fwhm_px: list[float], n: int = 1) -> torch.Tensor:
    """(n, C, size, size) float64 Gaussians centred on pixel size // 2, one FWHM per band."""
    r = torch.arange(size, dtype=torch.float64) - size // 2
    r2 = r[None, :] ** 2 + r[:, None] ** 2
    bands = [torch.exp(-0.5 * r2 / (f / 2.3548) ** 2) for f in fwhm_px]
    x = torch.stack(bands)[None].repeat(n, 1, 1, 1)
    return x / x.sum(dim=(2, 3), keepdim=True)


def second_moment_fwhm(x: torch.Tensor) -> torch.Tensor:
    """FWHM (px) from the x second moment about the centroid, per image and band: (B, C)."""
    coords = torch.arange(x.shape[-1], dtype=x.dtype)
    px = x.sum(dim=2)  # profile along x: (B, C, W)
    total = px.sum(-1, keepdim=True)
    mean = (px * coords).sum(-1, keepdim=True) / total
    var = (px * (coords - mean) ** 2).sum(-1) / total[..., 0]
    return 2.3548 * var.sqrt()


def half_max_fwhm(profile: np.ndarray) -> float:
    """FWHM (px) of a 1-D peaked profile from its linearly interpolated half-maximum crossings."""
    peak = profile.argmax()
    half = profile[peak] / 2
    left = peak - np.argmax(profile[peak::-1] < half)
    right = peak + np.argmax(profile[peak:] < half)
    xl = left + (half - profile[left]) / (profile[left + 1] - profile[left])
    xr = right - 1 + (profile[right - 1] - half) / (profile[right - 1] - profile[right])
    return float(xr - xl)


def test_reaches_target_seeing_in_every_band(registry, survey):
    # images carrying the native PSF; a target of 1.2" = 6 px must be reached in all bands
    native_px = [NATIVE[b] / SCALE for b in survey.bands]
    x = gaussian_source(64, native_px, n=4)
    before = second_moment_fwhm(x)
    assert torch.allclose(before, torch.tensor(native_px, dtype=x.dtype), rtol=0.02)
    out = blur(registry, survey, fwhm=[1.2, 1.2])(x, torch.Generator().manual_seed(0))
    measured = second_moment_fwhm(out)
    assert torch.allclose(measured, torch.full_like(measured, 6.0), rtol=0.03), measured


@pytest.mark.parametrize("kernel", ["gaussian", "moffat"])
def test_point_source_becomes_kernel_of_requested_fwhm(registry, survey, kernel):
    # native seeing 0 (override): the extra kernel's FWHM is the target itself, 1.0" = 5 px
    x = torch.zeros(2, 3, 48, 48, dtype=torch.float64)
    x[:, :, 24, 24] = 1.0
    fn = blur(registry, survey, fwhm=[1.0, 1.0], kernel=kernel,
              native={"g": 0.0, "r": 0.0, "i": 0.0})
    out = fn(x, torch.Generator().manual_seed(0))
    for band in range(3):
        fwhm = half_max_fwhm(out[0, band, 24].numpy())
        assert fwhm == pytest.approx(5.0, rel=0.06), (kernel, band, fwhm)


def test_conserves_flux_and_keeps_flat_sky_flat(registry, survey):
    g = torch.Generator().manual_seed(1)
    x = gaussian_source(64, [3.0, 2.5, 2.0], n=8) * (1 + torch.rand(8, 3, 1, 1, dtype=torch.float64,
                                                                     generator=g))
    out = blur(registry, survey, fwhm=[0.8, 1.6])(x, g)
    assert not torch.allclose(out, x, atol=1e-4)  # it did blur
    assert torch.allclose(out.sum(dim=(2, 3)), x.sum(dim=(2, 3)), rtol=1e-6)
    flat = torch.full((2, 3, 40, 40), 0.37, dtype=torch.float64)
    assert torch.allclose(blur(registry, survey, fwhm=[2.0, 2.0])(flat, g), flat, atol=1e-9)


def test_targets_below_native_seeing_leave_a_band_unchanged(registry, survey):
    # target 0.5": g (0.6") and r (0.5") already as blurred; only i (0.4") gets an extra kernel
    x = gaussian_source(40, [3.0, 2.5, 2.0], n=2)
    out = blur(registry, survey, fwhm=[0.5, 0.5])(x, torch.Generator().manual_seed(0))
    assert torch.allclose(out[:, :2], x[:, :2], atol=1e-12)
    assert (out[:, 2] - x[:, 2]).abs().max() > 1e-3
    assert second_moment_fwhm(out)[:, 2] == pytest.approx(torch.full((2,), 2.5), rel=0.03)


def test_seeing_is_drawn_per_image(registry, survey):
    x = gaussian_source(64, [3.0, 2.5, 2.0], n=64).float()
    out = blur(registry, survey, fwhm=[0.8, 1.6])(x, torch.Generator().manual_seed(0))
    fwhm_arcsec = second_moment_fwhm(out)[:, 1] * SCALE
    assert fwhm_arcsec.min() > 0.8 * 0.97 and fwhm_arcsec.max() < 1.6 * 1.03
    assert fwhm_arcsec.std() > 0.15  # uniform on [0.8, 1.6]: std 0.23


@pytest.mark.parametrize("given, param", [
    ({"fwhm": [2.0, 1.0]}, "augment.psf.fwhm"),
    ({"fwhm": [-1.0, 1.0]}, "augment.psf.fwhm"),
    ({"fwhm": [0.0, 1.0]}, "augment.psf.fwhm"),
    ({"fwhm": [0.2, 0.3]}, "augment.psf.fwhm"),      # never worse than the native seeing
    ({"native": {"z": 1.0}}, "augment.psf.native"),   # the dataset has no z band
    ({"native": {"r": -1.0}}, "augment.psf.native"),
    ({"kernel": "airy"}, "augment.psf.kernel"),
])
def test_bad_parameters_are_config_errors(registry, survey, given, param):
    with pytest.raises(ConfigError, match=param.replace(".", r"\.")):
        blur(registry, survey, **given)


def test_kernel_larger_than_image_is_a_config_error(registry, survey):
    fn = blur(registry, survey, fwhm=[4.0, 4.0])  # 20 px FWHM: a 69 px kernel
    with pytest.raises(ConfigError, match=r"augment\.psf\.fwhm.*32×32"):
        fn(torch.zeros(1, 3, 32, 32), torch.Generator().manual_seed(0))
    assert fn(torch.zeros(1, 3, 80, 80), torch.Generator()).shape == (1, 3, 80, 80)


def test_sdss_defaults_blur_the_embedded_sample_by_under_a_pixel(registry, sample_galaxies):
    # 2.6"/px: the default 1.0–2.5" seeing adds at most sqrt(2.5² − 1.26²)/2.62 ≈ 0.82 px
    # FWHM: a real but sub-pixel blur
    fn = blur(registry, sample_galaxies.survey)
    x = torch.from_numpy(sample_galaxies.images[:32])
    out = fn(x, torch.Generator().manual_seed(0))
    assert out.dtype == torch.float32
    assert torch.allclose(out.sum(dim=(2, 3)), x.sum(dim=(2, 3)), rtol=1e-3)
    assert 0 < (out - x).abs().max() < 0.5
    assert math.isclose(float(sample_galaxies.survey.pixel_scale.value), 2.6235, rel_tol=1e-3)


def test_separable_and_full_gaussian_kernels_agree():
    # wide Gaussians run as two 1-D passes, narrow ones as one 2-D pass: same result
    import torch.nn.functional as F

    from astroclr_augment.psf import _convolve, _kernels

    fwhm = torch.tensor([0.0, 0.7, 2.0, 4.5], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    planes = F.pad(torch.rand(1, 4, 20, 20, generator=g, dtype=torch.float64), (6,) * 4,
                   mode="reflect")
    full = _convolve(planes, _kernels(fwhm, 6, "gaussian", 0.0, separable=False), False)
    sep = _convolve(planes, _kernels(fwhm, 6, "gaussian", 0.0, separable=True), True)
    assert torch.allclose(full, sep, atol=1e-12)
    assert torch.allclose(full[0, 0], planes[0, 0, 6:-6, 6:-6], atol=1e-12)  # FWHM 0: identity


@pytest.mark.parametrize("kernel", ["gaussian", "moffat"])
def test_kernels_grouped_by_size_match_one_kernel_size_for_all(kernel):
    # on a CPU each plane gets the kernel size its own FWHM needs; the blur is the same
    from astroclr_augment.psf import _blur, _blur_by_size, kernel_radius

    g = torch.Generator().manual_seed(0)
    fwhm = torch.tensor([0.0, 0.3, 0.8, 1.5, 2.5, 4.0, 0.0, 6.0], dtype=torch.float64)
    radius = kernel_radius(6.0, kernel, 4.765)
    planes = torch.rand(1, 8, 40, 40, generator=g, dtype=torch.float64)
    grouped = _blur_by_size(planes, fwhm, radius, kernel, 4.765)
    single = _blur(planes, fwhm, radius, kernel, 4.765, separable=False)
    assert torch.equal(grouped[0, [0, 6]], planes[0, [0, 6]])  # no extra blur: untouched
    # a kernel truncated at its own reach (4 sigma; 99 % of a Moffat's flux) instead of the
    # widest one's: differences at the level of the truncated tail
    tol = 1e-3 if kernel == "gaussian" else 2e-2
    assert torch.allclose(grouped, single, atol=tol)
    assert (grouped - planes).abs().amax((2, 3))[0, [2, 3, 4, 5, 7]].min() > 1e-3  # blurred
