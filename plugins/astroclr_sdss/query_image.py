"""One image file as the ``sdss`` dataset would have read it: the query images of ``astroclr
similar --image`` and ``TrainedModel.embed(paths)``.

The dataset's own readers (and their guards: decompression bombs, truncated FITS, missing
bands) do the work, so a query image is cropped, resized and ordered exactly as the run's
galaxies were:

- a colour composite (JPEG/PNG): with ``input = "sample"`` it is taken as the embedded sample
  was made, a SkyServer 423 px JPEG whose central 212 px are resized to 64 px (i, r, g as R, G, B);
  with ``input = "composites"``, with the run's ``crop``, ``size`` and ``composite_bands``. A
  composite already at the raw size is taken as it is;
- a FITS cutout (one file, a cube or one extension per band): centre-cropped to ``size``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from astroclr.api import AstroclrError, SkipGalaxy
from astroclr_sdss.composites import IMAGE_SUFFIXES, CompositeReader
from astroclr_sdss.sample import SAMPLE_BANDS

#: how the embedded sample's cutouts were made from the SkyServer JPEGs (data/CREDITS.md)
SAMPLE_CROP = 212
SAMPLE_SIZE = 64
FITS_SUFFIXES = (".fits", ".fit", ".fts")
COMPRESSED = ("", ".gz", ".bz2", ".fz")


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(IMAGE_SUFFIXES):
        return "composite"
    if any(name.endswith(s + c) for s in FITS_SUFFIXES for c in COMPRESSED):
        return "fits"
    return None


def accepted(params: Mapping[str, Any]) -> str:
    """What this dataset reads as a query image, in words (for the error of another file)."""
    if params["input"] == "sample":
        how = (f"a SkyServer gri JPEG (its central {SAMPLE_CROP} px resized to {SAMPLE_SIZE} px, "
               f"as the embedded sample was made)")
    else:
        crop = f"its central {params['crop']} px " if params["crop"] else ""
        how = f"a colour composite ({crop}resized to {params['size']} px)"
    return f"{how} as {', '.join(IMAGE_SUFFIXES)}, or a FITS cutout (.fits, .fit, .fts, compressed too)"


def read_image(path: str | Path, params: Mapping[str, Any]) -> np.ndarray:
    """The raw (bands, size, size) float32 cutout of one query file, read with the run's
    dataset parameters ``params`` (see the module doc)."""
    from astroclr_sdss.fits_cutouts import FitsCutoutReader

    path = Path(path)
    if not path.is_file():
        raise AstroclrError(f"image {path} does not exist")
    kind = _kind(path)
    if kind is None:
        raise AstroclrError(f"image {path}: dataset sdss reads {accepted(params)}")
    bands = tuple(params["bands"])
    sample = params["input"] == "sample"
    size = SAMPLE_SIZE if sample else int(params["size"])
    # The readers open '{id}' inside a folder: the file's own name is the id.
    try:
        if kind == "composite":
            crop = SAMPLE_CROP if sample else int(params["crop"])
            if crop and _side(path) == (size, size):
                crop = 0  # already a cutout of the run's raw size
            reader: Any = CompositeReader(path.parent, "{id}", bands,
                                          SAMPLE_BANDS if sample else params["composite_bands"],
                                          crop, size)
        else:
            reader = FitsCutoutReader(path.parent, "{id}", bands, params["file_bands"], size)
        raw = reader.read({"id": path.name})
    except SkipGalaxy as skip:
        need = f"{len(bands)} band{'s' * (len(bands) > 1)} ({', '.join(bands)}) of {size}x{size} px"
        raise AstroclrError(f"image {path}: {skip.detail or skip.reason}; the run takes {need} "
                            f"raw cutouts, and dataset sdss reads {accepted(params)}") from None
    return np.asarray(raw, dtype=np.float32)


def _side(path: Path) -> tuple[int, int] | None:
    """The composite's (width, height) from its header, or None if it cannot be read (the
    reader then says why)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.size
    except Exception:  # noqa: BLE001 - any unreadable file: the reader reports it
        return None
