"""A trained encoder loaded from its run directory, with the preprocessing its run used."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

import astroclr.config as cfgmod
from astroclr.plugin.specs import AstroclrError
from astroclr.session.build import build_backbone
from astroclr.session.rundir import open_run


class TrainedModel:
    """A trained encoder with the preprocessing its run used.

    ``embed(images)`` takes raw cutouts of the trained bands, (N, C, H, W) or (C, H, W), as the
    dataset reads them (before binning and normalisation), and returns (N, D) representations.
    """

    def __init__(self, encoder: Any, bands: Sequence[str], preprocessing: Any, image_size: int,
                 device: str = "cpu", batch_size: int = 512) -> None:
        self.encoder = encoder.eval().to(device)
        self.bands = tuple(bands)
        self.preprocessing = preprocessing
        self.image_size = image_size
        self.device = device
        self.batch_size = batch_size
        #: the run directory it was loaded from (set by :func:`load`)
        self.run_dir: Path | None = None

    def embed(self, images: Any) -> np.ndarray:
        from astroclr.evaluate.embed import embed_images

        x = self.preprocessing.for_model(images, self.bands, self.image_size, "embed",
                                         "the model")
        return embed_images(self.encoder, x, self.batch_size, self.device)

    def finetune(self, out: str | Path, *, dataset: str | None = None, sets: Sequence[str] = (),
                 label_column: str | None = None, labels: int | None = None, seed: int = 0,
                 mode: str = "finetune", overwrite: bool = False, progress: bool = False,
                 labels_file: str | Path | None = None, **recipe: Any) -> Any:
        """Train a classifier on this run's encoder from the labelled galaxies of a dataset
        (default: the run's own) and write it to ``out``; returns the loaded
        :class:`astroclr.classify.classifier.Classifier`. As ``astroclr finetune``; ``recipe``
        sets fields of :class:`astroclr.classify.recipe.Recipe` (``max_steps=500``, ...);
        ``labels_file`` trains on exactly the galaxies of a CSV/FITS labels file (``id`` +
        label column)."""
        from astroclr.classify.apply import finetune_run

        if self.run_dir is None:
            raise AstroclrError("finetune: this model was not loaded from a run directory "
                                "(use astroclr.load(RUN))")
        return finetune_run(self.run_dir, out, dataset, sets, label_column, labels, seed, mode,
                            overwrite, progress, device=self.device, labels_file=labels_file,
                            **recipe)

    def suggest(self, n: int, labels: Any = None, *, seed: int = 0, strategy: str = "diverse",
                label_column: str | None = None) -> Any:
        """The ``n`` galaxies of this run to label next, as ``astroclr suggest``: a table of
        ``id``, ``rank``, ``reason``, ``score`` (and the probe's guess when warm). ``labels``
        is a labels file (CSV/FITS, ``id`` + label column) of the galaxies labelled so far;
        see :mod:`astroclr.classify.suggest`."""
        from astroclr.classify.suggest import suggest_run

        if self.run_dir is None:
            raise AstroclrError("suggest: this model was not loaded from a run directory "
                                "(use astroclr.load(RUN))")
        return suggest_run(self.run_dir, n, labels, seed=seed, strategy=strategy,
                           label_column=label_column).table


def load(run_dir: str | Path, device: str | None = None) -> TrainedModel:
    """Load the trained encoder of a run directory for embedding new images."""
    import torch

    from astroclr.data.preprocess import Preprocessing
    from astroclr.plugin.registry import get_registry
    from astroclr.train.model import Encoder

    existing = open_run(run_dir)
    weights = existing.rundir.load_encoder_weights()
    registry = get_registry()
    cfg = cfgmod.resolve(existing.config, registry)
    state = existing.state
    backbone = build_backbone(registry, cfg, len(state["bands"]), state["image_size"])
    encoder = Encoder(backbone, cfg.train.representation_dim)
    try:
        encoder.load_state_dict(weights)
    except Exception as exc:
        raise AstroclrError(f"{existing.rundir.model} does not match the run's backbone: "
                            f"{' '.join(str(exc).split())[:200]}") from None
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = TrainedModel(encoder, state["bands"], Preprocessing(**state["preprocessing"]),
                         state["image_size"], device, cfg.train.embed_batch_size)
    model.run_dir = existing.rundir.path
    return model
