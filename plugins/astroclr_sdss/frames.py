"""Cutouts from SDSS imaging frames (``frame-<band>-<run6>-<camcol>-<field4>.fits[.bz2]``).

Each galaxy is cut from the frame of the first band with astropy's ``Cutout2D`` around its
RA/Dec; the other bands are resampled (bilinear) onto that cutout's pixel grid through their
own WCS, because SDSS frames of one field are not pixel-aligned between bands (offsets of a
few pixels). Where a band's frame is aligned the sampling points fall on whole pixels and the
values are copied exactly.

Which frame an object is on: from the catalogue's ``run``, ``camcol``, ``field`` columns where
it has them (every SDSS photometric catalogue does), else by testing every frame's footprint.
Objects near an edge are padded with NaN (counted, filled, recorded in ``invalid_frac``) or,
with ``edge = "skip"``, skipped.
"""

from __future__ import annotations

import re
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import Cutout2D, NoOverlapError, PartialOverlapError
from astropy.table import Table
from astropy.wcs import WCS, FITSFixedWarning

from astroclr.api import AstroclrError, Skip, SkipGalaxy
from astroclr_sdss.fits_cutouts import truncation_is_error

FRAME_RX = re.compile(r"^frame-(?P<band>[ugriz])-(?P<run>\d{6})-(?P<camcol>\d)-(?P<field>\d{4})"
                      r"\.fits(?:\.bz2|\.gz)?$")


def frame_name(band: str, run: int, camcol: int, field: int) -> str:
    """The SAS file name of a frame (without compression suffix)."""
    return f"frame-{band}-{int(run):06d}-{int(camcol)}-{int(field):04d}.fits"


def frame_key(run: int, camcol: int, field: int) -> str:
    return f"{int(run):06d}-{int(camcol)}-{int(field):04d}"


def index_frames(folder: Path) -> dict[tuple[str, str], Path]:
    """{(band, frame key): path} of the frames in ``folder``."""
    found: dict[tuple[str, str], Path] = {}
    for p in sorted(Path(folder).iterdir()):
        m = FRAME_RX.match(p.name)
        if m:
            found.setdefault((m["band"], frame_key(m["run"], m["camcol"], m["field"])), p)
    return found


def _wcs(header: fits.Header) -> WCS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)  # SDSS headers trip harmless fixes
        return WCS(header)


