"""Max and average pooling from scratch, checked against ``F.max_pool2d`` and ``F.avg_pool2d``.

Chapter 2 meets pooling right after convolution: it slides a window over each
channel like a convolution does, but instead of a learned dot product it keeps
the largest value (max pooling) or the mean (average pooling), channel by
channel. Here the windows come from the same view :mod:`~cnncourse.layers.conv`
uses for im2col, so each pool is two lines, and autograd gives the gradients:
max pooling sends each window's gradient to the pixel that won, average pooling
spreads it evenly.

The semantics are torch's defaults: ``stride`` defaults to ``kernel_size``; max
pooling pads with ``-inf`` (a padded pixel never wins); average pooling pads with
zeros and counts them (``count_include_pad=True``); ``ceil_mode=False`` and no
dilation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._utils import Pair, _check_fits, _check_input, _pair, _sliding_windows

__all__ = ["AvgPool2d", "MaxPool2d", "avg_pool2d", "max_pool2d"]


def _pool_args(
    kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None, padding: int | tuple[int, int]
) -> tuple[Pair, Pair, Pair]:
    """Check torch's pooling arguments and return them as pairs."""
    kernel_size = _pair(kernel_size, "kernel_size", minimum=1)
    stride = kernel_size if stride is None else _pair(stride, "stride", minimum=1)
    padding = _pair(padding, "padding", minimum=0)
    half = (kernel_size[0] // 2, kernel_size[1] // 2)
    if padding[0] > half[0] or padding[1] > half[1]:
        # with more, a window could hold nothing but padding; torch refuses it too
        raise ValueError(
            f"padding must be at most half the kernel size, got padding={padding} for kernel_size={kernel_size}: "
            f"use padding <= {half}"
        )
    return kernel_size, stride, padding


def _windows(x: torch.Tensor, kernel_size, stride, padding, *, fill: float) -> torch.Tensor:
    """Pad ``x`` with ``fill`` and return its pooling windows, flattened: N x C x H_out x W_out x (kh * kw)."""
    _check_input(x)
    kernel_size, stride, (pad_h, pad_w) = _pool_args(kernel_size, stride, padding)
    _check_fits(x.shape[-2:], kernel_size, padding=((pad_h, pad_h), (pad_w, pad_w)))
    x = F.pad(x, (pad_w, pad_w, pad_h, pad_h), value=fill)
    return _sliding_windows(x, kernel_size, stride).flatten(-2)


def max_pool2d(
    x: torch.Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
) -> torch.Tensor:
    """The largest value in each window, channel by channel (``F.max_pool2d``).

    Args:
        x: The input feature maps.
        kernel_size: Window height and width (an int for a square window).
        stride: Step of the window; default ``kernel_size`` (windows side by side).
        padding: ``-inf`` added on both sides, at most half the kernel size.

    Returns:
        The pooled maps. The gradient of each output goes to the pixel that held
        the maximum (for ties, to the one ``torch.max`` picks).

    Shape:
        - x: ``N x C x H x W``
        - returns: ``N x C x H_out x W_out`` with
          ``H_out = (H + 2 * padding - kernel_size) // stride + 1``

    Example:
        >>> x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
        >>> max_pool2d(x, kernel_size=2)
        tensor([[[[4.]]]])
    """
    windows = _windows(x, kernel_size, stride, padding, fill=float("-inf"))
    return windows.max(dim=-1).values


def avg_pool2d(
    x: torch.Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
) -> torch.Tensor:
    """The mean of each window, channel by channel (``F.avg_pool2d``).

    Padded zeros count towards the mean, like torch's default
    ``count_include_pad=True``: a 3x3 window in a corner with padding 1 divides
    the sum of its 4 real pixels by 9.

    Args:
        x: The input feature maps.
        kernel_size: Window height and width (an int for a square window).
        stride: Step of the window; default ``kernel_size`` (windows side by side).
        padding: Zeros added on both sides, at most half the kernel size.

    Returns:
        The pooled maps.

    Shape:
        - x: ``N x C x H x W``
        - returns: ``N x C x H_out x W_out`` with
          ``H_out = (H + 2 * padding - kernel_size) // stride + 1``

    Example:
        >>> x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
        >>> avg_pool2d(x, kernel_size=2)
        tensor([[[[2.5000]]]])
    """
    windows = _windows(x, kernel_size, stride, padding, fill=0.0)
    return windows.mean(dim=-1)


class _Pool2d(nn.Module):
    """What the two pooling modules share: checked arguments and torch's repr."""

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        _pool_args(kernel_size, stride, padding)  # fail where the layer is built, not in its first forward
        # kept as given, like torch does, so that the repr shows what was asked for
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Max pooling as a layer, built on :func:`max_pool2d`; a drop-in for ``nn.MaxPool2d``.

    Args:
        kernel_size: Window height and width.
        stride: Step of the window; default ``kernel_size``.
        padding: ``-inf`` added on both sides, at most half the kernel size.

    Shape:
        - input: ``N x C x H x W``
        - output: ``N x C x H_out x W_out``, as in :func:`max_pool2d`

    Example:
        >>> MaxPool2d(2)(torch.randn(1, 3, 28, 28)).shape
        torch.Size([1, 3, 14, 14])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_Pool2d):
    """Average pooling as a layer, built on :func:`avg_pool2d`; a drop-in for ``nn.AvgPool2d``.

    Args:
        kernel_size: Window height and width.
        stride: Step of the window; default ``kernel_size``.
        padding: Zeros added on both sides (and counted), at most half the kernel size.

    Shape:
        - input: ``N x C x H x W``
        - output: ``N x C x H_out x W_out``, as in :func:`avg_pool2d`

    Example:
        >>> AvgPool2d(2)(torch.randn(1, 3, 28, 28)).shape
        torch.Size([1, 3, 14, 14])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding)
