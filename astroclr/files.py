"""Writing files safely: one atomic write (temporary file, fsync, rename) and one conversion
to JSON-safe values, used by every part of astroclr that writes.

A reader never sees half a file: a crash or Ctrl-C mid-write leaves the previous version (or
nothing) in place, and two processes writing the same file never share a temporary name.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed over ``path``.

    For writers that want a file name (``torch.save``, ``Table.write``, Lightning's checkpoint
    IO). On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Unique per process and call: two writers of the same file never rename each other's file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial")
    try:
        yield tmp
        with open(tmp, "rb") as fh:  # on disk before it replaces the previous version
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
    return path


def write_json(path: str | Path, data: Any, indent: int | None = 2) -> Path:
    """Write ``data`` as JSON, atomically, after :func:`to_jsonable` (NaN becomes null)."""
    text = json.dumps(to_jsonable(data), indent=indent, allow_nan=False)
    return atomic_write(path, text + "\n")


def read_json(path: str | Path, default: Any = None) -> Any:
    """The JSON in ``path``, or ``default`` when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return default


def to_jsonable(value: Any) -> Any:
    """Plain JSON types from numpy scalars/arrays, bytes, paths, tuples, sets, dataclasses and
    astropy quantities; NaN and infinities become None."""
    import dataclasses

    import numpy as np

    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    if hasattr(value, "to_value") and hasattr(value, "unit"):  # astropy Quantity
        return {"value": to_jsonable(value.value), "unit": str(value.unit)}
    return str(value)


def check_writable(path: str | Path, what: str, is_dir: bool = True) -> Path:
    """Raise a one-line error unless ``path`` (a directory, or a file when ``is_dir`` is false)
    can be created or written, naming ``what`` (e.g. "--out"), the path and why.

    Run before any data is loaded, so a bad output costs seconds, not a training run. The
    nearest existing folder is probed by creating and removing a file in it: permission bits
    alone do not say it (root ignores them; a read-only mount refuses root too).
    """
    from astroclr.plugin.specs import AstroclrError

    path = Path(path)

    def fail(why: str) -> None:
        raise AstroclrError(f"cannot write {what} {path}: {why}")

    if path.exists():
        if is_dir and not path.is_dir():
            fail("it exists and is not a directory")
        if not is_dir and path.is_dir():
            fail("it is a directory; give a file name")
    # The first existing ancestor must be a directory we can create entries in.
    folder = path if (is_dir and path.is_dir()) else path.parent
    while not folder.exists():
        if folder.is_symlink():
            fail(f"{folder} is a broken link")
        folder = folder.parent
    if not folder.is_dir():
        fail(f"{folder} is a file, not a directory")
    try:
        fd, probe = _probe(folder)
    except OSError as exc:
        fail(f"{folder} is not writable ({exc.strerror or exc})")
    os.close(fd)
    os.unlink(probe)
    if path.exists() and not path.is_dir() and not os.access(path, os.W_OK):
        fail("the file is read-only")
    return path


def _probe(folder: Path) -> tuple[int, str]:
    import tempfile

    return tempfile.mkstemp(prefix=".astroclr-probe-", dir=folder)


def write_fits_rows(path: str | Path, n: int, chunk_hdu: Callable[[int, int], Any],
                    meta: Mapping[str, str] | None, chunk_rows: int) -> Path:
    """Write an ``n``-row FITS table atomically, one chunk of rows at a time.

    ``chunk_hdu(a, b)`` returns rows ``a:b`` as an astropy ``BinTableHDU`` with the same columns
    and formats for every chunk, asked for ``chunk_rows`` rows at a time: only one chunk exists
    in memory at a time, so a table of millions of rows is written in bounded memory. ``meta``
    joins the header.
    """
    import io

    from astropy.io import fits

    header = chunk_hdu(0, min(n, 1)).header.copy()
    header["NAXIS2"] = n
    for key, value in (meta or {}).items():
        header[key] = value
    row_bytes = int(header["NAXIS1"])
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(fits.PrimaryHDU().header.tostring().encode("ascii"))
        fh.write(header.tostring().encode("ascii"))
        for a in range(0, n, chunk_rows):
            b = min(a + chunk_rows, n)
            hdu = chunk_hdu(a, b)
            buf = io.BytesIO()
            hdu.writeto(buf)  # the rows as astropy encodes them (big-endian, padded text)
            start = 2880 + len(hdu.header.tostring())  # after the primary HDU and the header
            fh.write(buf.getvalue()[start:start + (b - a) * row_bytes])
        fh.write(b"\0" * (-(n * row_bytes) % 2880))
    return Path(path)



def catalog_columns(catalog: Any, skip: Sequence[str] = ()) -> list[str]:
    """The catalogue's columns that an output table keeps (the run's ``embeddings.fits``,
    ``astroclr embed``'s and ``predict``'s tables): one value per galaxy, a number, a boolean
    or text (unicode or bytes), as FITS and Parquet both hold; vector and object columns are
    left out, as are the names in ``skip`` (the columns the table writes itself)."""
    return [name for name in catalog.colnames if name not in skip
            and catalog[name].ndim == 1 and catalog[name].dtype.kind in "biufUS"]



