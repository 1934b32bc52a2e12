"""Typed records that plugins hand to the core, and the validation of their parameters.

Every part a plugin provides (dataset, augmentation, backbone, method, evaluator) is described by a
small frozen record: a name, a one-line description, the callable that builds it, and the
parameters it accepts. Declaring parameters (type, default, range) lets the core validate a
config file or a ``--set`` override before any data is read or any training starts.

This module imports nothing heavy, so the CLI can list plugins instantly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from astroclr.plugin.errors import AstroclrError, ConfigError, PluginError
from astroclr.plugin.params import Param, preprocessing_params, validate_params

__all__ = ["AstroclrError", "ConfigError", "PluginError", "Param", "validate_params",
           "PREPROCESSING_DEFAULTS", "preprocessing_params", "Ref", "DatasetSpec",  # noqa: F822
           "AugmentationSpec", "BackboneSpec", "MethodSpec", "ViewSpec", "EvaluatorSpec",
           "CommandSpec", "ModelSpec", "RESULT_KINDS", "TARGET_KINDS", "SPEC_TYPES", "KINDS", "Provided"]


def __getattr__(name: str) -> Any:
    if name == "PREPROCESSING_DEFAULTS":  # derived from the Preprocessing model, on first use
        from astroclr.plugin import params

        return params.PREPROCESSING_DEFAULTS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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

    ``read_image(file, params)`` (optional) reads one image file in the form the dataset's
    own files come in (a survey's JPEG, a FITS cutout) and returns the raw (bands, H, W) float32
    cutout that ``load`` would have made of it, before the core's preprocessing: cropped,
    resized and in the bands' order of ``params`` (a dict: the run's dataset parameters, passed
    whole since a dataset's parameters may include ``path``). Queries by
    image (``astroclr similar --image``, ``TrainedModel.embed(paths)``) use it; a file it cannot
    read is a one-line :class:`AstroclrError` saying what it accepts. Without it, the core
    reads FITS cutouts and composites already at the raw size.
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
    #: optional ``read_image(file, params) -> (bands, H, W) float32``: one query image file
    read_image: Callable[..., Any] | str | None = None

    def __post_init__(self) -> None:
        _callables(self, "dataset", "load", "prepare", "read_image")

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


#: kinds of evaluator result: ``classifier`` results join the label-efficiency curve,
#: ``regressor`` results the regression table; anything else is ``generic``
RESULT_KINDS = ("generic", "classifier", "regressor")
#: what an evaluator requires of its target column: integer classes or continuous values
TARGET_KINDS = ("class", "value")


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
    build: Callable[..., Any] | str
    params: tuple[Param, ...] = ()

    def __post_init__(self) -> None:
        _callables(self, "method", "build")


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


@dataclass(frozen=True)
class ModelSpec:
    """A pretrained encoder: a model package (``astroclr export``) shipped inside a
    pip-installable package, usable as ``--model NAME`` wherever a run directory is.

    ``path`` is the package directory (a ``pathlib.Path``, typically beside the hook module), or
    a ``"module:attr"`` reference to a callable returning it. The directory is read, and its
    checksums verified, only when the model is used.
    """

    name: str
    description: str
    path: Any

    def __post_init__(self) -> None:
        import os

        if isinstance(self.path, str):
            object.__setattr__(self, "path", Ref(self.path, f"model {self.name!r}"))
        elif not (isinstance(self.path, os.PathLike) or callable(self.path)):
            raise PluginError(f"model {self.name!r}: path must be a directory (pathlib.Path), a "
                              f"callable or a 'module:attr' string, got {type(self.path).__name__}")

    def directory(self) -> Any:
        """The package directory as a ``pathlib.Path`` (calling ``path`` if it is callable)."""
        from pathlib import Path

        try:
            found = self.path() if callable(self.path) else self.path
        except PluginError:
            raise
        except Exception as exc:  # the plugin's own callable failed
            raise PluginError(f"model {self.name!r}: its path failed: {type(exc).__name__}: "
                              f"{exc}") from None
        return Path(found)


#: The kinds of part, keyed by the word used in configs, CLI output and errors, with the spec
#: type each kind's hook must yield.
SPEC_TYPES: dict[str, type] = {"dataset": DatasetSpec, "augmentation": AugmentationSpec,
                               "backbone": BackboneSpec, "method": MethodSpec,
                               "evaluator": EvaluatorSpec, "command": CommandSpec,
                               "model": ModelSpec}
KINDS = tuple(SPEC_TYPES)


@dataclass(frozen=True)
class Provided:
    """A spec together with the distribution that provides it (for ``astroclr plugins``)."""

    kind: str
    spec: Any
    package: str
    version: str
    extra: dict = field(default_factory=dict)
