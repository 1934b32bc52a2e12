"""Reading a galaxy catalogue in any format astropy reads, into astroclr's standard columns.

The result has ``id``, ``row`` (the row number in the file, for messages), and where asked
``ra``/``dec`` (deg), ``z``, ``label`` (int, -1 unlabelled) and ``label_raw``. A redshift cut
or an unmapped label drops rows; each dropped row is returned as a :class:`Skip`, never lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from astropy import units as u
from astropy.table import MaskedColumn, Table

from astroclr.api import AstroclrError, Skip

UNLABELLED_NAMES = {"", "-", "none", "unlabelled", "unlabeled"}


@dataclass(frozen=True)
class CatalogOptions:
    """Which columns hold what, and the row filters (see the ``sdss`` dataset params)."""

    id_column: str = "id"
    ra_column: str = "ra"
    dec_column: str = "dec"
    z_column: str = ""
    z_max: float = 0.0
    label_column: str = ""
    label_map: str = ""
    unmapped_label: str = "error"
    keep_columns: tuple[str, ...] = ()
    format: str = ""


def parse_label_map(text: str) -> tuple[dict[str, int], tuple[str, ...]]:
    """``"0=early,1=late,2=late,4=-"`` → ({"0": 0, "1": 1, "2": 1, "4": -1}, ("early", "late")).

    Label integers follow the names' first appearance; ``-`` (or empty) means unlabelled.
    """
    mapping: dict[str, int] = {}
    names: list[str] = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        if "=" not in item:
            raise AstroclrError(f"dataset.label_map: {item!r} is not of the form value=name "
                                f"(e.g. \"0=early,1=late,2=late,4=-\")")
        raw, name = (s.strip() for s in item.split("=", 1))
        if raw in mapping:
            raise AstroclrError(f"dataset.label_map: value {raw!r} is mapped twice")
        if name.lower() in UNLABELLED_NAMES:
            mapping[raw] = -1
            continue
        if name not in names:
            names.append(name)
        mapping[raw] = names.index(name)
    if not names:
        raise AstroclrError(f"dataset.label_map: {text!r} names no class")
    return mapping, tuple(names)


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _key(value) -> str:
    """A catalogue value as the text a label map names it by (1.0 and 1 are both "1")."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, bytes):
        return value.decode().strip()
    return str(value).strip()


def _as_float(value) -> float | None:
    """A catalogue value as a float (NaN for a missing one), or None when it is not a number."""
    if value is None or value is np.ma.masked:
        return float("nan")
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str) and not value.strip():
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def floats(col) -> tuple[np.ndarray, np.ndarray]:
    """A column as float64, row by row: NaN where a value is missing, and a mask of the rows
    whose value is not a number at all (text such as ``'abc'``), which callers report."""
    mask = np.asarray(col.mask) if isinstance(col, MaskedColumn) else np.zeros(len(col), bool)
    data = np.asarray(col.data if isinstance(col, MaskedColumn) else col)
    try:
        values = np.asarray(data, dtype=float)
        values[mask] = np.nan
        return values, np.zeros(len(values), bool)
    except (TypeError, ValueError):
        pass
    values = np.full(len(data), np.nan)
    not_number = np.zeros(len(data), bool)
    for r, v in enumerate(data):
        if mask[r]:
            continue
        f = _as_float(v)
        if f is None:
            not_number[r] = True
        else:
            values[r] = f
    return values, not_number


def _as_label(value) -> int | None:
    """An integer class label (>= -1) from a catalogue value, or None."""
    f = _as_float(value)
    if f is None or not np.isfinite(f) or not f.is_integer() or f < -1:
        return None
    return int(f)


def read_table(path: str | Path, fmt: str = "") -> Table:
    path = Path(path)
    if not path.is_file():
        raise AstroclrError(f"catalogue {path}: no such file")
    kwargs = {"format": fmt} if fmt else {}
    if not fmt and path.suffix.lower() in (".csv", ".ecsv"):
        # spelled out: astropy's guessing can read a CSV as some other ASCII dialect
        kwargs = {"format": "ascii.ecsv" if path.suffix.lower() == ".ecsv" else "ascii.csv"}
    try:
        return Table.read(path, **kwargs)
    except Exception as exc:  # astropy raises many kinds for an unreadable table
        raise AstroclrError(f"catalogue {path}: cannot read it as a table ({type(exc).__name__}: "
                            f"{exc}); give catalog_format (e.g. fits, votable, ascii.csv)") from exc


def _column(table: Table, name: str, what: str, path) -> np.ndarray:
    if name not in table.colnames:
        # Catalogues differ in case (objID / objid): accept a unique case-insensitive match.
        matches = [c for c in table.colnames if c.lower() == name.lower()]
        if len(matches) != 1:
            raise AstroclrError(f"catalogue {path}: no {what} column {name!r}; columns: "
                                f"{', '.join(table.colnames)}")
        name = matches[0]
    return table[name]


