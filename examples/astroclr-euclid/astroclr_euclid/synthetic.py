"""Euclid-like synthetic cutouts: one multi-extension FITS file per galaxy, to try the plugin.

Each file ``EUC_<id>.fits`` holds

- a primary HDU (no data) with ``OBJID``, ``RA``, ``DEC``, ``LABEL`` (0 bulge-dominated,
  1 disc), ``LABNAMES``, ``MAG_VIS`` and ``TELESCOP = 'EUCLID'``;
- four image extensions ``VIS``, ``NIR_Y``, ``NIR_J``, ``NIR_H``: VIS at 0.1″/px, NISP at
  0.3″/px, each with its own north-up TAN WCS (the NISP grid is offset from VIS by a random
  sub-pixel shift, as real pointings are), in µJy per pixel (``BUNIT``, ``MAGZERO = 23.9``),
  with ``PSF_FWHM`` (″) and ``SKYRMS`` (µJy/px) keywords.

Galaxies are Sérsic profiles: class 0 "bulge" (n = 4, round, red: brighter in H than in VIS),
class 1 "disc" (n = 1, inclined, bluer, with two faint clumps). Each is rendered on each band's
own pixel grid through the WCS (3×3 sub-pixel sampling), convolved with a Gaussian PSF of the
band's FWHM, and given Gaussian sky noise of the band's nominal sigma. Not a simulation of
Euclid's optics: a realistic-looking test input with the right structure (bands, grids, WCS,
units, headers).

Use from Python (``write_sample(out_dir, n=64)``) or the command line
(``astroclr euclid synth --out DIR -n 64``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from astroclr_euclid.survey import BANDS, MAGZERO

LABEL_NAMES = ("bulge", "disc")
#: Euclid Deep Field North, roughly
FIELD_CENTRE = (269.73, 66.02)
#: colours relative to VIS (AB mag in band − VIS mag), per class
COLOURS = {0: {"NIR_Y": -0.5, "NIR_J": -0.7, "NIR_H": -0.9},
           1: {"NIR_Y": -0.15, "NIR_J": -0.25, "NIR_H": -0.3}}


def band_wcs(ra: float, dec: float, scale: float, size: int, offset_px: tuple[float, float]
             ) -> WCS:
    """A north-up TAN WCS header for a cutout centred near (ra, dec)."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [(size + 1) / 2.0 + offset_px[0], (size + 1) / 2.0 + offset_px[1]]
    w.wcs.cd = np.array([[-scale / 3600.0, 0.0], [0.0, scale / 3600.0]])
    w.wcs.cunit = ["deg", "deg"]
    w.wcs.radesys = "ICRS"
    w.wcs.equinox = 2000.0
    return w


def _sersic_b(n: float) -> float:
    return 2.0 * n - 1.0 / 3.0 + 0.009876 / n


def _render(w: WCS, size: int, gal: dict, band: str, rng: np.random.Generator) -> np.ndarray:
    """The galaxy in ``band`` on the grid ``w`` (µJy per pixel), with PSF and noise."""
    from scipy.ndimage import gaussian_filter

    info = BANDS[band]
    sub = 3
    grid = (np.arange(size * sub) + 0.5) / sub - 0.5                    # sub-pixel centres
    px, py = np.meshgrid(grid, grid)
    ra, dec = w.wcs_pix2world(px, py, 0)
    # Offsets from the galaxy centre in arcsec (east = +x, north = +y).
    dx = (ra - gal["ra"]) * np.cos(np.deg2rad(gal["dec"])) * 3600.0
    dy = (dec - gal["dec"]) * 3600.0
    c, s = np.cos(gal["pa"]), np.sin(gal["pa"])
    u = dx * c + dy * s
    v = (-dx * s + dy * c) / gal["q"]
    r = np.hypot(u, v)
    n = gal["n"]
    profile = np.exp(-_sersic_b(n) * ((r / gal["re"]) ** (1.0 / n) - 1.0))
    for cx, cy, amp in gal["clumps"]:
        profile += amp * np.exp(-((dx - cx) ** 2 + (dy - cy) ** 2) / (2 * 0.12**2))
    image = profile.reshape(size, sub, size, sub).mean(axis=(1, 3))
    mag = gal["mag_vis"] + COLOURS[gal["label"]].get(band, 0.0)
    flux = 10 ** (-0.4 * (mag - MAGZERO))                                # µJy
    total = image.sum()
    image = image * (flux / total) if total > 0 else image
    sigma_px = info["fwhm"] / 2.3548 / info["scale"]
    image = gaussian_filter(image, sigma_px, mode="constant")
    image += rng.normal(0.0, info["sky"], image.shape)
    return image.astype(np.float32)


