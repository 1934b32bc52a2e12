"""The embedded SDSS / Galaxy Zoo 1 sample (see data/CREDITS.md)."""

from __future__ import annotations

from importlib.resources import files

import numpy as np
from astropy.table import Table, vstack

from astroclr.api import Galaxies, Preprocessing, SurveyInfo

SAMPLE_FILE = "gz1_sample.npz"
#: unlabelled pools that can be added to the sample for pre-training (see data/CREDITS.md)
POOL_FILES = {"gz2": "gz2_pool.npz"}
#: the composites' channel order (R, G, B = i, r, g)
SAMPLE_BANDS = ("i", "r", "g")
#: native SDSS pixels; the composite crop (212 px) was resized to 64 px
NATIVE_SCALE_ARCSEC = 0.396
RESIZE_FACTOR = 212 / 64
#: typical SDSS seeing (median FWHM per band, arcsec)
SDSS_SEEING_ARCSEC = {"u": 1.53, "g": 1.44, "r": 1.32, "i": 1.26, "z": 1.29}
LABEL_NAMES = ("early", "late")
#: Galaxy Zoo 1 classes 4 ("don't know") and 5 (merger): the sample's 97 known oddities
FLAGGED_CLASSES = (4, 5)


def sample_path():
    return files("astroclr_sdss").joinpath("data", SAMPLE_FILE)


def pool_path(name: str):
    return files("astroclr_sdss").joinpath("data", POOL_FILES[name])


def _channels(cube: np.ndarray, bands: tuple[str, ...]) -> np.ndarray:
    order = [SAMPLE_BANDS.index(b) for b in bands]
    return np.ascontiguousarray(cube[..., order].transpose(0, 3, 1, 2)).astype(np.float32)


def load_raw_sample(bands: tuple[str, ...] = ("g", "r", "i"),
                    pool: str = "") -> tuple[np.ndarray, Table]:
    """Raw 64×64 cutouts (N, C, 64, 64) float32 in the requested band order, and the catalogue.

    ``pool = "gz2"`` appends the 7,704 Galaxy Zoo 2 challenge galaxies after the 4,014 labelled
    ones, unlabelled (``label`` -1): more galaxies to pre-train on, none to evaluate on.
    """
    missing = [b for b in bands if b not in SAMPLE_BANDS]
    if missing:
        raise ValueError(f"dataset sdss (embedded sample): no band {missing[0]!r}; the sample has "
                         f"{', '.join(sorted(SAMPLE_BANDS))}")
    if pool and pool not in POOL_FILES:
        raise ValueError(f"dataset sdss (embedded sample): unknown pool {pool!r}; available: "
                         f"{', '.join(POOL_FILES)}")
    with sample_path().open("rb") as fh, np.load(fh) as data:
        raw = _channels(data["images"], bands)
        catalog = Table()
        catalog["id"] = data["objid"].astype(np.int64)
        catalog["label"] = data["early_late"].astype(np.int64)
        catalog["gz1_class"] = data["gz1_class"].astype(np.int64)
    # the real oddities the anomaly evaluator is measured on: Galaxy Zoo 1's "don't know"
    # (stars, artefacts) and mergers
    catalog["flagged"] = np.isin(catalog["gz1_class"], FLAGGED_CLASSES).astype(np.int64)
    catalog["origin"] = np.full(len(catalog), "gz1")
    if pool:
        with pool_path(pool).open("rb") as fh, np.load(fh) as data:
            extra = _channels(data["images"], bands)
            n = len(extra)
            # The challenge's ids are randomised (no SDSS objID); they cannot collide with
            # DR7 objIDs, which are all above 5e17.
            pool_cat = Table({"id": data["galaxy_id"].astype(np.int64),
                              "label": np.full(n, -1, np.int64),
                              "gz1_class": np.full(n, -1, np.int64),
                              "flagged": np.full(n, -1, np.int64),
                              "origin": np.full(n, pool)})
        raw = np.concatenate([raw, extra])
        catalog = vstack([catalog, pool_cat], join_type="exact", metadata_conflicts="silent")
    catalog["flagged"].description = ("1: Galaxy Zoo 1 \"don't know\" or merger (a known "
                                      "oddity), 0: classified, -1: unknown (pool)")
    catalog["label"].description = ("Galaxy Zoo 1 early (0) / late (1); -1 excluded or "
                                    "unlabelled (pool)")
    return raw, catalog


def sample_survey(bands: tuple[str, ...], preprocessing: Preprocessing,
                  pool: str = "") -> SurveyInfo:
    """Metadata of the sample as the model sees it (after resize and binning)."""
    scale = NATIVE_SCALE_ARCSEC * RESIZE_FACTOR * preprocessing.bin
    # The composites are 8-bit display images: their noise level is not known in flux units.
    note = "SDSS DR7 gri composites (Galaxy Zoo 1), nominal scale"
    credit = ("SDSS DR7 imaging (Abazajian et al. 2009); Galaxy Zoo 1 classifications "
              "(Lintott et al. 2008, 2011)")
    if pool == "gz2":
        note += "; unlabelled pool: Galaxy Zoo 2 challenge composites"
        credit += "; Galaxy Zoo 2 (Willett et al. 2013)"
    return SurveyInfo.create("sdss", bands, scale, {b: SDSS_SEEING_ARCSEC[b] for b in bands},
                             note=note, credit=credit)


def load_sample(bands: tuple[str, ...] = ("g", "r", "i"), preprocessing: Preprocessing | None = None,
                limit: int = 0, pool: str = "") -> Galaxies:
    """The embedded sample, preprocessed (default: 2×2 binning to 32×32, per-image [0, 1]).

    ``pool = "gz2"`` adds the unlabelled Galaxy Zoo 2 pool after the labelled galaxies.
    """
    preprocessing = preprocessing or Preprocessing()
    raw, catalog = load_raw_sample(tuple(bands), pool)
    if limit:
        raw, catalog = raw[:limit], catalog[:limit]
    images = preprocessing.apply(raw)
    return Galaxies(images, catalog, sample_survey(tuple(bands), preprocessing, pool),
                    preprocessing=preprocessing, label_names=LABEL_NAMES, raw_size=raw.shape[-1])