def read_catalog(path: str | Path, opts: CatalogOptions, need_position: bool = False,
                 extra_columns: Sequence[str] = ()
                 ) -> tuple[Table, list[Skip], tuple[str, ...] | None]:
    """Read and standardise a catalogue; returns (table, dropped rows, label names)."""
    raw = read_table(path, opts.format)
    if len(raw) == 0:
        raise AstroclrError(f"catalogue {path} has no rows")
    ids = _column(raw, opts.id_column, "id", path)
    if isinstance(ids, MaskedColumn) and np.any(ids.mask):
        row = int(np.flatnonzero(ids.mask)[0])
        raise AstroclrError(f"catalogue {path}: row {row} has no id ({opts.id_column!r} is empty)")
    ids = np.asarray(ids)
    if ids.dtype.kind in "SU":
        ids = np.char.strip(ids.astype(str))
    uniq, first, counts = np.unique(ids, return_index=True, return_counts=True)
    if np.any(counts > 1):
        dup = uniq[np.argmax(counts > 1)]
        rows = np.flatnonzero(ids == dup)[:3].tolist()
        raise AstroclrError(f"catalogue {path}: id {dup} appears more than once (rows "
                            f"{', '.join(map(str, rows))}); ids must be unique")
    out = Table()
    out["id"] = ids
    out["row"] = np.arange(len(raw), dtype=np.int64)
    keep = np.ones(len(raw), bool)
    skips: list[Skip] = []

    def drop(mask: np.ndarray, reason: str, detail) -> None:
        for r in np.flatnonzero(mask & keep):
            skips.append(Skip(int(r), reason, detail(r), str(ids[r])))
        keep[mask] = False

    # Every value is checked row by row: a bad one drops its galaxy with the reason, never
    # the whole catalogue with a traceback.
    if need_position or (opts.ra_column in raw.colnames and opts.dec_column in raw.colnames):
        for name, col, low, high in (("ra", opts.ra_column, 0, 360), ("dec", opts.dec_column, -90, 90)):
            values = _column(raw, col, name.upper(), path)
            filled, not_number = floats(values)
            drop(not_number, "bad_position",
                 lambda r, c=col, v=values: f"{c} = {_text(v[r])!r} is not a number")
            bad = ~np.isfinite(filled) | (filled < low) | (filled > high)
            drop(bad, "bad_position", lambda r, c=col, v=filled: f"{c} = {v[r]} is not a valid angle")
            out[name] = filled * u.deg
    for name in extra_columns:
        out[name] = _column(raw, name, name, path)
    if opts.z_column:
        zcol = _column(raw, opts.z_column, "redshift", path)
        z, not_number = floats(zcol)
        drop(not_number, "bad_redshift",
             lambda r: f"{opts.z_column} = {_text(zcol[r])!r} is not a number")
        out["z"] = z
        if opts.z_max > 0:
            drop(~(z < opts.z_max), "redshift_cut",
                 lambda r: f"z = {z[r]} is not below z_max = {opts.z_max}")
    label_names = None
    if opts.label_column:
        col = _column(raw, opts.label_column, "label", path)
        masked = np.asarray(col.mask) if isinstance(col, MaskedColumn) else np.zeros(len(col), bool)
        values = list(col)
        if opts.label_map:
            mapping, label_names = parse_label_map(opts.label_map)
            labels = np.full(len(raw), -1, np.int64)
            for r, v in enumerate(values):
                if masked[r]:
                    continue
                key = _key(v)
                if key in mapping:
                    labels[r] = mapping[key]
                elif opts.unmapped_label == "error":
                    raise AstroclrError(
                        f"catalogue {path}: row {r} (id {ids[r]}): label {key!r} of column "
                        f"{opts.label_column!r} is not in label_map (values: "
                        f"{', '.join(mapping)}); set unmapped_label = \"unlabelled\" or \"skip\"")
                elif opts.unmapped_label == "skip":
                    drop(np.arange(len(raw)) == r, "unmapped_label",
                         lambda rr, k=key: f"label {k!r} is not in label_map")
        else:
            labels = np.full(len(raw), -1, np.int64)
            for r, v in enumerate(values):
                if masked[r]:
                    continue
                label = _as_label(v)
                if label is not None:
                    labels[r] = label
                elif opts.unmapped_label == "error":
                    raise AstroclrError(
                        f"catalogue {path}: row {r} (id {ids[r]}): label {_text(v)!r} of column "
                        f"{opts.label_column!r} is not an integer class (0, 1, ...; -1 unlabelled); "
                        f"give label_map (e.g. \"E=early,S=late\"), or set unmapped_label = "
                        f"\"unlabelled\" or \"skip\"")
                elif opts.unmapped_label == "skip":
                    drop(np.arange(len(raw)) == r, "bad_label",
                         lambda rr, t=_text(v): f"label {t!r} is not an integer class")
        out["label"] = labels
        out["label_raw"] = [_key(v) for v in values] if values else []
    for name in opts.keep_columns:
        if name not in out.colnames:
            out[name] = _column(raw, name, name, path)
    return out[keep], skips, label_names
