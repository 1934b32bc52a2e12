"""The plugin contract: one hook per kind of part.

A plugin is a module registered under the ``astroclr`` entry-point group. It implements any
of these hooks with ``@astroclr.hookimpl``; each hook returns (or yields) typed specs from
:mod:`astroclr.plugin.specs`. The built-in plugins in ``plugins/`` use exactly this path.

Register the module in your package's ``pyproject.toml``::

    [project.entry-points.astroclr]
    mysurvey = "astroclr_mysurvey.hooks"

Keep the hook module light: import torch, astropy etc. inside the callables, so that
``astroclr --help`` and ``astroclr plugins`` stay instant.
"""

from __future__ import annotations

from typing import Iterable

import pluggy

from astroclr.plugin.specs import (
    AugmentationSpec,
    BackboneSpec,
    CommandSpec,
    DatasetSpec,
    EvaluatorSpec,
    MethodSpec,
    ModelSpec,
)

hookspec = pluggy.HookspecMarker("astroclr")
hookimpl = pluggy.HookimplMarker("astroclr")


@hookspec
def astroclr_datasets() -> Iterable[DatasetSpec]:
    """Datasets this plugin provides.

    Example::

        from astroclr import hookimpl
        from astroclr.plugin.specs import DatasetSpec, Param

        def load(path: str, size: int):
            from astroclr.data.galaxies import Galaxies, SurveyInfo
            import numpy as np
            images = np.load(path).astype("float32")          # (N, C, H, W)
            survey = SurveyInfo.create("mysurvey", bands=("g", "r"), pixel_scale=0.2,
                                       psf_fwhm={"g": 0.8, "r": 0.7})
            return Galaxies.from_arrays(images, survey, ids=np.arange(len(images)))

        @hookimpl
        def astroclr_datasets():
            yield DatasetSpec("mysurvey", "My survey's cutouts", load,
                              params=(Param("path", str, "", "a .npy cube"),
                                      Param("size", int, 32, "cutout size, px", low=8)))
    """


@hookspec
def astroclr_augmentations() -> Iterable[AugmentationSpec]:
    """Batched augmentations this plugin provides.

    Example::

        from astroclr import hookimpl
        from astroclr.plugin.specs import AugmentationSpec, Param

        def build(survey, sigma: float):                   # "p" is handled by the pipeline
            def add_noise(x, generator):                      # x: (B, C, H, W) float
                import torch
                noise = torch.randn(x.shape, generator=generator, device=x.device)
                return x + sigma * noise.to(x.dtype)
            return add_noise

        @hookimpl
        def astroclr_augmentations():
            yield AugmentationSpec("mynoise", "white noise of fixed sigma", build,
                                   params=(Param("sigma", float, 0.01, "noise sigma", low=0),))
    """


@hookspec
def astroclr_backbones() -> Iterable[BackboneSpec]:
    """Backbones (feature extractors) this plugin provides.

    Example::

        from astroclr import hookimpl
        from astroclr.plugin.specs import BackboneSpec, Param

        def build(in_channels: int, image_size: int, width: int):
            import torch.nn as nn
            net = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(),
                                nn.AdaptiveAvgPool2d(1), nn.Flatten())
            net.num_features = width
            return net

        @hookimpl
        def astroclr_backbones():
            yield BackboneSpec("tiny", "one conv layer", build,
                               params=(Param("width", int, 16, "channels", low=1),))
    """


@hookspec
def astroclr_methods() -> Iterable[MethodSpec]:
    """Self-supervised methods (training objectives) this plugin provides.

    Example (SimSiam from lightly's parts)::

        from astroclr.api import MethodSpec, Param, hookimpl

        def build(encoder, hidden_dim, output_dim, weight: float):
            import torch
            from lightly.loss import NegativeCosineSimilarity
            from lightly.models.modules import SimSiamPredictionHead, SimSiamProjectionHead

            from astroclr.api import Method

            class SimSiam(Method):
                def __init__(self):
                    super().__init__()
                    width = encoder.representation.out_features
                    self.head = SimSiamProjectionHead(width, hidden_dim, output_dim)
                    self.predictor = SimSiamPredictionHead(output_dim, hidden_dim, output_dim)
                    self.criterion = NegativeCosineSimilarity()

                def training_loss(self, views, encoder, step):  # views: two (B, C, H, W)
                    z = self.head(encoder(torch.cat(views)))
                    p1, p2 = self.predictor(z).chunk(2)
                    z1, z2 = z.detach().chunk(2)
                    return weight * (self.criterion(p1, z2) + self.criterion(p2, z1)) / 2

            return SimSiam()

        @hookimpl
        def astroclr_methods():
            yield MethodSpec("simsiam", "SimSiam: stop-gradient, no negatives", build,
                             params=(Param("weight", float, 1.0, "loss scale", low=0.0),))
    """


@hookspec
def astroclr_evaluators() -> Iterable[EvaluatorSpec]:
    """Evaluators (measurements of representation quality) this plugin provides.

    Example::

        from astroclr import hookimpl
        from astroclr.plugin.specs import EvaluatorSpec

        def evaluate(context):
            from astroclr.evaluate.context import EvalResult
            norms = (context.representations ** 2).sum(1) ** 0.5
            return EvalResult(metrics={"mean_norm": float(norms.mean())},
                              markdown=f"Mean representation norm: {norms.mean():.3f}")

        @hookimpl
        def astroclr_evaluators():
            yield EvaluatorSpec("norm", "mean norm of the representations", evaluate)
    """


@hookspec
def astroclr_commands() -> Iterable[CommandSpec]:
    """CLI sub-command groups this plugin adds (``astroclr <name> ...``).

    Example::

        from astroclr import hookimpl
        from astroclr.plugin.specs import CommandSpec

        def make_app():
            import typer
            app = typer.Typer(help="Tools for my survey")

            @app.command()
            def download(catalog: str):
                print("fetching frames for", catalog)
            return app

        @hookimpl
        def astroclr_commands():
            yield CommandSpec("mysurvey", "tools for my survey", make_app)
    """


@hookspec
def astroclr_models() -> Iterable[ModelSpec]:
    """Pretrained encoders this plugin ships: model packages written by ``astroclr export``,
    used as ``--model NAME`` (``astroclr embed --model NAME``, ``astroclr.load(model=NAME)``)
    and listed by ``astroclr models``.

    Example (the package directory ``galaxy64/`` copied into the plugin's folder, and
    declared as package data: ``[tool.setuptools.package-data] astroclr_mymodels = ["galaxy64/*"]``)::

        from pathlib import Path

        from astroclr.api import ModelSpec, hookimpl

        @hookimpl
        def astroclr_models():
            yield ModelSpec("galaxy64", "SimCLR on SDSS gri, 64 px composites",
                            Path(__file__).parent / "galaxy64")
    """
