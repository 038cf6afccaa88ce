"""GoogLeNet (Inception v1), and a miniature of it for 28 x 28 images.

C. Szegedy, W. Liu, Y. Jia, P. Sermanet, S. Reed, D. Anguelov, D. Erhan,
V. Vanhoucke and A. Rabinovich, "Going Deeper with Convolutions", CVPR 2015,
arXiv:1409.4842.

An Inception module runs four branches side by side on the same input and
concatenates their outputs along the channels: a 1 x 1 convolution; a 1 x 1
"reduction" followed by a 3 x 3; a 1 x 1 reduction followed by a 5 x 5; and a
3 x 3 max pool followed by a 1 x 1 "pool projection". The 1 x 1 reductions are
what keeps the module cheap. The channel numbers of every module are the
columns of the paper's table 1 (``Inception(192, 64, 96, 128, 16, 32, 32)`` is
inception (3a)).

:func:`googlenet` is torchvision's version, parameter for parameter
(6,624,904 at 1000 classes without the auxiliary heads, 13,004,888 with them).
It differs from the paper in ways torchvision inherited from its first port:

* Every convolution is followed by batch normalisation (``BasicConv2d``), which
  came after GoogLeNet (Ioffe & Szegedy 2015), and has no bias.
* The "5 x 5" branch uses a 3 x 3 kernel, a known slip of the original port
  (github.com/pytorch/vision/issues/906) kept so that the pretrained weights
  still load. ``branch3_kernel_size=5`` restores the paper's kernel.
* No local response normalisation after the stem's first pool and third
  convolution; max pools round up (``ceil_mode=True``) so that the map sizes are
  the paper's 112, 56, 28, 14 and 7.
* Dropout 0.2 before the classifier (the paper: 40%).

With ``batch_norm=False, branch3_kernel_size=5`` the convolutions are the
paper's: 6,990,272 weights and 8,280 biases at 1000 classes. The paper's
table 1 lists the weights per layer in units of K = 1024 and its column sums
to 6797.7K (6.96M); most entries agree with the layer shapes within 1%, a few
do not (the first convolution is listed at 2.7K where 7 x 7 x 3 x 64 weights
are 9.2K).

The auxiliary classifiers (``aux_logits=True``) sit on inception (4a) and (4d)
and only run in training mode, where the model then returns
:class:`GoogLeNetOutputs`; the paper adds their losses with weight 0.3.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .registry import register_model

__all__ = [
    "BasicConv2d",
    "GoogLeNet",
    "GoogLeNetOutputs",
    "Inception",
    "InceptionAux",
    "SmallGoogLeNet",
    "googlenet",
    "googlenet_small",
]


class BasicConv2d(nn.Module):
    """Convolution, batch norm (eps 0.001, as torchvision) and ReLU: every convolution of GoogLeNet."""

    def __init__(self, in_channels: int, out_channels: int, *, batch_norm: bool = True, **kwargs) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=not batch_norm, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001) if batch_norm else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """The Inception module (Szegedy et al. 2015, figure 2b): four branches concatenated along the channels.

    Args:
        in_channels: Input channels.
        ch1x1: Output channels of the 1 x 1 branch.
        ch3x3red: The 1 x 1 reduction before the 3 x 3.
        ch3x3: Output channels of the 3 x 3 branch.
        ch5x5red: The 1 x 1 reduction before the "5 x 5".
        ch5x5: Output channels of the "5 x 5" branch.
        pool_proj: Output channels of the 1 x 1 after the 3 x 3 max pool.
        branch3_kernel_size: Kernel of the "5 x 5" branch: 3 as torchvision, 5 as the paper.
        batch_norm: Batch norm after every convolution (torchvision) or biases (the paper).

    Shape:
        - Input: :math:`(N, \\text{in\\_channels}, H, W)`.
        - Output: :math:`(N, \\text{ch1x1} + \\text{ch3x3} + \\text{ch5x5} + \\text{pool\\_proj}, H, W)`.

    Example:
        >>> block = Inception(192, 64, 96, 128, 16, 32, 32)  # inception (3a)
        >>> block(torch.zeros(1, 192, 28, 28)).shape
        torch.Size([1, 256, 28, 28])
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        *,
        branch3_kernel_size: int = 3,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        if branch3_kernel_size % 2 == 0:
            raise ValueError(f"branch3_kernel_size must be odd to keep the map size, got {branch3_kernel_size}")
        bn = {"batch_norm": batch_norm}
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1, **bn)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, kernel_size=1, **bn),
            BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1, **bn),
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, kernel_size=1, **bn),
            BasicConv2d(ch5x5red, ch5x5, kernel_size=branch3_kernel_size, padding=branch3_kernel_size // 2, **bn),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_channels, pool_proj, kernel_size=1, **bn),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(outputs, 1)  # N x (ch1x1 + ch3x3 + ch5x5 + pool_proj) x H x W


class InceptionAux(nn.Module):
    """An auxiliary classifier (Szegedy et al. 2015, section 5): pool to 4 x 4, 1 x 1 conv, two linear layers."""

    def __init__(self, in_channels: int, num_classes: int, *, dropout: float = 0.7, batch_norm: bool = True) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d((4, 4))  # the paper: 5 x 5 average pool, stride 3, on a 14 x 14 map
        self.conv = BasicConv2d(in_channels, 128, kernel_size=1, batch_norm=batch_norm)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(2048, 1024)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(p=dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.avgpool(x))  # N x 128 x 4 x 4
        x = self.relu(self.fc1(self.flatten(x)))  # N x 1024
        return self.fc2(self.dropout(x))  # N x num_classes


class GoogLeNetOutputs(NamedTuple):
    """What GoogLeNet returns in training mode with auxiliary heads: the main logits and the two auxiliary ones."""

    logits: torch.Tensor
    aux1: torch.Tensor
    aux2: torch.Tensor


def _init_weights(model: nn.Module) -> None:
    # torchvision's initialisation: truncated normal (std 0.01) for convolutions and linear layers.
    if any(p.is_meta for p in model.parameters()):
        return  # built on the meta device: shapes only, nothing to draw
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class GoogLeNet(nn.Module):
    """GoogLeNet (Szegedy et al. 2015, table 1): a stem, nine Inception modules in three stages, global pooling.

    Args:
        num_classes: Size of the last layer.
        in_channels: Channels of the input image.
        aux_logits: Add the two auxiliary classifiers (used in training mode only).
        dropout: Dropout before the last layer (torchvision 0.2, the paper 0.4).
        aux_dropout: Dropout in the auxiliary classifiers (0.7, as the paper).
        branch3_kernel_size: 3 (torchvision) or 5 (the paper); see the module docstring.
        batch_norm: Batch norm after every convolution (torchvision) or biases (the paper).

    Shape:
        - Input: :math:`(N, C_{in}, 224, 224)`.
        - Output: :math:`(N, \\text{num\\_classes})` logits; in training mode with
          ``aux_logits=True``, a :class:`GoogLeNetOutputs` of three such tensors.

    Example:
        >>> GoogLeNet().eval()(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 1000])
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        *,
        aux_logits: bool = False,
        dropout: float = 0.2,
        aux_dropout: float = 0.7,
        branch3_kernel_size: int = 3,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        bn = {"batch_norm": batch_norm}
        module = {"branch3_kernel_size": branch3_kernel_size, "batch_norm": batch_norm}
        self.conv1 = BasicConv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, **bn)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, kernel_size=1, **bn)
        self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1, **bn)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32, **module)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64, **module)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64, **module)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64, **module)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64, **module)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64, **module)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128, **module)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)

        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128, **module)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128, **module)

        if aux_logits:
            self.aux1 = InceptionAux(512, num_classes, dropout=aux_dropout, **bn)
            self.aux2 = InceptionAux(528, num_classes, dropout=aux_dropout, **bn)
        else:
            self.aux1 = self.aux2 = None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, num_classes)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor | GoogLeNetOutputs:
        x = self.maxpool1(self.conv1(x))  # N x 64 x 56 x 56
        x = self.conv3(self.conv2(x))  # N x 192 x 56 x 56
        x = self.maxpool2(x)  # N x 192 x 28 x 28

        x = self.inception3a(x)  # N x 256 x 28 x 28
        x = self.inception3b(x)  # N x 480 x 28 x 28
        x = self.maxpool3(x)  # N x 480 x 14 x 14

        x = self.inception4a(x)  # N x 512 x 14 x 14
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4b(x)  # N x 512 x 14 x 14
        x = self.inception4c(x)  # N x 512 x 14 x 14
        x = self.inception4d(x)  # N x 528 x 14 x 14
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.inception4e(x)  # N x 832 x 14 x 14
        x = self.maxpool4(x)  # N x 832 x 7 x 7

        x = self.inception5a(x)  # N x 832 x 7 x 7
        x = self.inception5b(x)  # N x 1024 x 7 x 7
        x = torch.flatten(self.avgpool(x), 1)  # N x 1024
        logits = self.fc(self.dropout(x))  # N x num_classes
        if aux1 is not None and aux2 is not None:
            return GoogLeNetOutputs(logits, aux1, aux2)
        return logits


class SmallGoogLeNet(nn.Module):
    """A miniature GoogLeNet for 28 x 28 images: one-conv stem, Inception modules 3a, 3b, 4a, 4b, 5a at 1/4 width.

    The module widths are those of the paper's table 1 divided by four
    (inception (3a) becomes ``Inception(48, 16, 24, 32, 4, 8, 8)``), the stem is a
    single 3 x 3 convolution (the paper's stem exists to bring 224 pixels down to
    28 cheaply), and each stage keeps one or two modules instead of two, five and
    two. Maps: 28 -> 14 (stage 3) -> 7 (stage 4) -> 4 (stage 5) -> global pool.
    The convolutions start from He initialisation rather than GoogLeNet's
    N(0, 0.01), which suits the short trainings of a CPU budget better.

    Args:
        num_classes: Size of the last layer.
        in_channels: Channels of the input image.
        dropout: Dropout before the last layer (0.4, as the paper).
        branch3_kernel_size: 3 (as :class:`GoogLeNet`) or 5 (the paper).
        batch_norm: Batch norm after every convolution, or biases.

    Shape:
        - Input: :math:`(N, C_{in}, 28, 28)` (any size of at least 8 x 8 works).
        - Output: :math:`(N, \\text{num\\_classes})` logits.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        *,
        dropout: float = 0.4,
        branch3_kernel_size: int = 3,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        module = {"branch3_kernel_size": branch3_kernel_size, "batch_norm": batch_norm}
        self.conv1 = BasicConv2d(in_channels, 48, kernel_size=3, padding=1, batch_norm=batch_norm)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception3a = Inception(48, 16, 24, 32, 4, 8, 8, **module)
        self.inception3b = Inception(64, 32, 32, 48, 8, 24, 16, **module)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception4a = Inception(120, 48, 24, 52, 4, 12, 16, **module)
        self.inception4b = Inception(128, 40, 28, 56, 6, 16, 16, **module)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)

        self.inception5a = Inception(128, 64, 40, 80, 8, 32, 32, **module)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(208, num_classes)
        # He initialisation, not GoogLeNet's N(0, 0.01): with weights that small the convolutions' outputs have
        # variances far below 1, where batch norm's running variance starts, so its running statistics take
        # many more steps to settle and evaluation-mode predictions stay poor through a short training.
        for m in () if any(p.is_meta for p in self.parameters()) else self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool1(self.conv1(x))  # N x 48 x 14 x 14
        x = self.inception3a(x)  # N x 64 x 14 x 14
        x = self.inception3b(x)  # N x 120 x 14 x 14
        x = self.maxpool3(x)  # N x 120 x 7 x 7
        x = self.inception4a(x)  # N x 128 x 7 x 7
        x = self.inception4b(x)  # N x 128 x 7 x 7
        x = self.maxpool4(x)  # N x 128 x 4 x 4
        x = self.inception5a(x)  # N x 208 x 4 x 4
        x = torch.flatten(self.avgpool(x), 1)  # N x 208
        return self.fc(self.dropout(x))  # N x num_classes


@register_model
def googlenet(
    num_classes: int = 1000,
    in_channels: int = 3,
    *,
    aux_logits: bool = False,
    dropout: float = 0.2,
    branch3_kernel_size: int = 3,
    batch_norm: bool = True,
) -> GoogLeNet:
    """GoogLeNet as torchvision builds it (batch norm, 3 x 3 in the "5 x 5" branch): 6.6M parameters, 1.5 GMACs."""
    return GoogLeNet(
        num_classes,
        in_channels,
        aux_logits=aux_logits,
        dropout=dropout,
        branch3_kernel_size=branch3_kernel_size,
        batch_norm=batch_norm,
    )


@register_model
def googlenet_small(
    num_classes: int = 10,
    in_channels: int = 1,
    *,
    dropout: float = 0.4,
    branch3_kernel_size: int = 3,
    batch_norm: bool = True,
) -> SmallGoogLeNet:
    """A quarter-width GoogLeNet with five Inception modules for 28 x 28 images; see :class:`SmallGoogLeNet`."""
    return SmallGoogLeNet(
        num_classes, in_channels, dropout=dropout, branch3_kernel_size=branch3_kernel_size, batch_norm=batch_norm
    )
