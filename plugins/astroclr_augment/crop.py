"""``crop_resize``: zoom in on a random, slightly off-centre square and resample it to full size.

The same galaxy at a different distance appears smaller or larger, and survey cutouts are never
centred to the pixel. The crop's side is a fraction ``scale`` (uniform in ``[lo, hi]``, ≤ 1) of
the image side, its centre is shifted by up to ``jitter`` × side in x and y (uniform), and it is
resampled back to H×W with ``interpolation``. Pixel values are not rescaled: zooming keeps the
surface brightness, which (away from cosmological dimming) does not depend on distance.
Where a shifted crop leaves the frame, ``padding`` fills it (default: reflected sky).

The whole batch is resampled in one ``grid_sample`` call (per-image affine grids); in the
pipeline, together with the geometric steps next to it (see ``_geometry``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from astroclr_augment._geometry import AffineAugmentation

if TYPE_CHECKING:
    import torch


def build_crop_resize(scale: Sequence[float], jitter: float, interpolation: str,
                      padding: str) -> AffineAugmentation:
    """Return ``fn(x, generator)`` cropping and resizing each image of (B, C, H, W)."""
    lo, hi = scale

    def draw(x: "torch.Tensor", generator: "torch.Generator") -> "torch.Tensor":
        import torch

        b, _, h, w = x.shape
        r = torch.rand(3, b, generator=generator, device=x.device, dtype=x.dtype)
        s = lo + (hi - lo) * r[0]                                              # (B,) side fraction
        zero = torch.zeros_like(s)
        shift_x = (2 * r[1] - 1) * jitter * w                                  # centre shift, px
        shift_y = (2 * r[2] - 1) * jitter * h
        return torch.stack([torch.stack([s, zero, shift_x], 1),
                            torch.stack([zero, s, shift_y], 1)], 1)            # (B, 2, 3)

    return AffineAugmentation(draw, interpolation, padding)
