"""All built-in augmentations through the core Pipeline: probabilities, seeds, dtype, device."""

from __future__ import annotations

import pytest
import torch

from astroclr.data.augment import build_pipeline, resolve_augment_config
from astroclr.data.galaxies import SurveyInfo

ALL = ["crop_resize", "rotate_flip", "psf", "band_jitter", "noise", "cutout"]
OPTIONAL = [n for n in ALL if n != "rotate_flip"]


@pytest.fixture(scope="module")
def survey():
    # SDSS-like bands at a fine pixel scale, so that every augmentation visibly acts
    return SurveyInfo.create("synthetic", ("g", "r", "i"), 0.4, {"g": 1.4, "r": 1.3, "i": 1.2})


def galaxies(n: int, size: int = 32, dtype=torch.float32, seed: int = 0) -> torch.Tensor:
    """(n, 3, size, size) noisy centred blobs with a sky level, min-max normalised."""
    g = torch.Generator().manual_seed(seed)
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    blob = torch.exp(-0.5 * (r[None, :] ** 2 + r[:, None] ** 2) / 9.0)
    x = 0.05 + blob + 0.02 * torch.randn(n, 3, size, size, generator=g, dtype=torch.float64)
    x = (x - x.amin((1, 2, 3), keepdim=True)) / (x.amax((1, 2, 3), keepdim=True)
                                               - x.amin((1, 2, 3), keepdim=True))
    return x.to(dtype)


def pipeline(registry, survey, names, overrides=None):
    config = {"pipeline": list(names), **(overrides or {})}
    resolved_names, params = resolve_augment_config(registry, config)
    return build_pipeline(registry, survey, resolved_names, params)


@pytest.mark.parametrize("name", OPTIONAL)
def test_probability_p_is_respected(registry, survey, name):
    x = galaxies(1000)
    pipe = pipeline(registry, survey, [name], {name: {"p": 0.3}})
    out = pipe(x, torch.Generator().manual_seed(0))
    changed = (out != x).flatten(1).any(1).double().mean().item()
    # binomial(1000, 0.3): std 0.0145; every applied augmentation changes its image
    assert changed == pytest.approx(0.3, abs=0.06)
    never = pipeline(registry, survey, [name], {name: {"p": 0.0}})
    assert torch.equal(never(x, torch.Generator().manual_seed(0)), x)


def test_rotate_flip_always_applies(registry, survey):
    x = galaxies(200)
    out = pipeline(registry, survey, ["rotate_flip"])(x, torch.Generator().manual_seed(0))
    assert (out != x).flatten(1).any(1).all()


def test_default_probability_is_one_half(registry):
    for name in OPTIONAL:
        _, params = resolve_augment_config(registry, {"pipeline": [name]})
        assert params[name]["p"] == 0.5
    assert registry.get("augmentation", "rotate_flip").always


def test_same_seed_same_batch_different_seeds_differ(registry, survey):
    x = galaxies(64)
    pipe = pipeline(registry, survey, ALL)
    a = pipe(x, torch.Generator().manual_seed(7))
    b = pipe(x, torch.Generator().manual_seed(7))
    c = pipe(x, torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert (a - c).abs().amax((1, 2, 3)).min() > 1e-3  # every image differs
    # the parameters are drawn per image: identical inputs give different views
    same = x[:1].expand(16, -1, -1, -1).contiguous()
    views = pipe(same, torch.Generator().manual_seed(0))
    assert (views[1:] - views[:1]).abs().amax((1, 2, 3)).min() > 1e-3


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_dtype_and_device_are_preserved(registry, survey, name, dtype):
    x = galaxies(8, dtype=dtype)
    overrides = {} if name == "rotate_flip" else {name: {"p": 1.0}}
    out = pipeline(registry, survey, [name], overrides)(x, torch.Generator().manual_seed(0))
    assert out.dtype == dtype and out.device == x.device and out.shape == x.shape
    assert not torch.equal(out, x)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda(registry, survey):
    x = galaxies(32).cuda()
    pipe = pipeline(registry, survey, ALL, {n: {"p": 1.0} for n in OPTIONAL})
    out = pipe(x, torch.Generator(device="cuda").manual_seed(0))
    assert out.is_cuda and out.dtype == x.dtype and torch.isfinite(out).all()


def test_no_8_bit_quantisation(registry, survey):
    x = galaxies(4, size=64, dtype=torch.float64)
    pipe = pipeline(registry, survey, ALL, {n: {"p": 1.0} for n in OPTIONAL})
    out = pipe(x, torch.Generator().manual_seed(0))
    for image in out:
        # 8-bit output would hold at most 256 levels per band
        assert image[0].unique().numel() > 2000
    fine = (out * 255 - (out * 255).round()).abs()
    assert fine.mean() > 0.2  # values are not multiples of 1/255 (uniform remainder: 0.25)


def test_pipeline_on_the_embedded_sample_stays_finite(registry, sample_galaxies):
    x = torch.from_numpy(sample_galaxies.images[:64])
    pipe = pipeline(registry, sample_galaxies.survey, ALL)
    out = pipe(x, torch.Generator().manual_seed(0))
    assert torch.isfinite(out).all() and out.dtype == torch.float32
    # the pipeline keeps the galaxy: views still correlate with their original
    a, b = (x - x.mean((1, 2, 3), keepdim=True)), (out - out.mean((1, 2, 3), keepdim=True))
    corr = (a * b).sum((1, 2, 3)) / (a.flatten(1).norm(dim=1) * b.flatten(1).norm(dim=1))
    assert corr.median() > 0.5


def test_hook_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, astroclr_augment.hooks; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
