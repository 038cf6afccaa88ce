"""2-D convolution from scratch: nested loops, then im2col, checked against ``F.conv2d``.

Chapter 2 builds a convolution in three steps, and this file holds the first two:

1. **loops** (:func:`conv2d` with ``impl="loops"``): slide the kernel over the
   padded input; every output pixel is the dot product of the (dilated) patch
   under the kernel with the kernel, summed over all input channels. Two loops,
   over output rows and columns, and autograd does the backward pass.
2. **im2col** (``impl="im2col"``): copy every patch into one column of a matrix
   (:func:`im2col`), so that the whole convolution is a single matrix multiply.
   Its backward pass is written by hand: the gradient of the columns is
   scattered back onto the pixels they were copied from by :func:`col2im`, the
   adjoint of :func:`im2col`.
3. ``torch.nn.functional.conv2d``, the library's optimised kernels (oneDNN on a
   CPU, cuDNN on a GPU), which both of ours match to float precision
   (``tests/test_layers.py``) and which ``benchmarks/bench_im2col.py`` times
   against them.

:class:`Conv2d` wraps :func:`conv2d` in a module initialised exactly like
``nn.Conv2d``. The semantics are torch's for ``groups=1``: int or pair
``stride``, ``padding`` and ``dilation``, and ``padding="valid"`` or ``"same"``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from ._utils import (
    Pair,
    Side,
    _check_fits,
    _check_input,
    _output_size,
    _pair,
    _padding_for_same,
    _sliding_windows,
)

__all__ = ["Conv2d", "col2im", "conv2d", "im2col"]

Padding = int | tuple[int, int] | str

_IMPLS = ("loops", "im2col")


# --- padding ----------------------------------------------------------------------------------


def _resolve_padding(padding: Padding, kernel_size: Pair, *, stride: Pair, dilation: Pair) -> tuple[Side, Side]:
    """Turn torch's ``padding`` argument into ``((top, bottom), (left, right))``."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(
                    f"padding='same' needs stride 1, got stride={stride} (torch does not support it either): "
                    f"give the padding as a number instead, e.g. padding={tuple(k // 2 for k in kernel_size)}"
                )
            return _padding_for_same(kernel_size, dilation)
        raise ValueError(f"padding={padding!r} is not a padding mode: use 'valid', 'same', an int or a pair of ints")
    pad_h, pad_w = _pair(padding, "padding", minimum=0)
    return (pad_h, pad_h), (pad_w, pad_w)


def _pad(x: torch.Tensor, padding: tuple[Side, Side]) -> torch.Tensor:
    """Add zeros around the last two dimensions of ``x``."""
    (top, bottom), (left, right) = padding
    return F.pad(x, (left, right, top, bottom))  # F.pad lists the last dimension first


def _crop(x: torch.Tensor, padding: tuple[Side, Side]) -> torch.Tensor:
    """Undo :func:`_pad`: cut the padding off the last two dimensions."""
    (top, bottom), (left, right) = padding
    height, width = x.shape[-2:]
    return x[..., top : height - bottom, left : width - right]


# --- im2col and its adjoint, col2im -----------------------------------------------------------


def _unfold(x: torch.Tensor, kernel_size: Pair, stride: Pair, dilation: Pair) -> torch.Tensor:
    """im2col of an already padded input: N x C x H x W -> N x (C * kh * kw) x L.

    Row ``(c, i, j)`` of the result holds input channel ``c`` seen through
    kernel tap ``(i, j)``; column ``l`` is output position ``l`` in row-major
    order. That is ``F.unfold``'s layout, so ``weight.view(out_channels, -1)``
    lines up with the rows.
    """
    n, channels = x.shape[:2]
    kh, kw = kernel_size
    patches = _sliding_windows(x, kernel_size, stride, dilation)  # N x C x H_out x W_out x kh x kw, a view
    out_h, out_w = patches.shape[2:4]
    patches = patches.permute(0, 1, 4, 5, 2, 3)  # N x C x kh x kw x H_out x W_out, still a view
    return patches.reshape(n, channels * kh * kw, out_h * out_w)  # the one copy: every patch becomes a column


