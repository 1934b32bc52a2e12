"""The public surface for plugins: everything a dataset, augmentation, backbone, method,
evaluator or command plugin may import from astroclr, in one place.

Importing this module is cheap: each name is looked up in its home module on first use, so a
plugin's hook module can ``from astroclr.api import DatasetSpec, Param`` at the top and
``astroclr --help`` stays instant. Names not listed here are internal and may move.

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

#: public name -> the module that owns it
_HOMES = {
    # the contract
    "hookimpl": "astroclr.plugin.hookspecs",
    "Param": "astroclr.plugin.specs",
    "DatasetSpec": "astroclr.plugin.specs",
    "AugmentationSpec": "astroclr.plugin.specs",
    "BackboneSpec": "astroclr.plugin.specs",
    "EvaluatorSpec": "astroclr.plugin.specs",
    "MethodSpec": "astroclr.plugin.specs",
    "ViewSpec": "astroclr.plugin.specs",
    "CommandSpec": "astroclr.plugin.specs",
    "ModelSpec": "astroclr.plugin.specs",
    "AstroclrError": "astroclr.plugin.specs",
    "ConfigError": "astroclr.plugin.specs",
    "Registry": "astroclr.plugin.registry",
    # training
    "Method": "astroclr.train.method",
    "TrainingStep": "astroclr.train.method",
    "Encoder": "astroclr.train.model",
    # data
    "Galaxies": "astroclr.data.galaxies",
    "SurveyInfo": "astroclr.data.galaxies",
    "Preprocessing": "astroclr.data.preprocess",
    "PREPROCESSING_PARAMS": "astroclr.data.preprocess",
    "Skip": "astroclr.data.prepared",
    "SkipGalaxy": "astroclr.data.prepared",
    "ChunkResult": "astroclr.data.prepared",
    "PrepareSource": "astroclr.data.prepared",
    "GalaxiesSource": "astroclr.data.prepared",
    "write_prepared": "astroclr.data.prepare",
    "open_prepared": "astroclr.data.prepared",
    # evaluation
    "EvalContext": "astroclr.evaluate.context",
    "EvalResult": "astroclr.evaluate.context",
    "Split": "astroclr.evaluate.splits",
    "make_split": "astroclr.evaluate.splits",
    "index_of": "astroclr.evaluate.similar",
    "RESULT_KINDS": "astroclr.plugin.specs",
    "Ref": "astroclr.plugin.specs",
    "PluginError": "astroclr.plugin.specs",
    # the classifier protocol (a result of kind "classifier" joins the label-efficiency curve)
    "Task": "astroclr.evaluate.classifiers",
    "Model": "astroclr.evaluate.classifiers",
    "evaluate_classifiers": "astroclr.evaluate.classifiers",
    "checked_labels": "astroclr.evaluate.classifiers",
    "checked_split": "astroclr.evaluate.classifiers",
    "checked_features": "astroclr.evaluate.classifiers",
    "class_names": "astroclr.evaluate.classifiers",
    "ids_digest": "astroclr.evaluate.classifiers",
    "resolve_sizes": "astroclr.evaluate.classifiers",
    "majority_baseline": "astroclr.evaluate.classifiers",
    "blas_threads": "astroclr.evaluate.parallel",
    "feature_models": "astroclr.evaluate.models",
    "linear_model": "astroclr.evaluate.models",
    "mlp_model": "astroclr.evaluate.models",
    "balanced_resample": "astroclr.evaluate.models",
    "single_class_prediction": "astroclr.evaluate.models",
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
    "PCA_MAX_FIT": "astroclr.evaluate.baselines",
    "COLOUR_APERTURE": "astroclr.evaluate.baselines",
    "UNTRAINED_SEED": "astroclr.evaluate.baselines",
    "untrained_features": "astroclr.evaluate.baselines",
    "safe_name": "astroclr.session.rundir",
    "nearest": "astroclr.evaluate.similar",
    "montage": "astroclr.evaluate.similar",
    "check_writable": "astroclr.files",
    "NeighbourIndex": "astroclr.evaluate.index",
    "to_rgb": "astroclr.evaluate.similar",
    "atomic_write": "astroclr.files",
    # classifiers (fine-tuning the trained encoder)
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

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"astroclr.api has no {name!r}; public names: {', '.join(__all__)}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
