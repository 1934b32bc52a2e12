"""``band_jitter``: a small independent gain per band per image (colour jitter for galaxies).

Photometric calibration errors, Galactic extinction and the spread of spectral energy
distributions change a galaxy's colours a little between observations, never its hue in the
RGB sense (so: no greyscale, no hue rotation). Each band of each image is multiplied by
``exp(σ_b · N(0, 1))``: log-normal, always positive, median 1, and ``σ_b`` ≈ the gain's
relative scatter (σ = 0.05 ≈ 0.05 mag, a few times SDSS's ~1–2 % calibration error to cover
extinction and k-correction differences). ``σ_b`` is ``sigma`` unless ``bands`` gives that
band its own value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping, Sequence

if TYPE_CHECKING:
    import torch


def build_band_jitter(bands: Sequence[str], sigma: float,
                      band_sigma: Mapping[str, float]) -> Callable:
    """Return ``fn(x, generator)`` scaling each band of each image of (B, C, H, W)."""
    from astroclr_augment._common import DeviceConstant

    sigmas = DeviceConstant([band_sigma.get(b, sigma) for b in bands])

    def band_jitter(x: "torch.Tensor", generator: "torch.Generator") -> "torch.Tensor":
        import torch

        b, c = x.shape[:2]
        if c != len(sigmas):
            from astroclr.api import ConfigError

            raise ConfigError(f"augment.band_jitter: images have {c} bands, the dataset "
                              f"declares {len(sigmas)}")
        dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
        eps = torch.randn(b, c, generator=generator, device=x.device, dtype=dtype)
        sig = sigmas(eps)
        gain = torch.exp(sig[None, :] * eps)[:, :, None, None]                 # (B, C, 1, 1)
        return (x * gain).to(x.dtype)

    return band_jitter
