"""The data model: galaxy images with their bands, survey metadata and catalogue.

Nothing in astroclr assumes three channels or RGB: the band names and the survey's metadata
travel with the images, and augmentations, backbones and evaluators read them from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
from astropy import units as u
from astropy.table import Table

from astroclr.data.preprocess import Preprocessing
from astroclr.plugin.specs import AstroclrError

UNLABELLED = -1


def _arcsec(value: Any, what: str) -> u.Quantity:
    q = value if isinstance(value, u.Quantity) else float(value) * u.arcsec
    try:
        q = q.to(u.arcsec)
    except u.UnitConversionError as exc:
        raise AstroclrError(f"{what} must be an angle (arcsec), got {value!r}") from exc
    if not np.isfinite(q.value) or q.value <= 0:
        raise AstroclrError(f"{what} must be a positive angle, got {value!r}")
    return q


@dataclass(frozen=True)
class SurveyInfo:
    """What a survey's images are: bands, pixel scale, seeing and noise.

    ``pixel_scale`` is the angular size of one pixel of the images as the model sees them
    (after binning), ``psf_fwhm`` the typical seeing FWHM per band, both astropy quantities in
    arcsec. ``noise`` is the typical background sigma per band in the units of the model's
    images, where known (``None`` otherwise).
    """

    name: str
    bands: tuple[str, ...]
    pixel_scale: u.Quantity
    psf_fwhm: Mapping[str, u.Quantity]
    noise: Mapping[str, float] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        name: str,
        bands: Sequence[str],
        pixel_scale: float | u.Quantity,
        psf_fwhm: Mapping[str, float | u.Quantity],
        noise: Mapping[str, float] | None = None,
        **extra: Any,
    ) -> "SurveyInfo":
        """Build and validate; plain floats are taken as arcsec."""
        bands = tuple(bands)
        if not bands or len(set(bands)) != len(bands):
            raise AstroclrError(f"survey {name!r}: bands must be unique and non-empty, got {bands}")
        missing = [b for b in bands if b not in psf_fwhm]
        if missing:
            raise AstroclrError(f"survey {name!r}: no PSF FWHM for band(s) {', '.join(missing)}")
        fwhm = {b: _arcsec(psf_fwhm[b], f"survey {name!r} PSF FWHM of band {b}") for b in bands}
        if noise is not None:
            unknown = sorted(set(noise) - set(bands))
            if unknown:
                raise AstroclrError(f"survey {name!r}: noise given for unknown band(s) {unknown}")
            noise = {b: float(v) for b, v in noise.items()}
        return cls(name, bands, _arcsec(pixel_scale, f"survey {name!r} pixel scale"), fwhm, noise,
                   dict(extra))

    def psf_fwhm_pixels(self) -> np.ndarray:
        """Seeing FWHM per band, in pixels of the model's images."""
        scale = self.pixel_scale.to_value(u.arcsec)
        return np.array([self.psf_fwhm[b].to_value(u.arcsec) / scale for b in self.bands])

    def to_dict(self) -> dict[str, Any]:
        """A plain, TOML/JSON-friendly description (units in the key names)."""
        out: dict[str, Any] = {
            "name": self.name,
            "bands": list(self.bands),
            "pixel_scale_arcsec": float(self.pixel_scale.to_value(u.arcsec)),
            "psf_fwhm_arcsec": {b: float(q.to_value(u.arcsec)) for b, q in self.psf_fwhm.items()},
        }
        if self.noise is not None:
            out["noise"] = dict(self.noise)
        # Plain-text extras (a data credit, a note) travel into run.json and the report.
        out.update({k: v for k, v in self.extra.items() if isinstance(v, str)})
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SurveyInfo":
        known = {"name", "bands", "pixel_scale_arcsec", "psf_fwhm_arcsec", "noise"}
        return cls.create(d["name"], d["bands"], d["pixel_scale_arcsec"], d["psf_fwhm_arcsec"],
                          d.get("noise"), **{k: v for k, v in d.items() if k not in known})


