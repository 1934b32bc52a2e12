"""From the ``sdss`` dataset params to galaxies: the input forms behind one interface.

:func:`build_source` reads the catalogue and returns an :class:`SdssSource`, a picklable
:class:`astroclr.data.prepared.PrepareSource` that turns catalogue rows into preprocessed images
(reader → validity check → core :class:`~astroclr.data.preprocess.Preprocessing`). ``prepare``
runs it chunk by chunk in worker processes; ``load`` runs it in-process.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from astroclr.api import (
    AstroclrError,
    ChunkResult,
    Galaxies,
    PrepareSource,
    Preprocessing,
    Skip,
    SkipGalaxy,
    SurveyInfo,
)
from astroclr_sdss.catalog import CatalogOptions, read_catalog
from astroclr_sdss.sample import SDSS_SEEING_ARCSEC

FILE_INPUTS = ("fits_cutouts", "frames", "composites")


class SdssSource(PrepareSource):
    """Catalogue rows → preprocessed images, through one input form's reader."""

    def __init__(self, reader: Any, catalog: Table, pre_skipped: list[Skip], survey: SurveyInfo,
                 preprocessing: Preprocessing, label_names, size: int, max_invalid: float,
                 fingerprint: dict) -> None:
        self.reader = reader
        self.catalog = catalog
        self.pre_skipped = pre_skipped
        self.survey = survey
        self.preprocessing = preprocessing
        self.label_names = label_names
        self.raw_size = size
        self.max_invalid = max_invalid
        out = preprocessing.output_size(size)
        self.image_shape = (len(survey.bands), out, out)
        self.fingerprint = fingerprint

    def read_chunk(self, start: int, stop: int) -> ChunkResult:
        raws, kept, skips, fractions = [], [], [], []
        filled = 0
        c, s = len(self.survey.bands), self.raw_size
        for i in range(start, stop):
            row = self.catalog[i]
            try:
                raw = np.asarray(self.reader.read(row), dtype=np.float32)
                if raw.shape != (c, s, s):
                    raise SkipGalaxy("bad_image", f"cutout of shape {raw.shape}, expected {(c, s, s)}")
                invalid = ~np.isfinite(raw)
                bad = int(np.count_nonzero(invalid))
                frac = bad / raw.size
                # Judged band by band: one band missing entirely spoils the colours.
                per_band = invalid.reshape(c, -1).mean(axis=1)
                worst = int(np.argmax(per_band))
                if per_band[worst] >= 1.0 or per_band[worst] > self.max_invalid:
                    raise SkipGalaxy("mostly_invalid", f"{per_band[worst]:.0%} of the "
                                     f"{self.survey.bands[worst]} pixels are NaN, inf or off the "
                                     f"frame (max_invalid = {self.max_invalid})")
            except SkipGalaxy as skip:
                skips.append(Skip(int(row["row"]), skip.reason, skip.detail, str(row["id"])))
                continue
            except Exception as exc:  # noqa: BLE001
                # One odd file must not end a 400k-galaxy run: count it, name it, go on.
                skips.append(Skip(int(row["row"]), "unexpected_error",
                                  f"{type(exc).__name__}: {exc}", str(row["id"])))
                continue
            filled += bad
            raws.append(raw)
            kept.append(i)
            fractions.append(frac)
        if raws:
            images = self.preprocessing.apply(np.stack(raws))
        else:
            images = np.zeros((0, *self.image_shape), np.float32)
        return ChunkResult(images, np.asarray(kept, dtype=np.int64), skips,
                           {"invalid_frac": np.asarray(fractions, dtype=np.float32)}, filled)


def preprocessing_of(p: dict) -> Preprocessing:
    return Preprocessing(bin=p["bin"], stretch=p["stretch"], softening=p["softening"],
                         normalize=p["normalize"])


