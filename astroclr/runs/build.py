"""Building a run's parts from its resolved configuration: dataset, backbone, method, model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from astroclr.plugin.specs import AstroclrError

if TYPE_CHECKING:
    import torch

    from astroclr.data.augment import Pipeline
    from astroclr.data.galaxies import Galaxies, SurveyInfo
    from astroclr.plugin.registry import Registry
    from astroclr.plugin.specs import ViewSpec
    from astroclr.resolved import Config
    from astroclr.train.method import Method


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


def build_method(registry: "Registry", cfg: "Config", encoder: "torch.nn.Module") -> "Method":
    """The configured self-supervised method, built for ``encoder``."""
    from astroclr.train.method import Method

    spec = registry.get("method", cfg.train.method)
    method = spec.build(encoder, cfg.train.projection_hidden_dim, cfg.train.projection_dim,
                        **cfg.method)
    if not isinstance(method, Method):
        raise AstroclrError(f"method {spec.name!r} returned {type(method).__name__}, not a "
                            f"Method (astroclr.api.Method)")
    if not method.views:
        raise AstroclrError(f"method {spec.name!r} declares no views")
    return method


def view_pipelines(registry: "Registry", cfg: "Config", survey: "SurveyInfo", base: "Pipeline",
                   views: "tuple[ViewSpec, ...]", images: Any) -> list["Pipeline"]:
    """One pipeline per view: the configured one, or a variant with the view's parameter
    overrides (for augmentations in the pipeline; validated like the config's own)."""
    from astroclr.config import merge
    from astroclr.data.augment import pipeline_from_config, resolve_augment_config

    table = dict(cfg.augment)
    built: dict[str, "Pipeline"] = {}
    out = []
    for view in views:
        overrides = {k: dict(v) for k, v in view.augment.items() if k in table["pipeline"]}
        if not overrides:
            out.append(base)
            continue
        key = repr(sorted(overrides.items()))
        if key not in built:
            names, params = resolve_augment_config(registry, merge(table, overrides))
            built[key] = pipeline_from_config(registry, survey, {"pipeline": names, **params})
            built[key].check(images, cfg.run.seed)
        out.append(built[key])
    return out


def build_training(registry: "Registry", cfg: "Config") -> tuple["Galaxies", Any, Any]:
    """Load data and build model and augmentations; raises before anything is written."""
    import lightning as L

    from astroclr.data.augment import pipeline_from_config
    from astroclr.evaluate.context import check_targets
    from astroclr.train.devices import check_trainer_options
    from astroclr.train.model import Encoder, SelfSupervisedModel

    L.seed_everything(cfg.run.seed, workers=True, verbose=False)
    check_trainer_options(cfg.train)
    galaxies = load_dataset(registry, cfg)
    check_targets(registry, cfg.run.evaluators, cfg.evaluate, cfg.run.label_column, galaxies)
    pipeline = pipeline_from_config(registry, galaxies.survey, cfg.augment)
    pipeline.check(galaxies.images, cfg.run.seed)
    backbone = build_backbone(registry, cfg, len(galaxies.bands), galaxies.image_size)
    t = cfg.train
    # Built in this order (encoder, then the method's heads) so that a seed gives the weights
    # it gave before methods were plugins.
    encoder = Encoder(backbone, t.representation_dim)
    method = build_method(registry, cfg, encoder)
    pipelines = view_pipelines(registry, cfg, galaxies.survey, pipeline, method.views,
                               galaxies.images)
    model = SelfSupervisedModel(encoder, method, pipelines, t.lr, t.weight_decay,
                                t.warmup_fraction, seed=cfg.run.seed, channels_last=t.on_gpu)
    if t.on_gpu:
        import torch

        model = model.to(memory_format=torch.channels_last)
    return galaxies, model, pipeline
