"""Reading single cutout files as a trained model's raw input: (C, H, W) float32 in its bands.

Two kinds of file:

- FITS: one image HDU per band, or one HDU holding a (C, H, W) cube. Bands are matched by
  name when the file says them (a ``FILTER`` or ``BAND`` keyword per HDU, or a ``BANDS``
  keyword such as ``g,r,i`` on a cube); otherwise the planes are taken in the run's band order.
- A composite (PNG, JPEG, TIFF, ...): red, green, blue are the run's reddest, middle and bluest
  band (bands listed blue to red, as surveys list them and as montages draw them); a one-band
  run takes a grey image. Values stay 0-255: the SDSS sample's cutouts are such composites; for
  a survey trained on fluxes, a composite is only as comparable as its stretch allows.

Anything else is a one-line error naming the file, what it holds, and what the run needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from astroclr.data.guards import is_fits
from astroclr.plugin.specs import AstroclrError


def read_cutout(path: str | Path, bands: Sequence[str], raw_size: int) -> np.ndarray:
    """The cutout in ``path`` as (len(bands), raw_size, raw_size) float32, in ``bands`` order."""
    path = Path(path)
    if not path.is_file():
        raise AstroclrError(f"image {path} does not exist")
    bands = tuple(bands)
    image, found = (_read_fits(path, bands) if is_fits(path) else _read_composite(path, bands))
    need = (f"the run was trained on {len(bands)} band{'s' * (len(bands) > 1)} "
            f"({', '.join(bands)}) of {raw_size}x{raw_size} px raw cutouts")
    if image.shape[0] != len(bands) or image.shape[1:] != (raw_size, raw_size):
        raise AstroclrError(f"image {path} has {found} of {image.shape[2]}x{image.shape[1]} px; "
                            f"{need}")
    if not np.isfinite(image).any():
        raise AstroclrError(f"image {path} has no finite pixel")
    return image


def _read_fits(path: Path, bands: tuple[str, ...]) -> tuple[np.ndarray, str]:
    from astropy.io import fits

    from astroclr.data.guards import check_fits_sizes, truncation_is_error

    check_fits_sizes(path)  # headers only: a forged size is refused before numpy allocates it
    try:
        with truncation_is_error(), fits.open(path, memmap=False) as hdul:
            planes = [(h.header, np.asarray(h.data, dtype=np.float32)) for h in hdul
                      if h.is_image and h.data is not None and h.data.ndim >= 2]
    except Exception as exc:  # OSError, ValueError, EOFError, zlib.error, the truncation warning
        raise AstroclrError(f"cannot read image {path}: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:160]}") from None
    if not planes:
        raise AstroclrError(f"image {path} holds no image data")
    if len(planes) == 1 and planes[0][1].ndim == 3:  # a cube
        header, cube = planes[0]
        names = [b.strip() for b in str(header.get("BANDS", "")).split(",") if b.strip()]
        layers = list(cube)
    else:
        if any(p.ndim != 2 for _, p in planes):
            shapes = ", ".join(str(p.shape) for _, p in planes)
            raise AstroclrError(f"image {path}: expected one 2-D image per band or one "
                                f"(C, H, W) cube, got HDUs of shapes {shapes}")
        names = [str(h.get("FILTER", h.get("BAND", ""))).strip() for h, _ in planes]
        layers = [p for _, p in planes]
    found = f"{len(layers)} band{'s' * (len(layers) > 1)}"
    if names and all(names) and len(names) == len(layers):
        found += f" ({', '.join(names)})"
        if set(bands) <= set(names):  # pick and order by name
            layers = [layers[names.index(b)] for b in bands]
        elif len(layers) == len(bands):
            raise AstroclrError(f"image {path} has bands {', '.join(names)}; the run was trained "
                                f"on {', '.join(bands)}")
    shapes = {p.shape for p in layers}
    if len(shapes) != 1:
        raise AstroclrError(f"image {path}: its bands differ in size ({', '.join(map(str, shapes))})")
    return np.stack(layers).astype(np.float32), found


def _read_composite(path: Path, bands: tuple[str, ...]) -> tuple[np.ndarray, str]:
    from PIL import Image, UnidentifiedImageError

    from astroclr.data.guards import MAX_PIXELS, pil_guard

    try:
        with pil_guard(), Image.open(path) as im:
            if im.size[0] * im.size[1] > MAX_PIXELS:  # before decoding
                raise Image.DecompressionBombError(f"{im.size[0]}x{im.size[1]} px")
            grey = im.mode in ("L", "I", "I;16", "F")
            if len(bands) == 1:
                data = np.asarray(im.convert("L" if im.mode not in ("I", "F") else im.mode),
                                  dtype=np.float32)[None]
            else:
                data = np.asarray(im.convert("RGB"), dtype=np.float32).transpose(2, 0, 1)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise AstroclrError(f"image {path} is too large to decode ({exc}): a decompression "
                            f"bomb or not a cutout") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise AstroclrError(f"cannot read image {path}: not a FITS file or an image "
                            f"({type(exc).__name__})") from None
    if len(bands) == 1:
        return data, "1 band (grey)"
    if len(bands) != 3 or grey:
        raise AstroclrError(f"image {path} is a {'grey' if grey else 'colour'} composite; the "
                            f"run was trained on {len(bands)} bands ({', '.join(bands)}): give "
                            f"a FITS cutout with one image per band")
    # R, G, B = reddest, middle, bluest: reversed into the run's blue-to-red order
    return data[::-1].copy(), "3 bands (RGB composite)"
