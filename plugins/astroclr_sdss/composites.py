"""Colour composites (JPEG/PNG, e.g. SkyServer gri images shown to Galaxy Zoo volunteers).

The composite's R, G, B channels are bands ``composite_bands`` (SkyServer: i, r, g). Each
image is centre-cropped to ``crop`` px (0: no crop) and resized bilinearly to the cutout size,
as the embedded sample was made (423 px JPEG, central 212 px, resized to 64 px). Values stay
in 0-255 (display units, not flux): the per-image normalisation takes it from there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from astroclr.api import AstroclrError, SkipGalaxy
from astroclr_sdss.fits_cutouts import centre_crop, check_pattern, id_file, is_file

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


class CompositeReader:
    """Reads raw (C, size, size) float32 arrays from colour composite images."""

    def __init__(self, folder: Path, pattern: str, bands: Sequence[str],
                 composite_bands: Sequence[str], crop: int, size: int) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise AstroclrError(f"dataset sdss: path {self.folder} is not a directory")
        check_pattern(pattern)
        missing = [b for b in bands if b not in composite_bands]
        if missing:
            raise AstroclrError(f"dataset sdss: band {missing[0]!r} is not in the composites "
                                f"(composite_bands = {list(composite_bands)})")
        if len(composite_bands) != 3:
            raise AstroclrError("dataset sdss: composite_bands must name the 3 bands of R, G, B")
        self.pattern = pattern
        self.order = [list(composite_bands).index(b) for b in bands]
        self.crop = crop
        self.size = size

    def path_for(self, gid: str) -> Path | None:
        """The image of galaxy ``gid`` inside the folder, or None; a ``bad_id`` skip for an id
        that would name a file elsewhere (see :func:`id_file`)."""
        p = id_file(self.folder, self.pattern.format(id=gid), gid)
        if is_file(p):
            return p
        # Accept the other usual image suffix if the pattern's one is absent.
        stem = p.with_suffix("") if p.suffix.lower() in IMAGE_SUFFIXES else p
        for suffix in IMAGE_SUFFIXES:
            if is_file(stem.with_name(stem.name + suffix)):
                return stem.with_name(stem.name + suffix)
        return None

    def read(self, row: Any) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        gid = str(row["id"])
        path = self.path_for(gid)
        if path is None:
            raise SkipGalaxy("missing_file", f"no image {self.pattern.format(id=gid)}")
        try:
            with Image.open(path) as img:
                img.load()
                if img.mode not in ("RGB", "RGBA", "P"):
                    raise SkipGalaxy("bad_image", f"{path.name}: mode {img.mode}, not a colour image")
                img = img.convert("RGB")
                w, h = img.size
                if self.crop:
                    if self.crop > min(w, h):
                        raise SkipGalaxy("too_small", f"{path.name}: {w}x{h} px is smaller than "
                                         f"crop = {self.crop}")
                    x0, y0 = (w - self.crop) // 2, (h - self.crop) // 2
                    img = img.crop((x0, y0, x0 + self.crop, y0 + self.crop))
                if img.size != (self.size, self.size):
                    img = img.resize((self.size, self.size), Image.BILINEAR)
                rgb = np.asarray(img, dtype=np.float32)
        except SkipGalaxy:
            raise
        except Image.DecompressionBombError as exc:  # PIL's guard against huge decoded sizes
            raise SkipGalaxy("too_large", f"{path.name}: {exc}") from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise SkipGalaxy("unreadable_file", f"{path.name}: {type(exc).__name__}: {exc}") from None
        return centre_crop(np.ascontiguousarray(rgb.transpose(2, 0, 1)[self.order]), self.size,
                           path.name)
