"""The public surface for plugins: everything a dataset, augmentation, backbone, method,
evaluator or command plugin may import from astroclr, in one place.

Importing this module is cheap: each name is looked up in its home module on first use, so a
plugin's hook module can ``from astroclr.api import DatasetSpec, Param`` at the top and
``astroclr --help`` stays instant. ``__all__`` is the contract: those names keep their meaning
for as long as :data:`API_VERSION` stays the same, and one that moves keeps working for a
release with a ``DeprecationWarning`` naming its new import. A plugin's tests use
:mod:`astroclr.testing`.

Example::

    from astroclr.api import DatasetSpec, Param, hookimpl

    @hookimpl
    def astroclr_datasets():
        yield DatasetSpec("mysurvey", "my survey's cutouts", "astroclr_mysurvey.dataset:load",
                          params=(Param("path", str, "", "a .npy cube"),))
"""

from __future__ import annotations

import importlib
from typing import Any

#: The version of the plugin contract (the names in ``__all__`` and what they mean). It goes
#: up when a change would break a plugin written against it; additions leave it alone. A
#: plugin that wants to refuse a contract it does not know: ``if API_VERSION != 1: raise ...``.
API_VERSION = 1

#: public name -> the module that owns it
_PUBLIC: dict[str, str] = {
    # the contract
    "hookimpl": "astroclr.plugin.hookspecs",
    **dict.fromkeys(("Param", "DatasetSpec", "AugmentationSpec", "BackboneSpec", "EvaluatorSpec",
                     "MethodSpec", "ViewSpec", "CommandSpec", "ModelSpec", "Ref", "RESULT_KINDS",
                     "AstroclrError", "ConfigError", "PluginError"), "astroclr.plugin.specs"),
    "Registry": "astroclr.plugin.registry",
    # training methods
    "Method": "astroclr.train.method",
    "TrainingStep": "astroclr.train.method",
    # data
    "Galaxies": "astroclr.data.galaxies",
    "SurveyInfo": "astroclr.data.galaxies",
    "Preprocessing": "astroclr.data.preprocess",
    "Skip": "astroclr.data.prepared",
    "SkipGalaxy": "astroclr.data.prepared",
    "ChunkResult": "astroclr.data.prepared",
    "PrepareSource": "astroclr.data.prepared",
    "GalaxiesSource": "astroclr.data.prepared",
    "write_prepared": "astroclr.data.prepare",
    "open_prepared": "astroclr.data.prepared",
    # evaluation: the context, the shared splits
    "EvalContext": "astroclr.evaluate.context",
    "EvalResult": "astroclr.evaluate.context",
    "Split": "astroclr.evaluate.splits",
    "make_split": "astroclr.evaluate.splits",
    # the classifier protocol (a result of kind "classifier" joins the label-efficiency curve)
    "Task": "astroclr.evaluate.classifiers",
    "Model": "astroclr.evaluate.classifiers",
    "evaluate_classifiers": "astroclr.evaluate.classifiers",
    "checked_labels": "astroclr.evaluate.classifiers",
    "checked_features": "astroclr.evaluate.classifiers",
    "class_names": "astroclr.evaluate.classifiers",
    "ids_digest": "astroclr.files",
    "majority_baseline": "astroclr.evaluate.classifiers",
    "feature_models": "astroclr.evaluate.models",
    "linear_model": "astroclr.evaluate.models",
    "mlp_model": "astroclr.evaluate.models",
    # the regression protocol
    "RegressionTask": "astroclr.evaluate.regression",
    "Regressor": "astroclr.evaluate.regression",
    "evaluate_regressors": "astroclr.evaluate.regression",
    "ridge_model": "astroclr.evaluate.regression",
    # metrics and their formatting
    "SCALAR_METRICS": "astroclr.evaluate.metrics",
    "METRIC_TITLES": "astroclr.evaluate.metrics",
    "REGRESSION_METRICS": "astroclr.evaluate.metrics",
    "REGRESSION_TITLES": "astroclr.evaluate.metrics",
    "classification_metrics": "astroclr.evaluate.metrics",
    "regression_metrics": "astroclr.evaluate.metrics",
    "mean_std": "astroclr.evaluate.metrics",
    "fmt": "astroclr.evaluate.metrics",
    # shared baseline features (EvalContext.baseline caches them)
    "central_colours": "astroclr.evaluate.baselines",
    "pca_features": "astroclr.evaluate.baselines",
    "pca_rows": "astroclr.evaluate.baselines",
    "untrained_features": "astroclr.evaluate.baselines",
    "PCA_MAX_FIT": "astroclr.evaluate.baselines",
    "COLOUR_APERTURE": "astroclr.evaluate.baselines",
    "UNTRAINED_SEED": "astroclr.evaluate.baselines",
    # neighbours and figures
    "NeighbourIndex": "astroclr.evaluate.index",
    "index_of": "astroclr.evaluate.ids",
    "nearest": "astroclr.evaluate.query",
    "montage": "astroclr.evaluate.montage",
    "to_rgb": "astroclr.evaluate.montage",
    # files
    "safe_name": "astroclr.runs.rundir",
    "atomic_write": "astroclr.files",
    "check_writable": "astroclr.files",
}

#: names the built-in plugins share with the core: importable, but outside the contract (not in
#: ``__all__``; they may change in any release)
_BUILTIN: dict[str, str] = {
    "Encoder": "astroclr.train.model",
    "single_class_prediction": "astroclr.evaluate.models",
    "Recipe": "astroclr.classify.recipe",
    "AUGMENTS": "astroclr.classify.recipe",
    "INITS": "astroclr.classify.recipe",
    "AnomalyScorer": "astroclr.evaluate.anomaly",
    "ANOMALY_COMPONENTS": "astroclr.evaluate.anomaly_defaults",
    "DEFAULT_ANOMALY_COMPONENTS": "astroclr.evaluate.anomaly_defaults",
    "UNLABELLED": "astroclr.classify.recipe",
    "unlabelled_rows": "astroclr.classify.semisup",
    "scratch_encoder": "astroclr.classify.parts",
    "train_classifier": "astroclr.classify.finetune",
    "holdout": "astroclr.classify.parts",
    "select_augment": "astroclr.classify.parts",
    "forward_all": "astroclr.classify.parts",
    "classifier_net": "astroclr.classify.classifier",
}

__all__ = sorted(["API_VERSION", *_PUBLIC])


def __getattr__(name: str) -> Any:
    from astroclr.moved import GONE, MOVED, moved

    if name in MOVED["astroclr.api"]:
        return moved("astroclr.api", name)
    home = _PUBLIC.get(name) or _BUILTIN.get(name)
    if home is None:
        gone = GONE.get(f"astroclr.api.{name}")
        raise AttributeError(f"astroclr.api has no {name!r}" + (
            f" since 0.2.0: {gone}" if gone else "; its names are listed in astroclr.api.__all__"))
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
