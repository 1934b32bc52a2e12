"""astroclr: self-supervised representations of galaxy images.

The public API is small and importing it is cheap (torch loads on first use)::

    import astroclr
    run = astroclr.run(dataset="sdss", backbone="resnet18", out="runs/demo")
    model = astroclr.load("runs/demo")
    vectors = model.embed(images)          # (N, 64) numpy array
    clf = model.finetune("classifiers/demo", labels=300)   # fine-tune on 300 labels
    probabilities = astroclr.load_classifier("classifiers/demo").predict_proba(images)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from astroclr.plugin.hookspecs import hookimpl
from astroclr.plugin.specs import AstroclrError, ConfigError
from astroclr.version import __version__

__all__ = ["run", "load", "load_classifier", "hookimpl", "AstroclrError", "ConfigError",
           "__version__"]

if TYPE_CHECKING:
    from astroclr.classify.classifier import Classifier
    from astroclr.runs.rundir import Run
    from astroclr.session.trained import TrainedModel


def run(config: Any = None, **kwargs: Any) -> "Run":
    """Train, embed and evaluate; see :func:`astroclr.session.runner.run`."""
    from astroclr.session.runner import run as _run

    return _run(config, **kwargs)


def load(run_dir: Any = None, device: str | None = None, *,
         model: str | None = None) -> "TrainedModel":
    """Load a trained model from a run directory or model package (``astroclr export``), or
    the installed model plugin ``model``; see :func:`astroclr.session.trained.load`."""
    from astroclr.session.trained import load as _load

    return _load(run_dir, device=device, model=model)


def load_classifier(path: Any, device: str | None = None) -> "Classifier":
    """Load a classifier directory (``astroclr finetune``); see
    :func:`astroclr.classify.classifier.load_classifier`."""
    from astroclr.classify.classifier import load_classifier as _load

    return _load(path, device=device)
