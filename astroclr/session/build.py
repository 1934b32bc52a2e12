"""Building a run's parts from its resolved configuration: dataset, backbone, SimCLR model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from astroclr.plugin.specs import AstroclrError

if TYPE_CHECKING:
    import torch

    from astroclr.data.galaxies import Galaxies
    from astroclr.plugin.registry import Registry
    from astroclr.resolved import Config


def load_dataset(registry: "Registry", cfg: "Config") -> "Galaxies":
    """The configured dataset plugin's galaxies."""
    from astroclr.data.galaxies import Galaxies

    spec = registry.get("dataset", cfg.run.dataset)
    galaxies = spec.load(**cfg.dataset)
    if not isinstance(galaxies, Galaxies):
        raise AstroclrError(f"dataset {spec.name!r} returned {type(galaxies).__name__}, not Galaxies")
    return galaxies


def build_backbone(registry: "Registry", cfg: "Config", in_channels: int,
                   image_size: int) -> "torch.nn.Module":
    """A fresh backbone of the configured kind."""
    spec = registry.get("backbone", cfg.run.backbone)
    module = spec.build(in_channels, image_size, **cfg.backbone)
    if not hasattr(module, "num_features"):
        raise AstroclrError(f"backbone {spec.name!r} has no num_features attribute")
    return module


def build_training(registry: "Registry", cfg: "Config") -> tuple["Galaxies", Any, Any]:
    """Load data and build model and augmentations; raises before anything is written."""
    import lightning as L

    from astroclr.data.augment import pipeline_from_config
    from astroclr.evaluate.context import check_targets
    from astroclr.train.devices import check_trainer_options
    from astroclr.train.model import SimCLRModel

    L.seed_everything(cfg.run.seed, workers=True, verbose=False)
    check_trainer_options(cfg.train)
    galaxies = load_dataset(registry, cfg)
    check_targets(registry, cfg.run.evaluators, cfg.evaluate, cfg.run.label_column, galaxies)
    pipeline = pipeline_from_config(registry, galaxies.survey, cfg.augment)
    pipeline.check(galaxies.images, cfg.run.seed)
    backbone = build_backbone(registry, cfg, len(galaxies.bands), galaxies.image_size)
    t = cfg.train
    model = SimCLRModel(backbone, pipeline, t.representation_dim, t.projection_hidden_dim,
                        t.projection_dim, t.temperature, t.lr, t.weight_decay,
                        t.warmup_fraction, seed=cfg.run.seed, channels_last=t.on_gpu)
    if t.on_gpu:
        import torch

        model = model.to(memory_format=torch.channels_last)
    return galaxies, model, pipeline
