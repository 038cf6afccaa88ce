"""Argument checks and the sliding-window view shared by the convolution and pooling layers.

torch lets ``stride``, ``padding`` and friends be an int (the same for height
and width) or a pair ``(height, width)``. Every public function here turns them
into pairs first, with :func:`_pair`, so the arithmetic that follows is written
once, for two explicit numbers. :func:`_sliding_windows` is the one view of
"every patch under the kernel" that both im2col and pooling start from. The
checks live here so that ``conv.py`` and ``pool.py`` stay about convolution and
pooling, and so that the same mistake gets the same message everywhere.
"""

from __future__ import annotations

import torch

Pair = tuple[int, int]
#: Padding of one spatial dimension: (before, after), i.e. (top, bottom) or (left, right).
Side = tuple[int, int]

_DIMS = ("height", "width")


def _is_int(value) -> bool:
    # bool is a subclass of int, but stride=True is a bug, not a stride of 1
    return isinstance(value, int) and not isinstance(value, bool)


def _pair(value: int | tuple[int, int], name: str, *, minimum: int) -> Pair:
    """Return ``value`` as a ``(height, width)`` pair of ints, each at least ``minimum``.

    Args:
        value: An int (used for both dimensions) or a pair of ints.
        name: The argument's name, for the error message.
        minimum: The smallest allowed value (1 for strides, 0 for padding).

    Raises:
        TypeError: ``value`` is neither an int nor a pair of ints.
        ValueError: A value is below ``minimum``.

    Example:
        >>> _pair(3, "kernel_size", minimum=1)
        (3, 3)
    """
    if _is_int(value):
        pair = (value, value)
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) for v in value):
        pair = (value[0], value[1])
    else:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}: use e.g. {name}=1 or {name}=(1, 2)")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return pair


def _padding_for_same(kernel_size: Pair, dilation: Pair) -> tuple[Side, Side]:
    """The ``(before, after)`` padding of each dimension that keeps a stride-1 output the input's size.

    A dilated kernel spans ``dilation * (kernel - 1) + 1`` pixels, so the output
    keeps the input's size when ``dilation * (kernel - 1)`` pixels of padding
    are added in all. When that total is odd (an even kernel), the two sides
    cannot be equal: like torch, we put the extra pixel after (bottom, right).

    Example:
        >>> _padding_for_same((3, 2), (1, 1))
        ((1, 1), (0, 1))
    """
    sides = []
    for kernel, dil in zip(kernel_size, dilation):
        total = dil * (kernel - 1)
        sides.append((total // 2, total - total // 2))
    return sides[0], sides[1]


def _output_size(size: int, kernel: int, *, stride: int, padding: Side, dilation: int) -> int:
    """Output length of a sliding window along one dimension (torch's formula, floor mode)."""
    span = dilation * (kernel - 1) + 1  # pixels covered by one dilated kernel
    return (size + padding[0] + padding[1] - span) // stride + 1


def _sliding_windows(x: torch.Tensor, kernel_size: Pair, stride: Pair, dilation: Pair = (1, 1)) -> torch.Tensor:
    """Every kh x kw patch a kernel sees in ``x``, as a view (no pixel is copied).

    Shape:
        - x: ``N x C x H x W``, already padded
        - returns: ``N x C x H_out x W_out x kh x kw``; element ``[n, c, y, x, i, j]``
          is pixel ``(y * stride_h + i * dilation_h, x * stride_w + j * dilation_w)``
    """
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    # Tensor.unfold(dim, size, step) cuts `dim` into windows of `size` pixels, one every
    # `step` pixels, and appends each window as a new last dimension. A dilated kernel
    # spans dilation * (kernel - 1) + 1 pixels and reads every dilation-th of them.
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    windows = x.unfold(2, span_h, sh).unfold(3, span_w, sw)  # N x C x H_out x W_out x span_h x span_w
    return windows[..., ::dh, ::dw]  # N x C x H_out x W_out x kh x kw


def _check_input(x, *, name: str = "x") -> None:
    """``x`` must be a floating-point N x C x H x W tensor."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor, got {type(x).__name__}: convert it with torch.as_tensor({name})"
        )
    if x.ndim != 4:
        hint = f"add a batch dimension with {name}.unsqueeze(0)" if x.ndim == 3 else "reshape it to 4 dimensions"
        raise ValueError(f"{name} must be N x C x H x W, got a tensor of shape {tuple(x.shape)}: {hint}")
    if not x.is_floating_point():
        raise TypeError(f"{name} has dtype {x.dtype}, but these layers need floating point: use {name}.float()")


def _check_fits(size: Pair, kernel_size: Pair, *, padding: tuple[Side, Side], dilation: Pair = (1, 1)) -> None:
    """Raise if the (dilated) kernel does not fit into the padded input in some dimension.

    The fix names the smallest symmetric padding that makes it fit. For pooling,
    which allows at most ``kernel_size // 2``, that number is always allowed
    (for an input of at least one pixel).
    """
    for dim, n, kernel, (before, after), dil in zip(_DIMS, size, kernel_size, padding, dilation):
        span = dil * (kernel - 1) + 1
        padded = n + before + after
        if span > padded:
            what = f"kernel {span}" if dil == 1 else f"dilated kernel {span} (kernel {kernel}, dilation {dil})"
            needed = -(-(span - n) // 2)  # ceil((span - n) / 2), written with floor division
            raise ValueError(
                f"{what} is larger than the padded input {padded}: use padding >= {needed} "
                f"(input {dim} {n}, padding {before} + {after})"
            )
