"""``psf``: degrade the seeing, per image and per band, with a Gaussian or Moffat kernel.

The image already carries the survey's PSF (native FWHM ``n_b`` in band ``b``). To show the
same galaxy as observed under a target seeing ``t`` (drawn per image from ``fwhm``, arcsec),
it is convolved with an extra kernel of FWHM ``sqrt(t² − n_b²)`` in band ``b`` (0 where
``t <= n_b``): FWHMs of Gaussians add in quadrature. Since ``n_b`` differs by band, so does the
kernel. For a Moffat kernel the quadrature rule is an approximation (Moffats do not compose
exactly), good to a few percent for β ≳ 3.

The per-image, per-band kernels form a (B·C, 1, k, k) stack applied by one grouped conv2d
(a Gaussian wider than 7 px as two 1-D grouped passes: it is separable); each kernel is
normalised to unit sum, so total flux is conserved (up to the borders, which are reflect-padded
so that a sky background stays flat).

The Gaussian kernel is the *discrete* Gaussian (Lindeberg 1990), ``e^{-t} I_n(t)`` per axis with
``t = σ²``: its variance is exactly σ² however small σ is, and σ = 0 gives the identity. A
point-sampled Gaussian would blur far less than requested below ~1 px FWHM – and with the
embedded SDSS sample (2.6″/px) the extra blur *is* ≲ 1 px (its pixels are larger than the
seeing). The Moffat kernel is point-sampled (its wings matter, not its sub-pixel core).
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from astroclr.api import ConfigError
from astroclr_augment._common import DeviceConstant, working

if TYPE_CHECKING:
    import torch

    from astroclr.api import SurveyInfo

GAUSS_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
#: enclosed-flux fraction a truncated Moffat kernel keeps
MOFFAT_ENCLOSED = 0.99
#: Gaussian kernels wider than this (px) are applied as two 1-D passes
SEPARABLE_FROM = 7
#: Gaussian kernels are truncated at this many sigma
GAUSS_TRUNCATE = 4.0
#: on a CPU, planes are convolved in groups of a multiple of this many (see _blur_by_size)
PLANE_BUCKET = 32


def moffat_alpha(fwhm: "torch.Tensor | float", beta: float):
    """Moffat core width α for a given FWHM: FWHM = 2α·sqrt(2^(1/β) − 1)."""
    return fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))


def reach_per_fwhm(kernel: str, beta: float) -> float:
    """Kernel half-size needed per px of FWHM (both profiles scale with their FWHM)."""
    if kernel == "gaussian":  # truncated at GAUSS_TRUNCATE sigma
        return GAUSS_TRUNCATE / GAUSS_FWHM_PER_SIGMA
    # radius enclosing MOFFAT_ENCLOSED of the flux: 1 − (1 + R²/α²)^(1−β)
    return moffat_alpha(1.0, beta) * math.sqrt((1.0 - MOFFAT_ENCLOSED) ** (1.0 / (1.0 - beta)) - 1.0)


def kernel_radius(max_fwhm_px: float, kernel: str, beta: float) -> int:
    """Half-size (px) of the kernel needed for the widest FWHM; the kernel is 2·r + 1 wide."""
    if max_fwhm_px <= 0:
        return 0
    return max(1, int(math.ceil(reach_per_fwhm(kernel, beta) * max_fwhm_px)))


def build_psf(survey: "SurveyInfo", fwhm: Sequence[float], kernel: str, beta: float,
              native: dict[str, float]) -> Callable:
    """Validate against the survey and return ``fn(x, generator)`` blurring (B, C, H, W).

    ``fwhm`` = [lo, hi] target seeing (arcsec), already checked; ``native`` overrides the
    survey's native seeing (arcsec) per band.
    """
    lo, hi = fwhm
    scale = float(survey.pixel_scale.to_value("arcsec"))
    native_arcsec = np.array([native.get(b, survey.psf_fwhm[b].to_value("arcsec"))
                              for b in survey.bands])
    max_extra_px = math.sqrt(max(hi**2 - float(native_arcsec.min()) ** 2, 0.0)) / scale
    if max_extra_px <= 0:
        seeing = ", ".join(f"{b} {n:g}″" for b, n in zip(survey.bands, native_arcsec))
        raise ConfigError(
            f"augment.psf.fwhm: the largest target seeing {hi:g}″ is not worse than the native "
            f"seeing of any band ({seeing}), so the blur would never change an image; "
            "raise augment.psf.fwhm")
    radius = kernel_radius(max_extra_px, kernel, beta)
    size = 2 * radius + 1
    separable = kernel == "gaussian" and size > SEPARABLE_FROM
    native_on_device = DeviceConstant(native_arcsec)

    def psf(x: "torch.Tensor", generator: "torch.Generator") -> "torch.Tensor":
        import torch

        b, c, h, w = x.shape
        if size > min(h, w):
            raise ConfigError(
                f"augment.psf.fwhm: a target seeing of {hi:g}″ at {scale:g}″/px needs a "
                f"{size}×{size} px kernel, larger than the {h}×{w} px images; "
                "lower augment.psf.fwhm")
        if c != len(native_arcsec):
            raise ConfigError(f"augment.psf: images have {c} bands but dataset {survey.name!r} "
                              f"declares {len(native_arcsec)}")
        xw = working(x)
        target = lo + (hi - lo) * torch.rand(b, 1, generator=generator, device=x.device,
                                             dtype=xw.dtype)                   # (B, 1) arcsec
        nat = native_on_device(xw)                                             # (C,)
        extra = torch.sqrt((target**2 - nat**2).clamp_min(0.0)) / scale       # (B, C) px
        planes = xw.reshape(1, b * c, h, w)
        if x.device.type != "cpu":  # one kernel size: grouping would need sizes on the host
            return _blur(planes, extra.reshape(-1), radius, kernel, beta, separable
                         ).view(b, c, h, w).to(x.dtype)
        return _blur_by_size(planes, extra.reshape(-1), radius, kernel, beta
                             ).view(b, c, h, w).to(x.dtype)

    return psf


def _blur(planes: "torch.Tensor", fwhm_px: "torch.Tensor", radius: int, kernel: str, beta: float,
          separable: bool) -> "torch.Tensor":
    """Planes (1, N, H, W) each convolved with its kernel of FWHM ``fwhm_px`` (N,), 2r+1 wide."""
    import torch.nn.functional as F

    padded = F.pad(planes, (radius,) * 4, mode="reflect")
    return _convolve(padded, _kernels(fwhm_px, radius, kernel, beta, separable), separable)


def _blur_by_size(planes: "torch.Tensor", fwhm_px: "torch.Tensor", radius: int, kernel: str,
                  beta: float) -> "torch.Tensor":
    """:func:`_blur` with planes grouped by the kernel size their own FWHM needs (CPU).

    A plane whose target seeing is below its band's native seeing is left as it is, and a
    narrow kernel is not padded to the widest one's size: with the SDSS defaults at 32 px
    about a fifth of the planes need no blur and half of them a 3×3 kernel instead of 5×5.
    Each group is one grouped convolution (a Gaussian wider than ``SEPARABLE_FROM`` as two
    1-D passes).
    """
    import torch

    needed = torch.ceil(fwhm_px * reach_per_fwhm(kernel, beta)).clamp(1, radius)
    needed = torch.where(fwhm_px > 0, needed, torch.zeros_like(needed)).long()   # per plane
    out = planes.clone()
    for r in needed.unique().tolist():
        if r == 0:
            continue
        idx = (needed == r).nonzero().squeeze(1)
        separable = kernel == "gaussian" and 2 * r + 1 > SEPARABLE_FROM
        # the group padded to a multiple of PLANE_BUCKET planes (with copies of its first): a
        # grouped convolution of a shape oneDNN has not seen builds a new primitive, which for
        # ~200 planes at 32 px cost more than the convolution itself (1.4 ms against 0.6 ms)
        n = idx.numel()
        padded = torch.cat([idx, idx[:1].expand(-n % PLANE_BUCKET)])
        blurred = _blur(planes.index_select(1, padded), fwhm_px.index_select(0, padded), r,
                        kernel, beta, separable)
        out.index_copy_(1, idx, blurred[:, :n])
    return out


def _convolve(padded: "torch.Tensor", kernels: "torch.Tensor", separable: bool) -> "torch.Tensor":
    """Depthwise 'valid' convolution of (1, N, Hp, Wp) with one kernel per plane.

    ``kernels``: (N, k) 1-D factors when ``separable`` (the 2-D kernel is their outer product),
    else (N, k, k). Two 1-D passes cost 2k instead of k² per pixel: a 29×29 Gaussian runs ~6×
    faster that way on a CPU; for small kernels the single 2-D pass is quicker.
    """
    import torch.nn.functional as F

    n = kernels.shape[0]
    if not separable:
        return F.conv2d(padded, kernels[:, None], groups=n)
    rows = F.conv2d(padded, kernels[:, None, :, None], groups=n)
    return F.conv2d(rows, kernels[:, None, None, :], groups=n)


def _kernels(fwhm_px: "torch.Tensor", radius: int, kernel: str, beta: float,
             separable: bool) -> "torch.Tensor":
    """Unit-sum kernels of the given FWHMs (N,) in px, FWHM 0 -> delta.

    Gaussian: the discrete Gaussian, (N, k) per-axis factors if ``separable`` else (N, k, k);
    Moffat: point-sampled, always (N, k, k).
    """
    import torch

    r = torch.arange(-radius, radius + 1, dtype=fwhm_px.dtype, device=fwhm_px.device)
    if kernel == "gaussian":
        g = _discrete_gaussian(fwhm_px / GAUSS_FWHM_PER_SIGMA, radius)           # (N, k)
        g = g / g.sum(dim=1, keepdim=True)
        return g if separable else g[:, :, None] * g[:, None, :]
    r2 = (r[None, :] ** 2 + r[:, None] ** 2)[None]                             # (1, k, k)
    # a tiny floor turns FWHM 0 into a delta (every off-centre weight underflows to 0)
    alpha = moffat_alpha(fwhm_px.clamp_min(1e-3)[:, None, None], beta)
    k = (1.0 + r2 / alpha**2) ** (-beta)
    return k / k.sum(dim=(1, 2), keepdim=True)


def _discrete_gaussian(sigma: "torch.Tensor", radius: int) -> "torch.Tensor":
    """1-D discrete Gaussian kernels ``e^{-t} I_n(t)``, t = σ², at offsets n = -radius … radius.

    Uses ``e^{-t} I_n(t) = (1/π) ∫_0^π e^{t(cos θ − 1)} cos(nθ) dθ``, evaluated with the
    trapezoidal rule, which converges exponentially fast for this smooth periodic integrand.
    sigma: (N,) px -> (N, 2·radius + 1).
    """
    cos_theta, weight, cos_n_theta = _quadrature(radius, sigma.dtype, sigma.device)
    t = (sigma**2)[:, None]                                                    # (N, 1)
    envelope = (t * cos_theta - t).exp_().mul_(weight)                         # (N, M)
    # clamp: round-off can leave -1e-17 far in the tails
    return (envelope @ cos_n_theta).clamp_min_(0.0)                            # (N, k)


@functools.lru_cache(maxsize=64)
def _quadrature(radius: int, dtype: "torch.dtype", device: "torch.device"
                ) -> tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]:
    """cos θ (1, M), trapezoidal weights (M,) and cos(nθ) (M, 2r + 1) for n = -r … r: the
    constants of a kernel size, made once rather than for every batch and kernel size."""
    import torch

    steps = 128 + 4 * (2 * radius + 1)  # resolves cos(nθ) up to the kernel's edge
    theta = torch.linspace(0.0, math.pi, steps + 1, dtype=dtype, device=device)
    weight = torch.full_like(theta, 1.0 / steps)
    weight[0] = weight[-1] = 0.5 / steps
    n = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    return torch.cos(theta)[None, :], weight, torch.cos(theta[:, None] * n[None, :])
