"""Per-galaxy FITS cutouts: one multi-band file per galaxy, or one file per galaxy and band.

Layouts, chosen by ``file_pattern``:

- ``{id}_{band}.fits`` (the pattern names ``{band}``): one 2-D image per band file;
- ``{id}.fits``: one file per galaxy, either a cube whose band axis is the first or last axis
  (band order from the header keyword ``BANDS``, e.g. ``'g,r,i'``, else ``file_bands``), or one
  image extension per band, named by band (``EXTNAME = 'G'``, case-insensitive) or with a
  ``FILTER`` keyword.

Compressed files (``.gz``, ``.bz2``) are found beside the plain name. Images larger than the
cutout size are centre-cropped; smaller ones, unequal band sizes, missing band files and
unreadable files are skips with a reason.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from pathlib import Path, PurePath
from typing import Any, Iterator, Sequence

import numpy as np
from astropy.io import fits
from astropy.wcs import FITSFixedWarning

from astroclr.api import AstroclrError, SkipGalaxy

SUFFIXES = ("", ".gz", ".bz2", ".fz")
#: the longest file name most file systems accept, in bytes
NAME_MAX = 255


def check_pattern(pattern: str) -> str:
    """``file_pattern`` must name files inside ``path``, with the id in it."""
    if "{id}" not in pattern:
        raise AstroclrError(f"dataset sdss: file_pattern {pattern!r} must contain {{id}}")
    parts = PurePath(pattern).parts
    if PurePath(pattern).is_absolute() or ".." in parts:
        raise AstroclrError(f"dataset sdss: file_pattern {pattern!r} must name files inside path "
                            f"(no absolute path, no '..')")
    return pattern


def id_file(folder: Path, name: str, gid: str) -> Path:
    """``folder/name`` for a name made from catalogue id ``gid``, checked to stay inside
    ``folder``: ids are data, never paths. An id that would lead elsewhere (``../x``,
    ``x/../../y``, an absolute path), holds control characters (NUL) or makes an impossible
    file name is a ``bad_id`` skip, so no file outside the dataset folder is ever opened.

    The check is lexical, so a folder of links the user made to files elsewhere still works.
    """
    if any(ord(ch) < 32 for ch in gid):
        raise SkipGalaxy("bad_id", f"id {gid!r} holds control characters")
    rel = PurePath(name)
    inside = os.path.normpath(folder / rel)
    root = os.path.normpath(folder)
    if rel.is_absolute() or ".." in PurePath(gid).parts or \
            not (inside + os.sep).startswith(root.rstrip(os.sep) + os.sep):
        raise SkipGalaxy("bad_id", f"id {gid!r} would name a file outside {folder}")
    if any(len(part.encode("utf-8", "surrogateescape")) > NAME_MAX for part in rel.parts):
        raise SkipGalaxy("bad_id", f"id of {len(gid)} characters makes a file name longer than "
                         f"{NAME_MAX} bytes")
    return folder / rel


def is_file(path: Path) -> bool:
    """``path.is_file()``, False for a path the system refuses (too long, ...)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def find_file(folder: Path, name: str, gid: str = "") -> Path | None:
    """``folder/name`` or a compressed sibling of it (``name`` checked by :func:`id_file`)."""
    base = id_file(folder, name, gid or name)
    for suffix in SUFFIXES:
        p = base.with_name(base.name + suffix)
        if is_file(p):
            return p
    return None


def pattern_regex(pattern: str) -> re.Pattern:
    """A regex matching file names made by ``pattern`` (with optional compression suffix)."""
    parts = re.split(r"(\{id\}|\{band\})", pattern)
    body = "".join({"{id}": r"(?P<id>.+?)", "{band}": r"(?P<band>[^_./]+)"}.get(p, re.escape(p))
                   for p in parts)
    return re.compile(f"^{body}(?:\\.gz|\\.bz2|\\.fz)?$")


def ids_in_folder(folder: Path, pattern: str, bands: Sequence[str]) -> list[str]:
    """Galaxy ids of the files in ``folder`` that match ``pattern`` (catalogue-free use)."""
    rx = pattern_regex(pattern)
    ids = set()
    for p in folder.iterdir():
        m = rx.match(p.name)
        if m and ("band" not in m.groupdict() or m["band"] in bands):
            ids.add(m["id"])
    return sorted(ids)


def default_pattern(folder: Path, bands: Sequence[str]) -> str:
    """``{id}_{band}.fits`` if the folder holds per-band files, else ``{id}.fits``."""
    rx = pattern_regex("{id}_{band}.fits")
    for p in folder.iterdir():
        m = rx.match(p.name)
        if m and m["band"] in bands:
            return "{id}_{band}.fits"
    return "{id}.fits"


def centre_crop(image: np.ndarray, size: int, where: str) -> np.ndarray:
    """The central ``size``×``size`` pixels of the last two axes."""
    h, w = image.shape[-2:]
    if h < size or w < size:
        raise SkipGalaxy("too_small", f"{where}: {h}x{w} px is smaller than the {size} px cutout")
    y0, x0 = (h - size) // 2, (w - size) // 2
    return image[..., y0 : y0 + size, x0 : x0 + size]


