"""Output tables of ``astroclr embed`` and ``astroclr predict``, streamed in chunks.

A table is described by an ordered list of columns, each an array-like that slices by rows
(a catalogue column, a memory-mapped array of representations or probabilities) or a function
``(start, stop) -> array`` (a column derived chunk by chunk, such as class names). Only
``chunk_rows`` rows exist in memory at a time, whatever the number of galaxies.

FITS is written with astropy (header from the first row, rows encoded chunk by chunk as astropy
encodes them); Parquet, chosen by the suffix ``.parquet`` or ``.pq``, with pyarrow's
``ParquetWriter``, one row group per chunk. pyarrow is optional (``pip install
'astroclr[parquet]'``); reading Parquet back with astropy's ``Table.read`` also needs pandas.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, Union

import numpy as np

from astroclr.files import atomic_path, write_fits_rows
from astroclr.plugin.specs import AstroclrError

#: rows built and written at a time
CHUNK_ROWS = 65536
FITS_SUFFIXES = (".fits", ".fit", ".fts")
PARQUET_SUFFIXES = (".parquet", ".pq")

Column = Union[np.ndarray, Any, Callable[[int, int], np.ndarray]]


def table_format(path: str | Path) -> str:
    """``"fits"`` or ``"parquet"`` from the file name; anything else is a one-line error."""
    suffix = Path(path).suffix.lower()
    if suffix in FITS_SUFFIXES:
        return "fits"
    if suffix in PARQUET_SUFFIXES:
        check_parquet(path)
        return "parquet"
    raise AstroclrError(f"--out {path}: unknown table format {suffix or '(no suffix)'!r}; use "
                        f"{', '.join(FITS_SUFFIXES + PARQUET_SUFFIXES)}")


def check_parquet(path: str | Path) -> None:
    """A one-line error, before any work, when Parquet is asked for and pyarrow is missing."""
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise AstroclrError(f"writing Parquet ({path}) needs pyarrow: pip install "
                            f"'astroclr[parquet]' (or pyarrow), or write FITS (.fits)") from None


def catalog_columns(catalog: Any, skip: Sequence[str] = ()) -> list[str]:
    """The catalogue's scalar columns (numbers, booleans, text) that a table can carry."""
    out = []
    for name in catalog.colnames:
        col = catalog[name]
        if name not in skip and col.ndim == 1 and col.dtype.kind in "biufUS":
            out.append(name)
    return out


def _chunk(column: Column, a: int, b: int) -> np.ndarray:
    if callable(column) and not hasattr(column, "__getitem__"):
        return np.asarray(column(a, b))
    values = column[a:b]
    if hasattr(values, "filled"):  # a masked catalogue column: FITS and Parquet hold plain values
        values = values.filled()
    return np.asarray(values)


def write_table(path: str | Path, n: int, columns: Sequence[tuple[str, Column]],
                meta: Mapping[str, str] | None = None, chunk_rows: int = CHUNK_ROWS) -> Path:
    """Write ``n`` rows of ``columns`` to ``path`` (FITS or Parquet by suffix), atomically."""
    path = Path(path)
    if n <= 0:
        raise AstroclrError(f"{path}: no rows to write")
    meta = dict(meta or {})
    chunk_rows = max(1, int(chunk_rows))

    def chunk(a: int, b: int) -> dict[str, np.ndarray]:
        return {name: _chunk(col, a, b) for name, col in columns}

    if table_format(path) == "parquet":
        return _write_parquet(path, n, chunk, meta, chunk_rows)
    return _write_fits(path, n, chunk, meta, chunk_rows)


def _fits_hdu(arrays: Mapping[str, np.ndarray], formats: Mapping[str, str]) -> Any:
    from astropy.io import fits

    cols = [fits.Column(name=k, format=formats[k], array=v) for k, v in arrays.items()]
    return fits.BinTableHDU.from_columns(cols)


def _write_fits(path: Path, n: int, chunk: Callable[[int, int], dict], meta: Mapping[str, str],
                chunk_rows: int) -> Path:
    from astropy.io import fits
    from astropy.table import Table

    # Formats from the arrays' dtypes: every chunk is a slice of the same arrays, so string
    # widths and vector lengths are the same in every chunk.
    formats = {c.name: c.format for c in fits.table_to_hdu(Table(chunk(0, 1))).columns}
    return write_fits_rows(path, n, lambda a, b: _fits_hdu(chunk(a, b), formats), meta,
                           chunk_rows)


def _arrow_array(values: np.ndarray) -> Any:
    import pyarrow as pa

    if values.ndim == 2:  # a vector per row: a fixed-size list, as astropy writes it
        flat = pa.array(np.ascontiguousarray(values).reshape(-1))
        return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])
    if values.dtype.kind == "S":
        values = np.char.decode(values, "utf-8")
    return pa.array(values)


def _write_parquet(path: Path, n: int, chunk: Callable[[int, int], dict],
                   meta: Mapping[str, str], chunk_rows: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = None
    with atomic_path(path) as tmp:
        writer = None
        try:
            for a in range(0, n, chunk_rows):
                b = min(a + chunk_rows, n)
                arrays = chunk(a, b)
                table = pa.table({k: _arrow_array(v) for k, v in arrays.items()})
                if schema is None:
                    schema = table.schema.with_metadata({k: str(v) for k, v in meta.items()})
                    writer = pq.ParquetWriter(str(tmp), schema)
                writer.write_table(table.cast(schema))
        finally:
            if writer is not None:
                writer.close()
    return path


def read_table(path: str | Path) -> Any:
    """A table written by :func:`write_table` as an astropy Table (Parquet through pyarrow, so
    pandas is not needed); byte strings decoded."""
    from astropy.table import Table

    path = Path(path)
    if table_format(path) == "parquet":
        import pyarrow.parquet as pq

        data = pq.read_table(str(path))
        table = Table()
        for name in data.column_names:
            col = data.column(name)
            values = col.to_numpy() if not hasattr(col.type, "list_size") else \
                np.stack(col.to_pylist()).astype(np.float32)
            table[name] = values
        table.meta.update({k.decode(): v.decode() for k, v in (data.schema.metadata or {}).items()})
        return table
    table = Table.read(path)
    table.convert_bytestring_to_unicode()
    return table
