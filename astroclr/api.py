"""The public surface for plugins: everything a dataset, augmentation, backbone, evaluator or
command plugin may import from astroclr, in one place.

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
    "CommandSpec": "astroclr.plugin.specs",
    "AstroclrError": "astroclr.plugin.specs",
    "ConfigError": "astroclr.plugin.specs",
    "Registry": "astroclr.plugin.registry",
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
    "nearest": "astroclr.evaluate.similar",
    "montage": "astroclr.evaluate.similar",
    # classifiers (fine-tuning the trained encoder)
    "Recipe": "astroclr.classify.finetune",
    "train_classifier": "astroclr.classify.finetune",
    "holdout": "astroclr.classify.finetune",
    "select_augment": "astroclr.classify.finetune",
    "forward_all": "astroclr.classify.finetune",
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