@dataclass
class Galaxies:
    """Preprocessed galaxy images and their catalogue.

    - ``images``: float32 (N, C, H, W); may be a ``numpy.memmap`` read lazily in batches;
    - ``catalog``: astropy Table, one row per image, with an ``id`` column and optionally
      ``label`` (int, ``-1`` = unlabelled), ``ra``, ``dec``, ``z`` and anything else;
    - ``survey``: bands and metadata; ``len(survey.bands) == C``;
    - ``preprocessing``: how raw cutouts became ``images`` (repeated by ``embed``);
    - ``label_names``: display names of label values 0, 1, ….
    """

    images: np.ndarray
    catalog: Table
    survey: SurveyInfo
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    label_names: tuple[str, ...] | None = None
    raw_size: int | None = None

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise AstroclrError(f"dataset {self.survey.name!r}: images must be (N, C, H, W), "
                                f"got shape {self.images.shape}")
        n, c = self.images.shape[:2]
        if n == 0:
            raise AstroclrError(f"dataset {self.survey.name!r} has no images")
        if self.images.dtype != np.float32:
            raise AstroclrError(f"dataset {self.survey.name!r}: images must be float32, "
                                f"got {self.images.dtype}")
        if c != len(self.survey.bands):
            raise AstroclrError(f"dataset {self.survey.name!r}: images have {c} bands but the "
                                f"survey declares {len(self.survey.bands)} ({', '.join(self.survey.bands)})")
        if len(self.catalog) != n:
            raise AstroclrError(f"dataset {self.survey.name!r}: {n} images but {len(self.catalog)} "
                                f"catalogue rows")
        if "id" not in self.catalog.colnames:
            raise AstroclrError(f"dataset {self.survey.name!r}: catalogue has no 'id' column")
        if len(np.unique(np.asarray(self.catalog["id"]))) != n:
            raise AstroclrError(f"dataset {self.survey.name!r}: catalogue ids are not unique")

    @classmethod
    def from_arrays(
        cls,
        images: np.ndarray,
        survey: SurveyInfo,
        ids: Sequence[Any] | None = None,
        labels: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> "Galaxies":
        """Convenience constructor from an image cube and optional ids and labels."""
        images = np.asarray(images, dtype=np.float32)
        catalog = Table()
        catalog["id"] = np.arange(len(images)) if ids is None else np.asarray(ids)
        if labels is not None:
            catalog["label"] = np.asarray(labels, dtype=np.int64)
        return cls(images, catalog, survey, **kwargs)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def bands(self) -> tuple[str, ...]:
        return self.survey.bands

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    @property
    def ids(self) -> np.ndarray:
        """The ``id`` column; string ids as str (FITS tables read them back as bytes)."""
        ids = np.asarray(self.catalog["id"])
        return ids.astype(str) if ids.dtype.kind == "S" else ids

    def labels(self, column: str = "label") -> np.ndarray:
        """Integer labels with ``-1`` for unlabelled galaxies; a missing column is an error."""
        if column not in self.catalog.colnames:
            cols = ", ".join(self.catalog.colnames)
            raise AstroclrError(f"dataset {self.survey.name!r} has no label column {column!r}; "
                                f"columns: {cols}")
        col = self.catalog[column]
        values = np.asarray(col.filled(UNLABELLED) if hasattr(col, "filled") else col)
        if not np.issubdtype(values.dtype, np.integer):
            raise AstroclrError(f"label column {column!r} must hold integers, got {values.dtype}")
        return values.astype(np.int64)

    def values(self, column: str) -> np.ndarray:
        """A continuous target (float64) with NaN where it is missing; a missing or
        non-numeric column is an error."""
        if column not in self.catalog.colnames:
            cols = ", ".join(self.catalog.colnames)
            raise AstroclrError(f"dataset {self.survey.name!r} has no column {column!r}; "
                                f"columns: {cols}")
        col = self.catalog[column]
        if col.dtype.kind not in "iuf":
            raise AstroclrError(f"column {column!r} must hold numbers, got {col.dtype}")
        values = col.filled(np.nan) if hasattr(col, "filled") and col.dtype.kind == "f" else col
        return np.asarray(values, dtype=np.float64)

    def batches(self, batch_size: int) -> Iterator[tuple[int, np.ndarray]]:
        """Iterate over (start, images) in order, reading a memory-mapped cube one batch at a time."""
        for start in range(0, len(self), batch_size):
            yield start, np.ascontiguousarray(self.images[start : start + batch_size])