def _fold(cols: torch.Tensor, size: Pair, kernel_size: Pair, stride: Pair, dilation: Pair) -> torch.Tensor:
    """col2im onto an already padded ``size``: N x (C * kh * kw) x L -> N x C x H x W.

    The adjoint of :func:`_unfold`: where im2col copied pixel ``p`` into several
    columns (one for each patch that contains it), col2im adds those column
    entries back onto ``p``. Overlapping patches therefore sum, which is exactly
    what the backward pass of a convolution needs.
    """
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    height, width = size
    out_h = _output_size(height, kh, stride=sh, padding=(0, 0), dilation=dh)
    out_w = _output_size(width, kw, stride=sw, padding=(0, 0), dilation=dw)
    n, channels = cols.shape[0], cols.shape[1] // (kh * kw)
    taps = cols.reshape(n, channels, kh, kw, out_h, out_w)
    image = cols.new_zeros(n, channels, height, width)
    # One strided slice per kernel tap (9 for a 3x3 kernel), each vectorised over the batch,
    # channels and positions. Tap (i, j) at output (y, x) read pixel (i*dh + y*sh, j*dw + x*sw).
    # The windows overlap, so we cannot add through an unfolded view of `image` at once:
    # within one tap the pixels are distinct, so each `+=` below is a plain add.
    for i in range(kh):
        for j in range(kw):
            rows_read = slice(i * dh, i * dh + sh * (out_h - 1) + 1, sh)
            cols_read = slice(j * dw, j * dw + sw * (out_w - 1) + 1, sw)
            image[:, :, rows_read, cols_read] += taps[:, :, i, j]
    return image


def im2col(
    x: torch.Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
) -> torch.Tensor:
    """Copy every patch a kernel would see into one column of a matrix (``F.unfold``).

    Args:
        x: The input images.
        kernel_size: Kernel height and width (an int for a square kernel).
        stride: Step between neighbouring patches.
        padding: Zeros added on both sides of each spatial dimension.
        dilation: Spacing between the pixels a kernel tap reads.

    Returns:
        The columns, equal to ``F.unfold(x, kernel_size, dilation, padding, stride)``.

    Shape:
        - x: ``N x C x H x W``
        - returns: ``N x (C * kh * kw) x L`` with ``L = H_out * W_out`` patches in
          row-major order; row ``c * kh * kw + i * kw + j`` is channel ``c`` seen
          through kernel tap ``(i, j)``.

    Example:
        >>> x = torch.arange(16.0).view(1, 1, 4, 4)
        >>> im2col(x, kernel_size=2, stride=2)[0]
        tensor([[ 0.,  2.,  8., 10.],
                [ 1.,  3.,  9., 11.],
                [ 4.,  6., 12., 14.],
                [ 5.,  7., 13., 15.]])
    """
    _check_input(x)
    kernel_size = _pair(kernel_size, "kernel_size", minimum=1)
    stride = _pair(stride, "stride", minimum=1)
    dilation = _pair(dilation, "dilation", minimum=1)
    pad_h, pad_w = _pair(padding, "padding", minimum=0)
    padding = (pad_h, pad_h), (pad_w, pad_w)
    _check_fits(x.shape[-2:], kernel_size, padding=padding, dilation=dilation)
    return _unfold(_pad(x, padding), kernel_size, stride, dilation)


