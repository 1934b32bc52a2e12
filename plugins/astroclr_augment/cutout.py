"""``cutout``: erase a random rectangle per image (random erasing).

Surveys lose parts of a galaxy's image: masked foreground stars, bad columns, chip gaps,
satellite trails. Erasing a box teaches the model not to rely on any single region. The box's
height and width are each drawn uniformly in ``size`` (fractions of the image side) and its
position uniformly such that it lies inside the frame.

``fill``: ``"median"`` (default) fills each band with that image's sky level, the median of its
outer ring of pixels (galaxies are centred, so the border is sky), so the box looks like masked
sky rather than a black hole that would itself be an easy feature; ``"zero"`` fills with 0 (the
sky level of background-subtracted images, and the minimum of min-max normalised ones).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

from astroclr_augment._common import sky_level

if TYPE_CHECKING:
    import torch

FILLS = ("median", "zero")


def build_cutout(size: Sequence[float], fill: str) -> Callable:
    """Return ``fn(x, generator)`` erasing one box per image of (B, C, H, W)."""
    lo, hi = size

    def cutout(x: "torch.Tensor", generator: "torch.Generator") -> "torch.Tensor":
        import torch

        b, c, h, w = x.shape
        r = torch.rand(4, b, generator=generator, device=x.device, dtype=torch.float32)
        bh = ((lo + (hi - lo) * r[0]) * h).round().clamp(0, h)                 # box size, px
        bw = ((lo + (hi - lo) * r[1]) * w).round().clamp(0, w)
        y0 = (r[2] * (h - bh + 1)).floor()                                     # top-left corner
        x0 = (r[3] * (w - bw + 1)).floor()
        ys = torch.arange(h, device=x.device, dtype=torch.float32)[None, :]
        xs = torch.arange(w, device=x.device, dtype=torch.float32)[None, :]
        rows = (ys >= y0[:, None]) & (ys < (y0 + bh)[:, None])                 # (B, H)
        cols = (xs >= x0[:, None]) & (xs < (x0 + bw)[:, None])                 # (B, W)
        inside = rows[:, :, None] & cols[:, None, :]                           # (B, H, W)
        if fill == "median":
            value = sky_level(x)
        else:
            value = torch.zeros((), dtype=x.dtype, device=x.device)
        return torch.where(inside[:, None], value, x)

    return cutout
