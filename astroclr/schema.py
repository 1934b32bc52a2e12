"""Reading a metadata file against its schema: a pydantic model, and one line when it deviates.

Every JSON file a command reads back (``run.json``, ``classifier.json``, a prepared set's
``meta.json``, an index's key) is checked here before any field is used, so a file with a
field missing, of the wrong type, ``{}`` or a list is a one-line error naming the file and the
field, not a ``KeyError`` three calls later. The models are strict (JSON ``"16"`` is not an
integer) and allow extra fields (newer versions may add some).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from astroclr.plugin.specs import AstroclrError

M = TypeVar("M")


def _where(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "(the whole document)"


def validate_document(model: type[M], doc: Any, path: str | Path) -> M:
    """``doc`` (parsed JSON) as ``model``; a one-line error naming ``path`` and the field."""
    from pydantic import ValidationError

    try:
        return model.model_validate(doc)  # type: ignore[attr-defined]
    except ValidationError as exc:
        first = exc.errors()[0]
        more = exc.error_count() - 1
        raise AstroclrError(
            f"{path}: field {_where(first['loc'])}: {first['msg'].lower()}"
            + (f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else "")
            + "; the file is damaged or not written by astroclr") from None


def read_document(model: type[M], path: str | Path) -> tuple[M, dict[str, Any]]:
    """The JSON file ``path`` checked against ``model``: ``(model instance, the dict as
    written)``; unreadable JSON is a one-line error too."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AstroclrError(f"{path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise AstroclrError(f"{path} is unreadable: {' '.join(str(exc).split())[:160]}") from None
    return validate_document(model, doc, path), doc
