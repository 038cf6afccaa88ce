"""U-Net: an encoder-decoder whose skip connections hand the decoder the encoder's fine detail.

Olaf Ronneberger, Philipp Fischer and Thomas Brox, *U-Net: Convolutional
Networks for Biomedical Image Segmentation*, MICCAI 2015, arXiv:1505.04597.

The network is a "U": a contracting path (the encoder) of stages of two 3 x 3
convolutions and ReLUs, each stage after the first starting with a 2 x 2 max
pool that halves the size while the width doubles; then an expanding path
(the decoder) whose stages each double the size with a 2 x 2 "up-convolution"
(a transposed convolution of stride 2) that halves the width, concatenate the
encoder's features of the same size (the skip connection), and apply two
3 x 3 convolutions. A 1 x 1 convolution maps the last features to the
class scores of every pixel.

What this file changes from the paper:

* the 3 x 3 convolutions are padded, so each stage keeps its size, the
  output has the input's size and the skips need no cropping (the paper's
  unpadded convolutions take a 572 x 572 tile to a 388 x 388 map and crop
  the encoder's features to fit);
* batch normalization after every convolution (``batch_norm=True``, the
  default), which the paper did not have (it appeared the same year);
* the widths are a parameter: the paper's are (64, 128, 256, 512, 1024),
  five stages; a 64 x 64 canvas of Fashion-MNIST items needs far fewer;
* ``upsampling="bilinear"`` replaces the up-convolution by bilinear
  interpolation and a 1 x 1 convolution (which halves the width), a common
  variant that avoids the transposed convolution's checkerboard artifacts.

``model.encoder`` is an ``nn.Sequential`` of the contracting stages:
:func:`~cnncourse.receptive_field` works on it, and refuses the whole
U-Net, whose upsampling has no whole-number stride.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register_model

__all__ = ["DoubleConv", "Down", "Up", "UNet", "unet"]

UPSAMPLING = ("transposed", "bilinear")


class DoubleConv(nn.Sequential):
    """Two padded 3 x 3 convolutions, each followed by batch norm (optional) and a ReLU."""

    def __init__(self, in_channels: int, out_channels: int, *, batch_norm: bool = True) -> None:
        layers: list[nn.Module] = []
        for channels in (in_channels, out_channels):
            layers.append(nn.Conv2d(channels, out_channels, kernel_size=3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class Down(nn.Sequential):
    """A contracting stage: 2 x 2 max pooling (half the size), then :class:`DoubleConv` (usually twice the width)."""

    def __init__(self, in_channels: int, out_channels: int, *, batch_norm: bool = True) -> None:
        super().__init__(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels, batch_norm=batch_norm))


class Up(nn.Module):
    """An expanding stage: upsample (twice the size, half the width), concatenate the skip, :class:`DoubleConv`.

    Args:
        in_channels: Width of the features from below.
        out_channels: Width of the skip from the encoder, and of the output.
        upsampling: ``"transposed"``: the paper's 2 x 2 up-convolution of
            stride 2; ``"bilinear"``: bilinear interpolation, then a 1 x 1
            convolution to ``out_channels``.
        batch_norm: After every 3 x 3 convolution.

    Shape:
        - x: ``(N, in_channels, H, W)``; skip: ``(N, out_channels, H', W')``
          with ``H' = 2H`` or ``2H + 1`` (an odd size pooled down);
        - output: ``(N, out_channels, H', W')``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, upsampling: str = "transposed", batch_norm: bool = True
    ) -> None:
        super().__init__()
        if upsampling not in UPSAMPLING:
            raise ValueError(f"upsampling must be 'transposed' or 'bilinear', got {upsampling!r}")
        self.upsampling = upsampling
        if upsampling == "transposed":
            self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        else:
            self.up = nn.Conv2d(in_channels, out_channels, kernel_size=1)  # after the interpolation
        self.conv = DoubleConv(2 * out_channels, out_channels, batch_norm=batch_norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        size = skip.shape[-2:]
        if self.upsampling == "transposed":
            # output_size picks the output padding that restores an odd size exactly (chapter 3)
            out = self.up(x, output_size=size)
        else:
            out = self.up(F.interpolate(x, size=size, mode="bilinear", align_corners=False))
        out = torch.cat([skip, out], dim=1)  # the skip connection: the encoder's detail beside the context
        return self.conv(out)


class UNet(nn.Module):
    """U-Net for images of any size: class scores for every pixel.

    Args:
        num_classes: Output channels (11 for the canvases: background and ten classes).
        in_channels: Input channels.
        widths: Width of each encoder stage; each stage after the first halves
            the size, so ``len(widths) - 1`` poolings (the paper: five stages,
            64 to 1024).
        upsampling: ``"transposed"`` (the paper's up-convolution) or ``"bilinear"``.
        batch_norm: Batch normalization after every 3 x 3 convolution.

    Shape:
        - Input: ``(N, in_channels, H, W)``, with ``H`` and ``W`` at least
          ``2 ** (len(widths) - 1)``;
        - Output: ``(N, num_classes, H, W)`` logits.

    Example:
        >>> model = UNet(11, 1, widths=(8, 16, 32))
        >>> model(torch.zeros(2, 1, 64, 64)).shape
        torch.Size([2, 11, 64, 64])
    """

    def __init__(
        self,
        num_classes: int = 11,
        in_channels: int = 1,
        widths: Sequence[int] = (8, 16, 32, 64, 128),
        *,
        upsampling: str = "transposed",
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        widths = tuple(widths)
        if len(widths) < 2:
            raise ValueError(f"a U-Net needs at least two stages (one pooling), got widths={widths}")
        self.encoder = nn.Sequential(
            DoubleConv(in_channels, widths[0], batch_norm=batch_norm),
            *(Down(a, b, batch_norm=batch_norm) for a, b in zip(widths, widths[1:])),
        )
        self.decoder = nn.ModuleList(
            Up(b, a, upsampling=upsampling, batch_norm=batch_norm) for a, b in reversed(list(zip(widths, widths[1:])))
        )
        self.head = nn.Conv2d(widths[0], num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        out = x
        for stage in self.encoder:  # N x 8 x 64 x 64, N x 16 x 32 x 32, ..., N x 128 x 4 x 4
            out = stage(out)
            skips.append(out)
        out = skips.pop()  # the bottom of the U
        for up in self.decoder:  # N x 64 x 8 x 8, ..., N x 8 x 64 x 64
            out = up(out, skips.pop())
        return self.head(out)  # N x num_classes x 64 x 64


@register_model
def unet(num_classes: int = 11, in_channels: int = 1, **kwargs) -> UNet:
    """U-Net sized for 64 x 64 canvases: widths (8, 16, 32, 64, 128), four poolings (a 4 x 4 bottom).

    Options (``widths``, ``upsampling``, ``batch_norm``) go to :class:`UNet`.
    """
    return UNet(num_classes, in_channels, **kwargs)