def col2im(
    cols: torch.Tensor,
    output_size: int | tuple[int, int],
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
) -> torch.Tensor:
    """Add columns back onto the pixels they came from: the adjoint of :func:`im2col` (``F.fold``).

    ``col2im(im2col(x))`` is not ``x``: a pixel that lies in ``k`` patches comes
    back ``k`` times larger. What holds is the adjoint identity
    ``(im2col(x) * cols).sum() == (x * col2im(cols)).sum()``, which makes
    col2im the backward pass of im2col.

    Args:
        cols: Columns laid out as :func:`im2col` returns them.
        output_size: Height and width of the (unpadded) image to rebuild.
        kernel_size: Kernel height and width used to make the columns.
        stride: Step between neighbouring patches.
        padding: Zeros that were added on both sides of each dimension; the
            values that land on them are dropped.
        dilation: Spacing between the pixels a kernel tap reads.

    Returns:
        The image, equal to ``F.fold(cols, output_size, kernel_size, dilation, padding, stride)``.

    Shape:
        - cols: ``N x (C * kh * kw) x L``
        - returns: ``N x C x H x W`` where ``(H, W) = output_size``

    Example:
        >>> cols = torch.ones(1, 4, 9)  # the 9 2x2 patches of a 4x4 image
        >>> col2im(cols, output_size=4, kernel_size=2)[0, 0]  # how many patches hold each pixel
        tensor([[1., 2., 2., 1.],
                [2., 4., 4., 2.],
                [2., 4., 4., 2.],
                [1., 2., 2., 1.]])
    """
    if not isinstance(cols, torch.Tensor) or cols.ndim != 3:
        shape = tuple(cols.shape) if isinstance(cols, torch.Tensor) else type(cols).__name__
        raise ValueError(f"cols must be a N x (C * kh * kw) x L tensor, got {shape}: pass what im2col returns")
    output_size = _pair(output_size, "output_size", minimum=1)
    kernel_size = _pair(kernel_size, "kernel_size", minimum=1)
    stride = _pair(stride, "stride", minimum=1)
    dilation = _pair(dilation, "dilation", minimum=1)
    pad_h, pad_w = _pair(padding, "padding", minimum=0)
    padding = (pad_h, pad_h), (pad_w, pad_w)
    _check_fits(output_size, kernel_size, padding=padding, dilation=dilation)

    taps = kernel_size[0] * kernel_size[1]
    if cols.shape[1] % taps:
        raise ValueError(
            f"cols has {cols.shape[1]} rows, not a multiple of the {taps} taps of a {kernel_size} kernel: "
            "pass the kernel_size the columns were made with"
        )
    padded = (output_size[0] + 2 * pad_h, output_size[1] + 2 * pad_w)
    out_h, out_w = (
        _output_size(size, kernel, stride=step, padding=(0, 0), dilation=dil)
        for size, kernel, step, dil in zip(padded, kernel_size, stride, dilation)
    )
    if cols.shape[2] != out_h * out_w:
        raise ValueError(
            f"cols has {cols.shape[2]} columns, but a {output_size} image gives {out_h} x {out_w} = "
            f"{out_h * out_w} patches with these settings: pass the output_size, stride, padding and dilation "
            "the columns were made with"
        )
    return _crop(_fold(cols, padded, kernel_size, stride, dilation), padding)


# --- conv2d, step 1: loops --------------------------------------------------------------------


def _conv2d_loops(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: Pair,
    padding: tuple[Side, Side],
    dilation: Pair,
) -> torch.Tensor:
    """Convolution as the definition says: one dot product per output pixel."""
    # Chapter 2 prints this function: its lines stay within 79 characters.
    (sh, sw), (dh, dw) = stride, dilation
    out_channels, _, kh, kw = weight.shape
    x = _pad(x, padding)
    n, _, height, width = x.shape
    out_h = _output_size(height, kh, stride=sh, padding=(0, 0), dilation=dh)
    out_w = _output_size(width, kw, stride=sw, padding=(0, 0), dilation=dw)

    out = x.new_zeros(n, out_channels, out_h, out_w)
    for i in range(out_h):
        for j in range(out_w):
            top, left = i * sh, j * sw
            # the kh x kw pixels under the kernel, every dilation-th one
            rows = slice(top, top + dh * (kh - 1) + 1, dh)
            cols = slice(left, left + dw * (kw - 1) + 1, dw)
            patch = x[:, :, rows, cols]  # N x C x kh x kw
            # the dot product of the patch with each output channel's
            # kernel, over c, h and w: N x out_channels
            out[:, :, i, j] = torch.einsum("nchw,ochw->no", patch, weight)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


# --- conv2d, step 2: im2col and one matrix multiply, with a hand-written backward -------------


