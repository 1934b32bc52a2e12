"""Typed records that plugins hand to the core, and the validation of their parameters.

Every part a plugin provides (dataset, augmentation, backbone, method, evaluator) is described by a
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


@dataclass(frozen=True)
class DatasetSpec:
    """A source of galaxy images.

    ``load(**params)`` returns an :class:`astroclr.data.galaxies.Galaxies`.
    """

    name: str
    description: str
    load: Callable[..., Any]
    params: tuple[Param, ...] = ()
    #: optional ``prepare(out_dir, **params)``: write the dataset in astroclr's prepared
    #: (memory-mapped) format, streaming, resumable; used by ``astroclr prepare``
    prepare: Callable[..., Any] | None = None


@dataclass(frozen=True)
class AugmentationSpec:
    """A batched, device-side augmentation.

    ``build(survey, **params)`` returns a callable ``aug(x, generator) -> x`` acting on a
    float batch (B, C, H, W) on whatever device ``x`` lives; ``survey`` is the dataset's
    :class:`astroclr.data.galaxies.SurveyInfo` (bands, pixel scale, PSF, noise). The pipeline applies
    the augmentation to each image independently with probability ``p`` (a parameter every
    augmentation has; ``always=True`` parts ignore it and always apply).
    """

    name: str
    description: str
    build: Callable[..., Any]
    params: tuple[Param, ...] = ()
    default_p: float = 0.5
    always: bool = False


@dataclass(frozen=True)
class BackboneSpec:
    """A feature extractor.

    ``build(in_channels, image_size, **params)`` returns a ``torch.nn.Module`` mapping
    (B, C, H, W) to (B, F) with an integer attribute ``num_features`` = F.
    """

    name: str
    description: str
    build: Callable[..., Any]
    params: tuple[Param, ...] = ()


@dataclass(frozen=True)
class ViewSpec:
    """One augmented view of each image that a self-supervised method trains on.

    Every view comes from the same configured augmentation pipeline. A method that needs
    asymmetric views declares, per view, ``augment`` overrides of the parameters of
    augmentations in the pipeline (ignored for those not in it), and ``resize``, the side of the
    view as a fraction of the image side (multi-crop local views). Example, BYOL's asymmetric
    seeing and a DINO local crop::

        (ViewSpec(augment={"psf": {"p": 1.0}}), ViewSpec(augment={"psf": {"p": 0.1}}))
        ViewSpec(augment={"crop_resize": {"scale": [0.3, 0.6], "p": 1.0}}, resize=0.5)
    """

    augment: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    resize: float = 1.0


@dataclass(frozen=True)
class MethodSpec:
    """A self-supervised training method (objective), e.g. SimCLR, BYOL.

    ``build(encoder, hidden_dim, output_dim, **params)`` returns an
    :class:`astroclr.train.method.Method` (a ``torch.nn.Module``): its heads, loss and any extra
    state (momentum encoder, memory bank, centre), all saved in the training checkpoint.
    ``encoder`` is the student :class:`astroclr.train.model.Encoder` (backbone → representation,
    ``encoder.representation.out_features`` wide): copy it for a momentum encoder, do not keep it
    (the core passes it to every ``training_loss`` call). ``hidden_dim`` and ``output_dim`` are
    ``train.projection_hidden_dim`` and ``train.projection_dim``, the head widths every method
    shares so that methods compare at equal capacity. The method's ``views`` (default: two
    :class:`ViewSpec`) say which augmented views of each image it trains on.
    """

    name: str
    description: str
    build: Callable[..., Any]
    params: tuple[Param, ...] = ()


@dataclass(frozen=True)
class EvaluatorSpec:
    """A measurement of representation quality.

    ``evaluate(context, **params)`` takes an :class:`astroclr.evaluate.context.EvalContext` and
    returns an :class:`astroclr.evaluate.context.EvalResult` (metrics, figures, report section).
    """

    name: str
    description: str
    evaluate: Callable[..., Any]
    params: tuple[Param, ...] = ()


@dataclass(frozen=True)
class CommandSpec:
    """A CLI sub-command group a plugin adds, e.g. ``astroclr sdss download``.

    ``app`` is a ``typer.Typer`` (built lazily by ``make_app()`` so listing plugins stays fast).
    """

    name: str
    description: str
    make_app: Callable[[], Any]


#: The kinds of part, keyed by the word used in configs, CLI output and errors.
KINDS = ("dataset", "augmentation", "backbone", "method", "evaluator", "command")


@dataclass(frozen=True)
class Provided:
    """A spec together with the distribution that provides it (for ``astroclr plugins``)."""

    kind: str
    spec: Any
    package: str
    version: str
    extra: dict = field(default_factory=dict)
