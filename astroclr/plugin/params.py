"""Declared parameters of plugin parts, their validation, and the preprocessing parameters
the core declares for every dataset.

This module imports nothing heavy, so the CLI can list plugins instantly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from astroclr.plugin.errors import PluginError


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
        return validate_params((self,), {self.name: value}, where)[self.name]


def validate_params(
    params: Sequence[Param], given: Mapping[str, Any], where: str
) -> dict[str, Any]:
    """Merge ``given`` over the declared defaults, rejecting unknown keys and bad values.

    The checks are pydantic's (:mod:`astroclr.plugin.validation`, imported here rather than at
    the top: listing plugins and ``--help`` must not pay for pydantic)."""
    from astroclr.plugin.validation import validate_with

    return validate_with(params, given, where)


def model_params(model: Any, defaults: Mapping[str, Any] | None = None) -> tuple[Param, ...]:
    """The fields of a pydantic model (a core table) as Param records, for the docs and code
    written against the Param tuples; ``defaults`` override the declared ones."""
    from astroclr.plugin.validation import describe

    out = []
    for name, field in model.model_fields.items():
        kw = describe(field)
        if defaults and name in defaults:
            kw["default"] = defaults[name]
        out.append(Param(name, kw.pop("type"), kw.pop("default"), kw.pop("help"), **kw))
    return tuple(out)


def __getattr__(name: str) -> Any:
    # PREPROCESSING_DEFAULTS is read off the Preprocessing model (numpy and pydantic), so only
    # on first use: listing plugins imports this module.
    if name == "PREPROCESSING_DEFAULTS":
        from astroclr.plugin.preprocessing import PreprocessingOptions

        return PreprocessingOptions.defaults()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def preprocessing_params(defaults: Any) -> tuple[Param, ...]:
    """The preprocessing parameters every dataset with a ``preprocessing`` default inherits:
    the fields of :class:`astroclr.api.Preprocessing` with that dataset's defaults (a mapping
    or a Preprocessing, so a plugin's hook module need not import numpy)."""
    from astroclr.plugin.preprocessing import PreprocessingOptions as Preprocessing

    given = defaults.to_dict() if hasattr(defaults, "to_dict") else dict(defaults)
    unknown = sorted(set(given) - set(Preprocessing.model_fields))
    if unknown:
        raise PluginError(f"preprocessing: unknown key {unknown[0]!r}; keys: "
                          f"{', '.join(Preprocessing.model_fields)}")
    return model_params(Preprocessing, given)
