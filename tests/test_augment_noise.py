"""The noise augmentation: requested sky sigma, Poisson-like source term, survey levels."""

from __future__ import annotations

import pytest
import torch

from astroclr.data.augment import build_pipeline, resolve_augment_config
from astroclr.data.galaxies import SurveyInfo
from astroclr.plugin.specs import ConfigError

PSF = {"g": 1.4, "r": 1.3, "i": 1.2}


def survey(noise=None):
    return SurveyInfo.create("synthetic", ("g", "r", "i"), 0.4, PSF, noise=noise)


def noisy(registry, surv, **given):
    names, params = resolve_augment_config(registry, {"pipeline": ["noise"], "noise": given})
    params["noise"]["p"] = 1.0
    return build_pipeline(registry, surv, names, params)


def point_source(n: int = 256, size: int = 32, peak: float = 1.0, sky: float = 0.0):
    x = torch.full((n, 3, size, size), sky, dtype=torch.float64)
    x[:, :, size // 2, size // 2] = sky + peak
    return x


def test_sky_noise_has_the_requested_sigma_relative_to_the_peak(registry):
    x = point_source(peak=2.0, sky=0.3)
    out = noisy(registry, survey(), sky=[0.05, 0.05], source=[0.0, 0.0])(
        x, torch.Generator().manual_seed(0))
    residual = (out - x).flatten()
    # sigma = 0.05 × the peak above the sky (2.0), the same in every band
    assert residual.std().item() == pytest.approx(0.1, rel=0.01)
    assert residual.mean().abs().item() < 0.002
    per_band = (out - x).transpose(0, 1).reshape(3, -1).std(dim=1)
    assert torch.allclose(per_band, torch.full((3,), 0.1, dtype=torch.float64), rtol=0.02)


def test_sky_sigma_is_drawn_per_image_within_the_range(registry):
    x = point_source(n=200)
    out = noisy(registry, survey(), sky=[0.01, 0.05], source=[0.0, 0.0])(
        x, torch.Generator().manual_seed(0))
    sigmas = (out - x).reshape(200, -1).std(dim=1)
    assert sigmas.min() > 0.01 * 0.9 and sigmas.max() < 0.05 * 1.1
    assert sigmas.std() > 0.008  # uniform on [0.01, 0.05]: std 0.0115


def test_survey_level_uses_the_per_band_survey_noise(registry):
    surv = survey(noise={"g": 0.01, "r": 0.02, "i": 0.04})
    x = point_source()
    out = noisy(registry, surv, level="survey", sky=[2.0, 2.0], source=[0.0, 0.0])(
        x, torch.Generator().manual_seed(0))
    per_band = (out - x).transpose(0, 1).reshape(3, -1).std(dim=1)
    assert torch.allclose(per_band, torch.tensor([0.02, 0.04, 0.08], dtype=torch.float64),
                          rtol=0.02)


def test_source_noise_variance_grows_with_the_signal(registry):
    # three regions per image: sky (0), a faint plateau (0.25) and a bright plateau (1.0)
    x = torch.zeros(128, 3, 32, 32, dtype=torch.float64)
    x[:, :, 4:16, 4:28] = 1.0
    x[:, :, 16:28, 4:28] = 0.25
    out = noisy(registry, survey(), sky=[0.0, 0.0], source=[0.1, 0.1])(
        x, torch.Generator().manual_seed(0))
    r = out - x
    bright, faint = r[:, :, 4:16, 4:28].std().item(), r[:, :, 16:28, 4:28].std().item()
    assert bright == pytest.approx(0.1, rel=0.02)          # q × peak at the peak
    assert faint == pytest.approx(0.05, rel=0.02)          # ∝ sqrt(signal): half at 1/4
    assert r[:, :, 0, :].abs().max().item() == 0.0          # no source noise on the sky


def test_survey_level_without_survey_noise_is_a_config_error(registry):
    with pytest.raises(ConfigError, match=r"augment\.noise\.level"):
        noisy(registry, survey(), level="survey")


@pytest.mark.parametrize("given, param", [
    ({"sky": [0.2, 0.1]}, "augment.noise.sky"),
    ({"sky": [-0.1, 0.1]}, "augment.noise.sky"),
    ({"source": [0.3, 0.0]}, "augment.noise.source"),
    ({"level": "bright"}, "augment.noise.level"),
])
def test_bad_parameters_are_config_errors(registry, given, param):
    with pytest.raises(ConfigError, match=param.replace(".", r"\.")):
        noisy(registry, survey(), **given)
