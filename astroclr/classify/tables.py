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

from astroclr.files import FITS_SUFFIXES, PARQUET_SUFFIXES, atomic_path, write_fits_rows
from astroclr.plugin.specs import AstroclrError

#: rows built and written at a time
CHUNK_ROWS = 65536

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


def _chunk(column: Column, a: int, b: int) -> np.ndarray:
    if callable(column) and not hasattr(column, "__getitem__"):
        return np.asarray(column(a, b))
    values = column[a:b]
    if hasattr(values, "filled"):  # a masked catalogue column: FITS and Parquet hold plain values
        values = values.filled()
    return np.asarray(values)


def finite_rows(values: np.ndarray, chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
    """Row numbers of the (N, D) ``values`` whose numbers are all finite, read in chunks (a
    memory map stays a memory map)."""
    keep = [a + np.flatnonzero(np.isfinite(np.asarray(values[a:a + chunk_rows])).all(axis=1))
            for a in range(0, len(values), chunk_rows)]
    return np.concatenate(keep) if keep else np.empty(0, np.int64)


def rows_of(columns: Sequence[tuple[str, Column]], rows: np.ndarray
            ) -> list[tuple[str, Column]]:
    """``columns`` restricted to ``rows`` (in order), still sliced chunk by chunk."""
    def column(col: Column) -> Column:
        return lambda a, b: _chunk(col, int(rows[a]), int(rows[b - 1]) + 1)[rows[a:b] - rows[a]]

    return [(name, column(col)) for name, col in columns]


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


def write_finite(out: Path, galaxies: Any, values: np.ndarray, columns: list,
                  meta: Mapping[str, str], report: Callable[[str], None] | None) -> None:
    """Write the rows of ``columns`` whose ``values`` are finite; say how many were not."""
    keep = finite_rows(values)
    skipped = len(galaxies) - len(keep)
    if not len(keep):
        raise AstroclrError(f"every one of the {len(galaxies)} galaxies gave non-finite "
                            f"outputs (NaN or inf pixels); nothing written to {out}")
    if skipped:
        columns = rows_of(columns, keep)
        lost = np.setdiff1d(np.arange(len(galaxies)), keep)[:3]
        if report is not None:
            report(f"skipped {skipped} of {len(galaxies)} galaxies with non-finite pixels "
                   f"(NaN or inf), e.g. {', '.join(str(i) for i in galaxies.ids[lost])}")
    write_table(out, len(keep), columns, {"BANDS": ",".join(galaxies.bands),
                                          "SURVEY": galaxies.survey.name, **meta,
                                          "NSKIPPED": str(skipped)})


def check_table_out(out: Path, cfg: Any, reads: Sequence[Path], overwrite: bool) -> None:
    """``--out`` of embed/predict checked before any work (see :mod:`astroclr.output`)."""
    from astroclr.output import check_output

    check_output(out, "--out", inputs=list(cfg.dataset.values()), reads=reads,
                 overwrite=overwrite)


def finite_images(images: np.ndarray, rows: np.ndarray, chunk: int = 4096
                  ) -> tuple[np.ndarray, int]:
    """``rows`` whose images hold only finite pixels, and how many were left out."""
    keep = [r[np.isfinite(np.asarray(images[r])).reshape(len(r), -1).all(axis=1)]
            for r in (rows[a:a + chunk] for a in range(0, len(rows), chunk))]
    kept = np.concatenate(keep) if keep else rows[:0]
    return kept, int(len(rows) - len(kept))


def read_table(path: str | Path) -> Any:
    """A table written by :func:`write_table` as an astropy Table (Parquet through pyarrow, so
    pandas is not needed); byte strings decoded."""
    from astropy.table import Table

    from astroclr.files import read_parquet

    path = Path(path)
    if table_format(path) == "parquet":
        return read_parquet(path)
    table = Table.read(path)
    table.convert_bytestring_to_unicode()
    return table
