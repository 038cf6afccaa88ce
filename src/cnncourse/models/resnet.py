"""ResNet for ImageNet and for small images, and its plain (shortcut-free) counterparts.

K. He, X. Zhang, S. Ren and J. Sun, "Deep Residual Learning for Image
Recognition", CVPR 2016, arXiv:1512.03385.

A residual block computes ``relu(F(x) + x)``: its layers learn the change F to
their input rather than a whole new mapping, and the identity shortcut gives
gradients a direct path back. Two kinds of block:

* :class:`BasicBlock`: two 3 x 3 convolutions (ResNet-18/34 and the CIFAR nets);
* :class:`Bottleneck`: 1 x 1 (reduce), 3 x 3, 1 x 1 (expand 4x), for ResNet-50
  and deeper, where it keeps the 3 x 3 convolution cheap.

Both take two plug-ins: ``attention``, a function that builds a module for a
given channel count, which then rescales the residual branch before the
addition (squeeze-and-excitation, see :mod:`cnncourse.models.senet`), and
``residual=False``, which drops the shortcut and turns the network into the
"plain" network the paper compares against (the degradation experiment).

:class:`ResNet` is the ImageNet network of the paper's table 1, built exactly
as torchvision builds it (its checkpoints load): projection shortcuts (a
strided 1 x 1 convolution and batch norm, the paper's option B) where the shape
changes, and, in the bottleneck, the stride on the 3 x 3 convolution. That
last choice is "ResNet v1.5" (NVIDIA's name for it): the paper and its Caffe
models put the stride on the first 1 x 1 convolution, which skips three
quarters of the input pixels before looking at them. NVIDIA reports v1.5 about
0.5 points more accurate (top-1); it costs more multiply-accumulates (4.09 G
instead of 3.86 G for ResNet-50 at 224 x 224). ``stride_in_1x1=True`` builds v1.

:class:`CifarResNet` is the network of section 4.2 for 32 x 32 images: a
3 x 3 convolution with 16 channels, three stages of ``n`` basic blocks at 16,
32 and 64 channels (maps 32, 16, 8), global average pooling and a linear layer:
``6n + 2`` layers with weights. As in the paper, its shortcuts are identities
everywhere; where the shape changes, the identity is subsampled and padded
with zero channels (option A, no parameters). ResNet-20 has 0.27M parameters
and ResNet-56 0.85M (the paper's table 6).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register_model

__all__ = [
    "Attention",
    "BasicBlock",
    "Bottleneck",
    "CifarResNet",
    "ResNet",
    "ZeroPadShortcut",
    "conv1x1",
    "conv3x3",
    "plain20",
    "plain32",
    "plain44",
    "plain56",
    "resnet101",
    "resnet110",
    "resnet152",
    "resnet18",
    "resnet20",
    "resnet32",
    "resnet34",
    "resnet44",
    "resnet50",
    "resnet56",
]

Attention = Callable[[int], nn.Module]
"""Builds a module that rescales a ``C``-channel feature map, given ``C`` (e.g. a squeeze-excitation block)."""


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3 x 3 convolution with padding 1 and no bias (the batch norm after it has one)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1 x 1 convolution without bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3 x 3 convolutions with a shortcut around them (He et al. 2016, figure 5 left).

    Args:
        in_planes: Input channels.
        planes: Output channels (``expansion = 1``).
        stride: Stride of the first convolution (2 halves the map).
        downsample: The shortcut when the shape changes (None: identity).
        attention: Builds a module that rescales the residual branch before
            the addition, given its channel count (None: no attention).
        residual: False drops the shortcut (a block of the plain network).

    Shape:
        - Input: :math:`(N, \\text{in\\_planes}, H, W)`.
        - Output: :math:`(N, \\text{planes}, H / \\text{stride}, W / \\text{stride})`.
    """

    expansion = 1

    def __init__(
        self,
        in_planes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        attention: Attention | None = None,
        residual: bool = True,
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.attention = attention(planes) if attention is not None else None
        self.downsample = downsample
        self.residual = residual
        self.relu2 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.attention is not None:
            out = self.attention(out)
        if self.residual:
            if self.downsample is not None:
                identity = self.downsample(x)
            out = out + identity
        return self.relu2(out)


class Bottleneck(nn.Module):
    """1 x 1 reduce, 3 x 3, 1 x 1 expand (x4), with a shortcut around them (He et al. 2016, figure 5 right).

    Args:
        in_planes: Input channels.
        planes: Channels of the 3 x 3 convolution; the output has ``4 * planes``.
        stride: 2 halves the map, in the 3 x 3 convolution (v1.5) or in the
            first 1 x 1 (v1, ``stride_in_1x1=True``).
        downsample: The shortcut when the shape changes (None: identity).
        attention: Builds a module that rescales the residual branch before the addition.
        residual: False drops the shortcut.
        stride_in_1x1: Put the stride where the paper put it (ResNet v1).

    Shape:
        - Input: :math:`(N, \\text{in\\_planes}, H, W)`.
        - Output: :math:`(N, 4\\,\\text{planes}, H / \\text{stride}, W / \\text{stride})`.
    """

    expansion = 4

    def __init__(
        self,
        in_planes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        attention: Attention | None = None,
        residual: bool = True,
        stride_in_1x1: bool = False,
    ) -> None:
        super().__init__()
        out_planes = planes * self.expansion
        # torchvision puts the stride in the 3 x 3 conv (ResNet v1.5); the paper put it in the first 1 x 1.
        stride1, stride2 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv1x1(in_planes, planes, stride1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes, stride2)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = conv1x1(planes, out_planes)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.attention = attention(out_planes) if attention is not None else None
        self.downsample = downsample
        self.residual = residual
        self.relu3 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.attention is not None:
            out = self.attention(out)
        if self.residual:
            if self.downsample is not None:
                identity = self.downsample(x)
            out = out + identity
        return self.relu3(out)


def _init_weights(model: nn.Module) -> None:
    # He initialisation for the convolutions, as torchvision (fan_out, ReLU gain).
    if any(p.is_meta for p in model.parameters()):
        return  # built on the meta device: shapes only, nothing to draw
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class ResNet(nn.Module):
    """ResNet for ImageNet (He et al. 2016, table 1): a 7 x 7 stem, four stages of residual blocks, global pooling.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: Blocks per stage, e.g. ``[2, 2, 2, 2]`` for ResNet-18.
        num_classes: Size of the last layer.
        in_channels: Channels of the input image.
        attention: Plug-in for every block (see :class:`BasicBlock`).
        residual: False builds the plain network (no shortcuts).
        stride_in_1x1: ResNet v1 instead of v1.5 (bottleneck blocks only).

    Shape:
        - Input: :math:`(N, C_{in}, 224, 224)` (other sizes work: the pooling is global).
        - Output: :math:`(N, \\text{num\\_classes})` logits.

    Example:
        >>> model = ResNet(BasicBlock, [2, 2, 2, 2])  # ResNet-18
        >>> model(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 1000])
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: Sequence[int],
        num_classes: int = 1000,
        in_channels: int = 3,
        *,
        attention: Attention | None = None,
        residual: bool = True,
        stride_in_1x1: bool = False,
    ) -> None:
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"an ImageNet ResNet has four stages: give four block counts, got {list(layers)}")
        if stride_in_1x1 and block is not Bottleneck:
            raise ValueError("stride_in_1x1 moves the stride of a Bottleneck block; BasicBlock has no 1 x 1 conv")
        self.block_options = {"attention": attention, "residual": residual}
        if stride_in_1x1:
            self.block_options["stride_in_1x1"] = True
        self.in_planes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        _init_weights(self)

    def _make_layer(
        self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int, stride: int = 1
    ) -> nn.Sequential:
        out_planes = planes * block.expansion
        downsample = None
        if self.block_options["residual"] and (stride != 1 or self.in_planes != out_planes):
            # Projection shortcut (option B): a strided 1 x 1 convolution matches the new shape.
            downsample = nn.Sequential(conv1x1(self.in_planes, out_planes, stride), nn.BatchNorm2d(out_planes))
        layers = [block(self.in_planes, planes, stride, downsample, **self.block_options)]
        self.in_planes = out_planes
        layers += [block(self.in_planes, planes, **self.block_options) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))  # N x 64 x 112 x 112
        x = self.maxpool(x)  # N x 64 x 56 x 56
        x = self.layer1(x)  # N x 64 (256) x 56 x 56; bottleneck widths in brackets
        x = self.layer2(x)  # N x 128 (512) x 28 x 28
        x = self.layer3(x)  # N x 256 (1024) x 14 x 14
        x = self.layer4(x)  # N x 512 (2048) x 7 x 7
        x = torch.flatten(self.avgpool(x), 1)  # N x 512 (2048)
        return self.fc(x)  # N x num_classes


class ZeroPadShortcut(nn.Module):
    """The parameter-free shortcut of option A (He et al. 2016, section 3.3): subsample, then add zero channels.

    Args:
        in_planes: Input channels.
        out_planes: Output channels (the extra ones are zeros).
        stride: Keep every ``stride``-th pixel in each direction.

    Example:
        >>> ZeroPadShortcut(16, 32, 2)(torch.ones(1, 16, 8, 8)).shape
        torch.Size([1, 32, 4, 4])
    """

    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        if out_planes < in_planes:
            raise ValueError(f"a zero-padding shortcut can only add channels: {in_planes} -> {out_planes}")
        # A 1 x 1 window with a stride keeps x[:, :, ::stride, ::stride]; as a layer, receptive_field can follow it.
        self.subsample = nn.MaxPool2d(kernel_size=1, stride=stride)
        self.extra = out_planes - in_planes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.subsample(x)
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))  # zero channels after the existing ones


class CifarResNet(nn.Module):
    """ResNet for 32 x 32 (and 28 x 28) images (He et al. 2016, section 4.2): ``6n + 2`` layers.

    Args:
        depth: Layers with weights, ``6n + 2``: 20, 32, 44, 56, 110, ...
        num_classes: Size of the last layer.
        in_channels: Channels of the input image (the paper: 3 for CIFAR-10).
        widths: Channels of the three stages (the paper: 16, 32, 64). Halving
            them makes the network about four times cheaper.
        residual: False builds the plain network of the same depth.
        shortcut: ``"A"`` (the paper's choice for CIFAR): identity, subsampled
            and zero-padded where the shape changes; ``"B"``: a 1 x 1
            convolution and batch norm there.
        attention: Plug-in for every block (see :class:`BasicBlock`).

    Shape:
        - Input: :math:`(N, C_{in}, H, W)`, 32 x 32 in the paper, 28 x 28 for Fashion-MNIST.
        - Output: :math:`(N, \\text{num\\_classes})` logits.

    Example:
        >>> model = CifarResNet(20, in_channels=3)
        >>> model(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        depth: int,
        num_classes: int = 10,
        in_channels: int = 1,
        *,
        widths: Sequence[int] = (16, 32, 64),
        residual: bool = True,
        shortcut: str = "A",
        attention: Attention | None = None,
    ) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"depth must be 6n + 2 with n >= 1 (20, 32, 44, 56, 110), got {depth}")
        if shortcut not in ("A", "B"):
            raise ValueError(f"shortcut must be 'A' (zero padding) or 'B' (1 x 1 projection), got {shortcut!r}")
        if len(widths) != 3:
            raise ValueError(f"give three stage widths, like the paper's (16, 32, 64); got {tuple(widths)}")
        n = (depth - 2) // 6
        self.shortcut, self.block_options = shortcut, {"attention": attention, "residual": residual}
        self.in_planes = widths[0]
        self.conv1 = conv3x3(in_channels, widths[0])
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(widths[0], n)
        self.layer2 = self._make_layer(widths[1], n, stride=2)
        self.layer3 = self._make_layer(widths[2], n, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[2], num_classes)
        _init_weights(self)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if self.block_options["residual"] and (stride != 1 or self.in_planes != planes):
            if self.shortcut == "A":
                downsample = ZeroPadShortcut(self.in_planes, planes, stride)
            else:
                downsample = nn.Sequential(conv1x1(self.in_planes, planes, stride), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.in_planes, planes, stride, downsample, **self.block_options)]
        self.in_planes = planes
        layers += [BasicBlock(planes, planes, **self.block_options) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))  # N x 16 x 28 x 28 (32 x 32 on CIFAR)
        x = self.layer1(x)  # N x 16 x 28 x 28
        x = self.layer2(x)  # N x 32 x 14 x 14
        x = self.layer3(x)  # N x 64 x 7 x 7
        x = torch.flatten(self.avgpool(x), 1)  # N x 64
        return self.fc(x)  # N x num_classes