def assign_frames(catalog: Table, folder: Path, bands: Sequence[str],
                  columns: tuple[str, str, str]) -> tuple[Table, list[Skip]]:
    """Add a ``frame`` column (frame key) to ``catalog``, sorted by it; objects without a usable
    frame are returned as skips. ``columns`` names the run, camcol, field columns."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AstroclrError(f"dataset sdss: frames folder {folder} is not a directory")
    index = index_frames(folder)
    if not index:
        raise AstroclrError(f"dataset sdss: no frame-<band>-<run>-<camcol>-<field>.fits[.bz2] "
                            f"files in {folder}")
    skips: list[Skip] = []
    keys = np.full(len(catalog), "", dtype=object)
    have_cols = all(c in catalog.colnames for c in columns)
    if have_cols:
        run, camcol, field = (np.asarray(catalog[c]) for c in columns)
        for i in range(len(catalog)):
            keys[i] = frame_key(run[i], camcol[i], field[i])
    else:
        keys = _footprint_search(catalog, index, bands[0])
    keep = np.ones(len(catalog), bool)
    for i, key in enumerate(keys):
        row = catalog[i]
        if not key:
            skips.append(Skip(int(row["row"]), "off_frames",
                              f"RA {row['ra']:.5f}, Dec {row['dec']:.5f} is on no {bands[0]} frame "
                              f"in {folder}", str(row["id"])))
            keep[i] = False
            continue
        missing = [b for b in bands if (b, key) not in index]
        if missing:
            run_, camcol_, field_ = key.split("-")
            skips.append(Skip(int(row["row"]), "missing_frame",
                              f"no {frame_name(missing[0], int(run_), int(camcol_), int(field_))}"
                              f"[.bz2] in {folder}", str(row["id"])))
            keep[i] = False
    out = catalog[keep]
    out["frame"] = np.asarray([str(k) for k in keys[keep]], dtype=str)
    # Sorted by frame, each chunk touches few frames and each worker reads a frame once.
    order = np.argsort(out["frame"], kind="stable")
    return out[order], skips


def _footprint_search(catalog: Table, index: dict, band: str) -> np.ndarray:
    """For catalogues without run/camcol/field: the frame whose interior holds each object best."""
    # read_catalog stores positions in degrees (the column unit says so)
    ra, dec = (np.asarray(catalog[c], dtype=float) for c in ("ra", "dec"))
    keys = np.full(len(catalog), "", dtype=object)
    margin = np.full(len(catalog), -np.inf)
    for (b, key), path in index.items():
        if b != band:
            continue
        try:
            header = fits.getheader(path, 0)
        except Exception:  # an unreadable frame is reported when an object needs it
            continue
        w = _wcs(header)
        x, y = w.world_to_pixel_values(ra, dec)
        nx, ny = header.get("NAXIS1", 0), header.get("NAXIS2", 0)
        m = np.minimum.reduce([x + 0.5, nx - 0.5 - x, y + 0.5, ny - 0.5 - y])
        better = np.isfinite(m) & (m > 0) & (m > margin)
        keys[better] = key
        margin[better] = m[better]
    return keys


class FrameReader:
    """Reads raw (C, size, size) cutouts from frames; keeps a few frames per process in memory."""

    def __init__(self, folder: Path, bands: Sequence[str], size: int, edge: str,
                 cache_frames: int = 0) -> None:
        self.folder = Path(folder)
        self.bands = tuple(bands)
        self.size = size
        self.edge = edge
        self.index = {(b, k): p.name for (b, k), p in index_frames(self.folder).items()}
        self.cache_frames = cache_frames or 2 * len(self.bands)
        self._cache: OrderedDict[str, Any] = OrderedDict()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_cache"] = OrderedDict()  # workers start with an empty cache
        return state

    def _frame(self, name: str) -> tuple[np.ndarray, WCS]:
        if name in self._cache:
            self._cache.move_to_end(name)
            hit = self._cache[name]
        else:
            try:
                with truncation_is_error(), fits.open(self.folder / name, memmap=False) as hdul:
                    hit = (np.asarray(hdul[0].data, dtype=np.float32), _wcs(hdul[0].header))
                if hit[0].ndim != 2:
                    raise ValueError(f"primary HDU is {hit[0].ndim}-D, not an image")
            except Exception as exc:
                hit = SkipGalaxy("unreadable_file", f"{name}: {type(exc).__name__}: {exc}")
            self._cache[name] = hit
            while len(self._cache) > self.cache_frames:
                self._cache.popitem(last=False)
        if isinstance(hit, SkipGalaxy):
            raise hit
        return hit

    def read(self, row: Any) -> np.ndarray:
        key = str(row["frame"])
        position = SkyCoord(float(row["ra"]), float(row["dec"]), unit="deg")
        data, wcs = self._frame(self.index[(self.bands[0], key)])
        mode = "strict" if self.edge == "skip" else "partial"
        try:
            cut = Cutout2D(data, position, (self.size, self.size), wcs=wcs, mode=mode,
                           fill_value=np.nan, copy=True)
        except NoOverlapError:
            raise SkipGalaxy("off_frame", f"RA {position.ra.deg:.5f}, Dec {position.dec.deg:.5f} "
                             f"is outside {self.index[(self.bands[0], key)]}") from None
        except (PartialOverlapError, ValueError):
            raise SkipGalaxy("near_edge", f"the {self.size} px cutout crosses the edge of "
                             f"{self.index[(self.bands[0], key)]} (edge = skip)") from None
        planes = [cut.data.astype(np.float32)]
        if len(self.bands) > 1:
            yy, xx = np.mgrid[0 : self.size, 0 : self.size]
            world = cut.wcs.pixel_to_world_values(xx.ravel(), yy.ravel())
            for band in self.bands[1:]:
                name = self.index[(band, key)]
                bdata, bwcs = self._frame(name)
                px, py = bwcs.world_to_pixel_values(*world)
                planes.append(_sample(bdata, px, py, self.size, name, self.edge))
        return np.stack(planes)


def _sample(data: np.ndarray, px: np.ndarray, py: np.ndarray, size: int, name: str,
            edge: str) -> np.ndarray:
    """Bilinear samples of ``data`` at (px, py); NaN outside the frame."""
    from scipy.ndimage import map_coordinates

    ny, nx = data.shape
    outside = (px < -0.5) | (px > nx - 0.5) | (py < -0.5) | (py > ny - 0.5)
    if edge == "skip" and outside.any():
        raise SkipGalaxy("near_edge", f"the cutout crosses the edge of {name} (edge = skip)")
    if outside.all():
        raise SkipGalaxy("off_frame", f"the cutout lies outside {name}")
    values = map_coordinates(data, [py, px], order=1, mode="nearest", prefilter=False)
    values[outside] = np.nan
    return values.reshape(size, size).astype(np.float32)
