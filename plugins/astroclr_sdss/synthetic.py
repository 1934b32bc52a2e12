"""Synthetic SDSS-like files for tests and benchmarks: frames and cutouts with real SDSS header
keywords and a TAN WCS, and galaxies (2-D Gaussians) at known sky positions.

Nothing here pretends to be real data: the headers carry ``ORIGIN = 'astroclr synthetic'``.
"""

from __future__ import annotations

import bz2
import io
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from astroclr_sdss.frames import frame_name

SCALE_DEG = 0.396 / 3600.0
#: per-band pointing offsets (pixels) and rotations (deg): SDSS bands of one field are not
#: pixel-aligned, which the frames reader has to resample away
BAND_OFFSETS = {"u": (-3.2, 5.1, 0.02), "g": (1.7, -2.4, -0.01), "r": (0.0, 0.0, 0.0),
                "i": (-2.6, 1.3, 0.015), "z": (4.1, -0.7, -0.02)}


def sdss_header(band: str, run: int, camcol: int, field: int, ra: float, dec: float,
                shape: tuple[int, int], offset: tuple[float, float, float] = (0, 0, 0)) -> fits.Header:
    """A frame header with the keywords of real SDSS frames and a TAN WCS whose reference pixel
    (the frame centre, shifted by ``offset`` px) points at (``ra``, ``dec``)."""
    ny, nx = shape
    dx, dy, rot = offset
    theta = np.deg2rad(rot)
    # Real frames run along the scan: columns ~ Dec, rows ~ RA (the CD matrix is ~ a 90° turn).
    cd = SCALE_DEG * np.array([[np.sin(theta), np.cos(theta)], [np.cos(theta), -np.sin(theta)]])
    h = fits.Header()
    for key, value in [
        ("TAI", 4.5e9), ("RA", ra), ("DEC", dec), ("SPA", 90.0), ("IPA", 180.0),
        ("DATE-OBS", "2004-05-15"), ("TAIHMS", "04:12:34.56"), ("ORIGIN", "astroclr synthetic"),
        ("TELESCOP", "2.5m"), ("TIMESYS", "TAI"), ("RUN", run), ("FRAME", field),
        ("CCDLOC", 10 * camcol + "ugriz".index(band)), ("STRIPE", 10), ("STRIP", "N"),
        ("FLAVOR", "science"), ("SYS_SCN", "mean"), ("EQNX_SCN", 2000.0), ("EQUINOX", 2000.0),
        ("SYSTEM", "FK5"), ("SRVYMODE", "NONE"), ("OBJECT", "synthetic"), ("EXPTIME", 53.907456),
        ("FILTER", band), ("CAMCOL", camcol), ("FIELD", field), ("BUNIT", "nanomaggy"),
        ("NMGY", 0.0047), ("RERUN", "301"), ("RADESYS", "ICRS"),
        ("CTYPE1", "RA---TAN"), ("CTYPE2", "DEC--TAN"), ("CUNIT1", "deg"), ("CUNIT2", "deg"),
        ("CRPIX1", (nx + 1) / 2 + dx), ("CRPIX2", (ny + 1) / 2 + dy),
        ("CRVAL1", ra), ("CRVAL2", dec),
        ("CD1_1", cd[0, 0]), ("CD1_2", cd[0, 1]), ("CD2_1", cd[1, 0]), ("CD2_2", cd[1, 1]),
    ]:
        h[key] = value
    return h


def gaussian_image(shape: tuple[int, int], xs: Sequence[float], ys: Sequence[float],
                   flux: Sequence[float], sigma: float = 2.0, sky_noise: float = 0.0,
                   rng: np.random.Generator | None = None) -> np.ndarray:
    """Sum of circular Gaussians (total flux ``flux``) at pixel positions, plus white noise."""
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    img = np.zeros(shape, np.float64)
    for x, y, f in zip(xs, ys, flux):
        r2 = (xx - x) ** 2 + (yy - y) ** 2
        img += f / (2 * np.pi * sigma**2) * np.exp(-r2 / (2 * sigma**2))
    if sky_noise:
        img += (rng or np.random.default_rng(0)).normal(0, sky_noise, shape)
    return img.astype(np.float32)


def write_frames(folder: Path, ra: Sequence[float], dec: Sequence[float], bands=("g", "r", "i"),
                 run: int = 3918, camcol: int = 3, field: int = 213, centre=None,
                 shape: tuple[int, int] = (300, 400), compress: str = "bz2",
                 flux: float = 1000.0) -> dict[str, Path]:
    """Write one frame per band holding a galaxy at each (ra, dec); returns {band: path}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ra0, dec0 = centre if centre is not None else (float(np.mean(ra)), float(np.mean(dec)))
    paths = {}
    for band in bands:
        header = sdss_header(band, run, camcol, field, ra0, dec0, shape, BAND_OFFSETS[band])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            x, y = WCS(header).world_to_pixel_values(np.asarray(ra), np.asarray(dec))
        data = gaussian_image(shape, x, y, [flux] * len(x), sky_noise=0.01)
        hdul = fits.HDUList([fits.PrimaryHDU(data, header),
                             fits.ImageHDU(np.full(shape[1], 0.0047, np.float32), name="CALIB")])
        name = frame_name(band, run, camcol, field)
        path = folder / name
        if compress == "bz2":
            buf = io.BytesIO()
            hdul.writeto(buf)
            path = folder / (name + ".bz2")
            path.write_bytes(bz2.compress(buf.getvalue(), 1))
        else:
            hdul.writeto(path, overwrite=True)
        paths[band] = path
    return paths


def cutout_header(band: str, ra: float, dec: float, size: int) -> fits.Header:
    """A cutout header: the frame keywords, WCS centred on (ra, dec)."""
    return sdss_header(band, 3918, 3, 213, ra, dec, (size, size))
