"""Euclid's bands and their nominal properties (no heavy imports: used by the hook module).

Numbers are nominal, rounded values for the Euclid Wide Survey, good enough for augmentations
and for the synthetic generator; real cutouts carry their own values in their headers
(``PSF_FWHM``, ``SKYRMS``), which the dataset prefers.

- pixel scales: VIS 0.1″/px, NISP 0.3″/px (Euclid Collaboration: Mellier et al. 2024);
- PSF FWHM: VIS ~0.16″, NISP ~0.45–0.5″ (undersampled by NISP's 0.3″ pixels);
- background noise: per-pixel sky sigma in µJy, derived from the nominal Wide Survey depths
  (VIS 24.5 AB at 10σ in a 1.3″ aperture; NISP 24.0 AB at 5σ in a ~1.2″ aperture).
- flux unit: µJy per pixel, AB zero point 23.9 (as in Euclid MER mosaics).
"""

from __future__ import annotations

#: band name (= FITS extension name) → instrument, filter, native pixel scale (″), PSF FWHM (″),
#: nominal sky sigma per native pixel (µJy)
BANDS: dict[str, dict] = {
    "VIS": {"instrument": "VIS", "filter": "VIS", "scale": 0.1, "fwhm": 0.16, "sky": 0.005},
    "NIR_Y": {"instrument": "NISP", "filter": "Y", "scale": 0.3, "fwhm": 0.45, "sky": 0.05},
    "NIR_J": {"instrument": "NISP", "filter": "J", "scale": 0.3, "fwhm": 0.47, "sky": 0.05},
    "NIR_H": {"instrument": "NISP", "filter": "H", "scale": 0.3, "fwhm": 0.50, "sky": 0.05},
}
BAND_NAMES = tuple(BANDS)
#: target grids the bands can be resampled onto: name → pixel scale (″/px)
GRIDS = {"nisp": 0.3, "vis": 0.1}
MAGZERO = 23.9  # AB magnitude of 1 µJy
