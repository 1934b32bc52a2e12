"""One validation mechanism for every configuration table: pydantic models, and one line when a
value deviates.

The core's tables (``[run]``, ``[train]``, the preprocessing, the fine-tuning recipe) are pydantic
models declared on :class:`Table`; a plugin's declared :class:`~astroclr.plugin.params.Param`
tuple is turned into such a model by :func:`params_model`. Either way a bad value is a
:class:`ConfigError` naming ``table.key`` and what is wrong, worded as before the schema moved
to pydantic (``train.epochs: 0 is below the minimum 1``), never pydantic's multi-line report.

Importing pydantic costs more than ``astroclr --help`` may take, so only the paths that
validate import this module.
"""

from __future__ import annotations

import copy
import math
from typing import Annotated, Any, ClassVar, Literal, Mapping, Optional, Sequence, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model
from pydantic_core import PydanticCustomError

from astroclr.plugin.errors import ConfigError

__all__ = ["Table", "Int", "Float", "Bool", "check", "one_line", "params_model",
           "validate_with", "describe"]


def _refuse_bool(kind: str, word: str) -> Any:
    # pydantic's lax mode reads true as 1; a boolean where a number is meant is a slip.
    def check_input(value: Any) -> Any:
        if isinstance(value, bool):
            raise PydanticCustomError(f"{kind}_type", f"Input should be a valid {word}")
        return value

    return BeforeValidator(check_input)


def _bool_input(value: Any) -> Any:
    # true/false, or the words a shell user types ("yes", "0"); not the number 1
    if isinstance(value, (bool, str)):
        return value
    raise PydanticCustomError("bool_type", "Input should be a valid boolean")


#: an integer (a numeric string is read as one: ``--set`` and environment values are text)
Int = Annotated[int, _refuse_bool("int", "integer")]
#: a finite float (an integer is read as one)
Float = Annotated[float, _refuse_bool("float", "number")]
#: true or false (or yes/no, 1/0 as text)
Bool = Annotated[bool, BeforeValidator(_bool_input)]

_CONFIG = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False,
                     coerce_numbers_to_str=True, arbitrary_types_allowed=True)


class Table(BaseModel):
    """A configuration table: frozen, unknown keys refused, every value checked.

    ``Model.check(given)`` (rather than ``Model(**given)``) gives the one-line error naming
    ``table.key``; constructing it directly gives the same error too.
    """

    model_config = _CONFIG
    #: the table's name in errors (``train``, ``recipe``)
    where: ClassVar[str] = ""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _Invalid(str(one_line(exc, type(self), self.where)), exc) from None

    @classmethod
    def check(cls, given: Mapping[str, Any], where: str | None = None,
              labels: Mapping[str, str] | None = None) -> Any:
        """``given`` validated over the declared defaults; ConfigError naming the key as
        ``where.key``, or as ``labels[key]`` (a command-line option, ``--mode``)."""
        try:
            return cls.model_validate(dict(given))
        except _Invalid as exc:  # raised by __init__, which model_validate goes through
            raise one_line(exc.cause, cls, where or cls.where, labels) from None

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The declared defaults as a plain table (lists, not tuples), a private copy."""
        return {name: _plain(f.get_default(call_default_factory=True))
                for name, f in cls.model_fields.items()}

    def table(self) -> dict[str, Any]:
        """The values as written in the TOML table (lists, not tuples)."""
        return {name: _plain(getattr(self, name)) for name in type(self).model_fields}


class _Invalid(ConfigError):
    """The one-line error of a table, with pydantic's report kept for rewording."""

    def __init__(self, line: str, cause: ValidationError) -> None:
        super().__init__(line)
        self.cause = cause


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return copy.deepcopy(value)


def check(model: type[BaseModel], given: Mapping[str, Any], where: str) -> BaseModel:
    """``given`` as ``model``; a ValidationError becomes the one-line ConfigError."""
    try:
        return model.model_validate(dict(given))
    except ValidationError as exc:
        raise one_line(exc, model, where) from None


def _choices(annotation: Any) -> tuple[Any, ...] | None:
    """The values of the Literal inside ``annotation`` (a list's items included)."""
    if getattr(annotation, "__origin__", None) is Literal:
        return get_args(annotation)
    for arg in get_args(annotation):
        found = _choices(arg)
        if found is not None:
            return found
    return None


def _lengths(field: Any) -> tuple[int | None, int | None]:
    lo = hi = None
    for m in field.metadata:
        lo = getattr(m, "min_length", lo)
        hi = getattr(m, "max_length", hi)
    return lo, hi


def one_line(exc: ValidationError, model: type[BaseModel], where: str,
             labels: Mapping[str, str] | None = None) -> ConfigError:
    """The first problem of ``exc`` as the project's one line: ``where.key: what is wrong``."""
    errors = exc.errors(include_url=False)
    extra = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    if extra:
        known = ", ".join(sorted(model.model_fields)) or "(none)"
        return ConfigError(f"{where}: unknown parameter {extra[0]!r}; known parameters: {known}")
    first = errors[0]
    key = str(first["loc"][0]) if first["loc"] else ""
    label = (labels or {}).get(key) or (f"{where}.{key}" if key else where)
    value, kind, ctx = first.get("input"), first["type"], first.get("ctx") or {}
    field = model.model_fields.get(key)
    return ConfigError(f"{label}: {_what(kind, value, ctx, field)}")


