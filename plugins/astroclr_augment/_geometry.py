"""Batched affine resampling shared by ``rotate_flip`` and ``crop_resize``.

One sampling grid + ``grid_sample`` call resamples the whole batch, each image with its own
2×3 matrix, on the batch's device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: how pixels outside the frame are filled: "reflection" mirrors the sky at the border (keeps
#: the background level and its noise texture), "border" repeats the edge pixels, "zeros" is 0.
PADDINGS = ("reflection", "zeros", "border")
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")


def resample(x: "torch.Tensor", matrix: "torch.Tensor", interpolation: str,
             padding: str) -> "torch.Tensor":
    """Resample each image of ``x`` (B, C, H, W) with its affine map ``matrix`` (B, 2, 2) + shift.

    ``matrix`` is (B, 2, 3) in *pixel* units about the image centre: an output pixel at offset
    ``(dx, dy)`` from the centre reads the input at
    ``matrix[:, :, :2] @ (dx, dy) + matrix[:, :, 2]``.
    Working in pixels (not grid_sample's [-1, 1] units) keeps rotations round for non-square
    images.
    """
    import torch
    import torch.nn.functional as F

    b, _, h, w = x.shape
    half = torch.tensor([w / 2.0, h / 2.0], dtype=x.dtype, device=x.device)
    # normalised = pixel / half  =>  theta = D^-1 M D (linear part), D^-1 t (shift)
    theta = torch.empty(b, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, :, :2] = matrix[:, :, :2] * half[None, None, :] / half[None, :, None]
    theta[:, :, 2] = matrix[:, :, 2] / half[None, :]
    grid = _affine_grid(theta, h, w)
    out = F.grid_sample(x, grid, mode=interpolation, padding_mode=padding, align_corners=False)
    return out


def _affine_grid(theta: "torch.Tensor", h: int, w: int) -> "torch.Tensor":
    """``F.affine_grid(theta, (B, C, h, w), align_corners=False)`` by broadcasting.

    Same result; avoids the batched (H·W × 3) @ (3 × 2) matmul, which is slow on a CPU for
    small images (a 3-wide inner dimension).
    """
    import torch

    xs = (torch.arange(w, dtype=theta.dtype, device=theta.device) * 2 + 1) / w - 1
    ys = (torch.arange(h, dtype=theta.dtype, device=theta.device) * 2 + 1) / h - 1
    t = theta[:, :, :, None, None]                                             # (B, 2, 3, 1, 1)
    grid = t[:, :, 0] * xs[None, None, None, :] + t[:, :, 1] * ys[None, None, :, None] + t[:, :, 2]
    return grid.permute(0, 2, 3, 1)                                            # (B, H, W, 2)