#: a FITS file's own names (a compressed one adds .gz or .fz: data/guards.py)
FITS_SUFFIXES = (".fits", ".fit", ".fts")
PARQUET_SUFFIXES = (".parquet", ".pq")


def read_parquet(path: str | Path) -> Any:
    """A Parquet table as an astropy Table through pyarrow alone (astropy's reader needs
    pandas, which nothing installs); vector columns (fixed-size lists) become 2-D arrays."""
    from astropy.table import Table

    from astroclr.plugin.specs import AstroclrError

    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise AstroclrError(f"reading Parquet ({path}) needs pyarrow: pip install "
                            f"'astroclr[parquet]' (or pyarrow)") from None
    data = pq.read_table(str(path))
    table = Table()
    for name in data.column_names:
        col = data.column(name)
        if hasattr(col.type, "list_size"):  # one flat buffer, reshaped: no per-row objects
            flat = col.combine_chunks().flatten().to_numpy(zero_copy_only=False)
            table[name] = flat.reshape(len(col), col.type.list_size)
        else:
            table[name] = col.to_numpy()
    table.meta.update({k.decode(): v.decode() for k, v in (data.schema.metadata or {}).items()})
    return table


def cache_dir(kind: str) -> Path:
    """A folder of astroclr's caches (``kind``: e.g. "index"): ``$ASTROCLR_CACHE/kind``, else
    ``$XDG_CACHE_HOME/astroclr/kind``, else ``~/.cache/astroclr/kind``; created on demand.
    Caches never sit beside a command's inputs."""
    root = os.environ.get("ASTROCLR_CACHE")
    if not root:
        root = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "astroclr")
    return Path(root) / kind


def read_embeddings_table(path: str | Path) -> Any:
    """An embeddings table (``astroclr embed`` or a run's) with its ``id`` and
    ``representation`` columns checked, and byte-string columns decoded to str."""
    import warnings

    import numpy as np
    from astropy.table import Table

    from astroclr.plugin.specs import AstroclrError

    path = Path(path)
    if not path.is_file():
        raise AstroclrError(f"{path} does not exist: train a run (astroclr run) or embed a "
                            f"catalogue (astroclr embed) first")
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:  # pyarrow alone (astropy's needs pandas)
            table = read_parquet(path)
        else:
            with warnings.catch_warnings():  # astropy's unit warnings: the columns are checked
                warnings.simplefilter("ignore")
                table = Table.read(path)
    except AstroclrError:
        raise
    except Exception as exc:  # a truncated or foreign file: say which, not a FITS traceback
        # the first line only: astropy appends a 50-line table of formats to "unknown format"
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise AstroclrError(f"cannot read {path} as an embeddings table (FITS or Parquet): "
                            f"{type(exc).__name__}: {first}") from None
    for col in ("id", "representation"):
        if col not in table.colnames:
            raise AstroclrError(f"{path} has no {col!r} column; columns: "
                                f"{', '.join(table.colnames)}")
    table.convert_bytestring_to_unicode()
    reps = np.asarray(table["representation"])
    if reps.ndim != 2 or len(reps) == 0:
        raise AstroclrError(f"{path}: 'representation' must be (N, D), got shape {reps.shape}")
    return table


def file_digest(path: str | Path, algorithm: str) -> str:
    """The hex digest of a file's bytes by ``algorithm`` (``"sha1"``, ``"sha256"``), read in
    1 MiB blocks (a multi-GB weights or index file is never held in memory)."""
    import hashlib

    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


#: ids hashed per update: the digest of millions of ids never builds one string of them all
DIGEST_CHUNK = 65536


def ids_digest(ids: Any, *, ordered: bool = False) -> str:
    """SHA-1 of the ids, one per line: equal digests mean exactly the same galaxies.

    The one digest of a set of galaxies, with the order decided per use. By default the ids
    are sorted first, so a digest names a *set*: the split records of ``metrics.json``
    (``test_sha1``, ``train_sha1``) compare which galaxies two runs or two methods saw, and a
    training pool is a seeded permutation whose order says nothing about its members; the
    values are those every earlier ``metrics.json`` holds. ``ordered=True`` keeps the order
    given, for a resume key: row i of a partial output belongs to ``ids[i]``, so the same
    galaxies in another order must not resume it.
    """
    import hashlib

    import numpy as np

    ids = np.asarray(ids)
    if not ordered:
        ids = np.sort(ids)
    h = hashlib.sha1()
    for a in range(0, len(ids), DIGEST_CHUNK):
        h.update((("\n" if a else "") + "\n".join(map(str, ids[a:a + DIGEST_CHUNK]))).encode())
    return h.hexdigest()
