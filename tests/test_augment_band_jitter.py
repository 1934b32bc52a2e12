"""band_jitter: an independent log-normal gain per band and image, per-band overrides."""

from __future__ import annotations

import pytest
import torch

from astroclr.data.augment import build_pipeline, resolve_augment_config
from astroclr.data.galaxies import SurveyInfo
from astroclr.plugin.specs import ConfigError


@pytest.fixture(scope="module")
def survey():
    return SurveyInfo.create("euclid-like", ("VIS", "Y", "J", "H"), 0.1,
                             {"VIS": 0.16, "Y": 0.3, "J": 0.3, "H": 0.3})


def jitter(registry, survey, **given):
    names, params = resolve_augment_config(registry, {"pipeline": ["band_jitter"],
                                                      "band_jitter": given})
    params["band_jitter"]["p"] = 1.0
    return build_pipeline(registry, survey, names, params)


def test_gains_are_lognormal_with_the_requested_sigma_independent_per_band(registry, survey):
    g = torch.Generator().manual_seed(0)
    x = 0.5 + torch.rand(3000, 4, 8, 8, generator=g, dtype=torch.float64)
    out = jitter(registry, survey, sigma=0.1)(x, g)
    gain = out / x
    # one gain per image and band: constant over the pixels
    assert torch.allclose(gain, gain[:, :, :1, :1].expand_as(gain), rtol=1e-12)
    log_gain = gain[:, :, 0, 0].log()
    assert torch.allclose(log_gain.std(0), torch.full((4,), 0.1, dtype=torch.float64), rtol=0.05)
    assert log_gain.mean(0).abs().max() < 0.01
    corr = torch.corrcoef(log_gain.T) - torch.eye(4, dtype=torch.float64)
    assert corr.abs().max() < 0.1  # colours change, not just the overall brightness


def test_per_band_sigma_overrides_the_default(registry, survey):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2000, 4, 4, 4, generator=g, dtype=torch.float64) + 0.1
    out = jitter(registry, survey, sigma=0.05, bands={"VIS": 0.0, "H": 0.2})(x, g)
    log_gain = (out / x)[:, :, 0, 0].log()
    assert torch.equal(out[:, 0], x[:, 0])  # VIS untouched
    assert log_gain[:, 1].std().item() == pytest.approx(0.05, rel=0.06)
    assert log_gain[:, 3].std().item() == pytest.approx(0.2, rel=0.06)


@pytest.mark.parametrize("given, param", [
    ({"bands": {"g": 0.1}}, "augment.band_jitter.bands"),      # no g band in this dataset
    ({"bands": {"Y": -0.1}}, "augment.band_jitter.bands"),
    ({"bands": {"Y": "big"}}, "augment.band_jitter.bands"),
    ({"sigma": -0.1}, "augment.band_jitter.sigma"),
    ({"p": 1.5}, "augment.band_jitter.p"),
])
def test_bad_parameters_are_config_errors(registry, survey, given, param):
    with pytest.raises(ConfigError, match=param.replace(".", r"\.")):
        jitter(registry, survey, **given)
