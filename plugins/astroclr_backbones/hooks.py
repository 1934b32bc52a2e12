"""Hook implementations of the built-in backbones plugin (ResNet-18/34/50, a small CNN)."""

from __future__ import annotations

from typing import Iterator

from astroclr.api import BackboneSpec, Param, hookimpl

_STEM = Param("stem", str, "imagenet", "input stem: imagenet (7x7/2 + max-pool, fastest), "
              "conv3s2 (3x3/2), conv3s1 (3x3/1, for 32 px cutouts, ~4x slower)",
              choices=("imagenet", "conv3s2", "conv3s1"))


def _resnet(arch: str):
    def build(in_channels: int, image_size: int, stem: str):
        from astroclr_backbones.resnet import ResNetBackbone

        return ResNetBackbone(arch, in_channels, stem=stem)

    return build


def _small(in_channels: int, image_size: int, width: int):
    from astroclr_backbones.smallcnn import SmallCNN

    return SmallCNN(in_channels, width=width)


@hookimpl
def astroclr_backbones() -> Iterator[BackboneSpec]:
    for arch, feats in (("resnet18", 512), ("resnet34", 512), ("resnet50", 2048)):
        yield BackboneSpec(arch, f"torchvision {arch} for any number of bands ({feats} features)",
                           _resnet(arch), params=(_STEM,))
    yield BackboneSpec("smallcnn", "small 8-conv network, quick on a CPU", _small,
                       params=(Param("width", int, 32, "channels of the first stage", low=4,
                                     high=512),))
