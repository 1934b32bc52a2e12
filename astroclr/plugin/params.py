"""Declared parameters of plugin parts, their validation, and the preprocessing parameters
the core declares for every dataset.

This module imports nothing heavy, so the CLI can list plugins instantly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from astroclr.plugin.errors import ConfigError, PluginError


@dataclass(frozen=True)
class Param:
    """One declared parameter of a plugin part.

    Example::

        Param("p", float, 0.5, "probability of applying the blur", low=0.0, high=1.0)
        Param("fwhm", list, [1.0, 2.0], "seeing FWHM range, arcsec", low=0.0, length=2)
    """

    name: str
    type: type
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: Sequence[Any] | None = None
    #: for list parameters: the required number of elements (None: any)
    length: int | None = None
    #: for list parameters: the type of each element (default float)
    item_type: type = float
    #: for list parameters: the fewest elements allowed (None: any, even none)
    min_length: int | None = None

    def validate(self, value: Any, where: str) -> Any:
        """Return ``value`` coerced to this parameter's type, or raise ConfigError naming ``where``."""
        label = f"{where}.{self.name}"
        if self.type is list:
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                raise ConfigError(f"{label}: expected a list, got {value!r}")
            if self.length is not None and len(value) != self.length:
                raise ConfigError(f"{label}: expected {self.length} values, got {len(value)}")
            if self.min_length is not None and len(value) < self.min_length:
                raise ConfigError(f"{label}: expected at least {self.min_length} value"
                                  f"{'s' * (self.min_length > 1)}, got {len(value)}")
            items = [self._coerce(v, self.item_type, label) for v in value]
            for v in items:
                self._check_range(v, label)
            return items
        if value is None and self.default is None:
            return None
        coerced = self._coerce(value, self.type, label)
        self._check_range(coerced, label)
        return coerced

    def _check_range(self, value: Any, label: str) -> None:
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(map(str, self.choices))
            raise ConfigError(f"{label}: {value!r} is not one of: {allowed}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(value, float) and value != value or value in (float("inf"),
                                                                         float("-inf")):
                raise ConfigError(f"{label}: {value!r} is not a finite number")
            if self.low is not None and value < self.low:
                raise ConfigError(f"{label}: {value!r} is below the minimum {self.low}")
            if self.high is not None and value > self.high:
                raise ConfigError(f"{label}: {value!r} is above the maximum {self.high}")

    @staticmethod
    def _coerce(value: Any, typ: type, label: str) -> Any:
        if typ is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "yes", "no"}:
                return value.lower() in {"true", "1", "yes"}
            raise ConfigError(f"{label}: expected true or false, got {value!r}")
        if typ is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if typ is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if typ is str and isinstance(value, str):
            return value
        if typ is str and isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # --set train.devices=2 reads 2 as a TOML integer
        if isinstance(value, str) and typ in (int, float):
            try:
                return typ(value)
            except ValueError:
                pass
        if typ not in (bool, float, int, str) and isinstance(value, typ):
            return value
        raise ConfigError(f"{label}: expected {typ.__name__}, got {value!r}")


def validate_params(
    params: Sequence[Param], given: Mapping[str, Any], where: str
) -> dict[str, Any]:
    """Merge ``given`` over the declared defaults, rejecting unknown keys and bad values."""
    known = {p.name: p for p in params}
    unknown = sorted(set(given) - set(known))
    if unknown:
        allowed = ", ".join(sorted(known)) or "(none)"
        raise ConfigError(f"{where}: unknown parameter {unknown[0]!r}; known parameters: {allowed}")
    resolved: dict[str, Any] = {}
    for p in params:
        value = given.get(p.name, p.default)
        resolved[p.name] = p.validate(value, where) if p.name in given else _copy_default(p.default)
    return resolved


def _copy_default(value: Any) -> Any:
    # Each run gets its own copy: a plugin mutating a default must not leak into the next run.
    import copy

    return copy.deepcopy(value) if isinstance(value, (list, dict)) else value


#: the defaults of :class:`astroclr.api.Preprocessing`, which a dataset's ``preprocessing``
#: overrides key by key
PREPROCESSING_DEFAULTS: dict[str, Any] = {"bin": 2, "stretch": "linear", "softening": 1.0,
                                          "normalize": "minmax"}


def preprocessing_params(defaults: Any) -> tuple[Param, ...]:
    """The preprocessing parameters every dataset with a ``preprocessing`` default inherits,
    declared once here with that dataset's defaults (a mapping or a Preprocessing, so a
    plugin's hook module need not import numpy)."""
    given = defaults.to_dict() if hasattr(defaults, "to_dict") else dict(defaults)
    unknown = sorted(set(given) - set(PREPROCESSING_DEFAULTS))
    if unknown:
        raise PluginError(f"preprocessing: unknown key {unknown[0]!r}; keys: "
                          f"{', '.join(PREPROCESSING_DEFAULTS)}")
    d = {**PREPROCESSING_DEFAULTS, **given}
    return (
        Param("bin", int, d["bin"], "k x k flux-conserving binning", low=1, high=16),
        Param("stretch", str, d["stretch"], "linear, or asinh(x / softening) for flux data",
              choices=("linear", "asinh")),
        Param("softening", float, d["softening"], "asinh softening, image units", low=1e-12),
        Param("normalize", str, d["normalize"], "per-image [0, 1] over all bands (minmax), or "
              "none", choices=("minmax", "none")),
    )
