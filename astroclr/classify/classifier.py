"""A trained classifier and its directory: the encoder plus a linear head, and what it needs.

::

    weights.pt        the network's state_dict (tensors only: loaded with weights_only=True)
    classifier.json   class names and label values, bands, image size, preprocessing, the
                      backbone to rebuild, the recipe, the run it came from, label column
    metrics.json      its validation metrics (held-out part of its labels)

Every file is written atomically, ``classifier.json`` last: a directory without it is not a
classifier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from astroclr.files import atomic_path, read_json, write_json
from astroclr.plugin.specs import AstroclrError

if TYPE_CHECKING:
    import torch

FORMAT = "astroclr-classifier"
WEIGHTS, META, METRICS = "weights.pt", "classifier.json", "metrics.json"


def classifier_net(encoder: "torch.nn.Module", n_classes: int) -> "torch.nn.Module":
    """The encoder with a linear head on its representation: images -> class logits."""
    from torch import nn

    dim = int(encoder.representation.out_features)
    return nn.Sequential(encoder, nn.Linear(dim, n_classes))


@dataclass
class ClassifierInfo:
    """Everything about a classifier but its weights (``classifier.json``)."""

    classes: list[int]
    class_names: list[str]
    bands: list[str]
    image_size: int
    preprocessing: dict[str, Any]
    backbone: str
    backbone_params: dict[str, Any]
    representation_dim: int
    label_column: str = "label"
    mode: str = "finetune"
    recipe: dict[str, Any] = field(default_factory=dict)
    run: str = ""
    dataset: str = ""
    #: the dataset table the classifier was trained with (``predict`` starts from it)
    dataset_params: dict[str, Any] = field(default_factory=dict)
    n_train: int = 0
    n_val: int = 0

    def to_dict(self) -> dict[str, Any]:
        from astroclr.version import __version__

        return {"format": FORMAT, "astroclr_version": __version__, **self.__dict__}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ClassifierInfo":
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


class ClassifierDoc(BaseModel):
    """The schema of ``classifier.json`` (strict types; more fields allowed)."""

    model_config = ConfigDict(strict=True, extra="allow")
    format: Literal["astroclr-classifier"]
    classes: list[int] = Field(min_length=2)
    class_names: list[str] = Field(min_length=2)
    bands: list[str] = Field(min_length=1)
    image_size: int = Field(gt=0)
    preprocessing: dict[str, Any]
    backbone: str = Field(min_length=1)
    backbone_params: dict[str, Any]
    representation_dim: int = Field(gt=0)
    label_column: str = "label"
    mode: Literal["finetune", "probe"] = "finetune"
    recipe: dict[str, Any] = {}
    run: str = ""
    dataset: str = ""
    dataset_params: dict[str, Any] = {}
    n_train: int = Field(default=0, ge=0)
    n_val: int = Field(default=0, ge=0)

    @field_validator("preprocessing")
    @classmethod
    def _preprocessing(cls, value: dict[str, Any]) -> dict[str, Any]:
        from astroclr.runs.state import check_preprocessing

        return check_preprocessing(value)

    @model_validator(mode="after")
    def _names_match(self) -> "ClassifierDoc":
        if len(self.class_names) != len(self.classes):
            raise ValueError(f"class_names has {len(self.class_names)} names for "
                             f"{len(self.classes)} classes")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError("classes holds a label value twice")
        return self


def write_classifier(out: str | Path, net: "torch.nn.Module", info: ClassifierInfo,
                     metrics: Mapping[str, Any]) -> Path:
    """Write a classifier directory (weights, metrics, then classifier.json)."""
    import torch

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / WEIGHTS) as tmp:
        torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, tmp)
    write_json(out / METRICS, metrics)
    write_json(out / META, info.to_dict())
    return out


def check_classifier_out(out: Path, overwrite: bool) -> None:
    """A one-line error unless ``out`` may become a classifier directory: absent, empty (but
    for the lock of the finetune writing it), or a classifier to replace with ``overwrite``."""
    from astroclr.lock import LOCK_NAME

    if out.exists() and not out.is_dir():
        raise AstroclrError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(p.name != LOCK_NAME for p in out.iterdir()):
        if not (out / META).is_file():
            raise AstroclrError(f"--out {out} is a non-empty directory that is not a classifier; "
                                f"choose another")
        if not overwrite:
            raise AstroclrError(f"--out {out} already holds a classifier; pass --overwrite to "
                                f"replace it")


def read_info(path: str | Path) -> ClassifierInfo:
    """``classifier.json`` of a classifier directory; a one-line error when it is not one."""
    path = Path(path)
    meta = path / META
    if not meta.is_file():
        raise AstroclrError(f"{path} is not an astroclr classifier directory (no {META}); make "
                            f"one with astroclr finetune RUN --out {path}")
    from astroclr.schema import read_document

    _, doc = read_document(ClassifierDoc, meta)
    return ClassifierInfo.from_dict(doc)


class Classifier:
    """A trained classifier with the preprocessing and bands it was trained on.

    ``predict_proba(images)`` and ``predict(images)`` take raw cutouts of its bands, (N, C, H, W)
    or (C, H, W), as a dataset reads them (before binning and normalisation).
    """

    def __init__(self, net: "torch.nn.Module", info: ClassifierInfo, device: str = "cpu",
                 batch_size: int = 512, path: Path | None = None) -> None:
        self.net = net.eval().to(device)
        self.info = info
        self.device = device
        self.batch_size = batch_size
        self.path = path

    @property
    def class_names(self) -> list[str]:
        return list(self.info.class_names)

    @property
    def classes(self) -> list[int]:
        return list(self.info.classes)

    @property
    def bands(self) -> tuple[str, ...]:
        return tuple(self.info.bands)

    @property
    def metrics(self) -> dict[str, Any]:
        return read_json(self.path / METRICS, {}) if self.path is not None else {}

    def _prepare(self, images: Any) -> np.ndarray:
        from astroclr.data.preprocess import Preprocessing

        return Preprocessing(**self.info.preprocessing).for_model(
            images, self.bands, self.info.image_size, "predict", "the classifier")

    def predict_proba_preprocessed(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (N, K) of images already preprocessed as the classifier's."""
        import torch

        from astroclr.evaluate.embed import embed_images

        softmax = torch.nn.Sequential(self.net, torch.nn.Softmax(dim=1))
        return embed_images(softmax, x, self.batch_size, self.device)

    def predict_proba(self, images: Any) -> np.ndarray:
        """Class probabilities (N, K), columns in :attr:`class_names` order."""
        return self.predict_proba_preprocessed(self._prepare(images))

    def predict(self, images: Any) -> np.ndarray:
        """The predicted label value (an integer of the label column) of each image."""
        proba = self.predict_proba(images)
        return np.asarray(self.classes)[np.argmax(proba, axis=1)]


