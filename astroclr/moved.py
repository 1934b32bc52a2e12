"""Where the names that 0.1.0 documented went: one table, read by the alias modules, the plugin
loader's error messages and CHANGELOG.md's migration table (a test checks that they agree).

The old modules (``astroclr/specs.py`` ...) are three lines each: their attributes are looked up
here on use (PEP 562), and each use warns with a :class:`MovedWarning` (a DeprecationWarning)
naming the exact new import. They go in 0.3.0.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any, Callable

#: the release that removes the aliases
REMOVED_IN = "0.3.0"

_API = "astroclr.api"

#: old module -> {name: new "module.name"}; the first entry of each module is where the module
#: as a whole went (for ``ModuleNotFoundError`` messages once the aliases are gone)
MOVED: dict[str, dict[str, str]] = {
    "astroclr.specs": {
        **{n: f"{_API}.{n}" for n in (
            "Param", "DatasetSpec", "AugmentationSpec", "BackboneSpec", "EvaluatorSpec",
            "CommandSpec", "MethodSpec", "ViewSpec", "Ref", "RESULT_KINDS", "AstroclrError",
            "ConfigError", "PluginError")},
        "validate_params": "astroclr.testing.validate_params",
    },
    "astroclr.hookspecs": {"hookimpl": f"{_API}.hookimpl"},
    "astroclr.plugins": {
        "Registry": f"{_API}.Registry",
        "PluginError": f"{_API}.PluginError",
        "get_registry": "astroclr.plugin.registry.get_registry",
    },
    "astroclr.data": {"Galaxies": f"{_API}.Galaxies", "SurveyInfo": f"{_API}.SurveyInfo"},
    "astroclr.preprocess": {"Preprocessing": f"{_API}.Preprocessing"},
    "astroclr.prepared": {
        "open_prepared": f"{_API}.open_prepared",
        "prepare_dataset": "astroclr.data.prepare.prepare_dataset",
        "release_pages": "astroclr.data.prepared.release_pages",
    },
    "astroclr.preview": {"write_preview": "astroclr.data.preview.write_preview"},
    "astroclr.augment": {"Pipeline": "astroclr.data.augment.Pipeline"},
    "astroclr.evaluate": {"EvalContext": f"{_API}.EvalContext",
                          "EvalResult": f"{_API}.EvalResult"},
    "astroclr.splits": {"make_split": f"{_API}.make_split", "Split": f"{_API}.Split"},
    "astroclr.similar": {"find_similar": "astroclr.session.similar.find_similar"},
    "astroclr.embed": {"embed_to_npy": "astroclr.evaluate.embed.embed_to_npy"},
    "astroclr.model": {"GlobalBatchNorm": "astroclr.train.model.GlobalBatchNorm"},
    "astroclr.report": {"write_metrics": "astroclr.session.report.write_metrics"},
    "astroclr.runner": {
        "run": "astroclr.run",
        "open_run": "astroclr.runs.rundir.open_run",
        "evaluate_run": "astroclr.session.runner.evaluate_run",
        "assemble_config": "astroclr.config.assemble_config",
    },
    # documented in astroclr.api's table in 0.1.0, internal from 0.2.0 (not in its __all__)
    "astroclr.api": {
        "checked_split": "astroclr.evaluate.classifiers.checked_split",
        "resolve_sizes": "astroclr.evaluate.classifiers.resolve_sizes",
        "blas_threads": "astroclr.evaluate.parallel.blas_threads",
        "balanced_resample": "astroclr.evaluate.models.balanced_resample",
    },
}

#: names that went without a one-to-one replacement: old "module.name" -> what to do instead
GONE: dict[str, str] = {
    "astroclr.api.PREPROCESSING_PARAMS": "give DatasetSpec(preprocessing=...) your defaults; "
                                         "spec.all_params lists the parameters it inherits",
}

#: modules that are packages now and keep their own code; the rest are three-line aliases
PACKAGES = ("astroclr.data", "astroclr.evaluate", "astroclr.api")


class MovedWarning(DeprecationWarning):
    """An import path of astroclr 0.1.0 was used; the message names its replacement."""


def new_home(old: str) -> str | None:
    """What to do instead of an old ``module.name`` or module ("use astroclr.api.Param"), or
    None if it did not move."""
    module, _, name = old.rpartition(".")
    if old in GONE:
        return GONE[old]
    if module in MOVED and name in MOVED[module]:
        return f"use {MOVED[module][name]}"
    if old in MOVED and old not in PACKAGES:
        return "use " + ", ".join(sorted({t.rpartition(".")[0] for t in MOVED[old].values()}))
    return None


def _load(target: str) -> Any:
    module, _, name = target.rpartition(".")
    return getattr(importlib.import_module(module), name)


def moved(module: str, name: str, stacklevel: int = 3) -> Any:
    """The object ``module.name`` now is, after warning that the old path goes."""
    target = MOVED[module][name]
    warnings.warn(f"{module}.{name} is deprecated and goes in astroclr {REMOVED_IN}; "
                  f"use {target}", MovedWarning, stacklevel=stacklevel)
    return _load(target)


def alias(module: str) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for an old module kept as an alias."""
    names = sorted(MOVED[module])

    def __getattr__(name: str) -> Any:
        if name in MOVED[module]:
            return moved(module, name)
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(f"module {module!r} (an alias kept until astroclr {REMOVED_IN}) "
                             f"has no {name!r}; it keeps: {', '.join(names)}")

    return __getattr__, lambda: names, names
