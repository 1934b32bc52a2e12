"""The ``euclid`` dataset: a folder of multi-extension FITS cutouts → :class:`astroclr.api.Galaxies`.

One file per galaxy (``*.fits``, ``*.fits.gz``), with one image extension per band named
``VIS``, ``NIR_Y``, ``NIR_J``, ``NIR_H`` (case-insensitive), each with its own WCS. Every band
is resampled, flux-conserving, onto one north-up grid centred on the galaxy (see
:mod:`astroclr_euclid.resample`): the NISP grid (0.3″/px, default) or the VIS grid (0.1″/px).

The catalogue comes from the primary header: ``OBJID`` (else the file name) as ``id``, ``RA``
and ``DEC`` (else the centre of the first band), ``LABEL`` as ``label`` (-1 when absent), the
keywords listed in ``header_columns``; and ``LABNAMES = 'a,b'`` names the labels. A separate
catalogue file (``catalog``: FITS, CSV, ECSV... with an ``id`` column) adds or replaces
columns and restricts the galaxies to those it lists.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS, FITSFixedWarning

from astroclr.api import AstroclrError, Galaxies, Preprocessing, SurveyInfo
from astroclr_euclid.resample import resample, target_wcs
from astroclr_euclid.survey import BANDS, GRIDS

PATTERNS = ("*.fits", "*.fits.gz", "*.fit", "*.fits.fz")


class Skip(Exception):
    """One file that cannot be used (reason given)."""


def find_files(path: str | Path) -> list[Path]:
    folder = Path(path).expanduser()
    if not str(path):
        raise AstroclrError("dataset euclid: set dataset.path to a folder of Euclid cutouts "
                            "(make a synthetic one with: astroclr euclid synth --out DIR)")
    if not folder.is_dir():
        raise AstroclrError(f"dataset euclid: dataset.path {folder} is not a directory")
    files = sorted({p for pattern in PATTERNS for p in folder.glob(pattern)})
    if not files:
        raise AstroclrError(f"dataset euclid: no FITS files (*.fits, *.fits.gz) in {folder}")
    return files


def _band_hdus(hdul: fits.HDUList) -> dict[str, Any]:
    return {str(h.header.get("EXTNAME", "")).strip().upper(): h for h in hdul[1:]}


def read_cutout(path: str | Path, bands: Sequence[str] = tuple(BANDS), grid: str = "nisp",
                size: int = 32, max_invalid: float = 0.5) -> tuple[np.ndarray, fits.Header]:
    """One galaxy's bands resampled onto the common grid: float32 (C, size, size) in the
    file's flux unit per target pixel (µJy/px for Euclid), and the primary header.

    These are the "raw" cutouts ``astroclr.load(run).embed`` expects for a euclid run.
    Raises :class:`Skip` for a file that cannot be used.
    """
    cube, header, _ = _read(path, [b.upper() for b in bands], grid, size, max_invalid)
    return cube, header


def _read(path: str | Path, bands: Sequence[str], grid: str, size: int, max_invalid: float
          ) -> tuple[np.ndarray, fits.Header, dict[str, dict[str, float]]]:
    try:
        hdul = fits.open(path, memmap=False)
    except Exception as exc:  # astropy raises many kinds for a damaged file
        raise Skip(f"unreadable ({type(exc).__name__}: {exc})") from None
    with hdul, warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        primary = hdul[0].header
        found = _band_hdus(hdul)
        missing = [b for b in bands if b.upper() not in found]
        if missing:
            raise Skip(f"no extension {', '.join(missing)} (has {', '.join(found) or 'none'})")
        first = found[bands[0].upper()]
        if "RA" in primary and "DEC" in primary:
            ra, dec = float(primary["RA"]), float(primary["DEC"])
        else:
            h, w = first.data.shape
            ra, dec = (float(v) for v in WCS(first.header).wcs_pix2world([[(w - 1) / 2, (h - 1) / 2]], 0)[0])
        out_wcs = target_wcs(ra, dec, GRIDS[grid], size)
        cube = np.empty((len(bands), size, size), np.float32)
        for i, band in enumerate(bands):
            hdu = found[band.upper()]
            if hdu.data is None or hdu.data.ndim != 2:
                raise Skip(f"extension {band} holds no 2-D image")
            cube[i] = resample(hdu.data, WCS(hdu.header), out_wcs, size)
        bad = float(np.mean(~np.isfinite(cube)))
        if bad > max_invalid:
            raise Skip(f"{bad:.0%} of the {size}x{size} px grid ({size * GRIDS[grid]:g}\" on a "
                       f"side) is off the cutout or NaN (max_invalid = {max_invalid}); is "
                       f"dataset.size larger than the cutouts?")
        header = primary.copy()
        header["RA"], header["DEC"] = ra, dec
        # Per-band PSF, noise and scale the file states, for the survey metadata.
        stated = {band: {key: float(found[band.upper()].header[key])
                         for key in ("PSF_FWHM", "SKYRMS", "PXSCALE")
                         if key in found[band.upper()].header} for band in bands}
        return cube, header, stated


def load(path: str, bands: list[str], grid: str, size: int, bin: int, stretch: str,
         softening: float, normalize: str, limit: int, catalog: str,
         header_columns: list[str], max_invalid: float) -> Galaxies:
    """The ``load`` of the ``euclid`` DatasetSpec (parameters: see hooks.PARAMS)."""
    bands = [b.upper() for b in bands]
    unknown = [b for b in bands if b not in BANDS]
    if unknown or not bands or len(set(bands)) != len(bands):
        raise AstroclrError(f"dataset.bands: {bands} must be distinct Euclid bands "
                            f"({', '.join(BANDS)})")
    preprocessing = Preprocessing(bin=bin, stretch=stretch, softening=softening,
                                  normalize=normalize)
    if preprocessing.output_size(size) < 8:
        raise AstroclrError(f"dataset.size: {size} px binned by {bin} leaves fewer than 8 px")
    files = find_files(path)
    wanted = None
    extra = None
    if catalog:
        extra = _read_catalog(catalog)
        wanted = {str(v) for v in extra["id"]}
    cubes, rows, skipped = [], [], []
    headers: list[fits.Header] = []
    stated: list[dict] = []
    for f in files:
        if limit and len(cubes) >= limit:
            break
        try:
            cube, header, values = _read(f, bands, grid, size, max_invalid)
        except Skip as why:
            skipped.append(f"{f.name}: {why}")
            continue
        gid = header.get("OBJID", f.name.split(".")[0])
        if wanted is not None and str(gid) not in wanted:
            continue
        cubes.append(cube)
        headers.append(header)
        stated.append(values)
        row = {"id": gid, "file": f.name, "ra": header["RA"], "dec": header["DEC"],
               "label": int(header.get("LABEL", -1))}
        for key in header_columns:
            value = header.get(key)
            row[key.lower()] = float(value) if isinstance(value, (int, float)) else np.nan
        rows.append(row)
    if skipped:
        shown = "; ".join(skipped[:3]) + ("; ..." if len(skipped) > 3 else "")
        warnings.warn(f"dataset euclid: skipped {len(skipped)} of {len(files)} files: {shown}",
                      RuntimeWarning, stacklevel=2)
    if not cubes:
        raise AstroclrError(f"dataset euclid: no usable cutouts in {path}"
                            + (f" ({skipped[0]})" if skipped else ""))
    table = Table(rows=rows, names=list(rows[0]))
    if len({type(r["id"]) for r in rows}) > 1:
        table["id"] = [str(r["id"]) for r in rows]
    if extra is not None:
        table = _join(table, extra)
    label_names = None
    names = headers[0].get("LABNAMES")
    if names:
        label_names = tuple(n.strip() for n in str(names).split(","))
    raw = np.stack(cubes)
    images = preprocessing.apply(raw)
    survey = survey_info(bands, grid, preprocessing, stated)
    return Galaxies(images, table, survey, preprocessing=preprocessing, label_names=label_names,
                    raw_size=size)


def survey_info(bands: Sequence[str], grid: str, preprocessing: Preprocessing,
                stated: Sequence[dict] = ()) -> SurveyInfo:
    """Euclid's metadata for the model's images (grid scale × bin), preferring the values the
    files state (``stated``: per file, band → {PSF_FWHM, SKYRMS, PXSCALE}; median over files).

    ``noise`` (sky sigma in the model's units) is known only without per-image normalisation:
    µJy per model pixel for a linear stretch, its asinh-stretched value near the sky otherwise.
    """

    def value(band: str, key: str, default: float) -> float:
        values = [s[band][key] for s in stated if key in s.get(band, {})]
        return float(np.median(values)) if values else default

    fwhm = {b: value(b, "PSF_FWHM", BANDS[b]["fwhm"]) for b in bands}
    scale = GRIDS[grid]
    noise = None
    if preprocessing.normalize == "none":
        noise = {}
        for b in bands:
            native = value(b, "PXSCALE", BANDS[b]["scale"])
            # White noise under area-weighted resampling by a scale ratio r: summing r² pixels
            # (r >= 1) multiplies sigma by r; splitting a pixel into 1/r² parts (r < 1) by r²
            # (the parts are fully correlated). k×k binning multiplies it by k.
            r = scale / native
            sigma = value(b, "SKYRMS", BANDS[b]["sky"]) * (r if r >= 1 else r * r) * preprocessing.bin
            noise[b] = sigma if preprocessing.stretch == "linear" else sigma / preprocessing.softening
    return SurveyInfo.create("euclid", bands, scale * preprocessing.bin, fwhm, noise,
                             grid=grid, flux_unit="uJy/px")


def _read_catalog(path: str) -> Table:
    try:
        table = Table.read(path)
    except FileNotFoundError:
        raise AstroclrError(f"dataset.catalog: {path} does not exist") from None
    except Exception as exc:
        raise AstroclrError(f"dataset.catalog: cannot read {path}: {exc}") from None
    if "id" not in table.colnames:
        raise AstroclrError(f"dataset.catalog: {path} has no 'id' column "
                            f"(columns: {', '.join(table.colnames)})")
    return table


def _join(table: Table, extra: Table) -> Table:
    """Add (or replace) the catalogue's columns, matching ids as text."""
    index = {str(v): i for i, v in enumerate(extra["id"])}
    take = np.array([index[str(v)] for v in table["id"]], dtype=np.int64)
    for name in extra.colnames:
        if name != "id":
            table[name] = extra[name][take]
    return table
