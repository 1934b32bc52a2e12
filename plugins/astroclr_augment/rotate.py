"""``rotate_flip``: rotation by any angle and mirror flips, per image.

A galaxy has no preferred orientation on the sky, and its mirror image is an equally valid
galaxy, so the representation must not depend on either. Galaxies are centred and the corners
of a cutout are sky: rotating about the centre keeps every pixel of the inscribed disc (radius
H/2) inside the frame, so no flux of the galaxy is cropped; the corners brought in from outside
the frame are filled by ``padding`` (default: reflection of the surrounding sky, which keeps the
background level and noise texture, unlike zeros whose dark corners would reveal the angle).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

from astroclr_augment._geometry import AffineAugmentation

if TYPE_CHECKING:
    import torch

ANGLES = ("any", "right")


def build_rotate_flip(angles: str = "any", flip: bool = True, interpolation: str = "bilinear",
                      padding: str = "reflection") -> Callable:
    """Return ``fn(x, generator)`` rotating (and with probability 1/2 mirroring) each image.

    - ``angles="any"``: uniform angle in [0°, 360°), resampled with ``interpolation`` (bilinear
      interpolation smooths pixel noise slightly at angles off multiples of 90°);
    - ``angles="right"``: one of the 4 (or, with ``flip``, 8) exact symmetries of the square
      pixel grid, a pure permutation of pixels (no interpolation at all).

    One horizontal flip suffices: a vertical flip is a horizontal flip followed by 180°.
    """
    if angles == "right":
        def rotate_flip(x: "torch.Tensor", generator: "torch.Generator") -> "torch.Tensor":
            return _dihedral(x, flip, generator)

        return rotate_flip
    return AffineAugmentation(lambda x, generator: _any_angle(x, flip, generator),
                              interpolation, padding)


def _any_angle(x: "torch.Tensor", flip: bool, generator: "torch.Generator") -> "torch.Tensor":
    """(B, 2, 3) pixel-unit matrices: a uniform rotation, mirrored for half the images."""
    import torch

    b = x.shape[0]
    angle = torch.rand(b, generator=generator, device=x.device, dtype=x.dtype) * (2 * math.pi)
    # mirror sign: -1 flips x, drawn per image
    sign = torch.ones(b, dtype=x.dtype, device=x.device)
    if flip:
        flips = torch.rand(b, generator=generator, device=x.device) < 0.5
        sign = torch.where(flips, -sign, sign)
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero = torch.zeros_like(cos)
    # input = R(angle) @ diag(sign, 1) @ output
    return torch.stack([torch.stack([cos * sign, -sin, zero], 1),
                        torch.stack([sin * sign, cos, zero], 1)], 1)          # (B, 2, 3)


def _dihedral(x: "torch.Tensor", flip: bool, generator: "torch.Generator") -> "torch.Tensor":
    """Exact 90° rotations / flips as one gather with a per-image pixel permutation."""
    import torch

    b, c, h, w = x.shape
    idx = torch.arange(h * w, device=x.device).view(h, w)
    if h == w:
        perms = [torch.rot90(idx, k, (0, 1)) for k in range(4)]
    else:  # 90° would change the shape: keep the symmetries of a rectangle
        perms = [idx, torch.rot90(idx, 2, (0, 1))]
    if flip:
        perms += [p.flip(1) for p in perms]
    table = torch.stack([p.reshape(-1) for p in perms])                      # (T, H*W)
    choice = torch.randint(len(perms), (b,), generator=generator, device=x.device)
    gather = table[choice][:, None, :].expand(b, c, h * w)                    # (B, C, H*W)
    return x.reshape(b, c, h * w).gather(2, gather).view(b, c, h, w)
