"""Labels that come back as a file: ``astroclr finetune --labels-file`` and ``astroclr suggest
--labels-file``.

A labels file is a CSV or FITS table with an ``id`` column and a label column whose values are
class names (``early``) or the label column's integers (``0``). Everything about it is checked
before any training: an id the dataset does not hold, an id listed twice, a class that is not
one of the label column's, an empty label, an empty file; each is a one-line error naming the
file and the offending id or value, since a volunteer's spreadsheet is where such slips happen.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from astroclr.files import FITS_SUFFIXES
from astroclr.plugin.specs import AstroclrError

if TYPE_CHECKING:
    from astropy.table import Table

    from astroclr.data.galaxies import Galaxies

CSV_SUFFIXES = (".csv",)


def read_table_file(path: str | Path) -> "Table":
    """A CSV or FITS table, byte strings decoded; unreadable or unknown files are one-line
    errors."""
    from astropy.table import Table

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES + FITS_SUFFIXES:
        raise AstroclrError(f"labels file {path}: unknown format {suffix or '(no suffix)'!r}; "
                            f"use .csv or .fits")
    if not path.is_file():
        raise AstroclrError(f"labels file {path} does not exist")
    try:
        if suffix in CSV_SUFFIXES:
            from astropy.io.ascii import convert_numpy

            # every cell as text: an id "007" stays "007", not 7
            table = Table.read(path, format="ascii.csv", converters={"*": [convert_numpy(str)]})
        else:
            table = Table.read(path, format="fits")
    except Exception as exc:  # an empty or foreign file: say which, not a parser traceback
        if suffix in CSV_SUFFIXES and not path.read_text(errors="replace").strip():
            raise AstroclrError(f"labels file {path} is empty") from None
        raise AstroclrError(f"cannot read labels file {path}: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:200]}") from None
    table.convert_bytestring_to_unicode()
    return table


def _text(value: Any) -> str:
    value = value.item() if isinstance(value, np.generic) else value
    return (value.decode() if isinstance(value, bytes) else str(value)).strip()


def _is_missing(column: Any, i: int) -> bool:
    mask = getattr(column, "mask", None)
    return bool(mask is not None and np.ndim(mask) and mask[i]) or _text(column[i]) == ""


def file_column(table: "Table", path: Path, column: str | None) -> str:
    """The label column of the file: ``column`` when it holds it, else ``label``."""
    for name in (column, "label"):
        if name and name in table.colnames:
            return name
    wanted = " or ".join(repr(c) for c in dict.fromkeys([column, "label"]) if c)
    raise AstroclrError(f"labels file {path} has no label column {wanted}; columns: "
                        f"{', '.join(table.colnames)} (choose one with --label-column)")


def read_labels(path: str | Path, ids: Sequence[Any], column: str | None,
                classes: Mapping[int, str] | None, where: str) -> tuple[np.ndarray, np.ndarray,
                                                                        dict[int, str]]:
    """``(rows, values, names)``: the galaxies of ``ids`` a labels file labels, in file order,
    their integer label values, and the display name of each value.

    ``classes`` maps the label column's values to their names; a file value must be one of
    them, by value or by name. Without it (a dataset with no such column) the file defines
    the classes: integers as they are, names numbered in sorted order. ``where`` names the
    galaxies (e.g. ``dataset 'sdss'``) in errors.
    """
    path = Path(path)
    table = read_table_file(path)
    if "id" not in table.colnames:
        raise AstroclrError(f"labels file {path} has no 'id' column; columns: "
                            f"{', '.join(table.colnames)}")
    col = file_column(table, path, column)
    if len(table) == 0:
        raise AstroclrError(f"labels file {path} has no rows")
    row_of: dict[str, int] = {}
    for row, value in enumerate(np.asarray(ids)):
        row_of.setdefault(_text(value), row)
    rows = np.empty(len(table), dtype=np.int64)
    seen: dict[str, str] = {}
    texts = []
    for i in range(len(table)):
        key = _text(table["id"][i])
        # a CSV's header is its line 1; a FITS table's rows count from 1
        where_in = f"line {i + 2}" if path.suffix.lower() in CSV_SUFFIXES else f"row {i + 1}"
        if _is_missing(table["id"], i):
            raise AstroclrError(f"labels file {path}: {where_in} has no id")
        if key not in row_of:
            sample = ", ".join(_text(v) for v in np.asarray(ids)[:3])
            raise AstroclrError(f"labels file {path}: id {key!r} ({where_in}) is not among the "
                                f"{len(row_of)} galaxies of {where} (e.g. {sample})")
        if key in seen:
            raise AstroclrError(f"labels file {path}: id {key!r} is listed twice ({seen[key]} and "
                                f"{where_in})")
        seen[key] = where_in
        if _is_missing(table[col], i):
            raise AstroclrError(f"labels file {path}: id {key!r} has no {col!r} value")
        rows[i] = row_of[key]
        texts.append((key, _text(table[col][i])))
    values, names = _label_values(texts, classes, path, col)
    return rows, values, names


def _as_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        try:  # FITS and CSV readers may hand back 1.0 for 1
            f = float(text)
        except ValueError:
            return None
        return int(f) if f.is_integer() else None


def _label_values(texts: Sequence[tuple[str, str]], classes: Mapping[int, str] | None,
                  path: Path, col: str) -> tuple[np.ndarray, dict[int, str]]:
    if classes is None:
        ints = [_as_int(t) for _, t in texts]
        if all(v is not None for v in ints):
            names = {int(v): str(v) for v in sorted(set(ints))}  # type: ignore[arg-type]
            values = np.asarray(ints, dtype=np.int64)
        else:
            names = dict(enumerate(sorted({t for _, t in texts})))
            number = {name: value for value, name in names.items()}
            values = np.asarray([number[t] for _, t in texts], dtype=np.int64)
        if (values < 0).any():
            gid, text = texts[int(np.argmax(values < 0))]
            raise AstroclrError(f"labels file {path}: id {gid!r} has label {text!r}; labels are "
                                f"class names or integers >= 0")
        return values, names
    by_name = {name: value for value, name in classes.items()}
    by_folded = {name.casefold(): value for value, name in classes.items()}
    values = np.empty(len(texts), dtype=np.int64)
    for i, (gid, text) in enumerate(texts):
        number = _as_int(text)
        if number is not None and number in classes:
            values[i] = number
        elif text in by_name or text.casefold() in by_folded:
            values[i] = by_name.get(text, by_folded.get(text.casefold()))
        else:
            known = ", ".join(f"{name} ({value})" for value, name in sorted(classes.items()))
            raise AstroclrError(f"labels file {path}: id {gid!r} has {col} {text!r}, not a class "
                                f"of the label column (classes: {known})")
    return values, dict(classes)


def known_classes(galaxies: "Galaxies", column: str) -> dict[int, str] | None:
    """The classes of a dataset's label column, value -> display name (the dataset's names for
    ``label``); None when the dataset has no such column."""
    if column not in galaxies.catalog.colnames:
        return None
    values = galaxies.labels(column)
    names = galaxies.label_names if column == "label" else None
    present = set(int(v) for v in np.unique(values[values >= 0]))
    if names is not None:
        present |= set(range(len(names)))
    return {v: str(names[v]) if names is not None and 0 <= v < len(names) else str(v)
            for v in sorted(present)}


def labels_from_file(path: str | Path, galaxies: "Galaxies", column: str,
                     file_label_column: str | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """A label per galaxy of ``galaxies`` from a labels file: -1 for every galaxy the file does
    not list (so it trains on exactly the file's galaxies), and the display names of the
    values (index = value). ``column`` is the dataset's label column the classes come from;
    the file's column is ``file_label_column`` or ``column`` or ``label``."""
    classes = known_classes(galaxies, column)
    rows, values, names = read_labels(path, galaxies.ids, file_label_column or column, classes,
                                      f"dataset {galaxies.survey.name!r}")
    out = np.full(len(galaxies), -1, dtype=np.int64)
    out[rows] = values
    top = max(names) if names else -1
    return out, tuple(names.get(v, str(v)) for v in range(top + 1))
