"""Composing augmentation plugins into the pipeline that makes SimCLR's two views.

The pipeline runs on whole batches on the training device, after the batch was transferred:
each step draws, per image, whether it applies (probability ``p``) from a seeded
``torch.Generator``, and applies the step to the chosen images only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from astroclr.plugin.specs import ConfigError, Param, validate_params

if TYPE_CHECKING:
    import torch

    from astroclr.data.galaxies import SurveyInfo
    from astroclr.plugin.registry import Registry

P_PARAM = Param("p", float, 0.5, "probability of applying this augmentation", low=0.0, high=1.0)


@dataclass
class Step:
    name: str
    fn: Callable[["torch.Tensor", "torch.Generator"], "torch.Tensor"]
    p: float
    always: bool


class Pipeline:
    """A sequence of augmentations applied to a batch; call as ``pipeline(x, generator)``."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = list(steps)

    def __call__(self, x: "torch.Tensor", generator: "torch.Generator") -> "torch.Tensor":
        import torch

        for step in self.steps:
            if step.always or step.p >= 1.0:
                x = step.fn(x, generator).to(x.dtype)
                continue
            if step.p <= 0.0:
                continue
            chosen = torch.rand(x.shape[0], generator=generator, device=x.device) < step.p
            idx = chosen.nonzero().squeeze(1)
            if idx.numel() == 0:
                continue
            out = x.clone()
            out[idx] = step.fn(x[idx], generator).to(x.dtype)
            x = out
        return x

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.steps]

    def check(self, images: Any, seed: int = 0) -> None:
        """Apply every step once to a few real images, so a parameter that only fails on the
        data (a blur kernel larger than the image, say) fails before any training starts."""
        import numpy as np
        import torch

        from astroclr.plugin.specs import AstroclrError

        x = torch.from_numpy(np.ascontiguousarray(images[:2], dtype=np.float32))
        gen = torch.Generator().manual_seed(seed)
        for step in self.steps:
            try:
                out = step.fn(x, gen)
            except AstroclrError:
                raise
            except Exception as exc:
                raise ConfigError(f"augment.{step.name}: fails on this dataset's "
                                  f"{tuple(x.shape[1:])} images: {exc}") from exc
            if tuple(out.shape) != tuple(x.shape):
                raise ConfigError(f"augment.{step.name}: changed the batch shape from "
                                  f"{tuple(x.shape)} to {tuple(out.shape)}")


def resolve_augment_config(
    registry: "Registry", config: Mapping[str, Any]
) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Validate the ``[augment]`` config: ``pipeline`` (names, in order) and per-name params.

    Returns the pipeline names and, for each, its resolved parameters including ``p``.
    """
    names = list(config.get("pipeline", []))
    extra = sorted(set(config) - {"pipeline"} - set(names))
    if extra:
        known = registry.parts("augmentation")
        bad = [e for e in extra if e not in known]
        if bad:
            registry.get("augmentation", bad[0])  # raises: lists what is available
        raise ConfigError(f"augment.{extra[0]}: parameters given for an augmentation that is not "
                          f"in augment.pipeline ({', '.join(names) or 'empty'})")
    if len(set(names)) != len(names):
        raise ConfigError(f"augment.pipeline lists an augmentation twice: {names}")
    resolved: dict[str, dict[str, Any]] = {}
    for name in names:
        spec = registry.get("augmentation", name)
        given = dict(config.get(name, {}))
        declared = tuple(spec.params)
        if not spec.always:
            declared = (Param("p", float, spec.default_p, P_PARAM.help, low=0.0, high=1.0),) + declared
        resolved[name] = validate_params(declared, given, f"augment.{name}")
    return names, resolved


def build_pipeline(
    registry: "Registry",
    survey: "SurveyInfo",
    names: Sequence[str],
    params: Mapping[str, Mapping[str, Any]],
) -> Pipeline:
    """Build each augmentation for this survey; plugin ``build`` may raise ConfigError."""
    steps = []
    for name in names:
        spec = registry.get("augmentation", name)
        kwargs = dict(params.get(name, {}))
        p = 1.0 if spec.always else kwargs.pop("p", spec.default_p)
        fn = spec.build(survey, **kwargs)
        steps.append(Step(name, fn, float(p), bool(spec.always)))
    return Pipeline(steps)


def pipeline_from_config(registry: "Registry", survey: "SurveyInfo",
                         augment: Mapping[str, Any]) -> Pipeline:
    """The pipeline of a resolved ``[augment]`` table (``pipeline`` plus per-name params)."""
    params = {k: v for k, v in augment.items() if k != "pipeline"}
    return build_pipeline(registry, survey, augment["pipeline"], params)
