"""Prepared datasets: preprocessed images on disk, memory-mapped, so 400k galaxies train in bounded RAM.

A prepared dataset is a directory::

    images.npy     float32 (N, C, H, W), ``np.lib.format`` so ``np.load(mmap_mode="r")`` maps it
    catalog.fits   astropy Table, one row per image, with an ``id`` column
    skipped.csv    every candidate galaxy that was not kept: id, catalogue row, reason, detail
    meta.json      survey metadata, preprocessing, label names, counts, skip report

``meta.json`` is written last: a directory without it is not a prepared dataset. Writing
happens in ``<out_dir>/.partial``; each finished chunk of galaxies is recorded there (a small
JSON file written after its images were flushed), so an interrupted prepare resumes where it
stopped, and nothing in ``out_dir`` looks complete before it is.

Datasets take part through a :class:`PrepareSource`: a picklable object that lists the
candidate galaxies (its ``catalog``) and turns a slice of them into preprocessed images. Worker
processes each receive the source once and process chunks of rows in parallel; the parent
alone writes to disk (:mod:`astroclr.data.prepare`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Optional, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from astroclr.plugin.specs import AstroclrError

FORMAT = "astroclr-prepared"
FORMAT_VERSION = 1
PARTIAL = ".partial"
#: the files of a finished dataset, meta.json last (it marks completeness)
FINAL_FILES = ("images.npy", "catalog.fits", "skipped.csv", "meta.json")
DEFAULT_CHUNK = 1024


# -- what a dataset provides --------------------------------------------------------------------
@dataclass
class Skip:
    """A candidate galaxy that was not kept: catalogue row, a short reason key and a detail."""

    row: int
    reason: str
    detail: str = ""
    #: the galaxy's id as text (the row alone is ambiguous for rows dropped from the catalogue)
    id: str = ""


class SkipGalaxy(Exception):
    """Raised by a reader for one galaxy that cannot be used; becomes a counted :class:`Skip`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class ChunkResult:
    """What ``PrepareSource.read_chunk`` returns for catalogue rows [start, stop)."""

    images: np.ndarray  # float32 (K, C, H, W), the kept rows in order
    kept: np.ndarray  # int64 (K,), catalogue row numbers of the kept images
    skipped: list[Skip] = field(default_factory=list)
    #: per-kept-galaxy float columns added to the catalogue (e.g. fraction of filled pixels)
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    #: non-finite pixels replaced during preprocessing
    filled: int = 0


class PrepareSource:
    """Base of the objects datasets hand to :func:`write_prepared`.

    Subclasses set the attributes in ``__init__`` and implement :meth:`read_chunk`; they must
    be picklable (worker processes receive a copy).
    """

    #: one row per candidate galaxy, with a unique ``id`` column
    catalog: Any
    #: :class:`astroclr.data.galaxies.SurveyInfo` of the images as the model sees them
    survey: Any
    #: :class:`astroclr.data.preprocess.Preprocessing` applied to the raw cutouts
    preprocessing: Any
    #: (C, H, W) of one preprocessed image
    image_shape: tuple[int, int, int]
    label_names: tuple[str, ...] | None = None
    raw_size: int | None = None
    #: candidates dropped before any image was read (e.g. by a redshift cut), for the report
    pre_skipped: list[Skip] = []
    #: JSON-able description of the inputs and parameters; resuming requires it unchanged
    fingerprint: dict = {}

    def read_chunk(self, start: int, stop: int) -> ChunkResult:  # pragma: no cover - abstract
        raise NotImplementedError


class GalaxiesSource(PrepareSource):
    """An in-memory :class:`astroclr.data.galaxies.Galaxies` (any dataset without its own ``prepare``)."""

    def __init__(self, galaxies: Any, fingerprint: Mapping[str, Any]) -> None:
        self.galaxies = galaxies
        self.catalog = galaxies.catalog
        self.survey = galaxies.survey
        self.preprocessing = galaxies.preprocessing
        self.image_shape = tuple(galaxies.images.shape[1:])
        self.label_names = galaxies.label_names
        self.raw_size = galaxies.raw_size
        self.pre_skipped = []
        self.fingerprint = dict(fingerprint)

    def read_chunk(self, start: int, stop: int) -> ChunkResult:
        images = np.asarray(self.galaxies.images[start:stop], dtype=np.float32)
        return ChunkResult(images, np.arange(start, stop, dtype=np.int64))


