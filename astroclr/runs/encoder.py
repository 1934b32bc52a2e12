"""A trained encoder loaded from its run directory or model package, with the preprocessing
its run used: what embedding, fine-tuning, prediction and the shift check build on. The
user-facing model (``astroclr.load``, with its ``finetune`` and ``suggest`` conveniences) is
:class:`astroclr.session.trained.TrainedModel`, this class plus what sits above classify."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

import astroclr.config as cfgmod
from astroclr.plugin.specs import AstroclrError
from astroclr.runs.build import build_backbone
from astroclr.runs.rundir import open_run


def _is_paths(images: Any) -> bool:
    if isinstance(images, (str, os.PathLike)):
        return True
    return isinstance(images, (list, tuple)) and bool(images) and \
        all(isinstance(i, (str, os.PathLike)) for i in images)


class TrainedEncoder:
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


def load_encoder(run_dir: str | Path | None = None, device: str | None = None, *,
                 model: str | None = None,
                 kind: type[TrainedEncoder] = TrainedEncoder) -> TrainedEncoder:
    """Load the trained encoder of a run directory or model package (``astroclr export``), or
    of the installed model plugin ``model`` (``astroclr models``), for embedding new images;
    as a ``kind`` (a subclass adds what the layers above offer)."""
    from astroclr.data.preprocess import Preprocessing
    from astroclr.plugin.registry import get_registry
    from astroclr.runs.package import model_source
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
    trained = kind(encoder, state["bands"], Preprocessing(**state["preprocessing"]),
                   state["image_size"], device, cfg.train.embed_batch_size,
                   dataset=cfg.run.dataset, dataset_params=cfg.dataset,
                   raw_size=state.get("raw_size"))
    trained.run_dir = existing.rundir.path
    return trained
