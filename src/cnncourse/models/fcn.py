"""FCN: a classifier made fully convolutional, whose coarse score map is upsampled to the input's size.

Jonathan Long, Evan Shelhamer and Trevor Darrell, *Fully Convolutional
Networks for Semantic Segmentation*, CVPR 2015, arXiv:1411.4038.

The paper's recipe: take a classification network (VGG-16), and rewrite its
fully connected layers as convolutions. ``fc6``, a linear layer on the 7 x 7
map of pool5, becomes a 7 x 7 convolution, ``fc7`` and the classifier become
1 x 1 convolutions: the same weights, now applied at every position of a
larger input. The network then outputs a coarse map of class scores, one per
32 x 32 step of the input, and a transposed convolution initialised to
bilinear interpolation upsamples it to the input's size ("FCN-32s"). Skips
from pool4 and pool3 refine the coarse map (FCN-16s and FCN-8s).

What this file changes from the paper:

* the classifier is a miniature VGG for 64 x 64 canvases, the configuration
  ``[8, 8, M, 16, 16, M, 32, 32, M, 64, 64, M, 128, 128]`` of
  :func:`~cnncourse.models.make_layers` with batch normalization (the
  contracting path of :class:`~cnncourse.models.UNet` with the same widths):
  four poolings, so the score map has one cell per 16 x 16 pixels, a 4 x 4
  map for a canvas (the paper's VGG-16 has five, 32 x 32);
* ``fc6`` is a padded 3 x 3 convolution (not 7 x 7: the map is small, and the
  padding keeps one score per cell), it is 128 wide (not 4096), and there is
  no dropout;
* only the single-stream form (the paper's FCN-32s; no skips), the
  baseline that the U-Net's skips improve on;
* the upsampling is fixed bilinear interpolation by default; with
  ``upsampling="transposed"`` it is the paper's learnable transposed
  convolution (kernel 2f, stride f, for the encoder's stride f) initialised
  to bilinear interpolation.

``model.encoder`` holds the convolutional part: :func:`~cnncourse.receptive_field`
works on it, and refuses the whole FCN, whose upsampling has no whole-number
stride.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register_model
from .vgg import make_layers

__all__ = ["FCN", "bilinear_kernel", "fcn"]

UPSAMPLING = ("bilinear", "transposed")


def bilinear_kernel(channels: int, factor: int) -> torch.Tensor:
    """Weights that make ``ConvTranspose2d(channels, channels, 2 * factor, stride=factor, padding=factor // 2)``
    upsample each channel by bilinear interpolation (the FCN paper's initialisation).

    Returns:
        A ``(channels, channels, 2 * factor, 2 * factor)`` tensor, zero between
        different channels, a "tent" ``(1 - |x| / factor)(1 - |y| / factor)``
        within one.

    Example:
        >>> bilinear_kernel(1, 2)[0, 0, 0]
        tensor([0.0625, 0.1875, 0.1875, 0.0625])
    """
    size = 2 * factor
    centre = (size - 1) / 2
    steps = 1 - (torch.arange(size, dtype=torch.float32) - centre).abs() / factor
    tent = steps[:, None] * steps[None, :]
    weight = torch.zeros(channels, channels, size, size)
    weight[range(channels), range(channels)] = tent
    return weight


class FCN(nn.Module):
    """A VGG-style classifier turned fully convolutional: per-pixel class scores.

    Args:
        num_classes: Output channels (11 for the canvases).
        in_channels: Input channels.
        widths: Width of each stage of two 3 x 3 convolutions; a 2 x 2 max
            pool separates the stages, so the score map is ``2 ** (len(widths)
            - 1)`` times smaller than the input.
        hidden: Width of ``fc6``, the 3 x 3 convolution before the 1 x 1 scores.
        upsampling: ``"bilinear"`` (fixed) or ``"transposed"`` (learnable,
            initialised to bilinear).
        batch_norm: Batch normalization after every convolution of the encoder.

    Shape:
        - Input: ``(N, in_channels, H, W)``;
        - Output: ``(N, num_classes, H, W)`` logits.

    Example:
        >>> model = FCN(11, 1, widths=(8, 16, 32))
        >>> model(torch.zeros(2, 1, 64, 64)).shape
        torch.Size([2, 11, 64, 64])
    """

    def __init__(
        self,
        num_classes: int = 11,
        in_channels: int = 1,
        widths: Sequence[int] = (8, 16, 32, 64, 128),
        *,
        hidden: int = 128,
        upsampling: str = "bilinear",
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        widths = tuple(widths)
        if not widths:
            raise ValueError("widths must name at least one stage, e.g. (8, 16, 32, 64, 128)")
        if upsampling not in UPSAMPLING:
            raise ValueError(f"upsampling must be 'bilinear' or 'transposed', got {upsampling!r}")
        cfg: list[int | str] = []
        for width in widths:
            cfg += ["M", width, width] if cfg else [width, width]
        self.encoder = make_layers(cfg, in_channels, batch_norm=batch_norm)
        self.factor = 2 ** (len(widths) - 1)  # the encoder's stride
        self.classifier = nn.Sequential(  # fc6 and the scores, as convolutions
            nn.Conv2d(widths[-1], hidden, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, num_classes, kernel_size=1),
        )
        self.upsampling = upsampling
        if upsampling == "transposed":
            f = self.factor
            self.upsample = nn.ConvTranspose2d(num_classes, num_classes, 2 * f, stride=f, padding=f // 2, bias=False)
            if not self.upsample.weight.is_meta:
                with torch.no_grad():
                    self.upsample.weight.copy_(bilinear_kernel(num_classes, f))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        features = self.encoder(x)  # N x 128 x 4 x 4
        scores = self.classifier(features)  # N x num_classes x 4 x 4: the coarse score map
        if self.upsampling == "transposed":
            return self.upsample(scores, output_size=size)  # N x num_classes x 64 x 64
        return F.interpolate(scores, size=size, mode="bilinear", align_corners=False)  # N x num_classes x 64 x 64


@register_model
def fcn(num_classes: int = 11, in_channels: int = 1, **kwargs) -> FCN:
    """FCN sized for 64 x 64 canvases: a miniature VGG (8, 16, 32, 64, 128), score map at 1/16 of the input.

    Options (``widths``, ``hidden``, ``upsampling``, ``batch_norm``) go to :class:`FCN`.
    """
    return FCN(num_classes, in_channels, **kwargs)