def _what(kind: str, value: Any, ctx: Mapping[str, Any], field: Any) -> str:
    """What is wrong, in the words the hand-written validators used."""
    if kind in ("list_type", "tuple_type"):
        return f"expected a list, got {value!r}"
    if kind in ("too_short", "too_long"):
        lo, hi = _lengths(field) if field is not None else (None, None)
        got = ctx.get("actual_length")
        if lo is not None and lo == hi:
            return f"expected {lo} values, got {got}"
        if kind == "too_short":
            return f"expected at least {lo} value{'s' * (lo != 1)}, got {got}"
        return f"expected at most {hi} values, got {got}"
    if kind == "finite_number" or (isinstance(value, float) and not math.isfinite(value)):
        return f"{value!r} is not a finite number"
    if kind.startswith("int"):
        return f"expected int, got {value!r}"
    if kind.startswith("float"):
        return f"expected float, got {value!r}"
    if kind.startswith("bool"):
        return f"expected true or false, got {value!r}"
    if kind.startswith("string"):
        return f"expected str, got {value!r}"
    if kind == "literal_error":
        allowed = _choices(field.annotation) if field is not None else None
        return f"{value!r} is not one of: {', '.join(map(str, allowed or ()))}"
    if kind == "greater_than_equal":
        return f"{value!r} is below the minimum {ctx['ge']}"
    if kind == "less_than_equal":
        return f"{value!r} is above the maximum {ctx['le']}"
    if kind == "greater_than":
        return f"{value!r} must be above {ctx['gt']}"
    if kind == "less_than":
        return f"{value!r} must be below {ctx['lt']}"
    if kind == "is_instance_of":
        return f"expected {ctx.get('class', 'another type')}, got {value!r}"
    if kind == "value_error":
        return str(ctx.get("error", "invalid value"))
    return f"{value!r}: invalid value"


# -- plugin parameters: a Param tuple as a model ------------------------------------------------

def _scalar(typ: type, choices: Sequence[Any] | None) -> Any:
    if choices is not None:
        return Literal[tuple(choices)]  # type: ignore[misc]
    return {bool: Bool, int: Int, float: Float, str: str}.get(typ, typ)


def _annotation(p: Any) -> Any:
    """The pydantic type of a declared Param (range, choices and length included)."""
    bounds = {"ge": p.low, "le": p.high}
    if p.type is list:
        item = Annotated[_scalar(p.item_type, p.choices), Field(**bounds)]
        lo = p.length if p.length is not None else p.min_length
        return Annotated[list[item], Field(min_length=lo, max_length=p.length)]  # type: ignore[valid-type]
    typ = Annotated[_scalar(p.type, p.choices), Field(**bounds)]
    return Optional[typ] if p.default is None else typ


def _key(p: Any) -> tuple:
    return (p.name, p.type, repr(p.default), p.low, p.high, repr(p.choices), p.length,
            p.item_type, p.min_length)


_MODELS: dict[tuple, type[BaseModel]] = {}


def params_model(params: Sequence[Any]) -> type[BaseModel]:
    """A pydantic model of a plugin's declared parameters (cached by their declaration)."""
    key = tuple(_key(p) for p in params)
    if key not in _MODELS:
        fields = {p.name: (_annotation(p), Field(default=p.default, description=p.help))
                  for p in params}
        _MODELS[key] = create_model("Params", __config__=_CONFIG, **fields)
    return _MODELS[key]


def validate_with(params: Sequence[Any], given: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``given`` over the defaults of the declared ``params``, each value checked; defaults a
    private copy (a plugin mutating one must not leak into the next run)."""
    model = params_model(params)
    inst = check(model, given, where)
    return {name: getattr(inst, name) if name in given else copy.deepcopy(getattr(inst, name))
            for name in model.model_fields}


def describe(field: Any) -> dict[str, Any]:
    """A model field as the keyword arguments of a :class:`~astroclr.plugin.params.Param`
    (type, default, help, range, choices, lengths), for the docs and the Param views."""
    default = _plain(field.get_default(call_default_factory=True))
    lo = hi = None
    for m in field.metadata + _item_metadata(field.annotation):
        lo = getattr(m, "ge", lo)
        hi = getattr(m, "le", hi)
    typ = list if isinstance(default, list) else _base(field.annotation)
    args = get_args(field.annotation)
    least, most = _lengths(field)
    return {"type": typ, "default": default, "help": field.description or "", "low": lo,
            "high": hi, "choices": _choices(field.annotation),
            "item_type": _base(args[0]) if typ is list and args else float,
            "length": least if least is not None and least == most else None,
            "min_length": least if least != most else None}


def _item_metadata(annotation: Any) -> list:
    args = get_args(annotation)
    if getattr(annotation, "__origin__", None) in (list, tuple) and args:
        found = []
        for m in getattr(args[0], "__metadata__", ()):
            found += getattr(m, "metadata", None) or [m]  # a Field(ge=0) holds Ge(0)
        return found
    return []


def _base(annotation: Any) -> type:
    """The plain Python type behind an annotation (Annotated, Literal, Optional unwrapped)."""
    if getattr(annotation, "__origin__", None) is Literal:
        return type(get_args(annotation)[0])
    origin = getattr(annotation, "__origin__", None)
    if origin in (list, tuple):
        return list
    if origin is not None and get_args(annotation):
        return _base(get_args(annotation)[0])
    return annotation if isinstance(annotation, type) else object