def build_source(p: dict) -> SdssSource:
    """The source for a file input form (``fits_cutouts``, ``frames``, ``composites``)."""
    kind = p["input"]
    if not p["path"]:
        raise AstroclrError(f"dataset sdss: input = {kind!r} needs path (the folder of "
                            f"{'frames' if kind == 'frames' else 'images'})")
    folder = Path(p["path"]).expanduser()
    if not folder.is_dir():
        raise AstroclrError(f"dataset sdss: path {folder} is not a directory")
    bands = tuple(p["bands"])
    prep = preprocessing_of(p)
    size = p["size"]
    if prep.output_size(size) < 1:
        raise AstroclrError(f"dataset sdss: size {size} is smaller than bin {prep.bin}")
    opts = CatalogOptions(
        id_column=p["id_column"], ra_column=p["ra_column"], dec_column=p["dec_column"],
        z_column=p["z_column"], z_max=p["z_max"], label_column=p["label_column"],
        label_map=p["label_map"], unmapped_label=p["unmapped_label"],
        keep_columns=tuple(p["keep_columns"]), format=p["catalog_format"])
    label_names = tuple(p["label_names"]) or None
    frame_cols = (p["run_column"], p["camcol_column"], p["field_column"])
    pre_skipped: list[Skip] = []
    if p["catalog"]:
        catalog, pre_skipped, mapped_names = read_catalog(
            p["catalog"], opts, need_position=(kind == "frames"))
        label_names = mapped_names or label_names
        if kind == "frames":
            catalog, bad_frames = _with_frame_columns(catalog, p["catalog"], opts, frame_cols)
            pre_skipped += bad_frames
    elif kind == "frames":
        raise AstroclrError("dataset sdss: input = 'frames' needs catalog (RA/Dec of the galaxies)")
    else:
        catalog = None

    if kind == "fits_cutouts":
        from astroclr_sdss.fits_cutouts import FitsCutoutReader, default_pattern, ids_in_folder

        pattern = p["file_pattern"] or default_pattern(folder, bands)
        reader = FitsCutoutReader(folder, pattern, bands, p["file_bands"], size)
        if catalog is None:
            catalog = _catalog_from_ids(ids_in_folder(folder, pattern, bands), folder, pattern)
        scale = p["pixel_scale"]
    elif kind == "composites":
        from astroclr_sdss.composites import IMAGE_SUFFIXES, CompositeReader

        pattern = p["file_pattern"] or "{id}.jpeg"
        reader = CompositeReader(folder, pattern, bands, p["composite_bands"], p["crop"], size)
        if catalog is None:
            stems = sorted(f.stem for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            catalog = _catalog_from_ids(stems, folder, pattern)
        scale = p["pixel_scale"] * _composite_resize(reader, catalog, p["crop"], size)
    elif kind == "frames":
        from astroclr_sdss.frames import FrameReader, assign_frames

        # _with_frame_columns stored them under these standard names
        catalog, frame_skips = assign_frames(catalog, folder, bands, ("run", "camcol", "field"))
        pre_skipped += frame_skips
        reader = FrameReader(folder, bands, size, p["edge"])
        scale = p["pixel_scale"]
    else:  # pragma: no cover - guarded by the param's choices
        raise AstroclrError(f"dataset sdss: unknown input {kind!r}")
    if p["limit"]:
        catalog = catalog[: p["limit"]]
    missing_seeing = [b for b in bands if b not in SDSS_SEEING_ARCSEC]
    if missing_seeing:
        raise AstroclrError(f"dataset sdss: unknown band {missing_seeing[0]!r}; SDSS bands: ugriz")
    survey = SurveyInfo.create("sdss", bands, scale * prep.bin,
                               {b: SDSS_SEEING_ARCSEC[b] for b in bands},
                               note=f"SDSS {kind}",
                               credit="SDSS imaging: credit the SDSS data release used")
    fingerprint = {"input": kind, "path": str(folder.resolve()),
                   "catalog": _file_stamp(p["catalog"]),
                   "params": {k: v for k, v in p.items() if k not in ("limit",)}}
    return SdssSource(reader, catalog, pre_skipped, survey, prep, label_names, size,
                      p["max_invalid"], fingerprint)


def _with_frame_columns(catalog: Table, path: str, opts: CatalogOptions,
                        cols: tuple[str, str, str]) -> tuple[Table, list[Skip]]:
    """Copy run/camcol/field from the catalogue file where it has them (else footprint search);
    a row whose value is not a whole non-negative number is a ``bad_frame_id`` skip."""
    from astroclr_sdss.catalog import floats, read_table

    raw = read_table(path, opts.format)
    lower = {c.lower(): c for c in raw.colnames}
    found = [lower.get(c.lower()) for c in cols]
    if not all(found):
        return catalog, []
    rows = np.asarray(catalog["row"])
    keep = np.ones(len(catalog), bool)
    skips: list[Skip] = []
    for name, src in zip(("run", "camcol", "field"), found):
        values, _ = floats(raw[src])
        values = values[rows]
        bad = ~(np.isfinite(values) & (values >= 0) & (np.mod(values, 1) == 0)) & keep
        for i in np.flatnonzero(bad):
            skips.append(Skip(int(rows[i]), "bad_frame_id", f"{src} = {raw[src][rows[i]]!r} is "
                              f"not a frame number", str(catalog["id"][i])))
        keep &= ~bad
        catalog[name] = np.where(np.isfinite(values), values, -1).astype(np.int64)
    return catalog[keep], skips


def _catalog_from_ids(ids: list[str], folder: Path, pattern: str) -> Table:
    if not ids:
        raise AstroclrError(f"dataset sdss: no files matching {pattern!r} in {folder}")
    table = Table()
    table["id"] = (np.asarray(ids, dtype=np.int64) if all(i.isdigit() and len(i) < 19 for i in ids)
                   else np.asarray(ids))
    table["row"] = np.arange(len(ids), dtype=np.int64)
    return table


def _composite_resize(reader: Any, catalog: Table, crop: int, size: int) -> float:
    """Native pixels per output pixel: crop / size, or the first image's width / size."""
    if crop:
        return crop / size
    from PIL import Image

    for gid in catalog["id"][:20]:
        try:
            path = reader.path_for(str(gid))
            if path is None:
                continue
            with Image.open(path) as img:
                return img.size[0] / size
        except (SkipGalaxy, Image.DecompressionBombError, OSError, ValueError, SyntaxError):
            # A bad id, an unreadable or huge image: the reader counts it as a skip later;
            # the scale comes from the next image.
            continue
    return 1.0


def _file_stamp(path: str) -> Any:
    if not path:
        return None
    st = os.stat(path)
    return {"path": str(Path(path).resolve()), "size": st.st_size, "mtime": int(st.st_mtime)}


def load_in_memory(source: SdssSource) -> Galaxies:
    """Read every galaxy of ``source`` in this process (``astroclr prepare`` scales further)."""
    if len(source.catalog) == 0:
        raise AstroclrError(f"dataset sdss: no galaxies to load ({_counts(source.pre_skipped)})")
    result = source.read_chunk(0, len(source.catalog))
    skips = list(source.pre_skipped) + result.skipped
    if not len(result.kept):
        raise AstroclrError(f"dataset sdss: every galaxy was skipped ({_counts(skips)}); first: "
                            f"id {skips[0].id}: {skips[0].reason}: {skips[0].detail}")
    catalog = source.catalog[result.kept]
    catalog["invalid_frac"] = result.columns["invalid_frac"]
    catalog.meta["skipped"] = _counts(skips)
    # Every skip travels with the galaxies: a run writes them to its skipped.csv and run.json.
    catalog.meta["skips"] = skips
    if skips:
        first = skips[0]
        warnings.warn(f"dataset sdss: skipped {len(skips)} of {len(skips) + len(result.kept)} "
                      f"galaxies ({_counts(skips)}); e.g. id {first.id}: {first.reason}: "
                      f"{first.detail}", RuntimeWarning, stacklevel=3)
    return Galaxies(result.images, catalog, source.survey, preprocessing=source.preprocessing,
                    label_names=source.label_names, raw_size=source.raw_size)


def _counts(skips: list[Skip]) -> str:
    counts: dict[str, int] = {}
    for s in skips:
        counts[s.reason] = counts.get(s.reason, 0) + 1
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "none"
