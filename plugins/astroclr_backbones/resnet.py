"""torchvision ResNets for any number of bands, with stems for small cutouts.

Weights use torchvision's default initialisation (no zero-initialised residual branches): an
untrained network is then a fair random-features baseline (zero-init residuals make every block
an identity and drop a random ResNet-18's early/late probe to chance on SDSS cutouts).

The ImageNet stem (7×7 stride-2 convolution and max-pool) shrinks a 32×32 cutout to 8×8 before
the first block; it is the fastest (about 4× fewer FLOPs than no downsampling) and, measured
on 32×32 SDSS cutouts, adequate for CPU budgets. ``stem="conv3s1"`` (3×3 stride 1, no
max-pool, as for CIFAR) keeps full resolution at about 4× the cost; ``"conv3s2"`` sits between.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision import models

ARCHS = {"resnet18": models.resnet18, "resnet34": models.resnet34, "resnet50": models.resnet50}
STEMS = ("imagenet", "conv3s2", "conv3s1")


class ResNetBackbone(nn.Module):
    """A torchvision ResNet without its classifier: (B, C, H, W) → (B, num_features)."""

    def __init__(self, arch: str, in_channels: int, stem: str = "imagenet",
                 zero_init_residual: bool = False) -> None:
        super().__init__()
        net = ARCHS[arch](weights=None, zero_init_residual=zero_init_residual)
        if stem == "imagenet":
            net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        else:
            stride = 1 if stem == "conv3s1" else 2
            net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=stride, padding=1,
                                  bias=False)
            net.maxpool = nn.Identity()
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.num_features = net.fc.in_features
        net.fc = nn.Identity()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def resnet18(in_channels: int, image_size: int, stem: str = "imagenet") -> ResNetBackbone:
    """The ``resnet18`` backbone (512 features)."""
    return ResNetBackbone("resnet18", in_channels, stem=stem)


def resnet34(in_channels: int, image_size: int, stem: str = "imagenet") -> ResNetBackbone:
    """The ``resnet34`` backbone (512 features)."""
    return ResNetBackbone("resnet34", in_channels, stem=stem)


def resnet50(in_channels: int, image_size: int, stem: str = "imagenet") -> ResNetBackbone:
    """The ``resnet50`` backbone (2048 features)."""
    return ResNetBackbone("resnet50", in_channels, stem=stem)
