"""Typed records that plugins hand to the core, and the validation of their parameters.

Every part a plugin provides (dataset, augmentation, backbone, evaluator) is described by a
small frozen record: a name, a one-line description, the callable that builds it, and the
parameters it accepts. Declaring parameters (type, default, range) lets the core validate a
config file or a ``--set`` override before any data is read or any training starts.

This module imports nothing heavy, so the CLI can list plugins instantly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence


class AstroclrError(Exception):
    """An error caused by the user's input: reported as one line, never as a traceback."""


class ConfigError(AstroclrError):
    """A configuration key or value is invalid."""


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

    def validate(self, value: Any, where: str) -> Any:
        """Return ``value`` coerced to this parameter's type, or raise ConfigError naming ``where``."""
        label = f"{where}.{self.name}"
        if self.type is list:
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                raise ConfigError(f"{label}: expected a list, got {value!r}")
            if self.length is not None and len(value) != self.length:
                raise ConfigError(f"{label}: expected {self.length} values, got {len(value)}")
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


class Ref:
    """A callable named ``"package.module:attribute"``, imported on its first call.

    Every spec accepts such a string wherever it takes a callable, so a plugin's hook module
    needs no lazy-import shim of its own: ``EvaluatorSpec("norm", "...", "my_pkg.norm:evaluate")``.
    """

    def __init__(self, ref: str, owner: str) -> None:
        module, sep, attr = ref.partition(":")
        if not sep or not module or not attr or not all(
                part.isidentifier() for part in module.split(".") + attr.split(".")):
            raise PluginError(f"{owner}: {ref!r} is not a 'package.module:attribute' reference")
        self.ref, self.owner = ref, owner
        self._target: Callable[..., Any] | None = None

    def resolve(self) -> Callable[..., Any]:
        """The referenced callable (imported once); a one-line error if it cannot be."""
        if self._target is None:
            import importlib

            module, _, attr = self.ref.partition(":")
            try:
                target: Any = importlib.import_module(module)
                for name in attr.split("."):
                    target = getattr(target, name)
            except Exception as exc:  # ImportError, AttributeError, or the module's own error
                raise PluginError(f"{self.owner}: cannot load {self.ref!r}: "
                                  f"{type(exc).__name__}: {exc}") from None
            if not callable(target):
                raise PluginError(f"{self.owner}: {self.ref!r} is not callable")
            self._target = target
        return self._target

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Ref({self.ref!r})"


class PluginError(AstroclrError):
    """A plugin is missing, misnamed or broken."""


def _callables(spec: Any, kind: str, *names: str) -> None:
    """Turn ``"module:attr"`` strings of ``spec``'s callable fields into :class:`Ref`s."""
    for name in names:
        value = getattr(spec, name)
        if isinstance(value, str):
            object.__setattr__(spec, name, Ref(value, f"{kind} {spec.name!r}"))
        elif value is not None and not callable(value):
            raise PluginError(f"{kind} {spec.name!r}: {name} must be a callable or a "
                              f"'module:attr' string, got {type(value).__name__}")
    if hasattr(spec, "params") and not isinstance(spec.params, tuple):
        object.__setattr__(spec, "params", tuple(spec.params))


@dataclass(frozen=True)
class DatasetSpec:
    """A source of galaxy images.

    ``load(**params)`` returns an :class:`astroclr.api.Galaxies`. A dataset that gives
    ``preprocessing`` (its defaults, e.g. ``Preprocessing(bin=2)``) inherits the core's
    preprocessing parameters (``bin``, ``stretch``, ``softening``, ``normalize``): they are
    declared, validated and passed to ``load`` by the core. ``suggested`` holds augmentation
    parameters that suit the survey (``{"psf": {"fwhm": [0.4, 0.9]}}``: seeing in arcsec for
    its pixel scale), applied unless the user sets them.
    """

    name: str
    description: str
    load: Callable[..., Any] | str
    params: tuple[Param, ...] = ()
    #: optional ``prepare(out_dir, **params)``: write the dataset in astroclr's prepared
    #: (memory-mapped) format, streaming, resumable; used by ``astroclr prepare``
    prepare: Callable[..., Any] | str | None = None
    #: default preprocessing (an ``astroclr.api.Preprocessing``); None: the dataset handles it
    preprocessing: Any = None
    #: suggested augmentation parameters, by augmentation name
    suggested: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _callables(self, "dataset", "load", "prepare")

    @property
    def all_params(self) -> tuple[Param, ...]:
        """The dataset's own parameters, plus the core's preprocessing ones it inherits."""
        if self.preprocessing is None:
            return self.params
        own = {p.name for p in self.params}
        return self.params + tuple(p for p in preprocessing_params(self.preprocessing)
                                   if p.name not in own)


