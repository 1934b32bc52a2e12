"""``cosmic_rays``: residual cosmic-ray hits in the VIS band.

VIS is a CCD camera: cosmic rays deposit charge along short straight tracks, and a few survive
the rejection in stacked images. NISP, read up-the-ramp, rejects them far better, so by default
only VIS is hit. A hit is sharper than any real source (it never passed through the optics):
a track one pixel wide, not blurred by the PSF. Teaching the network that such a streak does
not change the galaxy makes the representation robust to them.

Per image, the number of hits is Poisson with mean ``rate`` (at most ``max_hits``); each hit is
a segment with a uniform random position, angle and length in ``length`` (pixels of the model's
images; 0 gives a single-pixel hit) and an amplitude in ``amplitude``, a fraction of the band's
peak above its sky (so it works whatever the normalisation). The track's profile across its
width is a triangle of half-width ``width`` px (anti-aliased). Everything is drawn from the
pipeline's generator on the batch's device: one batched computation, no Python loop over images.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

from astroclr.api import ConfigError

if TYPE_CHECKING:
    import torch

    from astroclr.api import SurveyInfo


def build_cosmic_rays(survey: "SurveyInfo", rate: float, max_hits: int, length: Sequence[float],
                      amplitude: Sequence[float], width: float, bands: Sequence[str]) -> Callable:
    """Validate against the dataset's bands, then return ``fn(x, generator)``."""
    missing = [b for b in bands if b not in survey.bands]
    if missing:
        raise ConfigError(f"augment.cosmic_rays.bands: {', '.join(missing)} not among the bands "
                          f"of dataset {survey.name!r} ({', '.join(survey.bands)})")
    if not bands:
        raise ConfigError("augment.cosmic_rays.bands: give at least one band")
    for name, (lo, hi) in (("length", length), ("amplitude", amplitude)):
        if lo > hi:
            raise ConfigError(f"augment.cosmic_rays.{name}: empty range [{lo:g}, {hi:g}]")
    channels = [survey.bands.index(b) for b in bands]
    len_lo, len_hi = float(length[0]), float(length[1])
    amp_lo, amp_hi = float(amplitude[0]), float(amplitude[1])

    def cosmic_rays(x: "torch.Tensor", generator: "torch.Generator") -> "torch.Tensor":
        import torch

        xw = x if x.dtype in (torch.float32, torch.float64) else x.float()
        b, c, h, w = xw.shape
        k = max_hits
        dev, dt = x.device, xw.dtype

        def rand(*shape: int) -> "torch.Tensor":
            return torch.rand(shape, generator=generator, device=dev, dtype=dt)

        rates = torch.full((b,), float(rate), device=dev, dtype=dt)
        n_hits = torch.poisson(rates, generator=generator).clamp_max(k)          # (B,)
        active = torch.arange(k, device=dev)[None, :] < n_hits[:, None]          # (B, K)
        cy, cx = rand(b, k) * (h - 1), rand(b, k) * (w - 1)                      # centres
        theta = rand(b, k) * torch.pi
        half = 0.5 * (len_lo + (len_hi - len_lo) * rand(b, k))
        amp = amp_lo + (amp_hi - amp_lo) * rand(b, k)
        ys = torch.arange(h, device=dev, dtype=dt)[None, None, :, None]
        xs = torch.arange(w, device=dev, dtype=dt)[None, None, None, :]
        dy, dx = ys - cy[..., None, None], xs - cx[..., None, None]              # (B, K, H, W)
        ux, uy = torch.cos(theta)[..., None, None], torch.sin(theta)[..., None, None]
        along = (dx * ux + dy * uy).clamp(-half[..., None, None], half[..., None, None])
        dist = torch.hypot(dx - along * ux, dy - along * uy)  # distance to the segment
        profile = (1.0 - dist / width).clamp_min(0.0)
        tracks = (profile * (amp * active)[..., None, None]).amax(dim=1)           # (B, H, W)
        out = xw.clone()
        sel = out[:, channels]                                                    # (B, c', H, W)
        flat = sel.reshape(b, len(channels), -1)
        sky = flat.median(dim=2).values[:, :, None, None]
        peak = (flat.amax(dim=2)[:, :, None, None] - sky).clamp_min(1e-6)
        out[:, channels] = sel + peak * tracks[:, None]
        return out.to(x.dtype)

    return cosmic_rays