def build_net(info: ClassifierInfo) -> "torch.nn.Module":
    """An untrained network of the classifier's architecture."""
    import astroclr.config as cfgmod
    from astroclr.plugin.registry import get_registry
    from astroclr.runs.build import build_backbone
    from astroclr.train.model import Encoder

    registry = get_registry()
    cfg = cfgmod.resolve({"run": {"backbone": info.backbone, "evaluators": []},
                          "backbone": dict(info.backbone_params)}, registry)
    backbone = build_backbone(registry, cfg, len(info.bands), info.image_size)
    return classifier_net(Encoder(backbone, info.representation_dim), len(info.classes))


def load_classifier(path: str | Path, device: str | None = None) -> Classifier:
    """Load a classifier directory written by ``astroclr finetune``."""
    from astroclr.train.weights import load_into, pick_device, read_weights

    path = Path(path)
    info = read_info(path)
    weights_file = path / WEIGHTS
    if not weights_file.is_file():
        raise AstroclrError(f"classifier {path} has no {WEIGHTS}")
    net = load_into(build_net(info), read_weights(weights_file), weights_file,
                    f"the classifier's architecture ({info.backbone})")
    return Classifier(net, info, pick_device(device), path=path)


def check_trained_weights(net: Any) -> None:
    """A one-line error, before anything is written, when training left NaN/inf weights."""
    import torch

    bad = [n for n, t in net.state_dict().items()
           if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise AstroclrError(f"fine-tuning diverged: {len(bad)} weight tensors hold NaN or inf "
                            f"(first {bad[0]}); nothing was written; lower recipe.lr / "
                            f"recipe.encoder_lr")


def class_names_of(classes: Sequence[int], label_names: Sequence[str] | None) -> list[str]:
    """Display names of label values: the dataset's names where it has them, else the value."""
    return [str(label_names[c]) if label_names is not None and 0 <= c < len(label_names)
            else str(c) for c in classes]
