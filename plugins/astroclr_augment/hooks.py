"""Hook implementations of the built-in augment plugin: survey-realistic batched augmentations.

Six augmentations mimic what a survey does to the same galaxy (see docs/augmentations.md):
``rotate_flip`` (always applied), ``psf``, ``noise``, ``cutout``, ``crop_resize`` and
``band_jitter`` (each applied per image with probability ``p``, default 0.5, by the core
pipeline). All act on whole (B, C, H, W) float batches on the batch's device, with per-image
random parameters drawn from the pipeline's seeded ``torch.Generator``.

This module stays light: the implementation modules (and torch) load only when a build runs.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

from astroclr.api import AugmentationSpec, Param, hookimpl

# these modules import torch only inside functions: cheap to import here
from astroclr_augment._geometry import INTERPOLATIONS as _INTERPOLATIONS
from astroclr_augment._geometry import PADDINGS as _PADDINGS
from astroclr_augment.cutout import FILLS
from astroclr_augment.noise import LEVELS
from astroclr_augment.rotate import ANGLES


def _interpolation(default: str = "bilinear") -> Param:
    return Param("interpolation", str, default, "resampling kernel of grid_sample",
                 choices=_INTERPOLATIONS)


def _padding() -> Param:
    return Param("padding", str, "reflection", "fill of pixels from outside the frame: "
                 "reflection (mirrored sky), zeros, border (repeat edge)", choices=_PADDINGS)


# -- build functions: validate against the survey, then import the implementation -----------
def _rotate_flip(survey: Any, angles: str, flip: bool, interpolation: str,
                 padding: str) -> Callable:
    from astroclr_augment.rotate import build_rotate_flip

    return build_rotate_flip(angles, flip, interpolation, padding)


def _psf(survey: Any, fwhm: Sequence[float], kernel: str, beta: float,
         native: dict) -> Callable:
    from astroclr_augment._common import check_band_dict, check_range
    from astroclr_augment.psf import build_psf

    rng = check_range("psf", "fwhm", fwhm, positive=True)
    nat = check_band_dict("psf", "native", native, survey, low=0.0)
    return build_psf(survey, rng, kernel, beta, nat)


def _noise(survey: Any, level: str, sky: Sequence[float], source: Sequence[float]) -> Callable:
    from astroclr_augment._common import check_range
    from astroclr_augment.noise import build_noise

    return build_noise(survey, level, check_range("noise", "sky", sky, low=0.0),
                       check_range("noise", "source", source, low=0.0))


def _cutout(survey: Any, size: Sequence[float], fill: str) -> Callable:
    from astroclr_augment._common import check_range
    from astroclr_augment.cutout import build_cutout

    return build_cutout(check_range("cutout", "size", size, low=0.0, high=1.0), fill)


def _crop_resize(survey: Any, scale: Sequence[float], jitter: float, interpolation: str,
                 padding: str) -> Callable:
    from astroclr_augment._common import check_range
    from astroclr_augment.crop import build_crop_resize

    rng = check_range("crop_resize", "scale", scale, high=1.0, positive=True)
    return build_crop_resize(rng, jitter, interpolation, padding)


def _band_jitter(survey: Any, sigma: float, bands: dict) -> Callable:
    from astroclr_augment._common import check_band_dict
    from astroclr_augment.band_jitter import build_band_jitter

    return build_band_jitter(survey.bands, sigma,
                             check_band_dict("band_jitter", "bands", bands, survey, low=0.0))


@hookimpl
def astroclr_augmentations() -> Iterator[AugmentationSpec]:
    yield AugmentationSpec(
        "rotate_flip", "rotation by any angle and mirror flip (always applied)", _rotate_flip,
        params=(
            Param("angles", str, "any", "any: uniform in [0, 360) deg, interpolated; right: "
                  "multiples of 90 deg, exact pixel permutations", choices=ANGLES),
            Param("flip", bool, True, "also mirror half of the images"),
            _interpolation(),
            _padding(),
        ),
        always=True,
    )
    yield AugmentationSpec(
        "psf", "degrade the seeing: per-band Gaussian/Moffat blur to a target FWHM", _psf,
        params=(
            Param("fwhm", list, [1.0, 2.5], "target seeing FWHM range [low, high], arcsec "
                  "(SDSS: median ~1.4, 1.0-2.5 typical)", low=0.0, length=2),
            Param("kernel", str, "gaussian", "extra blur profile", choices=("gaussian", "moffat")),
            Param("beta", float, 4.765, "Moffat beta (4.765: Kolmogorov turbulence, Trujillo+01)",
                  low=1.01, high=20.0),
            Param("native", dict, {}, "override the dataset's native seeing per band, arcsec, "
                  "e.g. {r = 1.3}"),
        ),
    )
    yield AugmentationSpec(
        "noise", "sky (Gaussian) + source (Poisson-like) noise", _noise,
        params=(
            Param("level", str, "image", "reference of the noise levels: image (fraction of each "
                  "image's peak above sky) or survey (multiples of the dataset's per-band sky "
                  "sigma)", choices=LEVELS),
            Param("sky", list, [0.0, 0.05], "sky noise sigma range [low, high] (units: see level)",
                  low=0.0, length=2),
            Param("source", list, [0.0, 0.05], "source noise sigma at the peak, fraction of the "
                  "peak, range [low, high]; variance scales with the signal", low=0.0, length=2),
        ),
    )
    yield AugmentationSpec(
        "cutout", "erase a random box (masked star, bad column)", _cutout,
        params=(
            Param("size", list, [0.1, 0.3], "box height and width range [low, high], fraction "
                  "of the image side", low=0.0, high=1.0, length=2),
            Param("fill", str, "median", "fill value: median (each band's sky level) or zero",
                  choices=FILLS),
        ),
    )
    yield AugmentationSpec(
        "crop_resize", "zoom on a random, slightly off-centre crop resized back", _crop_resize,
        params=(
            Param("scale", list, [0.6, 1.0], "crop side range [low, high], fraction of the "
                  "image side (<= 1)", low=0.0, high=1.0, length=2),
            Param("jitter", float, 0.05, "largest shift of the crop centre, fraction of the "
                  "image side", low=0.0, high=0.5),
            _interpolation(),
            _padding(),
        ),
    )
    yield AugmentationSpec(
        "band_jitter", "independent log-normal gain per band per image (colour jitter)",
        _band_jitter,
        params=(
            Param("sigma", float, 0.05, "relative gain scatter per band (0.05 ~ 0.05 mag)",
                  low=0.0, high=1.0),
            Param("bands", dict, {}, "per-band sigma overriding sigma, e.g. {u = 0.1}"),
        ),
    )
