"""AlexNet, and a miniature of it for 28 x 28 images.

A. Krizhevsky, I. Sutskever and G. E. Hinton, "ImageNet Classification with Deep
Convolutional Neural Networks", NeurIPS 25, 2012.

Five convolutions (a large, strided first kernel, then 5 x 5 and three 3 x 3),
ReLU, overlapping 3 x 3 max pooling with stride 2, and three fully connected
layers with dropout. :func:`alexnet` is torchvision's version, parameter for
parameter (61,100,840 at 1000 classes), which follows the single-tower variant of
A. Krizhevsky, "One weird trick for parallelizing convolutional neural networks"
(2014, arXiv:1404.5997) rather than the 2012 paper:

* 64, 192, 384, 256, 256 channels instead of the paper's 96, 256, 384, 384, 256,
  and no split of the layers over two GPUs (the paper's model has 60,965,224
  parameters);
* no local response normalisation (the paper had it after conv1 and conv2);
* an ``AdaptiveAvgPool2d`` before the classifier, so that other input sizes
  work: at 224 x 224 the map is already 6 x 6 and it does nothing.

:func:`alexnet_small` keeps the recipe and shrinks the sizes for 28 x 28
Fashion-MNIST: a 5 x 5 first kernel with stride 1 (a stride of 4 would leave
nothing of a 28-pixel image), 24-64-96-96-64 channels, 256 hidden units.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .registry import register_model

__all__ = ["AlexNet", "alexnet", "alexnet_small"]


class AlexNet(nn.Module):
    """AlexNet (Krizhevsky et al. 2012): five convolutions, three max pools, three fully connected layers.

    Args:
        num_classes: Size of the last layer.
        in_channels: Channels of the input image.
        widths: Output channels of the five convolutions.
        stem: ``(kernel_size, stride, padding)`` of the first convolution.
        pool_size: Height and width the feature map is pooled to before the
            classifier (``AdaptiveAvgPool2d``).
        hidden: Units of the two hidden fully connected layers.
        dropout: Dropout probability before each of the two hidden layers.

    Shape:
        - Input: :math:`(N, C_{in}, H, W)`, 224 x 224 for the defaults.
        - Output: :math:`(N, \\text{num\\_classes})` logits.

    Example:
        >>> AlexNet()(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 1000])
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        *,
        widths: Sequence[int] = (64, 192, 384, 256, 256),
        stem: tuple[int, int, int] = (11, 4, 2),
        pool_size: int = 6,
        hidden: int = 4096,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if len(widths) != 5:
            raise ValueError(f"AlexNet has five convolutions: give five widths, got {len(widths)}")
        c1, c2, c3, c4, c5 = widths
        kernel_size, stride, padding = stem
        # Indices as in torchvision (features.0, features.3, ...), so its checkpoints load.
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size=kernel_size, stride=stride, padding=padding),  # N x 64 x 55 x 55
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # N x 64 x 27 x 27: overlapping pooling
            nn.Conv2d(c1, c2, kernel_size=5, padding=2),  # N x 192 x 27 x 27
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # N x 192 x 13 x 13
            nn.Conv2d(c2, c3, kernel_size=3, padding=1),  # N x 384 x 13 x 13
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, kernel_size=3, padding=1),  # N x 256 x 13 x 13
            nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, kernel_size=3, padding=1),  # N x 256 x 13 x 13
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # N x 256 x 6 x 6
        )
        self.avgpool = nn.AdaptiveAvgPool2d((pool_size, pool_size))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(c5 * pool_size * pool_size, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # N x 256 x 6 x 6
        x = self.avgpool(x)  # N x 256 x 6 x 6
        x = torch.flatten(x, 1)  # N x 9216
        return self.classifier(x)  # N x num_classes


@register_model
def alexnet(num_classes: int = 1000, in_channels: int = 3, *, dropout: float = 0.5) -> AlexNet:
    """AlexNet as torchvision builds it (one-weird-trick widths, no LRN): 61.1M parameters, 0.71 GMACs at 224."""
    return AlexNet(num_classes, in_channels, dropout=dropout)


@register_model
def alexnet_small(num_classes: int = 10, in_channels: int = 1, *, dropout: float = 0.5) -> AlexNet:
    """A miniature AlexNet for 28 x 28 images: 5 x 5 stride-1 stem, 24-64-96-96-64 channels, 256 hidden units.

    The maps shrink 28 -> 13 -> 6 -> 2 through the three overlapping pools
    (32 -> 15 -> 7 -> 3 on 32 x 32 inputs, which the adaptive pool then
    averages to 2 x 2).
    """
    return AlexNet(
        num_classes, in_channels, widths=(24, 64, 96, 96, 64), stem=(5, 1, 2), pool_size=2, hidden=256, dropout=dropout
    )