def make_galaxy(rng: np.random.Generator, index: int) -> dict:
    """Random parameters of one synthetic galaxy."""
    label = int(rng.integers(0, 2))
    ra0, dec0 = FIELD_CENTRE
    gal = {
        "id": 2_690_000_000 + index,
        "label": label,
        "ra": ra0 + rng.uniform(-0.3, 0.3) / np.cos(np.deg2rad(dec0)),
        "dec": dec0 + rng.uniform(-0.3, 0.3),
        "mag_vis": rng.uniform(19.0, 22.0),
        "pa": rng.uniform(0, np.pi),
        "clumps": [],
    }
    if label == 0:
        gal.update(n=4.0, re=rng.uniform(0.25, 0.7), q=rng.uniform(0.7, 1.0))
    else:
        gal.update(n=1.0, re=rng.uniform(0.5, 1.3), q=rng.uniform(0.25, 0.9))
        for _ in range(2):
            rad, ang = rng.uniform(0.3, 1.0) * gal["re"], rng.uniform(0, 2 * np.pi)
            gal["clumps"].append((rad * np.cos(ang), rad * np.sin(ang), rng.uniform(0.1, 0.3)))
    return gal


def write_galaxy(path: Path, gal: dict, field_arcsec: float, rng: np.random.Generator) -> Path:
    """Write one galaxy as a multi-extension FITS cutout."""
    primary = fits.PrimaryHDU()
    h = primary.header
    h["TELESCOP"] = "EUCLID"
    h["OBJID"] = (gal["id"], "object identifier")
    h["RA"] = (gal["ra"], "[deg] galaxy right ascension (ICRS)")
    h["DEC"] = (gal["dec"], "[deg] galaxy declination (ICRS)")
    h["LABEL"] = (gal["label"], "morphology class (synthetic truth)")
    h["LABNAMES"] = (",".join(LABEL_NAMES), "names of LABEL values 0, 1, ...")
    h["MAG_VIS"] = (round(gal["mag_vis"], 3), "[AB mag] total VIS magnitude")
    h["COMMENT"] = "Synthetic Euclid-like cutout written by astroclr_euclid.synthetic"
    hdus = [primary]
    # The cutout is centred near the galaxy; the galaxy is up to 0.15" off centre.
    ra_c = gal["ra"] + rng.uniform(-0.15, 0.15) / 3600.0 / np.cos(np.deg2rad(gal["dec"]))
    dec_c = gal["dec"] + rng.uniform(-0.15, 0.15) / 3600.0
    nisp_shift = tuple(rng.uniform(-0.5, 0.5, 2))
    for band, info in BANDS.items():
        size = int(round(field_arcsec / info["scale"]))
        shift = (0.0, 0.0) if info["instrument"] == "VIS" else nisp_shift
        w = band_wcs(ra_c, dec_c, info["scale"], size, shift)
        data = _render(w, size, gal, band, rng)
        hdu = fits.ImageHDU(data, header=w.to_header(), name=band)
        hh = hdu.header
        hh["TELESCOP"] = "EUCLID"
        hh["INSTRUME"] = info["instrument"]
        hh["FILTER"] = info["filter"]
        hh["BUNIT"] = "uJy"
        hh["MAGZERO"] = (MAGZERO, "AB magnitude of 1 BUNIT")
        hh["PXSCALE"] = (info["scale"], "[arcsec/px] pixel scale")
        hh["PSF_FWHM"] = (info["fwhm"], "[arcsec] PSF FWHM")
        hh["SKYRMS"] = (info["sky"], "[uJy/px] background noise sigma")
        hdus.append(hdu)
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


def write_sample(out_dir: str | Path, n: int = 64, field_arcsec: float = 9.6, seed: int = 0
                 ) -> list[Path]:
    """Write ``n`` synthetic Euclid-like MEF cutouts of ``field_arcsec`` on a side to ``out_dir``.

    The default 9.6″ field is 96 VIS pixels and 32 NISP pixels. Returns the file paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        gal = make_galaxy(rng, i)
        paths.append(write_galaxy(out / f"EUC_{gal['id']}.fits", gal, field_arcsec, rng))
    return paths


if __name__ == "__main__":  # python -m astroclr_euclid.synthetic OUT_DIR [N]
    import sys

    target = sys.argv[1] if len(sys.argv) > 1 else "euclid_sample"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    print(f"wrote {len(write_sample(target, count))} cutouts to {target}")
