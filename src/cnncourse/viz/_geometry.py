"""Where a convolution's window goes: the arithmetic behind the pictures and explorers.

The sizes come from ``cnncourse.arithmetic``; this module adds what only the pictures
need: which cells a window touches and which input pixels no window ever touches.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import numpy as np

from ..arithmetic import conv_output_size

Pair = tuple[int, int]

_DIMS = ("height", "width")


def _is_int(value) -> bool:
    # bool is an Integral, but stride=True is a bug, not a stride of 1
    return isinstance(value, Integral) and not isinstance(value, bool)


def to_pair(value: int | tuple[int, int], name: str, *, minimum: int) -> Pair:
    """Return ``value`` as a ``(height, width)`` pair of ints, each at least ``minimum``.

    Raises:
        TypeError: ``value`` is neither an int nor a pair of ints.
        ValueError: A value is below ``minimum``.
    """
    if _is_int(value):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) for v in value):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(
            f"{name} must be an int or a pair of ints, got {value!r}: use e.g. {name}=1 or {name}=(1, 2)"
        )
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return pair


def _show(pair: Pair) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


@dataclass(frozen=True)
class ConvGeometry:
    """Sizes of one 2-D convolution; building one checks that the window fits.

    Raises:
        TypeError, ValueError: see :func:`to_pair`; ValueError also when the
            (dilated) kernel is larger than the padded input, with a fix.
    """

    input_size: Pair
    kernel_size: Pair
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    dilation: Pair = (1, 1)

    @classmethod
    def of(cls, input_size, kernel_size, *, stride=1, padding=0, dilation=1) -> ConvGeometry:
        """Build from ints or pairs, checking each argument and that the window fits."""
        geometry = cls(
            to_pair(input_size, "input_size", minimum=1),
            to_pair(kernel_size, "kernel_size", minimum=1),
            to_pair(stride, "stride", minimum=1),
            to_pair(padding, "padding", minimum=0),
            to_pair(dilation, "dilation", minimum=1),
        )
        geometry._check_fits()
        return geometry

    @property
    def padded_size(self) -> Pair:
        return tuple(n + 2 * p for n, p in zip(self.input_size, self.padding))

    @property
    def extent(self) -> Pair:
        """How many pixels the dilated kernel spans: ``d * (k - 1) + 1``."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation))

    @property
    def output_size(self) -> Pair:
        """``floor((n + 2p - d(k - 1) - 1) / s) + 1`` for height and width."""
        return tuple(
            conv_output_size(n, k, s, p, d)
            for n, k, s, p, d in zip(self.input_size, self.kernel_size, self.stride, self.padding, self.dilation)
        )

    def _check_fits(self) -> None:
        for dim, *args in zip(_DIMS, self.input_size, self.kernel_size, self.stride, self.padding, self.dilation):
            try:
                conv_output_size(*args)
            except ValueError as err:
                raise ValueError(f"{dim}: {err}") from None

    def window(self, position: Pair) -> list[Pair]:
        """The padded-grid cells ``(row, column)`` that the kernel touches for one output cell."""
        (i, j), (sh, sw), (dh, dw) = position, self.stride, self.dilation
        kh, kw = self.kernel_size
        return [(i * sh + a * dh, j * sw + b * dw) for a in range(kh) for b in range(kw)]

    def covered(self) -> np.ndarray:
        """Boolean mask over the padded grid: True where some window touches the cell."""
        mask = np.zeros(self.padded_size, dtype=bool)
        oh, ow = self.output_size
        (sh, sw), (dh, dw) = self.stride, self.dilation
        kh, kw = self.kernel_size
        for a in range(kh):
            for b in range(kw):
                mask[a * dh: a * dh + (oh - 1) * sh + 1: sh, b * dw: b * dw + (ow - 1) * sw + 1: sw] = True
        return mask

    def check_position(self, position) -> Pair:
        """Return ``position`` as a pair, or raise ValueError when it is off the output grid."""
        pair = to_pair(position, "position", minimum=0)
        oh, ow = self.output_size
        if pair[0] >= oh or pair[1] >= ow:
            raise ValueError(
                f"position {tuple(pair)} is outside the {oh}x{ow} output: rows go from 0 to {oh - 1} "
                f"and columns from 0 to {ow - 1}"
            )
        return pair

    def describe(self) -> str:
        """``kernel 3, stride 1, padding 0, dilation 1`` (a pair is written ``3x2``)."""
        return (f"kernel {_show(self.kernel_size)}, stride {_show(self.stride)}, "
                f"padding {_show(self.padding)}, dilation {_show(self.dilation)}")