# ImageNet ResNets: the columns of table 1.


@register_model
def resnet18(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """ResNet-18: BasicBlock x [2, 2, 2, 2], 11.7M parameters, 1.8 GMACs at 224."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels)


@register_model
def resnet34(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """ResNet-34: BasicBlock x [3, 4, 6, 3], 21.8M parameters, 3.7 GMACs at 224."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes, in_channels)


@register_model
def resnet50(num_classes: int = 1000, in_channels: int = 3, *, stride_in_1x1: bool = False) -> ResNet:
    """ResNet-50: Bottleneck x [3, 4, 6, 3], 25.6M parameters, 4.1 GMACs at 224 (v1: 3.9)."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels, stride_in_1x1=stride_in_1x1)


@register_model
def resnet101(num_classes: int = 1000, in_channels: int = 3, *, stride_in_1x1: bool = False) -> ResNet:
    """ResNet-101: Bottleneck x [3, 4, 23, 3], 44.5M parameters, 7.8 GMACs at 224 (v1: 7.6)."""
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes, in_channels, stride_in_1x1=stride_in_1x1)


@register_model
def resnet152(num_classes: int = 1000, in_channels: int = 3, *, stride_in_1x1: bool = False) -> ResNet:
    """ResNet-152: Bottleneck x [3, 8, 36, 3], 60.2M parameters, 11.5 GMACs at 224 (v1: 11.3)."""
    return ResNet(Bottleneck, [3, 8, 36, 3], num_classes, in_channels, stride_in_1x1=stride_in_1x1)


# Compact ResNets for 28 x 28 and 32 x 32 images (section 4.2), and the plain nets they are compared with.


def _cifar(depth: int, num_classes: int, in_channels: int, widths: Sequence[int], residual: bool, shortcut: str):
    return CifarResNet(depth, num_classes, in_channels, widths=widths, residual=residual, shortcut=shortcut)


@register_model
def resnet20(
    num_classes: int = 10, in_channels: int = 1, *, widths: Sequence[int] = (16, 32, 64), shortcut: str = "A"
) -> CifarResNet:
    """ResNet-20 (n = 3): 0.27M parameters."""
    return _cifar(20, num_classes, in_channels, widths, True, shortcut)


@register_model
def resnet32(
    num_classes: int = 10, in_channels: int = 1, *, widths: Sequence[int] = (16, 32, 64), shortcut: str = "A"
) -> CifarResNet:
    """ResNet-32 (n = 5): 0.46M parameters."""
    return _cifar(32, num_classes, in_channels, widths, True, shortcut)


@register_model
def resnet44(
    num_classes: int = 10, in_channels: int = 1, *, widths: Sequence[int] = (16, 32, 64), shortcut: str = "A"
) -> CifarResNet:
    """ResNet-44 (n = 7): 0.66M parameters."""
    return _cifar(44, num_classes, in_channels, widths, True, shortcut)


@register_model
def resnet56(
    num_classes: int = 10, in_channels: int = 1, *, widths: Sequence[int] = (16, 32, 64), shortcut: str = "A"
) -> CifarResNet:
    """ResNet-56 (n = 9): 0.85M parameters."""
    return _cifar(56, num_classes, in_channels, widths, True, shortcut)


@register_model
def resnet110(
    num_classes: int = 10, in_channels: int = 1, *, widths: Sequence[int] = (16, 32, 64), shortcut: str = "A"
) -> CifarResNet:
    """ResNet-110 (n = 18): 1.7M parameters."""
    return _cifar(110, num_classes, in_channels, widths, True, shortcut)


@register_model
def plain20(num_classes: int = 10, in_channels: int = 1, *, widths: Sequence[int] = (16, 32, 64)) -> CifarResNet:
    """Plain-20: ResNet-20 without its shortcuts (the same 20 layers and parameters)."""
    return _cifar(20, num_classes, in_channels, widths, False, "A")


@register_model
def plain32(num_classes: int = 10, in_channels: int = 1, *, widths: Sequence[int] = (16, 32, 64)) -> CifarResNet:
    """Plain-32: ResNet-32 without its shortcuts."""
    return _cifar(32, num_classes, in_channels, widths, False, "A")


@register_model
def plain44(num_classes: int = 10, in_channels: int = 1, *, widths: Sequence[int] = (16, 32, 64)) -> CifarResNet:
    """Plain-44: ResNet-44 without its shortcuts."""
    return _cifar(44, num_classes, in_channels, widths, False, "A")


@register_model
def plain56(num_classes: int = 10, in_channels: int = 1, *, widths: Sequence[int] = (16, 32, 64)) -> CifarResNet:
    """Plain-56: ResNet-56 without its shortcuts."""
    return _cifar(56, num_classes, in_channels, widths, False, "A")
