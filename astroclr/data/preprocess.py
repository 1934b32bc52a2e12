"""Turning raw cutouts into the images a model sees: binning, stretch, normalisation.

The same :class:`Preprocessing` is recorded with every run so that ``astroclr.load(run).embed``
repeats exactly what training saw.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from astroclr.plugin.preprocessing import PreprocessingOptions
from astroclr.plugin.specs import AstroclrError


class Preprocessing(PreprocessingOptions):
    """How raw (N, C, H, W) cutouts become model inputs.

    - ``bin``: sum k×k pixel blocks (flux-conserving), as the reference work's 2×2 binning;
    - ``stretch``: ``"linear"`` or ``"asinh"`` (``asinh(x / softening)``, for flux images);
    - ``normalize``: ``"minmax"`` scales each image to [0, 1] jointly over its bands (so colour,
      the ratio between bands, survives), ``"none"`` leaves values alone.

    Non-finite pixels are replaced by the image's lowest finite value before anything else.
    The fields are declared once, in :class:`~astroclr.plugin.preprocessing.PreprocessingOptions`.
    """

    def output_size(self, raw_size: int) -> int:
        """Side length after binning of a raw cutout of ``raw_size`` pixels."""
        return raw_size // self.bin

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Preprocess a batch (N, C, H, W) of raw cutouts; returns float32 (N, C, H/bin, W/bin)."""
        x = np.asarray(raw, dtype=np.float32)
        if x.ndim != 4:
            raise AstroclrError(f"expected images of shape (N, C, H, W), got shape {x.shape}")
        x = fill_nonfinite(x)
        x = bin_images(x, self.bin)
        if self.stretch == "asinh":
            x = np.arcsinh(x / np.float32(self.softening))
        if self.normalize == "minmax":
            x = minmax(x)
        return x.astype(np.float32, copy=False)

    def to_dict(self) -> dict[str, Any]:
        return self.table()

    def for_model(self, images: Any, bands: Sequence[str], image_size: int, command: str,
                  model: str) -> np.ndarray:
        """Raw cutouts of a trained model's bands, (N, C, H, W) or one (C, H, W), array or
        tensor, checked and preprocessed as the model's training data were: float32
        (N, C, image_size, image_size). ``command`` and ``model`` word the errors
        (``"predict"``, ``"the classifier"``)."""
        if hasattr(images, "detach"):
            images = images.detach().cpu().numpy()
        x = np.asarray(images, dtype=np.float32)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4:
            raise AstroclrError(f"{command}: expected images (N, C, H, W), got shape {x.shape}")
        if x.shape[1] != len(bands):
            raise AstroclrError(f"{command}: {model} was trained on {len(bands)} bands "
                                f"({', '.join(bands)}), got images with {x.shape[1]}")
        x = self.apply(x)
        if x.shape[-2:] != (image_size, image_size):
            raise AstroclrError(f"{command}: after preprocessing (bin {self.bin}) the images are "
                                f"{x.shape[-2]}x{x.shape[-1]} px, but {model} was trained on "
                                f"{image_size}x{image_size}")
        return x


def fill_nonfinite(x: np.ndarray) -> np.ndarray:
    """Replace NaN/inf pixels by each image's lowest finite value (0 if it has none)."""
    bad = ~np.isfinite(x)
    if not bad.any():
        return x
    x = x.copy()
    finite_min = np.where(bad, np.inf, x).min(axis=(1, 2, 3), keepdims=True)
    finite_min = np.where(np.isfinite(finite_min), finite_min, 0.0).astype(x.dtype)
    x[bad] = np.broadcast_to(finite_min, x.shape)[bad]
    return x


def bin_images(x: np.ndarray, factor: int) -> np.ndarray:
    """Sum ``factor``×``factor`` blocks; total flux is conserved (edge rows that do not fill a
    block are dropped)."""
    if factor == 1:
        return x
    n, c, h, w = x.shape
    if h < factor or w < factor:
        raise AstroclrError(f"cannot bin a {h}x{w} image by {factor}")
    h2, w2 = h // factor, w // factor
    # Adding k*k strided views is ~8x faster than reshape(...).sum(axis=(3, 5)).
    out = np.zeros((n, c, h2, w2), dtype=np.float32)
    for i in range(factor):
        for j in range(factor):
            out += x[:, :, i : h2 * factor : factor, j : w2 * factor : factor]
    return out


def minmax(x: np.ndarray) -> np.ndarray:
    """Scale each image to [0, 1] over all its bands together; flat images become 0."""
    lo = x.min(axis=(1, 2, 3), keepdims=True)
    hi = x.max(axis=(1, 2, 3), keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0).astype(np.float32)
    return (x - lo) / span
