"""Squeeze-and-excitation: a channel gate that plugs into the residual block.

J. Hu, L. Shen and G. Sun, "Squeeze-and-Excitation Networks", CVPR 2018,
arXiv:1709.01507.

An SE block looks at a whole feature map and decides how much each channel
matters for this input: it *squeezes* every channel to one number (global
average pooling), *excites* them through a small bottleneck (a fully connected
layer down to ``C / r`` units, ReLU, a fully connected layer back to ``C``, a
sigmoid), and multiplies each channel of the map by its gate in (0, 1). In an
SE-ResNet the block rescales the residual branch just before it is added to
the shortcut (the paper's figure 3), so it is a plug-in of
:class:`~cnncourse.models.resnet.BasicBlock` and
:class:`~cnncourse.models.resnet.Bottleneck` (their ``attention`` argument),
not a second copy of ResNet.

Each SE block adds ``2 C^2 / r`` weights (and ``C / r + C`` biases); with the
paper's ``r = 16`` SE-ResNet-50 has 28.09M parameters against ResNet-50's
25.56M (about 10% more) and almost the same multiply-accumulates. Two choices
this file makes:

* The two fully connected layers are written as 1 x 1 convolutions on the
  pooled 1 x 1 map (as in timm and torchvision's ``SqueezeExcitation``): the
  same arithmetic and parameters, without flattening the tensor and back.
* The SE-ResNets for ImageNet use torchvision's ResNet (stride in the 3 x 3,
  v1.5); ``stride_in_1x1=True`` gives the placement of the paper's models.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from torch import nn

from .registry import register_model
from .resnet import Attention, BasicBlock, Bottleneck, CifarResNet, ResNet

__all__ = [
    "SqueezeExcitation",
    "se_resnet18",
    "se_resnet20",
    "se_resnet34",
    "se_resnet50",
    "se_resnet101",
    "se_resnet152",
    "squeeze_excitation",
]


class SqueezeExcitation(nn.Module):
    """The squeeze-and-excitation block (Hu et al. 2018): rescale each channel by a gate computed from all of them.

    Args:
        channels: Channels ``C`` of the feature map.
        reduction: The ratio ``r``: the bottleneck has ``C // r`` units (the paper: 16).

    Shape:
        - Input: :math:`(N, C, H, W)`.
        - Output: :math:`(N, C, H, W)`, the input times a gate in (0, 1) per sample and channel.

    Example:
        >>> se = SqueezeExcitation(64, reduction=16)
        >>> sum(p.numel() for p in se.parameters())  # 2 * 64 * 64 / 16 weights + 4 + 64 biases
        580
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = channels // reduction
        if hidden < 1:
            raise ValueError(
                f"reduction {reduction} leaves no hidden unit for {channels} channels: use reduction <= {channels}"
            )
        self.squeeze = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1)  # a fully connected layer on the 1 x 1 map
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.squeeze(x)  # N x C x 1 x 1
        scale = self.relu(self.fc1(scale))  # N x C/r x 1 x 1
        scale = self.gate(self.fc2(scale))  # N x C x 1 x 1
        return x * scale  # N x C x H x W


def squeeze_excitation(reduction: int = 16) -> Attention:
    """Return the ``attention`` plug-in that adds a :class:`SqueezeExcitation` block with ratio ``reduction``.

    Example:
        >>> model = ResNet(BasicBlock, [2, 2, 2, 2], attention=squeeze_excitation(16))  # SE-ResNet-18
    """
    return functools.partial(SqueezeExcitation, reduction=reduction)


@register_model
def se_resnet18(num_classes: int = 1000, in_channels: int = 3, *, reduction: int = 16) -> ResNet:
    """SE-ResNet-18: ResNet-18 with an SE block in each of its 8 blocks (11.8M parameters)."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels, attention=squeeze_excitation(reduction))


@register_model
def se_resnet34(num_classes: int = 1000, in_channels: int = 3, *, reduction: int = 16) -> ResNet:
    """SE-ResNet-34: ResNet-34 with SE blocks (22.0M parameters)."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes, in_channels, attention=squeeze_excitation(reduction))


@register_model
def se_resnet50(
    num_classes: int = 1000, in_channels: int = 3, *, reduction: int = 16, stride_in_1x1: bool = False
) -> ResNet:
    """SE-ResNet-50 (Hu et al. 2018, table 1): 28.09M parameters."""
    return ResNet(
        Bottleneck, [3, 4, 6, 3], num_classes, in_channels,
        attention=squeeze_excitation(reduction), stride_in_1x1=stride_in_1x1,
    )  # fmt: skip


@register_model
def se_resnet101(
    num_classes: int = 1000, in_channels: int = 3, *, reduction: int = 16, stride_in_1x1: bool = False
) -> ResNet:
    """SE-ResNet-101: 49.3M parameters."""
    return ResNet(
        Bottleneck, [3, 4, 23, 3], num_classes, in_channels,
        attention=squeeze_excitation(reduction), stride_in_1x1=stride_in_1x1,
    )  # fmt: skip


@register_model
def se_resnet152(
    num_classes: int = 1000, in_channels: int = 3, *, reduction: int = 16, stride_in_1x1: bool = False
) -> ResNet:
    """SE-ResNet-152: 66.8M parameters."""
    return ResNet(
        Bottleneck, [3, 8, 36, 3], num_classes, in_channels,
        attention=squeeze_excitation(reduction), stride_in_1x1=stride_in_1x1,
    )  # fmt: skip


@register_model
def se_resnet20(
    num_classes: int = 10,
    in_channels: int = 1,
    *,
    reduction: int = 16,
    widths: Sequence[int] = (16, 32, 64),
    shortcut: str = "A",
) -> CifarResNet:
    """ResNet-20 with an SE block in each of its 9 blocks.

    With ``r = 16`` the first stage's gates have a single hidden unit (16 / 16);
    ``reduction=4`` or 8 gives them more room on such narrow networks.
    """
    return CifarResNet(
        20, num_classes, in_channels, widths=widths, shortcut=shortcut, attention=squeeze_excitation(reduction)
    )
