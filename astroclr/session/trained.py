"""A trained encoder loaded from its run directory or model package, with the preprocessing
its run used."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

import astroclr.config as cfgmod
from astroclr.plugin.specs import AstroclrError
from astroclr.session.build import build_backbone
from astroclr.session.rundir import open_run


def _is_paths(images: Any) -> bool:
    if isinstance(images, (str, os.PathLike)):
        return True
    return isinstance(images, (list, tuple)) and bool(images) and \
        all(isinstance(i, (str, os.PathLike)) for i in images)


class TrainedModel:
    """A trained encoder with the preprocessing its run used.

    ``embed(images)`` takes raw cutouts of the trained bands, (N, C, H, W) or (C, H, W), as the
    dataset reads them (before binning and normalisation), or image files (a path or a list of
    them, read by the run's dataset plugin with the run's dataset parameters), and returns
    (N, D) representations. ``preprocess(raw)`` gives the encoder's input itself (what the
    package's ONNX encoder takes).
    """

    def __init__(self, encoder: Any, bands: Sequence[str], preprocessing: Any, image_size: int,
                 device: str = "cpu", batch_size: int = 512, dataset: str | None = None,
                 dataset_params: Mapping[str, Any] | None = None,
                 raw_size: int | None = None) -> None:
        self.encoder = encoder.eval().to(device)
        self.bands = tuple(bands)
        self.preprocessing = preprocessing
        self.image_size = image_size
        self.device = device
        self.batch_size = batch_size
        #: the dataset plugin and parameters of the run: how its image files are read
        self.dataset = dataset
        self.dataset_params = dict(dataset_params or {})
        self.raw_size = int(raw_size or image_size * preprocessing.bin)
        #: the run directory or model package it was loaded from (set by :func:`load`)
        self.run_dir: Path | None = None

    def preprocess(self, images: Any) -> np.ndarray:
        """Raw cutouts (or image files) → the encoder's input, float32 (N, C, size, size)."""
        if _is_paths(images):
            images = self.read_images([images] if isinstance(images, (str, os.PathLike))
                                      else images)
        return self.preprocessing.for_model(images, self.bands, self.image_size, "embed",
                                            "the model")

    def embed(self, images: Any) -> np.ndarray:
        from astroclr.evaluate.embed import embed_images

        return embed_images(self.encoder, self.preprocess(images), self.batch_size, self.device)

    def read_images(self, paths: Sequence[str | Path]) -> np.ndarray:
        """Image files as raw (N, C, raw_size, raw_size) cutouts: through the dataset plugin's
        ``read_image`` with the run's dataset parameters (crop, resize, bands) when it has one,
        else the core's reader of FITS cutouts and composites at the raw size."""
        from astroclr.data.cutouts import read_cutout
        from astroclr.data.guards import check_query_file
        from astroclr.plugin.registry import get_registry

        reader = None
        if self.dataset is not None:
            reader = get_registry().get("dataset", self.dataset).read_image
        want = (len(self.bands), self.raw_size, self.raw_size)
        out = []
        for path in paths:
            check_query_file(path)  # the same guards whichever reader decodes it
            if reader is None:
                out.append(read_cutout(path, self.bands, self.raw_size))
                continue
            raw = np.asarray(reader(path, dict(self.dataset_params)), dtype=np.float32)
            if raw.shape != want:
                raise AstroclrError(f"image {path}: dataset {self.dataset!r} read it as shape "
                                    f"{raw.shape}, but the model takes raw cutouts of {want}")
            out.append(raw)
        return np.stack(out)

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


def load(run_dir: str | Path | None = None, device: str | None = None, *,
         model: str | None = None) -> TrainedModel:
    """Load the trained encoder of a run directory or model package (``astroclr export``), or
    of the installed model plugin ``model`` (``astroclr models``), for embedding new images."""
    from astroclr.data.preprocess import Preprocessing
    from astroclr.plugin.registry import get_registry
    from astroclr.session.package import model_source
    from astroclr.train.model import Encoder
    from astroclr.train.weights import load_into, pick_device

    existing = open_run(model_source(run_dir, model))
    weights = existing.rundir.load_encoder_weights()
    registry = get_registry()
    cfg = cfgmod.resolve(existing.config, registry)
    state = existing.state
    backbone = build_backbone(registry, cfg, len(state["bands"]), state["image_size"])
    encoder = load_into(Encoder(backbone, cfg.train.representation_dim), weights,
                        existing.rundir.model, "the run's backbone")
    device = pick_device(device)
    trained = TrainedModel(encoder, state["bands"], Preprocessing(**state["preprocessing"]),
                           state["image_size"], device, cfg.train.embed_batch_size,
                           dataset=cfg.run.dataset, dataset_params=cfg.dataset,
                           raw_size=state.get("raw_size"))
    trained.run_dir = existing.rundir.path
    return trained
