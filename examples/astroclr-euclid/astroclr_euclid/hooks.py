"""astroclr hook implementations of the Euclid plugin: registered by the entry point

    [project.entry-points.astroclr]
    euclid = "astroclr_euclid.hooks"

This module stays light (no numpy, astropy, scipy or torch import): ``astroclr plugins`` and
``astroclr --help`` import it. The work is in the modules the build/load functions import.
"""

from __future__ import annotations

from typing import Iterator

from astroclr.api import AugmentationSpec, CommandSpec, DatasetSpec, Param, hookimpl
from astroclr_euclid.survey import BAND_NAMES, GRIDS

DATASET_PARAMS = (
    Param("path", str, "", "folder of multi-extension FITS cutouts, one per galaxy, with "
          "extensions VIS, NIR_Y, NIR_J, NIR_H"),
    Param("bands", list, list(BAND_NAMES), "bands, in channel order", item_type=str,
          choices=BAND_NAMES),
    Param("grid", str, "nisp", "common pixel grid: nisp (0.3\"/px; VIS summed 3x3) or vis "
          "(0.1\"/px; NISP pixels split 3x3); resampling conserves flux", choices=tuple(GRIDS)),
    Param("size", int, 32, "side of the resampled cutout, px of the grid (before bin); 32 "
          "on the nisp grid = 9.6\"", low=8, high=4096),
    Param("limit", int, 0, "use only the first N files, sorted by name (0: all)", low=0),
    Param("catalog", str, "", "optional table (FITS, CSV, ECSV) with an id column: adds its "
          "columns (e.g. label) and keeps only the galaxies it lists"),
    Param("header_columns", list, ["MAG_VIS"], "primary-header keywords copied into the "
          "catalogue (lower-cased; NaN when absent)", item_type=str),
    Param("max_invalid", float, 0.5, "skip a galaxy with more than this fraction of its "
          "resampled pixels off the cutout or NaN", low=0.0, high=1.0),
)

AUGMENT_PARAMS = (
    Param("rate", float, 2.0, "mean number of hits per image (Poisson)", low=0.0, high=100.0),
    Param("max_hits", int, 8, "at most this many hits per image", low=1, high=64),
    Param("length", list, [0.0, 6.0], "track length range [low, high], px", low=0.0, length=2),
    Param("amplitude", list, [0.2, 1.0], "hit brightness range, fraction of the band's peak "
          "above sky", low=0.0, length=2),
    Param("width", float, 0.7, "half-width of the track profile, px", low=0.1, high=5.0),
    Param("bands", list, ["VIS"], "bands that get hits (VIS: CCD; NISP rejects them up the "
          "ramp)", item_type=str),
)


#: asinh of fluxes in uJy (softening 0.1 uJy per grid pixel), no binning after resampling;
#: the core declares bin, stretch, softening and normalize with these defaults
PREPROCESSING = {"bin": 1, "stretch": "asinh", "softening": 0.1, "normalize": "minmax"}
#: the built-in psf augmentation's default seeing (1.0-2.5") is ground-based: a space
#: telescope's images are degraded to at most ~1"
SUGGESTED = {"psf": {"fwhm": [0.5, 1.0]}}


@hookimpl
def astroclr_datasets() -> Iterator[DatasetSpec]:
    yield DatasetSpec("euclid", "Euclid VIS + NISP Y, J, H multi-extension FITS cutouts, "
                      "resampled flux-conserving onto one grid", "astroclr_euclid.dataset:load",
                      params=DATASET_PARAMS, preprocessing=PREPROCESSING, suggested=SUGGESTED)


@hookimpl
def astroclr_augmentations() -> Iterator[AugmentationSpec]:
    yield AugmentationSpec("cosmic_rays", "residual cosmic-ray tracks in VIS (sharp, unblurred "
                           "streaks)", "astroclr_euclid.cosmic:build_cosmic_rays",
                           params=AUGMENT_PARAMS, default_p=0.3)


@hookimpl
def astroclr_commands() -> Iterator[CommandSpec]:
    yield CommandSpec("euclid", "Euclid tools: synthetic cutouts, cutout inspection",
                      "astroclr_euclid.cli:make_app")