@dataclass(frozen=True)
class AugmentationSpec:
    """A batched, device-side augmentation.

    ``build(survey, **params)`` returns a callable ``aug(x, generator) -> x`` acting on a
    float batch (B, C, H, W) on whatever device ``x`` lives; ``survey`` is the dataset's
    :class:`astroclr.api.SurveyInfo` (bands, pixel scale, PSF, noise). The pipeline applies
    the augmentation to each image independently with probability ``p`` (a parameter every
    augmentation has; ``always=True`` parts ignore it and always apply).
    """

    name: str
    description: str
    build: Callable[..., Any] | str
    params: tuple[Param, ...] = ()
    default_p: float = 0.5
    always: bool = False

    def __post_init__(self) -> None:
        _callables(self, "augmentation", "build")


@dataclass(frozen=True)
class BackboneSpec:
    """A feature extractor.

    ``build(in_channels, image_size, **params)`` returns a ``torch.nn.Module`` mapping
    (B, C, H, W) to (B, F) with an integer attribute ``num_features`` = F.
    """

    name: str
    description: str
    build: Callable[..., Any] | str
    params: tuple[Param, ...] = ()

    def __post_init__(self) -> None:
        _callables(self, "backbone", "build")


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


#: kinds of evaluator result: ``classifier`` results join the label-efficiency curve,
#: ``regressor`` results the regression table; anything else is ``generic``
RESULT_KINDS = ("generic", "classifier", "regressor")
#: what an evaluator requires of its target column: integer classes or continuous values
TARGET_KINDS = ("class", "value")


@dataclass(frozen=True)
class EvaluatorSpec:
    """A measurement of representation quality.

    ``evaluate(context, **params)`` takes an :class:`astroclr.api.EvalContext` and returns an
    :class:`astroclr.api.EvalResult` (metrics, figures, report section).

    - ``provides``: the kind of result (``RESULT_KINDS``); a ``classifier`` evaluator built on
      :func:`astroclr.api.evaluate_classifiers` appears on the label-efficiency curve;
    - ``needs``: result kinds or evaluator names this evaluator reads from
      ``context.results``; it runs after every evaluator that provides them, whatever the
      order of ``run.evaluators``;
    - ``target``: what it requires of its target column, ``"class"`` (integer labels, -1 =
      none) or ``"value"`` (floats, NaN = none), checked right after the dataset is loaded and
      before anything is trained or written; ``target_param`` names the evaluator parameter
      holding the column (default: ``run.label_column``).
    """

    name: str
    description: str
    evaluate: Callable[..., Any] | str
    params: tuple[Param, ...] = ()
    provides: str = "generic"
    needs: tuple[str, ...] = ()
    target: str | None = None
    target_param: str | None = None

    def __post_init__(self) -> None:
        _callables(self, "evaluator", "evaluate")
        if self.provides not in RESULT_KINDS:
            raise PluginError(f"evaluator {self.name!r}: provides={self.provides!r} is not one of "
                              f"{', '.join(RESULT_KINDS)}")
        if self.target is not None and self.target not in TARGET_KINDS:
            raise PluginError(f"evaluator {self.name!r}: target={self.target!r} is not one of "
                              f"{', '.join(TARGET_KINDS)}")
        if self.target_param is not None and self.target_param not in {p.name for p in self.params}:
            raise PluginError(f"evaluator {self.name!r}: target_param {self.target_param!r} is not "
                              f"one of its parameters")
        object.__setattr__(self, "needs", tuple(self.needs))


@dataclass(frozen=True)
class CommandSpec:
    """A CLI sub-command group a plugin adds, e.g. ``astroclr sdss download``.

    ``make_app()`` returns a ``typer.Typer`` (built lazily so listing plugins stays fast).
    """

    name: str
    description: str
    make_app: Callable[[], Any] | str

    def __post_init__(self) -> None:
        _callables(self, "command", "make_app")


#: The kinds of part, keyed by the word used in configs, CLI output and errors, with the spec
#: type each kind's hook must yield.
SPEC_TYPES: dict[str, type] = {"dataset": DatasetSpec, "augmentation": AugmentationSpec,
                               "backbone": BackboneSpec, "evaluator": EvaluatorSpec,
                               "command": CommandSpec}
KINDS = tuple(SPEC_TYPES)


@dataclass(frozen=True)
class Provided:
    """A spec together with the distribution that provides it (for ``astroclr plugins``)."""

    kind: str
    spec: Any
    package: str
    version: str
    extra: dict = field(default_factory=dict)
