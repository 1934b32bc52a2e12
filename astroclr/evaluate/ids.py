"""Galaxy ids as data: one rule for matching a given id to a row (the text ``"123"`` finds the
integer id 123; bytes and str alike), comparing two id columns, and plain Python values back."""

from __future__ import annotations

from typing import Any

import numpy as np

from astroclr.plugin.specs import AstroclrError

#: ``id_key``'s answer for text that cannot be an integer id
NOT_AN_INTEGER = object()


def same_ids(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two id columns list the same galaxies in the same order (str and bytes alike)."""
    a, b = np.asarray(a), np.asarray(b)
    if len(a) != len(b):
        return False
    if a.dtype.kind in "SU" or b.dtype.kind in "SU":
        decode = np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else str(v), otypes=[str])
        return bool(np.array_equal(decode(a), decode(b))) if len(a) else True
    return bool(np.array_equal(a, b))


def id_key(ids: np.ndarray, objid: Any) -> Any:
    """``objid`` as a column ``ids`` holds it: an int for integer ids (``" 123"`` is 123,
    :data:`NOT_AN_INTEGER` when it is no number), str for text ids (bytes decoded), else the
    plain value. Every lookup of an id goes through here, so they all agree."""
    objid = plain(objid)
    kind = np.asarray(ids).dtype.kind
    if kind in "iu":
        try:
            return int(str(objid).strip())
        except ValueError:
            return NOT_AN_INTEGER
    return str(objid) if kind in "SU" else objid


def index_of(ids: np.ndarray, objid: Any, where: str = "the embeddings") -> int:
    """Row of ``objid`` in ``ids`` (the first, if repeated), matching ``"123"`` to integer id
    123 and bytes to str; a one-line error naming ``where`` when it is not there."""
    ids = np.asarray(ids)
    key = id_key(ids, objid)
    if key is NOT_AN_INTEGER:
        raise AstroclrError(f"id {objid!r} is not in {where}: its ids are integers")
    hits = np.flatnonzero((ids.astype(str) if ids.dtype.kind in "SU" else ids) == key)
    if hits.size == 0:
        sample = ", ".join(str(plain(i)) for i in ids[:3])
        raise AstroclrError(f"id {objid!r} is not in {where} ({len(ids)} galaxies, e.g. {sample})")
    return int(hits[0])


def row_lookup(ids: np.ndarray) -> dict[Any, int]:
    """``{id_key: row}`` of a column (the first row of a repeated id), for many lookups:
    ``lookup.get(id_key(ids, objid))``."""
    arr = np.asarray(ids)
    if arr.dtype.kind == "S":
        values = np.char.decode(arr, "utf-8").tolist()
    elif arr.dtype.kind == "O":
        values = [plain(v) for v in arr]
    else:  # tolist gives plain ints, floats and str at C speed (a million ids in ~0.1 s)
        values = arr.tolist()
    # built from the end, so that the first row of a repeated id is the one kept
    return dict(zip(reversed(values), range(len(values) - 1, -1, -1)))


def plain(value: Any) -> Any:
    """A plain Python value from a numpy scalar (ids come back JSON- and print-friendly)."""
    value = value.item() if isinstance(value, np.generic) else value
    return value.decode() if isinstance(value, bytes) else value
