"""What a plugin's tests need, without reaching into astroclr's internals.

Public and covered by the plugin contract (:data:`astroclr.api.API_VERSION`), like
:mod:`astroclr.api`; importing it is cheap (numpy and astropy load when a function needs them).
Each function does what a run does, so a test passes through the same checks users meet::

    from astroclr import testing

    reg = testing.registry(my_plugin.hooks)             # installed plugins + yours
    params = testing.validate_params(reg.get("dataset", "mysurvey"), {"path": "x.npz"})
    cfg = testing.resolve_config({"run": {"dataset": "mysurvey"}}, registry=reg)
    galaxies = testing.synthetic_galaxies(n=80, bands=("g", "r"))
    results = testing.run_evaluators(EvalContext(galaxies, reps, tmp_path), ["mine"], registry=reg)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:
    from astroclr.data.galaxies import Galaxies
    from astroclr.evaluate.context import EvalContext, EvalResult
    from astroclr.plugin.registry import Registry
    from astroclr.plugin.specs import Param
    from astroclr.resolved import Config
    from astroclr.runs.rundir import Run

__all__ = ["registry", "validate_params", "resolve_config", "run_evaluators",
           "synthetic_galaxies", "open_run"]

#: where the core reports a spec's parameters, by the spec's kind
_WHERE = {"DatasetSpec": "dataset", "BackboneSpec": "backbone", "MethodSpec": "method",
          "AugmentationSpec": "augment.{}", "EvaluatorSpec": "evaluate.{}"}


def registry(*plugins: Any, installed: bool = True) -> "Registry":
    """A fresh registry: the installed plugins (the built-ins among them, ``ASTROCLR_PLUGINS``
    honoured) unless ``installed=False``, plus each of ``plugins`` (a hook module or object)
    registered under its module name, as if it were installed."""
    from astroclr.plugin.registry import Registry

    reg = Registry(load_entry_points=installed)
    for plugin in plugins:
        if not reg.pm.is_registered(plugin):  # already loaded through its entry point
            reg.register(plugin, getattr(plugin, "__name__", type(plugin).__name__))
    return reg


def validate_params(spec: Any, params: Mapping[str, Any] | None = None,
                    where: str | None = None) -> dict[str, Any]:
    """``params`` checked against what ``spec`` declares and merged over its defaults, as a run
    does (a dataset's inherited preprocessing parameters and an augmentation's ``p``
    included); a bad value raises the :class:`~astroclr.api.ConfigError` a user would see.

    0.1.0's form, a sequence of :class:`~astroclr.api.Param` and the key prefix
    (``validate_params(spec.params, given, "dataset")``), works too.
    """
    from astroclr.plugin.params import validate_params as validate

    given = dict(params or {})
    kind = type(spec).__name__
    if kind not in _WHERE:  # a sequence of Param
        return validate(tuple(spec), given, where or "params")
    if kind == "AugmentationSpec":
        from astroclr.data.augment import augmentation_params

        declared: Sequence["Param"] = augmentation_params(spec)
    else:
        declared = getattr(spec, "all_params", spec.params)
    return validate(declared, given, where or _WHERE[kind].format(spec.name))


def resolve_config(config: str | Path | Mapping[str, Any] | None = None, *,
                   sets: Sequence[str] = (), preset: str | None = None,
                   registry: "Registry | None" = None, **shortcuts: Any) -> "Config":
    """The frozen configuration a run would use: defaults ← ``preset`` ← ``config`` (a TOML
    path or tables such as ``{"run": {"dataset": "mysurvey"}}``) ← ``sets``
    (``"dataset.path=x.npz"``) ← ``shortcuts`` (``epochs=1``), validated against ``registry``
    (default: the installed plugins). ``cfg.dataset`` holds the dataset's resolved parameters."""
    from astroclr.config import assemble_config, resolve
    from astroclr.plugin.registry import get_registry

    raw = assemble_config(config, sets, preset=preset, **shortcuts)
    return resolve(raw, registry if registry is not None else get_registry())


def run_evaluators(context: "EvalContext", names: Sequence[str],
                   params: Mapping[str, Mapping[str, Any]] | None = None,
                   registry: "Registry | None" = None) -> dict[str, "EvalResult"]:
    """Run evaluators on ``context`` as a run does: each one's ``[evaluate.<name>]`` table
    (``params``) validated over its defaults, in the order their ``needs`` give. Returns the
    results by name (``context.results``)."""
    from astroclr.evaluate.context import resolve_evaluator_params
    from astroclr.evaluate.context import run_evaluators as run
    from astroclr.plugin.registry import get_registry

    reg = registry if registry is not None else get_registry()
    resolved = resolve_evaluator_params(reg, list(names), dict(params or {}))
    return run(reg, list(names), resolved, context)


def synthetic_galaxies(n: int = 80, bands: Sequence[str] = ("g", "r"), size: int = 16,
                       classes: int = 2, seed: int = 0, str_ids: bool = False) -> "Galaxies":
    """A small, seeded :class:`~astroclr.api.Galaxies`: round blobs whose width depends on the
    integer ``label`` (0 .. ``classes``-1, so a probe can learn it), noise, ids ``0..n-1`` (or
    ``"G0000"``... with ``str_ids``), 0.4″ pixels and 1″ seeing in every band."""
    import numpy as np

    from astroclr.data.galaxies import Galaxies, SurveyInfo

    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    width = (size / 8) * (1.0 + labels)[:, None, None, None]
    images = np.exp(-(xx ** 2 + yy ** 2)[None, None] / (2 * width ** 2))
    images = images * np.ones((1, len(bands), 1, 1)) + 0.05 * rng.normal(
        size=(n, len(bands), size, size))
    survey = SurveyInfo.create("synthetic", tuple(bands), pixel_scale=0.4,
                               psf_fwhm={b: 1.0 for b in bands})
    ids = [f"G{i:04d}" for i in range(n)] if str_ids else None
    return Galaxies.from_arrays(images.astype(np.float32), survey, ids=ids, labels=labels)


def open_run(path: str | Path) -> "Run":
    """A finished run directory as a ``Run``: ``.dir``, ``.config`` and ``.state`` (run.json)
    as dicts, ``.metrics``, ``.report``, ``.embeddings()``, ``.galaxies()``; an
    :class:`~astroclr.api.AstroclrError` if ``path`` holds no run."""
    from astroclr.runs.rundir import open_run as _open

    return _open(path)
