"""LeNet-5.

Y. LeCun, L. Bottou, Y. Bengio and P. Haffner, "Gradient-based learning applied to
document recognition", Proceedings of the IEEE 86(11), 1998, doi:10.1109/5.726791.

The layers keep the paper's names: C1 (6 maps, 5 x 5), S2 (2 x 2 subsampling),
C3 (16 maps, 5 x 5), S4, C5 (120 maps, a 5 x 5 convolution that covers the
whole 5 x 5 map, so each unit is connected to all of S4), F6 (84 units) and the
output layer. What this file changes from the paper, as most modern re-creations do:

* C3 connects every S2 map to every C3 map (2,416 parameters); the paper
  used a hand-made table of 60 connections (1,516 parameters) to break symmetry
  and save computation.
* S2 and S4 are plain average (or max) pooling; the paper's subsampling units
  multiplied the 2 x 2 sum by a trainable coefficient, added a trainable bias
  and applied a sigmoid.
* ``tanh`` instead of the paper's scaled ``1.7159 tanh(2a/3)``.
* The output layer is a linear layer giving logits for a cross-entropy loss;
  the paper used Euclidean radial basis function units with fixed weights.
* The paper fed 32 x 32 images (MNIST's 28 x 28 digits padded by 2 pixels);
  here C1 does that padding when ``image_size=28``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .registry import register_model

__all__ = ["LeNet5", "lenet5"]

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}
_POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al. 1998): C1-S2-C3-S4-C5-F6-output, 61,706 parameters for 10 classes.

    Args:
        num_classes: Size of the output layer.
        in_channels: Channels of the input image (the paper: 1).
        image_size: 28 or 32 (height = width). C1 pads ``(32 - image_size) // 2``
            pixels so that C5 always sees a 5 x 5 map, as in the paper.
        activation: ``"tanh"`` (the paper's squashing function), ``"sigmoid"``
            or ``"relu"`` (what AlexNet later made standard).
        pooling: ``"avg"`` (the paper's subsampling) or ``"max"``.

    Shape:
        - Input: :math:`(N, C_{in}, 28, 28)` (or 32 x 32 with ``image_size=32``).
        - Output: :math:`(N, \\text{num\\_classes})` logits.

    Example:
        >>> model = LeNet5()
        >>> model(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        *,
        image_size: int = 28,
        activation: str = "tanh",
        pooling: str = "avg",
    ) -> None:
        super().__init__()
        if image_size not in (28, 30, 32):
            raise ValueError(
                f"LeNet-5 was designed for 32 x 32 inputs and C5 needs a 5 x 5 map: use image_size 28 (padded "
                f"by 2, like MNIST in the paper), 30 or 32, or resize your {image_size} x {image_size} images"
            )
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        if pooling not in _POOLS:
            raise ValueError(f"pooling must be one of {sorted(_POOLS)}, got {pooling!r}")
        act, pool = _ACTIVATIONS[activation], _POOLS[pooling]
        padding = (32 - image_size) // 2
        self.features = nn.Sequential(
            OrderedDict(
                c1=nn.Conv2d(in_channels, 6, kernel_size=5, padding=padding),  # N x 6 x 28 x 28
                act1=act(),
                s2=pool(kernel_size=2),  # N x 6 x 14 x 14
                c3=nn.Conv2d(6, 16, kernel_size=5),  # N x 16 x 10 x 10
                act3=act(),
                s4=pool(kernel_size=2),  # N x 16 x 5 x 5
                c5=nn.Conv2d(16, 120, kernel_size=5),  # N x 120 x 1 x 1
                act5=act(),
            )
        )
        self.classifier = nn.Sequential(
            OrderedDict(
                flatten=nn.Flatten(),  # N x 120
                f6=nn.Linear(120, 84),
                act6=act(),
                output=nn.Linear(84, num_classes),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register_model
def lenet5(
    num_classes: int = 10,
    in_channels: int = 1,
    *,
    image_size: int = 28,
    activation: str = "tanh",
    pooling: str = "avg",
) -> LeNet5:
    """LeNet-5 (LeCun et al. 1998) for 28 x 28 (or 32 x 32) images; see :class:`LeNet5`."""
    return LeNet5(num_classes, in_channels, image_size=image_size, activation=activation, pooling=pooling)
