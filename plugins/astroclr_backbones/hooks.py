"""Hook implementations of the built-in backbones plugin (ResNet-18/34/50, a small CNN)."""

from __future__ import annotations

from typing import Iterator

from astroclr.api import BackboneSpec, Param, hookimpl

_STEM = Param("stem", str, "imagenet", "input stem: imagenet (7x7/2 + max-pool, fastest), "
              "conv3s2 (3x3/2), conv3s1 (3x3/1, for 32 px cutouts, ~4x slower)",
              choices=("imagenet", "conv3s2", "conv3s1"))


@hookimpl
def astroclr_backbones() -> Iterator[BackboneSpec]:
    for arch, feats in (("resnet18", 512), ("resnet34", 512), ("resnet50", 2048)):
        yield BackboneSpec(arch, f"torchvision {arch} for any number of bands ({feats} features)",
                           f"astroclr_backbones.resnet:{arch}", params=(_STEM,))
    yield BackboneSpec("smallcnn", "small 8-conv network, quick on a CPU",
                       "astroclr_backbones.smallcnn:build",
                       params=(Param("width", int, 32, "channels of the first stage", low=4,
                                     high=512),))