# -- reading ------------------------------------------------------------------------------------
def open_prepared(path: str | Path) -> Any:
    """Open a prepared dataset as :class:`astroclr.data.galaxies.Galaxies`, images memory-mapped read-only."""
    from astropy.table import Table

    from astroclr.data.galaxies import Galaxies, SurveyInfo
    from astroclr.data.preprocess import Preprocessing

    path = Path(path)
    if not path.is_dir():
        raise AstroclrError(f"prepared dataset {path}: no such directory")
    meta = read_meta(path)
    images_path, catalog_path = path / "images.npy", path / "catalog.fits"
    for p in (images_path, catalog_path):
        if not p.exists():
            raise AstroclrError(f"prepared dataset {path} is incomplete: {p.name} is missing")
    try:
        images = np.load(images_path, mmap_mode="r")
    except (ValueError, OSError) as exc:
        raise AstroclrError(f"prepared dataset {path}: {images_path.name} is unreadable ({exc})") from exc
    expected = (meta["count"], *meta["shape"])
    if images.shape != tuple(expected) or images.dtype != np.float32:
        raise AstroclrError(f"prepared dataset {path}: images.npy is {images.dtype} {images.shape}, "
                            f"meta.json says float32 {tuple(expected)}: the directory is corrupt")
    try:
        catalog = Table.read(catalog_path)
    except Exception as exc:  # astropy raises many kinds for a damaged file
        raise AstroclrError(f"prepared dataset {path}: catalog.fits is unreadable ({exc})") from exc
    survey = SurveyInfo.from_dict(meta["survey"])
    names = meta.get("label_names")
    return Galaxies(images, catalog, survey, preprocessing=Preprocessing(**meta["preprocessing"]),
                    label_names=tuple(names) if names else None, raw_size=meta.get("raw_size"))


def release_pages(images: Any) -> None:
    """Unmap the pages of a memory-mapped image cube that this process has touched.

    Pages read from a memory map count in the process's RSS (as file-backed, reclaimable
    memory) until the kernel needs them; a long sequential or shuffled pass over 400k galaxies
    thus shows an RSS up to the file size. Calling this every few hundred batches keeps the RSS
    itself bounded; the data stay in the page cache, so nothing is re-read from disk needlessly.
    """
    import mmap

    base = getattr(images, "_mmap", None)
    if base is None or not hasattr(base, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
        return
    base.madvise(mmap.MADV_DONTNEED)


def is_prepared(path: str | Path) -> bool:
    """Whether ``path`` holds a complete prepared dataset (recognisable by its meta.json)."""
    return (Path(path) / "meta.json").is_file()


class SurveyDoc(BaseModel):
    """The survey table of a prepared set's ``meta.json``."""

    model_config = ConfigDict(strict=True, extra="allow")
    name: str = Field(min_length=1)
    bands: list[str] = Field(min_length=1)
    pixel_scale_arcsec: float = Field(gt=0)
    psf_fwhm_arcsec: dict[str, float]
    noise: Optional[dict[str, Any]] = None


class PreparedMeta(BaseModel):
    """The schema of a prepared set's ``meta.json`` (strict types; more fields allowed)."""

    model_config = ConfigDict(strict=True, extra="allow")
    format: Literal["astroclr-prepared"]
    survey: SurveyDoc
    preprocessing: dict[str, Any]
    count: int = Field(ge=0)
    shape: list[int] = Field(min_length=3, max_length=3)
    label_names: Optional[list[str]] = None
    raw_size: Optional[int] = Field(default=None, gt=0)

    @field_validator("shape")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if min(value) < 1:
            raise ValueError(f"image shape {value} has a side below 1")
        return value

    @field_validator("preprocessing")
    @classmethod
    def _preprocessing(cls, value: dict[str, Any]) -> dict[str, Any]:
        from astroclr.data.preprocess import Preprocessing

        try:
            Preprocessing(**value)
        except (TypeError, AstroclrError) as exc:
            raise ValueError(" ".join(str(exc).split())) from None
        return value


def read_meta(path: Path) -> dict[str, Any]:
    """``meta.json`` of a prepared directory, checked against its schema: a field missing, of
    the wrong type, ``{}`` or a list is a one-line error naming the file and the field."""
    from astroclr.schema import read_document

    meta_path = path / "meta.json"
    if not meta_path.exists():
        hint = " (an interrupted prepare: rerun it to resume)" if (path / PARTIAL).exists() else ""
        raise AstroclrError(f"{path} is not a complete prepared dataset: no meta.json{hint}")
    return read_document(PreparedMeta, meta_path)[1]


def write_skipped_csv(path: Path, skips: Sequence[Skip]) -> None:
    """Every skipped galaxy as a CSV row (id, row, reason, detail), written atomically."""
    from astroclr.files import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "row", "reason", "detail"])
        for s in skips:
            writer.writerow([s.id, s.row, s.reason, s.detail])


def reason_counts(skips: Sequence[Skip]) -> dict[str, int]:
    """How many galaxies were skipped for each reason, sorted by reason."""
    counts: dict[str, int] = {}
    for s in skips:
        counts[s.reason] = counts.get(s.reason, 0) + 1
    return dict(sorted(counts.items()))


