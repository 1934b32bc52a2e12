"""The embedded SDSS / Galaxy Zoo 1 sample (see data/CREDITS.md)."""

from __future__ import annotations

from importlib.resources import files

import numpy as np
from astropy.table import Table

from astroclr.data import Galaxies, SurveyInfo
from astroclr.preprocess import Preprocessing

SAMPLE_FILE = "gz1_sample.npz"
#: the composites' channel order (R, G, B = i, r, g)
SAMPLE_BANDS = ("i", "r", "g")
#: native SDSS pixels; the composite crop (212 px) was resized to 64 px
NATIVE_SCALE_ARCSEC = 0.396
RESIZE_FACTOR = 212 / 64
#: typical SDSS seeing (median FWHM per band, arcsec)
SDSS_SEEING_ARCSEC = {"u": 1.53, "g": 1.44, "r": 1.32, "i": 1.26, "z": 1.29}
LABEL_NAMES = ("early", "late")


def sample_path():
    return files("astroclr_sdss").joinpath("data", SAMPLE_FILE)


def load_raw_sample(bands: tuple[str, ...] = ("g", "r", "i")) -> tuple[np.ndarray, Table]:
    """Raw 64×64 cutouts (N, C, 64, 64) float32 in the requested band order, and the catalogue."""
    missing = [b for b in bands if b not in SAMPLE_BANDS]
    if missing:
        raise ValueError(f"dataset sdss (embedded sample): no band {missing[0]!r}; the sample has "
                         f"{', '.join(sorted(SAMPLE_BANDS))}")
    with sample_path().open("rb") as fh, np.load(fh) as data:
        cube = data["images"]
        order = [SAMPLE_BANDS.index(b) for b in bands]
        raw = np.ascontiguousarray(cube[..., order].transpose(0, 3, 1, 2)).astype(np.float32)
        catalog = Table()
        catalog["id"] = data["objid"].astype(np.int64)
        catalog["label"] = data["early_late"].astype(np.int64)
        catalog["gz1_class"] = data["gz1_class"].astype(np.int64)
    catalog["label"].description = "Galaxy Zoo 1 early (0) / late (1); -1 excluded"
    return raw, catalog


def sample_survey(bands: tuple[str, ...], preprocessing: Preprocessing) -> SurveyInfo:
    """Metadata of the sample as the model sees it (after resize and binning)."""
    scale = NATIVE_SCALE_ARCSEC * RESIZE_FACTOR * preprocessing.bin
    # The composites are 8-bit display images: their noise level is not known in flux units.
    return SurveyInfo.create("sdss", bands, scale, {b: SDSS_SEEING_ARCSEC[b] for b in bands},
                             note="SDSS DR7 gri composites (Galaxy Zoo 1), nominal scale",
                             credit="SDSS DR7 imaging (Abazajian et al. 2009); Galaxy Zoo 1 "
                                    "classifications (Lintott et al. 2008, 2011)")


def load_sample(bands: tuple[str, ...] = ("g", "r", "i"), preprocessing: Preprocessing | None = None,
                limit: int = 0) -> Galaxies:
    """The embedded sample, preprocessed (default: 2×2 binning to 32×32, per-image [0, 1])."""
    preprocessing = preprocessing or Preprocessing()
    raw, catalog = load_raw_sample(tuple(bands))
    if limit:
        raw, catalog = raw[:limit], catalog[:limit]
    images = preprocessing.apply(raw)
    return Galaxies(images, catalog, sample_survey(tuple(bands), preprocessing),
                    preprocessing=preprocessing, label_names=LABEL_NAMES, raw_size=raw.shape[-1])
