"""Shared validation and tensor helpers of the built-in augmentations.

Only the standard library and :mod:`astroclr.plugin.specs` are imported at module level, so the hook
module stays instant to import; torch is imported inside the tensor helpers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

from astroclr.api import ConfigError

if TYPE_CHECKING:
    import torch

    from astroclr.api import SurveyInfo


def check_range(name: str, param: str, values: Sequence[float], low: float | None = None,
                high: float | None = None, positive: bool = False) -> tuple[float, float]:
    """Validate a ``[lo, hi]`` range parameter and return it as a tuple of floats.

    Raises ConfigError naming ``augment.<name>.<param>`` when the range is not two numbers,
    is empty (lo > hi), or leaves ``[low, high]``; ``positive`` also rejects lo <= 0.
    """
    label = f"augment.{name}.{param}"
    if len(values) != 2:
        raise ConfigError(f"{label}: expected [low, high], got {list(values)!r}")
    lo, hi = float(values[0]), float(values[1])
    if lo > hi:
        raise ConfigError(f"{label}: empty range [{lo:g}, {hi:g}] (low > high)")
    if positive and lo <= 0:
        raise ConfigError(f"{label}: values must be > 0, got [{lo:g}, {hi:g}]")
    if low is not None and lo < low:
        raise ConfigError(f"{label}: {lo:g} is below the minimum {low:g}")
    if high is not None and hi > high:
        raise ConfigError(f"{label}: {hi:g} is above the maximum {high:g}")
    return lo, hi


def check_band_dict(name: str, param: str, values: Mapping[str, Any] | None,
                    survey: "SurveyInfo", low: float | None = 0.0) -> dict[str, float]:
    """Validate a per-band ``{band: number}`` parameter against the dataset's bands."""
    label = f"augment.{name}.{param}"
    if not values:
        return {}
    if not isinstance(values, Mapping):
        raise ConfigError(f"{label}: expected a table of band = value, got {values!r}")
    out: dict[str, float] = {}
    for band, value in values.items():
        if band not in survey.bands:
            raise ConfigError(f"{label}: band {band!r} is not a band of dataset {survey.name!r} "
                              f"({', '.join(survey.bands)})")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{label}: value for band {band!r} must be a number, got {value!r}")
        if low is not None and value < low:
            raise ConfigError(f"{label}: value for band {band!r} is below the minimum {low:g}")
        out[band] = float(value)
    return out


class DeviceConstant:
    """Per-band constants as a tensor on the batch's device, copied there once per device.

    A host-to-device copy at every call would synchronise an accelerator with the host (a
    pageable copy waits for the device), stalling the training step's queue of kernels.
    """

    def __init__(self, values: Sequence[float]) -> None:
        self.values = [float(v) for v in values]
        self._cache: dict[Any, "torch.Tensor"] = {}

    def __len__(self) -> int:
        return len(self.values)

    def __call__(self, like: "torch.Tensor") -> "torch.Tensor":
        """The values (N,) in ``like``'s dtype and device."""
        import torch

        key = (like.device, like.dtype)
        if key not in self._cache:
            self._cache[key] = torch.tensor(self.values, dtype=like.dtype, device=like.device)
        return self._cache[key]


def working(x: "torch.Tensor") -> "torch.Tensor":
    """``x`` in a dtype every op used here supports (float32/64 kept; half precision -> float32)."""
    import torch

    if x.dtype in (torch.float32, torch.float64):
        return x
    return x.float()


def uniform(lo: float, hi: float, shape: Sequence[int], x: "torch.Tensor",
            generator: "torch.Generator") -> "torch.Tensor":
    """Uniform draws in [lo, hi) of ``shape``, on ``x``'s device and in its dtype."""
    import torch

    u = torch.rand(tuple(shape), generator=generator, device=x.device, dtype=x.dtype)
    return lo + (hi - lo) * u


def sky_level(x: "torch.Tensor") -> "torch.Tensor":
    """Per-image, per-band sky level (B, C, 1, 1): the median of the outer ring of pixels.

    Galaxies are centred, so the frame's border is sky even when the galaxy fills most of
    the image (e.g. after ``crop_resize``), where the median of the whole image is not.
    The ring is the outermost row and column on each side (2H + 2W − 4 px): enough pixels
    for a robust median, and a median is the costly part of this augmentation step.
    """
    import torch

    # four slices: cheaper than a boolean mask over the frame (an index of every pixel)
    border = torch.cat([x[:, :, 0, :], x[:, :, -1, :], x[:, :, 1:-1, 0], x[:, :, 1:-1, -1]],
                       dim=2)                                                  # (B, C, n_ring)
    if (border.device.type == "cpu" and border.dtype in (torch.float32, torch.float64)
            and not border.requires_grad):
        import numpy as np

        # the same lower median as torch's, by a partial sort: numpy's partition took 0.18 ms
        # for a batch of 256 × 3 rings at 32 px, torch.median 1.9 ms (a tenth of the pipeline)
        k = (border.shape[2] - 1) // 2
        low = np.partition(border.numpy(), k, axis=2)[:, :, k]
        return torch.from_numpy(low)[:, :, None, None]
    return border.median(dim=2).values[:, :, None, None]
