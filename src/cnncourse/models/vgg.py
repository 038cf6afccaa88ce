"""VGG: very deep networks built from 3 x 3 convolutions, and a miniature of them.

K. Simonyan and A. Zisserman, "Very Deep Convolutional Networks for Large-Scale
Image Recognition", ICLR 2015, arXiv:1409.1556.

A VGG network is a list: numbers are 3 x 3 convolutions (padding 1, then ReLU)
with that many output channels, ``"M"`` is a 2 x 2 max pool with stride 2. The
configurations A, B, D and E of the paper's table 1 are VGG-11, -13, -16 and -19.
The classifier is three fully connected layers (4096, 4096, classes) with
dropout. The builders match torchvision parameter for parameter, including
two details that differ from the paper:

* ``batch_norm=True`` (torchvision's ``vgg16_bn``) puts a ``BatchNorm2d`` after
  every convolution, which came a year after VGG (Ioffe & Szegedy 2015). The
  convolutions keep their biases, which batch norm makes redundant, as
  torchvision does.
* an ``AdaptiveAvgPool2d((7, 7))`` before the classifier lets other input
  sizes through; at 224 x 224 the map is already 7 x 7 and it does nothing.

Configuration C of the paper (1 x 1 convolutions in the last three stages) is
left out, as in torchvision. :func:`vgg_small` is the same idea sized for
28 x 28 images: three stages of two 3 x 3 convolutions (16, 32, 64 channels).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .registry import register_model

__all__ = ["VGG", "cfgs", "make_layers", "vgg11", "vgg13", "vgg16", "vgg19", "vgg_small"]

# The columns of table 1 in the paper; "small" is this course's miniature.
cfgs: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],  # VGG-11
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],  # VGG-13
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],  # VGG-16
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
    "small": [16, 16, "M", 32, 32, "M", 64, 64, "M"],
}


def make_layers(cfg: Sequence[int | str], in_channels: int = 3, *, batch_norm: bool = False) -> nn.Sequential:
    """Turn a configuration list into the convolutional part of a VGG network.

    Args:
        cfg: Numbers (output channels of a 3 x 3 convolution) and ``"M"`` (a 2 x 2 max pool).
        in_channels: Channels of the input image.
        batch_norm: Put a ``BatchNorm2d`` between each convolution and its ReLU.

    Returns:
        An ``nn.Sequential`` numbered like torchvision's ``features``.

    Example:
        >>> make_layers([8, "M", 16], 1)
        Sequential(
          (0): Conv2d(1, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
          (1): ReLU(inplace=True)
          (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
          (3): Conv2d(8, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
          (4): ReLU(inplace=True)
        )
    """
    layers: list[nn.Module] = []
    channels = in_channels
    for entry in cfg:
        if entry == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        if not isinstance(entry, int) or entry < 1:
            raise ValueError(f"a VGG configuration holds channel counts and 'M' (max pool), got {entry!r}")
        layers.append(nn.Conv2d(channels, entry, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(entry))
        layers.append(nn.ReLU(inplace=True))
        channels = entry
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """VGG (Simonyan & Zisserman 2015): a stack of 3 x 3 convolutions and max pools, then three linear layers.

    Args:
        features: The convolutional part, from :func:`make_layers`.
        num_classes: Size of the last layer.
        pool_size: Height and width the feature map is pooled to before the classifier.
        hidden: Units of the two hidden fully connected layers.
        dropout: Dropout probability after each hidden layer.

    Shape:
        - Input: :math:`(N, C_{in}, H, W)`, 224 x 224 for the ImageNet configurations.
        - Output: :math:`(N, \\text{num\\_classes})` logits.

    Example:
        >>> model = VGG(make_layers(cfgs["A"]))
        >>> model(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 1000])
    """

    def __init__(
        self,
        features: nn.Sequential,
        num_classes: int = 1000,
        *,
        pool_size: int = 7,
        hidden: int = 4096,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        convs = [m for m in features.modules() if isinstance(m, nn.Conv2d)]
        if not convs:
            raise ValueError("features holds no convolution: build it with make_layers(cfg, in_channels)")
        channels = convs[-1].out_channels
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((pool_size, pool_size))
        self.classifier = nn.Sequential(
            nn.Linear(channels * pool_size * pool_size, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, num_classes),
        )
        # torchvision's initialisation: He for the convolutions, N(0, 0.01) for the linear layers.
        meta = any(p.is_meta for p in self.parameters())  # built on the meta device: nothing to draw
        for m in () if meta else self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # N x 512 x 7 x 7
        x = self.avgpool(x)  # N x 512 x 7 x 7
        x = torch.flatten(x, 1)  # N x 25088
        return self.classifier(x)  # N x num_classes


def _vgg(cfg: str, num_classes: int, in_channels: int, batch_norm: bool, dropout: float) -> VGG:
    return VGG(make_layers(cfgs[cfg], in_channels, batch_norm=batch_norm), num_classes, dropout=dropout)


@register_model
def vgg11(num_classes: int = 1000, in_channels: int = 3, *, batch_norm: bool = False, dropout: float = 0.5) -> VGG:
    """VGG-11, configuration A: 132.9M parameters (132.9M with batch norm too), 7.6 GMACs at 224."""
    return _vgg("A", num_classes, in_channels, batch_norm, dropout)


@register_model
def vgg13(num_classes: int = 1000, in_channels: int = 3, *, batch_norm: bool = False, dropout: float = 0.5) -> VGG:
    """VGG-13, configuration B: 133.0M parameters, 11.3 GMACs at 224."""
    return _vgg("B", num_classes, in_channels, batch_norm, dropout)


@register_model
def vgg16(num_classes: int = 1000, in_channels: int = 3, *, batch_norm: bool = False, dropout: float = 0.5) -> VGG:
    """VGG-16, configuration D: 138.4M parameters, 15.5 GMACs at 224."""
    return _vgg("D", num_classes, in_channels, batch_norm, dropout)


@register_model
def vgg19(num_classes: int = 1000, in_channels: int = 3, *, batch_norm: bool = False, dropout: float = 0.5) -> VGG:
    """VGG-19, configuration E: 143.7M parameters, 19.6 GMACs at 224."""
    return _vgg("E", num_classes, in_channels, batch_norm, dropout)


@register_model
def vgg_small(num_classes: int = 10, in_channels: int = 1, *, batch_norm: bool = False, dropout: float = 0.5) -> VGG:
    """A miniature VGG for 28 x 28 images: [16, 16, M, 32, 32, M, 64, 64, M], then 576-256-256-classes.

    Maps shrink 28 -> 14 -> 7 -> 3. On 32 x 32 inputs the last map is 4 x 4 and
    the adaptive pool averages it to 3 x 3 (overlapping windows).
    """
    features = make_layers(cfgs["small"], in_channels, batch_norm=batch_norm)
    return VGG(features, num_classes, pool_size=3, hidden=256, dropout=dropout)