class _Conv2dIm2col(torch.autograd.Function):
    """``out = weight @ im2col(x) + bias``, with the backward pass written out.

    With ``W = weight.view(out_channels, -1)`` (out_channels x C*kh*kw),
    ``X = im2col(x)`` (per image C*kh*kw x L) and ``G = dL/d out`` (per image
    out_channels x L), the forward pass is ``out = W @ X + b`` and the chain rule
    for a matrix product gives

    - ``dL/dX = W.T @ G``, which :func:`col2im` turns into ``dL/dx``;
    - ``dL/dW = sum over images of G @ X.T``;
    - ``dL/db = G`` summed over images and positions.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation):
        out_channels, _, kh, kw = weight.shape
        x = _pad(x, padding)
        n, _, height, width = x.shape
        out_h = _output_size(height, kh, stride=stride[0], padding=(0, 0), dilation=dilation[0])
        out_w = _output_size(width, kw, stride=stride[1], padding=(0, 0), dilation=dilation[1])

        cols = _unfold(x, (kh, kw), stride, dilation)  # N x C*kh*kw x L
        # (out_channels x C*kh*kw) @ (N x C*kh*kw x L): the weight is broadcast over the batch
        out = weight.reshape(out_channels, -1) @ cols  # N x out_channels x L
        if bias is not None:
            out += bias.view(1, -1, 1)
        ctx.save_for_backward(cols, weight)
        ctx.geometry = ((height, width), stride, padding, dilation)
        return out.view(n, out_channels, out_h, out_w)

    @staticmethod
    @once_differentiable  # `cols` was saved without a graph, so second derivatives would be wrong
    def backward(ctx, grad_out):
        cols, weight = ctx.saved_tensors
        padded_size, stride, padding, dilation = ctx.geometry
        n, out_channels = grad_out.shape[:2]
        grad_out = grad_out.reshape(n, out_channels, -1)  # N x out_channels x L
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_cols = weight.reshape(out_channels, -1).t() @ grad_out  # N x C*kh*kw x L
            grad_x = _crop(_fold(grad_cols, padded_size, weight.shape[-2:], stride, dilation), padding)
        if ctx.needs_input_grad[1]:
            # contract over the images (dim 0) and the positions (dim 2): out_channels x C*kh*kw
            grad_weight = torch.tensordot(grad_out, cols, dims=([0, 2], [0, 2])).view_as(weight)
        if ctx.needs_input_grad[2]:
            grad_bias = grad_out.sum(dim=(0, 2))
        return grad_x, grad_weight, grad_bias, None, None, None


def _conv2d_im2col(x, weight, bias, stride, padding, dilation) -> torch.Tensor:
    return _Conv2dIm2col.apply(x, weight, bias, stride, padding, dilation)


# --- the public function and module -----------------------------------------------------------


def _check_conv_args(x, weight, bias) -> None:
    _check_input(x)
    if not isinstance(weight, torch.Tensor) or weight.ndim != 4:
        shape = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise ValueError(
            f"weight must be out_channels x in_channels x kh x kw, got {shape}: "
            "for a single kernel use weight.view(1, 1, kh, kw)"
        )
    if x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"input has {x.shape[1]} channels but weight expects {weight.shape[1]}: pass an input with "
            f"{weight.shape[1]} channels, or a weight of shape ({weight.shape[0]}, {x.shape[1]}, kh, kw)"
        )
    if bias is not None and (not isinstance(bias, torch.Tensor) or bias.shape != (weight.shape[0],)):
        shape = tuple(bias.shape) if isinstance(bias, torch.Tensor) else type(bias).__name__
        raise ValueError(
            f"bias must hold one value per output channel, shape ({weight.shape[0]},), got {shape}: "
            "pass bias=None for no bias"
        )


def _check_dtypes(x, weight, bias) -> None:
    if weight.dtype != x.dtype:
        raise TypeError(f"x is {x.dtype} but weight is {weight.dtype}: convert one of them, e.g. x.to(weight.dtype)")
    if bias is not None and bias.dtype != x.dtype:
        raise TypeError(f"x is {x.dtype} but bias is {bias.dtype}: convert one of them, e.g. bias.to(x.dtype)")


def _check_impl(impl: str) -> None:
    if impl not in _IMPLS:
        raise ValueError(f"impl must be one of {_IMPLS}, got {impl!r}: use impl='loops' to read it, 'im2col' for speed")


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: Padding = 0,
    dilation: int | tuple[int, int] = 1,
    *,
    impl: str = "loops",
) -> torch.Tensor:
    """2-D convolution (cross-correlation, as in every deep-learning library), from scratch.

    Same arguments and result as ``torch.nn.functional.conv2d`` with ``groups=1``.

    Args:
        x: The input images.
        weight: One ``in_channels x kh x kw`` kernel per output channel.
        bias: One value per output channel, added everywhere; None for none.
        stride: Step of the kernel, an int or ``(height, width)``.
        padding: Zeros added around the input: an int or ``(height, width)``
            (both sides alike), ``"valid"`` (none) or ``"same"`` (output as big as
            the input; stride 1 only; an odd total puts the extra zero at the
            bottom and right, like torch).
        dilation: Spacing between the input pixels a kernel tap reads.
        impl: ``"loops"`` (one dot product per output pixel; readable and slow)
            or ``"im2col"`` (one matrix multiply, with a hand-written backward pass).

    Returns:
        The feature maps.

    Shape:
        - x: ``N x C_in x H x W``
        - weight: ``C_out x C_in x kh x kw``
        - bias: ``C_out``
        - returns: ``N x C_out x H_out x W_out`` with
          ``H_out = (H + pad_top + pad_bottom - dilation * (kh - 1) - 1) // stride + 1``
          and likewise ``W_out``.

    Raises:
        ValueError: Shapes that do not fit together, a kernel larger than the
            padded input, or a bad stride, padding, dilation or ``impl``.
        TypeError: Arguments of the wrong type, or mixed dtypes outside
            ``torch.autocast`` (inside it, all are cast to its dtype, as torch does).

    Example:
        >>> x = torch.randn(2, 3, 8, 8)
        >>> weight = torch.randn(4, 3, 3, 3)
        >>> conv2d(x, weight, padding=1).shape
        torch.Size([2, 4, 8, 8])
        >>> torch.allclose(conv2d(x, weight, impl="im2col"), F.conv2d(x, weight), atol=1e-5)
        True
    """
    _check_conv_args(x, weight, bias)
    _check_impl(impl)
    kernel_size = (weight.shape[2], weight.shape[3])
    stride = _pair(stride, "stride", minimum=1)
    dilation = _pair(dilation, "dilation", minimum=1)
    sides = _resolve_padding(padding, kernel_size, stride=stride, dilation=dilation)
    _check_fits(x.shape[-2:], kernel_size, padding=sides, dilation=dilation)
    convolve = _conv2d_loops if impl == "loops" else _conv2d_im2col

    device_type = x.device.type
    if not torch.is_autocast_enabled(device_type):
        _check_dtypes(x, weight, bias)
        return convolve(x, weight, bias, stride, sides, dilation)
    # Mixed precision, as in fit(amp=True): like F.conv2d, compute in autocast's dtype, whatever
    # the dtypes of the arguments. Autocast is off inside, so that the forward pass and the
    # hand-written backward pass see the same dtypes.
    dtype = torch.get_autocast_dtype(device_type)
    x, weight = x.to(dtype), weight.to(dtype)
    bias = bias.to(dtype) if bias is not None else None
    with torch.autocast(device_type, enabled=False):
        return convolve(x, weight, bias, stride, sides, dilation)


class Conv2d(nn.Module):
    """A convolution layer built on :func:`conv2d`, a drop-in for ``nn.Conv2d`` (``groups=1``).

    Its parameters are created and initialised exactly as ``nn.Conv2d`` does it,
    so after the same ``torch.manual_seed`` both hold the same weights.

    Args:
        in_channels: Channels of the input.
        out_channels: Channels of the output, i.e. number of kernels.
        kernel_size: Kernel height and width (an int for a square kernel).
        stride: Step of the kernel.
        padding: An int, a pair, ``"valid"`` or ``"same"``; see :func:`conv2d`.
        dilation: Spacing between the input pixels a kernel tap reads.
        bias: Learn one bias per output channel.
        impl: ``"im2col"`` (default) or ``"loops"``; see :func:`conv2d`.
        device: Where to create the parameters.
        dtype: Their dtype (default torch's default, float32).

    Shape:
        - input: ``N x in_channels x H x W``
        - output: ``N x out_channels x H_out x W_out``, as in :func:`conv2d`

    Example:
        >>> layer = Conv2d(3, 8, kernel_size=3, padding=1)
        >>> layer(torch.randn(2, 3, 16, 16)).shape
        torch.Size([2, 8, 16, 16])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: Padding = 0,
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
        *,
        impl: str = "im2col",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        _check_impl(impl)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size", minimum=1)
        self.stride = _pair(stride, "stride", minimum=1)
        self.dilation = _pair(dilation, "dilation", minimum=1)
        # check now, so that a bad padding fails where the layer is built, not in the first forward
        _resolve_padding(padding, self.kernel_size, stride=self.stride, dilation=self.dilation)
        self.padding = padding if isinstance(padding, str) else _pair(padding, "padding", minimum=0)
        self.impl = impl

        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size, **factory))
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise like ``nn.Conv2d``: uniform in +-1/sqrt(fan_in) for the bias, and for the weight too.

        ``kaiming_uniform_`` with ``a=sqrt(5)`` draws from
        ``U(-bound, bound)`` with ``bound = sqrt(6 / ((1 + a^2) fan_in)) = 1/sqrt(fan_in)``;
        torch keeps this odd spelling for backward compatibility, and we copy it
        so that the random numbers are drawn in the same order.
        """
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, impl=self.impl)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding!r}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.bias is None:
            text += ", bias=False"
        return text + f", impl={self.impl!r}"