@contextlib.contextmanager
def truncation_is_error() -> Iterator[None]:
    """astropy only *warns* that a file "may have been truncated": make that an exception, and
    leave other (harmless, e.g. header-fixing) warnings alone."""
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*truncated.*")
        warnings.filterwarnings("ignore", category=FITSFixedWarning)
        yield


def _read_fits(path: Path) -> list[tuple[fits.Header, np.ndarray]]:
    """(header, data) of every HDU with data; an unreadable file is a skip naming it."""
    try:
        with truncation_is_error(), fits.open(path, memmap=False) as hdul:
            return [(h.header.copy(), np.asarray(h.data, dtype=np.float32))
                    for h in hdul if getattr(h, "data", None) is not None
                    and getattr(h.data, "ndim", 0) >= 2]
    except Exception as exc:  # OSError, ValueError, TypeError, warnings, EOFError ...
        raise SkipGalaxy("unreadable_file", f"{path.name}: {type(exc).__name__}: {exc}") from None


class FitsCutoutReader:
    """Reads raw (C, size, size) cutouts of one galaxy from per-galaxy FITS files."""

    def __init__(self, folder: Path, pattern: str, bands: Sequence[str],
                 file_bands: Sequence[str], size: int) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise AstroclrError(f"dataset sdss: path {self.folder} is not a directory")
        self.pattern = pattern
        self.bands = tuple(bands)
        self.file_bands = tuple(file_bands) or self.bands
        self.size = size
        self.per_band = "{band}" in pattern
        check_pattern(pattern)

    def read(self, row: Any) -> np.ndarray:
        gid = str(row["id"])
        if self.per_band:
            planes = []
            for band in self.bands:
                name = self.pattern.format(id=gid, band=band)
                path = find_file(self.folder, name, gid)
                if path is None:
                    raise SkipGalaxy("missing_file", f"no file {name} for band {band}")
                hdus = _read_fits(path)
                if not hdus or hdus[0][1].ndim != 2:
                    raise SkipGalaxy("bad_image", f"{path.name}: no 2-D image")
                planes.append((path.name, hdus[0][1]))
            shapes = {p.shape for _, p in planes}
            if len(shapes) > 1:
                detail = ", ".join(f"{n} {p.shape[1]}x{p.shape[0]}" for n, p in planes)
                raise SkipGalaxy("unequal_sizes", detail)
            return centre_crop(np.stack([p for _, p in planes]), self.size, planes[0][0])
        name = self.pattern.format(id=gid)
        path = find_file(self.folder, name, gid)
        if path is None:
            raise SkipGalaxy("missing_file", f"no file {name}")
        return centre_crop(self._from_file(path), self.size, path.name)

    def _from_file(self, path: Path) -> np.ndarray:
        hdus = _read_fits(path)
        cubes = [(h, d) for h, d in hdus if d.ndim == 3]
        if cubes:
            header, cube = cubes[0]
            order = tuple(b.strip() for b in str(header.get("BANDS", "")).split(",") if b.strip())
            order = order or self.file_bands
            if cube.shape[0] != len(order) and cube.shape[-1] == len(order):
                cube = np.moveaxis(cube, -1, 0)  # (H, W, C) as written by image libraries
            if cube.shape[0] != len(order):
                raise SkipGalaxy("bad_image", f"{path.name}: cube of shape {cube.shape} has no "
                                 f"axis of {len(order)} bands ({','.join(order)})")
            missing = [b for b in self.bands if b not in order]
            if missing:
                raise SkipGalaxy("missing_band", f"{path.name}: cube has no band {missing[0]} "
                                 f"(has {','.join(order)})")
            return np.stack([cube[order.index(b)] for b in self.bands])
        by_band: dict[str, tuple[str, np.ndarray]] = {}
        for i, (header, data) in enumerate(hdus):
            key = str(header.get("EXTNAME", header.get("FILTER", ""))).strip().lower()
            if key:
                by_band[key] = (f"{path.name}[{i}]", data)
        if len(self.bands) == 1 and len(hdus) == 1 and self.bands[0].lower() not in by_band:
            by_band[self.bands[0].lower()] = (path.name, hdus[0][1])
        planes = []
        for band in self.bands:
            if band.lower() not in by_band:
                raise SkipGalaxy("missing_band", f"{path.name}: no cube and no extension named "
                                 f"{band!r} (extensions: {', '.join(by_band) or 'none'})")
            planes.append(by_band[band.lower()])
        shapes = {p.shape for _, p in planes}
        if len(shapes) > 1 or any(p.ndim != 2 for _, p in planes):
            raise SkipGalaxy("unequal_sizes", ", ".join(f"{n} {p.shape}" for n, p in planes))
        return np.stack([p for _, p in planes])
