"""``noise``: add sky noise (Gaussian) and source noise (Poisson-like, variance ∝ signal).

The same galaxy observed with a shorter exposure or a brighter sky has the same light profile
but more noise. Two terms are drawn per image:

- sky noise of standard deviation ``s·R``, constant over the image, ``s`` uniform in ``sky``;
- source (photon) noise of variance ``q²·R·max(x − bkg, 0)``, ``q`` uniform in ``source``: its
  standard deviation is ``q·R`` at a pixel ``R`` above the background and falls as the square
  root of the signal, as Poisson noise does (the Gaussian limit of Poisson counts).

``R`` (the reference level) depends on ``level``:

- ``"image"`` (default): each image's peak above its background, ``max_c(max(x_c) − bkg_c)``,
  the same in all bands (bands are normalised jointly, so they share units) – so ``sky`` is a
  fraction of the galaxy's peak, independent of the dataset's normalisation;
- ``"survey"``: ``sky`` is in multiples of the survey's own per-band background sigma
  (``survey.noise``), so noise grows as in a shallower observation of that survey; the source
  term stays relative to the image peak. Needs a dataset that provides ``noise``.

``bkg`` is each image's per-band sky level: the median of its outer ring of pixels (galaxies
are centred, so the border is sky).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

from astroclr.api import ConfigError
from astroclr_augment._common import DeviceConstant, sky_level, working

if TYPE_CHECKING:
    import torch

    from astroclr.api import SurveyInfo

LEVELS = ("image", "survey")


def build_noise(survey: "SurveyInfo", level: str, sky: Sequence[float],
                source: Sequence[float]) -> Callable:
    """Return ``fn(x, generator)`` adding noise to (B, C, H, W); ranges already validated."""
    sky_lo, sky_hi = sky
    src_lo, src_hi = source
    band_sigma = None
    if level == "survey":
        if not survey.noise:
            raise ConfigError(f"augment.noise.level: 'survey' needs the per-band noise of the "
                              f"dataset, which dataset {survey.name!r} does not provide; "
                              "use 'image'")
        missing = [b for b in survey.bands if b not in survey.noise]
        if missing:
            raise ConfigError(f"augment.noise.level: dataset {survey.name!r} gives no noise for "
                              f"band(s) {', '.join(missing)}; use 'image'")
        band_sigma = DeviceConstant([survey.noise[b] for b in survey.bands])

    def noise(x: "torch.Tensor", generator: "torch.Generator") -> "torch.Tensor":
        import torch

        xw = working(x)
        b, c = xw.shape[:2]
        bkg = sky_level(xw)                                                    # (B, C, 1, 1)
        peak = (xw.reshape(b, c, -1).amax(dim=2) - bkg[:, :, 0, 0]).amax(dim=1).clamp_min(0)
        peak = peak[:, None, None, None]                                       # (B, 1, 1, 1)
        rand = torch.rand(2, b, generator=generator, device=x.device, dtype=xw.dtype)
        s = (sky_lo + (sky_hi - sky_lo) * rand[0])[:, None, None, None]
        q = (src_lo + (src_hi - src_lo) * rand[1])[:, None, None, None]
        if band_sigma is None:
            sky_sigma = s * peak                                               # (B, 1, 1, 1)
        else:
            sky_sigma = s * band_sigma(xw)[None, :, None, None]
        eps = torch.randn(xw.shape, generator=generator, device=x.device, dtype=xw.dtype)
        if src_hi == 0.0:  # sky noise only: sigma is constant over each image
            return torch.addcmul(xw, sky_sigma, eps).to(x.dtype)
        # sigma = sqrt(sky² + q²·peak·max(x − bkg, 0)), in place on one temporary: every
        # elementwise pass over the batch costs about as much as the whole draw of ``eps``
        sigma = (xw - bkg).clamp_min_(0.0)
        sigma = torch.addcmul(sky_sigma**2, sigma, q**2 * peak, out=sigma).sqrt_()
        return torch.addcmul(xw, sigma, eps, out=sigma).to(x.dtype)

    return noise
