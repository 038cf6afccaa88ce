"""Output sizes and receptive fields: the arithmetic of padding, stride and dilation.

The first half answers "how big is the output?" for one spatial axis, with
torch's own rules: :func:`conv_output_size` (``nn.Conv2d``),
:func:`pool_output_size` (``nn.MaxPool2d``/``nn.AvgPool2d``, ``ceil_mode``
included), :func:`conv_transpose_output_size` (``nn.ConvTranspose2d``) and
:func:`same_padding`. Arithmetic that torch would refuse raises ValueError
saying what to change. The letters ``i, k, s, p, d`` (input, kernel, stride,
padding, dilation) follow Dumoulin & Visin, "A guide to convolution arithmetic
for deep learning" (2016, arXiv:1603.07285).

The second half answers "which input pixels does one output unit see?".
:func:`receptive_field` traces a model with ``torch.fx`` and carries three
numbers per axis through every node of the graph, as in Araujo, Norris & Sim,
"Computing Receptive Fields of Convolutional Neural Networks", Distill (2019),
doi:10.23915/distill.00021. Starting from ``r = 1, j = 1, P = 0`` at the
input, a layer with kernel ``k``, stride ``s``, left padding ``p`` and
dilation ``d`` gives::

    r_out = r_in + (d * (k - 1)) * j_in   # receptive field size
    j_out = j_in * s                      # effective stride (the "jump")
    P_out = P_in + p * j_in               # effective padding

Unit ``n`` of that layer then sees the input pixels ``n * j - P`` to
``n * j - P + r - 1`` (negative indices and indices past the end are padding).

Choices this module makes, where the paper leaves room:

* Merges (``+``, ``*``, ``torch.cat`` over channels) need the same effective
  stride on every incoming path, or they raise ValueError. The merged window is
  the union of the incoming windows. When the paths are centred alike (every
  torchvision classifier) that is the paper's "largest receptive field over the
  paths"; when they are not, the union is still exactly the set of pixels that
  can reach the unit.
* An input broadcast into a merge from a 1 x 1 map (squeeze-and-excitation
  gates) is left out of the merge and noted in the row: it carries global
  context, and counting it would make every later unit "see everything".
* ``AdaptiveAvgPool2d``/``AdaptiveMaxPool2d`` are exact pools with kernel =
  stride = input // output whenever the input divides evenly; global pooling
  (output 1) is that case, and its unit sees the whole input. When the input
  does not divide evenly the windows differ in size and position, no kernel
  and stride describe them, and the spatial part of the network ends there.
* ``Flatten``, ``Linear`` and reshapes to fewer dimensions end the spatial
  part: the table stops (other branches of the graph go on).
* Pointwise layers pass through: activations, dropout, ``Identity``,
  ``LocalResponseNorm``, and the normalisation layers. ``BatchNorm`` in
  evaluation mode is truly per pixel; ``GroupNorm`` and ``InstanceNorm``
  statistics pool over the whole map, which the receptive field (like the
  paper's) ignores.
* Transposed convolutions and upsampling are refused with TypeError: an
  upsampled unit sits between input positions, so no integer stride fits.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import math
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from itertools import chain
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import fx, nn

from .notebook import Table

__all__ = [
    "LayerReceptiveField",
    "ReceptiveField",
    "Region",
    "conv_output_size",
    "conv_transpose_output_size",
    "pool_output_size",
    "receptive_field",
    "same_padding",
]

log = logging.getLogger(__name__)

Pair = tuple[int, int]


# ---------------------------------------------------------------------------
# Output sizes, one axis at a time
# ---------------------------------------------------------------------------


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})") from None


def _checked(i: Any, k: Any, s: Any, p: Any, d: Any) -> tuple[int, int, int, int, int]:
    """Validate the five numbers shared by every layer; return them as ints."""
    i, k, s, p, d = (_as_int(n, v) for n, v in zip(("i", "k", "s", "p", "d"), (i, k, s, p, d)))
    if i < 1:
        raise ValueError(f"the input size i must be >= 1, got {i}")
    if k < 1:
        raise ValueError(f"the kernel size k must be >= 1, got {k}")
    if s < 1:
        raise ValueError(f"the stride s must be >= 1, got {s}: stride 1 visits every position, 2 every other one")
    if d < 1:
        raise ValueError(f"the dilation d must be >= 1, got {d}: d = 1 is an ordinary, undilated kernel")
    if p < 0:
        raise ValueError(f"the padding p must be >= 0, got {p}: to crop the input, slice it before the layer")
    return i, k, s, p, d


def _kernel_too_large(i: int, k: int, p: int, d: int, *, max_padding: int | None = None) -> ValueError:
    span = d * (k - 1) + 1
    what = f"the dilated kernel spans {span} pixels" if d > 1 else f"the kernel spans {span} pixels"
    need = -(-(span - i) // 2)  # ceil((span - i) / 2)
    if max_padding is None or need <= max_padding:
        fix = f"use padding >= {need} or a smaller kernel"
    else:
        fix = f"use a smaller kernel or an input of at least {span - 2 * max_padding} pixels"
    return ValueError(f"{what} but the padded input has {i + 2 * p}: {fix}")


def conv_output_size(i: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
    """Return the output size of a convolution along one axis, as ``nn.Conv2d`` computes it.

    ``floor((i + 2p - d(k - 1) - 1) / s) + 1``: the dilated kernel spans
    ``d(k - 1) + 1`` pixels and slides in steps of ``s`` over the padded input;
    a last step that would run past the padding is dropped.

    Args:
        i: Input size (height or width).
        k: Kernel size.
        s: Stride.
        p: Padding added on each side.
        d: Dilation (``d - 1`` gaps between kernel taps).

    Returns:
        The output size, at least 1.

    Raises:
        ValueError: A size, kernel, stride or dilation below 1, a negative
            padding, or a dilated kernel wider than the padded input.

    Shape:
        Height and width are independent: call it once per axis.

    Example:
        >>> conv_output_size(28, 3), conv_output_size(28, 3, p=1), conv_output_size(28, 3, s=2, p=1)
        (26, 28, 14)
        >>> conv_output_size(32, 3, d=2)
        28
    """
    i, k, s, p, d = _checked(i, k, s, p, d)
    span = d * (k - 1) + 1
    if span > i + 2 * p:
        raise _kernel_too_large(i, k, p, d)
    return (i + 2 * p - span) // s + 1


def pool_output_size(
    i: int, k: int, s: int | None = None, p: int = 0, d: int = 1, *, ceil_mode: bool = False
) -> int:
    """Return the output size of a pooling layer along one axis, as ``nn.MaxPool2d`` computes it.

    The same formula as :func:`conv_output_size`, with two pooling rules:
    the stride defaults to the kernel size, and padding may be at most half
    the kernel (``p <= k // 2``), since a window must see at least one real
    pixel. With ``ceil_mode=True`` the division rounds up, so a last, partial
    window is kept, unless it would start in the right-hand padding (torch
    drops a window that starts at or beyond ``i + p``).

    Args:
        i: Input size (height or width).
        k: Kernel (window) size.
        s: Stride; ``None`` means ``k`` (windows side by side), like torch.
        p: Padding on each side.
        d: Dilation (``nn.MaxPool2d`` only; ``nn.AvgPool2d`` has none).
        ceil_mode: Round up instead of down, as in ``nn.MaxPool2d(ceil_mode=True)``.

    Returns:
        The output size, at least 1.

    Raises:
        ValueError: Invalid numbers (see :func:`conv_output_size`), padding
            above ``k // 2``, or a window that fits nowhere.

    Shape:
        Height and width are independent: call it once per axis.

    Example:
        >>> pool_output_size(28, 2), pool_output_size(7, 2), pool_output_size(7, 2, ceil_mode=True)
        (14, 3, 4)
        >>> pool_output_size(112, 3, 2, 1)  # ResNet's stem max pool
        56
    """
    s = k if s is None else s
    i, k, s, p, d = _checked(i, k, s, p, d)
    if p > k // 2:
        raise ValueError(
            f"padding {p} is more than half the kernel {k}: pooling allows padding <= {k // 2} (k // 2), "
            "so that no window lies entirely in the padding; use less padding or a larger kernel"
        )
    span = d * (k - 1) + 1
    if ceil_mode:
        out = (i + 2 * p - span + s - 1) // s + 1  # Python's // rounds down, like torch's div_rtn
        if (out - 1) * s >= i + p:  # the last window would start in the right-hand padding
            out -= 1
    else:
        out = (i + 2 * p - span) // s + 1
    if out < 1:
        raise _kernel_too_large(i, k, p, d, max_padding=k // 2)
    return out


def conv_transpose_output_size(
    i: int, k: int, s: int = 1, p: int = 0, output_padding: int = 0, d: int = 1
) -> int:
    """Return the output size of a transposed convolution along one axis, as ``nn.ConvTranspose2d`` computes it.

    ``(i - 1)s - 2p + d(k - 1) + output_padding + 1``. A convolution with
    stride ``s`` maps ``s`` neighbouring input sizes to the same output size;
    ``output_padding`` picks which of them its transpose gives back, so torch
    requires it to be smaller than the stride (or than the dilation).

    Args:
        i: Input size (height or width).
        k: Kernel size.
        s: Stride (the upsampling factor).
        p: Padding of the convolution being transposed: it removes ``p``
            pixels from each side of the output.
        output_padding: Extra pixels added on one side (bottom/right) of the output.
        d: Dilation.

    Returns:
        The output size, at least 1.

    Raises:
        ValueError: Invalid numbers (see :func:`conv_output_size`), a
            negative ``output_padding``, one not smaller than the stride or
            the dilation, or padding that removes the whole output.

    Shape:
        Height and width are independent: call it once per axis.

    Example:
        >>> conv_transpose_output_size(14, 4, s=2, p=1)  # DCGAN's upsampling step
        28
        >>> conv_transpose_output_size(7, 3, s=2, p=1, output_padding=1)  # undoes conv_output_size(14, 3, 2, 1)
        14
    """
    i, k, s, p, d = _checked(i, k, s, p, d)
    output_padding = _as_int("output_padding", output_padding)
    if output_padding < 0:
        raise ValueError(f"output_padding must be >= 0, got {output_padding}")
    if not (output_padding < s or output_padding < d):
        raise ValueError(
            f"output_padding {output_padding} must be smaller than the stride ({s}) or the dilation ({d}): "
            f"it only chooses among the {max(s, d)} input sizes that the strided convolution maps to one "
            f"output size; use output_padding <= {max(s, d) - 1}"
        )
    out = (i - 1) * s - 2 * p + d * (k - 1) + output_padding + 1
    if out < 1:
        max_p = ((i - 1) * s + d * (k - 1) + output_padding) // 2
        raise ValueError(
            f"padding {p} removes {2 * p} pixels from an output of {out + 2 * p}, leaving {out}: "
            f"use padding <= {max_p}"
        )
    return out


def same_padding(k: int, d: int = 1) -> int:
    """Return the padding that keeps the size unchanged at stride 1.

    A kernel spanning ``d(k - 1) + 1`` pixels loses ``d(k - 1)`` pixels of
    output, so each side needs ``d(k - 1) / 2``. That is a whole number for
    every odd kernel (3 -> 1, 5 -> 2, 7 -> 3), which is one reason odd kernels
    are the norm. An even kernel (with odd dilation) needs an odd total, which
    cannot be split evenly: ``nn.Conv2d(..., padding="same")`` then pads one
    pixel more on the right and bottom than on the left and top, which shifts
    the output by half a pixel. At stride ``s > 1`` no fixed padding keeps the
    size; torch refuses ``padding="same"`` there, and TensorFlow's ``SAME``
    (output ``ceil(i / s)``) pads according to the input size.

    Args:
        k: Kernel size.
        d: Dilation.

    Returns:
        The padding for each side.

    Raises:
        ValueError: ``k`` or ``d`` below 1, or ``d(k - 1)`` odd (an even
            kernel with odd dilation).

    Example:
        >>> same_padding(3), same_padding(5), same_padding(3, d=2)
        (1, 2, 2)
        >>> conv_output_size(28, 5, p=same_padding(5))
        28
    """
    k, d = _as_int("k", k), _as_int("d", d)
    if k < 1:
        raise ValueError(f"the kernel size k must be >= 1, got {k}")
    if d < 1:
        raise ValueError(f"the dilation d must be >= 1, got {d}: d = 1 is an ordinary, undilated kernel")
    total = d * (k - 1)
    if total % 2:
        left, right = total // 2, total - total // 2
        raise ValueError(
            f"a {k}-pixel kernel (dilation {d}) needs {total} pixels of padding in all, which cannot be "
            f"split evenly between the two sides: use an odd kernel, or nn.Conv2d(..., padding='same'), "
            f"which pads {left} on the left/top and {right} on the right/bottom "
            f"(by hand: F.pad(x, ({left}, {right}, {left}, {right})) and then padding=0)"
        )
    return total // 2


# ---------------------------------------------------------------------------
# Receptive fields: the table
# ---------------------------------------------------------------------------


def _fmt(pair: Pair) -> str:
    return f"{pair[0]} x {pair[1]}"


@dataclass(frozen=True)
class LayerReceptiveField:
    """One row of a :class:`ReceptiveField` table, measured at a layer's output.

    Every pair is (height, width).

    Attributes:
        name: The node's name in the traced graph, as in
            ``torchvision.models.feature_extraction.get_graph_node_names``
            (``"features.0"``, ``"layer2.1.add"``).
        type: The layer's class (``"Conv2d"``) or function (``"add"``, ``"cat"``).
        output_size: Size of the layer's output feature map.
        size: Receptive field size r: how many input pixels one unit spans.
        stride: Effective stride (jump) j: input pixels between neighbouring units.
        padding: Effective padding P: unit ``n`` sees input pixels from ``n * j - P``.
        note: Anything the numbers leave out, such as an ignored broadcast input.
    """

    name: str
    type: str
    output_size: Pair
    size: Pair
    stride: Pair
    padding: Pair
    note: str = ""


class Region(NamedTuple):
    """The input pixels one unit sees: ``image[top:bottom, left:right]`` (half-open, like slicing).

    Attributes:
        top: First row.
        left: First column.
        bottom: One past the last row.
        right: One past the last column.
        clipped: True when the unit's window reaches past the image into the
            padding (the coordinates are then clipped to the image, unless
            ``clip=False`` was asked for).
    """

    top: int
    left: int
    bottom: int
    right: int
    clipped: bool

    @property
    def height(self) -> int:
        """Number of rows in the region."""
        return self.bottom - self.top

    @property
    def width(self) -> int:
        """Number of columns in the region."""
        return self.right - self.left


@dataclass(frozen=True)
class ReceptiveField:
    """The receptive field of every layer of a model, from :func:`receptive_field`.

    The first row is the input itself (r = 1, j = 1, P = 0). ``size``,
    ``stride`` and ``padding`` are the last row's values: the end of the
    network's spatial part. Print it for a text table; in a notebook it shows
    as an HTML table.

    Attributes:
        layers: One :class:`LayerReceptiveField` per layer that changes the
            geometry (and per pointwise layer when asked for).
        input_size: (height, width) of the input.
        stopped_at: Name of the layer where the spatial part ended (a
            ``Flatten``, ``Linear`` or uneven adaptive pool), or None.
    """

    layers: list[LayerReceptiveField]
    input_size: Pair
    stopped_at: str | None = None

    @property
    def size(self) -> Pair:
        """Receptive field size (height, width) at the last layer."""
        return self.layers[-1].size

    @property
    def stride(self) -> Pair:
        """Effective stride (height, width) at the last layer."""
        return self.layers[-1].stride

    @property
    def padding(self) -> Pair:
        """Effective padding (height, width) at the last layer."""
        return self.layers[-1].padding

    def row(self, layer: int | str | None = None) -> LayerReceptiveField:
        """Return one row of the table.

        Args:
            layer: A row index, a row name, or the name of a module whose
                output is wanted (``"layer4"`` gives the last row inside
                ``layer4``). None means the last row.

        Returns:
            The row.

        Raises:
            ValueError: No row has that name or lies inside that module.
            IndexError: The index is out of range.

        Example:
            >>> from torch import nn
            >>> rf = receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3)), (1, 8, 8))
            >>> rf.row("0").size, rf.row(-1).size
            ((3, 3), (5, 5))
        """
        if layer is None:
            return self.layers[-1]
        if isinstance(layer, str):
            for row in self.layers:
                if row.name == layer:
                    return row
            inside = [row for row in self.layers if row.name.startswith(layer + ".")]
            if inside:
                return inside[-1]
            names = [row.name for row in self.layers]
            shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
            raise ValueError(f"no row is named {layer!r} or lies inside it; the rows are {shown}")
        return self.layers[_as_int("layer", layer)]

    def region(self, y: int, x: int, *, layer: int | str | None = None, clip: bool = True) -> Region:
        """Return the input region that output unit ``(y, x)`` of a layer sees.

        Args:
            y: Row of the unit in the layer's output.
            x: Column of the unit in the layer's output.
            layer: Which row of the table (see :meth:`row`); None is the last.
            clip: Clip the region to the image (True) or return the whole
                window, padding included (False).

        Returns:
            A :class:`Region`; ``image[..., r.top:r.bottom, r.left:r.right]``
            is what the unit sees.

        Raises:
            ValueError: ``(y, x)`` lies outside the layer's output.

        Example:
            >>> from torch import nn
            >>> rf = receptive_field(nn.Conv2d(1, 1, 3, padding=1), (1, 8, 8))
            >>> rf.region(3, 4)
            Region(top=2, left=3, bottom=5, right=6, clipped=False)
            >>> rf.region(0, 0)
            Region(top=0, left=0, bottom=2, right=2, clipped=True)
        """
        row = self.row(layer)
        y, x = _as_int("y", y), _as_int("x", x)
        (h, w) = row.output_size
        if not (0 <= y < h and 0 <= x < w):
            raise ValueError(
                f"unit ({y}, {x}) is outside the {_fmt(row.output_size)} output of {row.name!r}: "
                f"use 0 <= y < {h} and 0 <= x < {w}"
            )
        starts = [u * j - p for u, j, p in zip((y, x), row.stride, row.padding)]
        stops = [start + r for start, r in zip(starts, row.size)]
        clipped = any(start < 0 or stop > n for start, stop, n in zip(starts, stops, self.input_size))
        if clip:
            starts = [min(max(start, 0), n) for start, n in zip(starts, self.input_size)]
            stops = [min(max(stop, 0), n) for stop, n in zip(stops, self.input_size)]
        return Region(starts[0], starts[1], stops[0], stops[1], clipped)

    def center(self, y: int, x: int, *, layer: int | str | None = None) -> tuple[float, float]:
        """Return the input coordinates (row, column) at the centre of unit ``(y, x)``'s window.

        Args:
            y: Row of the unit in the layer's output.
            x: Column of the unit in the layer's output.
            layer: Which row of the table (see :meth:`row`); None is the last.

        Returns:
            ``(n * j - P + (r - 1) / 2)`` per axis; a half means the centre
            falls between two pixels (an even receptive field).

        Example:
            >>> from torch import nn
            >>> receptive_field(nn.Conv2d(1, 1, 3, stride=2), (1, 9, 9)).center(1, 2)
            (3.0, 5.0)
        """
        row = self.row(layer)
        region = self.region(y, x, layer=layer, clip=False)
        return (region.top + (row.size[0] - 1) / 2, region.left + (row.size[1] - 1) / 2)

    def to_rows(self) -> list[dict[str, Any]]:
        """Return the table as plain dicts (keys as in :class:`LayerReceptiveField`), e.g. for pandas."""
        return [asdict(row) for row in self.layers]

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        header = ["layer", "type", "output", "receptive field", "effective stride", "effective padding"]
        with_notes = any(row.note for row in self.layers)
        if with_notes:
            header.append("note")
        body = [
            [row.name, row.type, _fmt(row.output_size), _fmt(row.size), _fmt(row.stride), _fmt(row.padding)]
            + ([row.note] if with_notes else [])
            for row in self.layers
        ]
        return header, body

    def _summary(self) -> str:
        text = (
            f"receptive field {_fmt(self.size)}, effective stride {_fmt(self.stride)}, "
            f"effective padding {_fmt(self.padding)} on a {_fmt(self.input_size)} input"
        )
        if self.stopped_at is not None:
            text += f"; the spatial part ends at {self.stopped_at!r}"
        return text

    def _table(self) -> Table:
        header, body = self._cells()
        return Table(header, body, align="l" * len(header), footer=[self._summary()])

    def __str__(self) -> str:
        return str(self._table())

    def _repr_html_(self) -> str:
        return self._table()._repr_html_()


# ---------------------------------------------------------------------------
# Receptive fields: what each kind of layer does
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Geometry:
    """(r, j, P) per axis, and the feature map's size, at one node."""

    size: Pair
    rf: Pair
    stride: Pair
    padding: Pair


@dataclass(frozen=True)
class _Window:
    """A sliding window: kernel, stride, left/top padding and dilation per axis."""

    kernel: Pair
    stride: Pair
    padding: Pair
    dilation: Pair = (1, 1)


_POINTWISE, _STOP = "pointwise", "stop"


def _pair(value: Any) -> Pair:
    if isinstance(value, int):
        return (value, value)
    value = tuple(value)
    return (value[0], value[0]) if len(value) == 1 else (value[0], value[1])


def _conv_padding(padding: Any, kernel: Pair, dilation: Pair) -> Pair:
    if padding == "valid":
        return (0, 0)
    if padding == "same":  # torch pads d(k-1)//2 on the left/top and the rest on the right/bottom
        return (dilation[0] * (kernel[0] - 1) // 2, dilation[1] * (kernel[1] - 1) // 2)
    return _pair(padding)


def _apply(geometry: _Geometry, window: _Window, size: Pair) -> _Geometry:
    axes = zip(geometry.rf, window.kernel, window.dilation, geometry.stride)
    rf = tuple(r + d * (k - 1) * j for r, k, d, j in axes)
    stride = tuple(j * s for j, s in zip(geometry.stride, window.stride))
    padding = tuple(pad + p * j for pad, p, j in zip(geometry.padding, window.padding, geometry.stride))
    return _Geometry(size, rf, stride, padding)  # type: ignore[arg-type]


_POINTWISE_MODULES: tuple[type[nn.Module], ...] = (
    nn.Identity,
    # activations
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish, nn.Softplus, nn.Softsign,
    nn.Softshrink, nn.Hardshrink, nn.Tanhshrink, nn.Threshold, nn.LogSigmoid, nn.Softmax2d,
    # normalisation (see the module docstring for GroupNorm and InstanceNorm); the private bases
    # _BatchNorm, _InstanceNorm and _DropoutNd also cover the Lazy and SyncBatchNorm variants
    nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm,
    nn.LocalResponseNorm, nn.CrossMapLRN2d,  # + torchvision's FrozenBatchNorm2d, see _torchvision
    # regularisation and channel bookkeeping
    nn.modules.dropout._DropoutNd, nn.ChannelShuffle,
)

_STOP_MODULES: tuple[type[nn.Module], ...] = (nn.Flatten, nn.Linear, nn.Bilinear)

_UPSAMPLING_MODULES: tuple[type[nn.Module], ...] = (
    nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Upsample, nn.PixelShuffle, nn.MaxUnpool2d,
)

_PAD_MODULES: tuple[type[nn.Module], ...] = (
    nn.ConstantPad2d, nn.ZeroPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d, nn.CircularPad2d,
)

_POINTWISE_FUNCTIONS: set[Callable] = {
    # arithmetic, also the merges: x + identity, torch.mul(gate, x)
    operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv, operator.neg,
    operator.pos, operator.pow, operator.iadd, operator.isub, operator.imul, operator.itruediv,
    torch.add, torch.sub, torch.subtract, torch.mul, torch.multiply, torch.div, torch.divide,
    torch.maximum, torch.minimum, torch.neg, torch.abs, torch.exp, torch.log, torch.sqrt, torch.rsqrt,
    torch.pow, torch.square, torch.clamp, torch.clip, torch.erf,
    # activations
    torch.relu, torch.relu_, torch.sigmoid, torch.tanh, F.relu, F.relu_, F.relu6, F.leaky_relu, F.gelu,
    F.silu, F.mish, F.hardswish, F.hardsigmoid, F.hardtanh, F.elu, F.selu, F.celu, F.softplus,
    F.sigmoid, F.tanh, F.logsigmoid, F.prelu, F.rrelu, F.threshold,
    # regularisation and normalisation
    F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout,
    F.batch_norm, F.group_norm, F.instance_norm, F.local_response_norm,
    F.channel_shuffle, torch.channel_shuffle,  # + torchvision.ops.stochastic_depth, see _torchvision
}

_POINTWISE_METHODS: set[str] = {
    "add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "maximum", "minimum", "neg", "abs", "exp",
    "log", "sqrt", "rsqrt", "pow", "square", "clamp", "clamp_", "clamp_min", "clamp_max", "clip",
    "relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_",
    "contiguous", "clone", "detach", "float", "half", "double", "bfloat16", "to", "type", "type_as",
}

_CAT_FUNCTIONS: set[Callable] = {torch.cat, torch.concat, torch.concatenate}
_UPSAMPLING_FUNCTIONS: set[Callable] = {F.interpolate, F.upsample, F.pixel_shuffle, F.conv_transpose2d}
_RESHAPE_FUNCTIONS: set[Callable] = {torch.flatten, torch.reshape, torch.squeeze, torch.mean, torch.sum, torch.amax}
_RESHAPE_METHODS: set[str] = {"view", "reshape", "flatten", "squeeze", "mean", "sum", "amax"}
_SHAPE_QUERIES: set[Any] = {getattr, operator.getitem, len, "size", "dim", "numel", "ndimension"}


# The functional layers' signatures, for binding their positional and keyword arguments.
def _conv2d_arguments(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    pass


def _max_pool2d_arguments(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    pass


def _avg_pool2d_arguments(
    input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None
):
    pass


def _lp_pool2d_arguments(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    pass


def _pad_arguments(input, pad, mode="constant", value=None):
    pass


def _cat_arguments(tensors, dim=0):
    pass


def _bind(template: Callable, args: tuple, kwargs: dict) -> dict[str, Any]:
    bound = inspect.signature(template).bind(*args, **kwargs)
    bound.apply_defaults()
    return bound.arguments


def _pool_window(kernel_size: Any, stride: Any, padding: Any = 0, dilation: Any = 1) -> _Window:
    kernel = _pair(kernel_size)
    stride = kernel if stride is None or (not isinstance(stride, int) and len(stride) == 0) else _pair(stride)
    return _Window(kernel, stride, _pair(padding), _pair(dilation))


def _pad_window(pad: Sequence[int]) -> _Window:
    pad = tuple(pad)  # (left, right, top, bottom), last axis first
    left, top = pad[0], (pad[2] if len(pad) >= 4 else 0)
    return _Window((1, 1), (1, 1), (top, left))


def _upsampling_error(name: str, kind: str) -> TypeError:
    return TypeError(
        f"layer {name!r} ({kind}) upsamples: its output units sit between input positions, so no whole-number "
        "effective stride describes them and receptive_field refuses it; compute the receptive field of the "
        "part before it (the encoder), e.g. receptive_field(model.encoder, input_size)"
    )


def _unknown_error(name: str, kind: str, hint: str) -> TypeError:
    return TypeError(
        f"receptive_field cannot tell how layer {name!r} ({kind}) changes the geometry of the feature map. "
        f"If it works on each pixel on its own (like ReLU or BatchNorm2d), pass pointwise=[{hint}]; otherwise "
        "compute the receptive field of the part of the model before it, e.g. receptive_field(model.features, ...)"
    )


class _MetaRunFailed(Exception):
    """Running the graph on the meta device failed; run it on zeros instead."""


class _Propagator(fx.Interpreter):
    """Run a traced model node by node and carry (r, j, P) along with the values.

    On the meta device (``meta=True``) parameters, buffers and constants are
    swapped for meta tensors of the same shape, so that nothing is computed or
    allocated and the model's own tensors are never touched.
    """

    def __init__(
        self,
        module: fx.GraphModule,
        names: dict[fx.Node, str],
        *,
        meta: bool,
        pointwise: Sequence[Any],
        include_pointwise: bool,
    ) -> None:
        super().__init__(module)
        self.names = names
        self.meta = meta
        self.extra_modules = tuple(p for p in pointwise if isinstance(p, type))
        self.extra_functions = [p for p in pointwise if not isinstance(p, (type, str))]
        self.extra_methods = {p for p in pointwise if isinstance(p, str)}
        self.include_pointwise = include_pointwise
        self.geometry: dict[fx.Node, _Geometry | None] = {}
        self.rows: list[LayerReceptiveField] = []
        self.stopped_at: str | None = None

    # -- running ------------------------------------------------------------

    def call_module(self, target: str, args: tuple, kwargs: dict) -> Any:
        module = self.fetch_attr(target)
        if not self.meta:
            return module(*args, **kwargs)
        state = {
            name: _to_meta(tensor)
            for name, tensor in chain(
                module.named_parameters(remove_duplicate=False), module.named_buffers(remove_duplicate=False)
            )
        }
        return torch.func.functional_call(module, state, args, kwargs)

    def get_attr(self, target: str, args: tuple, kwargs: dict) -> Any:
        value = super().get_attr(target, args, kwargs)
        return _to_meta(value) if self.meta and isinstance(value, torch.Tensor) else value

    def run_node(self, n: fx.Node) -> Any:
        try:
            value = super().run_node(n)
        except (RuntimeError, NotImplementedError) as err:
            if self.meta:
                raise _MetaRunFailed(f"{self._name(n)}: {err}") from err
            raise ValueError(
                f"running the model on a zero input failed at {self._name(n)!r}: {err} "
                "(is input_size large enough for every layer?)"
            ) from err
        self.geometry[n] = self._propagate(n, value)
        return value

    # -- geometry -----------------------------------------------------------

    def _name(self, n: fx.Node) -> str:
        return self.names.get(n, n.name)

    def _propagate(self, n: fx.Node, value: Any) -> _Geometry | None:
        if n.op == "placeholder":
            size = _spatial_size(value)
            self.rows.append(LayerReceptiveField("input", "input", size, (1, 1), (1, 1), (0, 0)))
            return _Geometry(size, (1, 1), (1, 1), (0, 0))
        spatial = [m for m in n.all_input_nodes if self.geometry.get(m) is not None]
        if not spatial or n.op in ("get_attr", "output"):
            return None  # constants, shapes, and everything after the spatial part ends
        name = self._name(n)
        if not isinstance(value, torch.Tensor):
            if n.target in _SHAPE_QUERIES:
                return None
            raise _unknown_error(name, _describe(n), _hint(n))
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        if n.op == "call_module":
            module = self.fetch_attr(n.target)
            action, kind = self._module_action(module, name), type(module).__name__
        elif n.op == "call_function":
            action = self._function_action(n, args, kwargs, value)
            kind = getattr(n.target, "__name__", str(n.target))
        else:  # call_method
            action = self._method_action(n, args, value)
            kind = str(n.target)

        if action == _STOP:
            if self.stopped_at is None:
                self.stopped_at = name
                log.info("the spatial part of the network ends at %r (%s)", name, kind)
            return None
        size = _spatial_size(value)
        if action == _POINTWISE:
            return self._merge(n, spatial, size, name, kind)
        source = self.geometry[spatial[0]]
        assert source is not None
        if action == "adaptive":
            action = _adaptive_window(source.size, size)
            if action is None:
                if self.stopped_at is None:
                    self.stopped_at = name
                log.info(
                    "%r (%s) pools %s to %s: the windows differ in size, so the spatial part ends here",
                    name, kind, _fmt(source.size), _fmt(size),
                )
                return None
        geometry = _apply(source, action, size)
        self._add_row(name, kind, geometry)
        return geometry

    def _add_row(self, name: str, kind: str, geometry: _Geometry, note: str = "") -> None:
        self.rows.append(
            LayerReceptiveField(name, kind, geometry.size, geometry.rf, geometry.stride, geometry.padding, note)
        )

    def _merge(self, n: fx.Node, spatial: list[fx.Node], size: Pair, name: str, kind: str) -> _Geometry:
        """Union of the incoming windows (one input: a pointwise layer)."""
        inputs = [(m, self.geometry[m]) for m in spatial]
        aligned = [(m, g) for m, g in inputs if g.size == size]
        broadcast = [self._name(m) for m, g in inputs if g.size != size]
        if not aligned:
            raise _unknown_error(name, kind, _hint(n))
        strides = {g.stride for _, g in aligned}
        if len(strides) > 1:
            paths = ", ".join(f"{self._name(m)!r} has {_fmt(g.stride)}" for m, g in aligned)
            raise ValueError(
                f"{name!r} ({kind}) merges paths whose effective strides differ ({paths}): their units lie on "
                "different grids of the input, so no single receptive field describes the result. Make the "
                "paths downsample by the same total factor (e.g. give the shortcut a strided 1 x 1 conv)"
            )
        geometries = [g for _, g in aligned]
        starts = [tuple(-p for p in g.padding) for g in geometries]
        ends = [tuple(-p + r - 1 for p, r in zip(g.padding, g.rf)) for g in geometries]
        start = tuple(min(s[axis] for s in starts) for axis in range(2))
        end = tuple(max(e[axis] for e in ends) for axis in range(2))
        rf = tuple(e - s + 1 for s, e in zip(start, end))
        merged = _Geometry(size, rf, geometries[0].stride, tuple(-s for s in start))  # type: ignore[arg-type]
        note = f"broadcast input from {', '.join(broadcast)} left out" if broadcast else ""
        if len(aligned) > 1 or note or self.include_pointwise:
            self._add_row(name, kind, merged, note)
        return merged

    def _module_action(self, module: nn.Module, name: str) -> Any:
        kind = type(module).__name__
        if isinstance(module, _UPSAMPLING_MODULES):
            raise _upsampling_error(name, kind)
        if isinstance(module, nn.Conv2d):
            kernel, dilation = _pair(module.kernel_size), _pair(module.dilation)
            padding = _conv_padding(module.padding, kernel, dilation)
            return _Window(kernel, _pair(module.stride), padding, dilation)
        if isinstance(module, nn.MaxPool2d):
            return _pool_window(module.kernel_size, module.stride, module.padding, module.dilation)
        if isinstance(module, nn.AvgPool2d):
            return _pool_window(module.kernel_size, module.stride, module.padding)
        if isinstance(module, nn.LPPool2d):
            return _pool_window(module.kernel_size, module.stride)
        if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            return "adaptive"
        if isinstance(module, _PAD_MODULES):
            return _pad_window(module.padding)
        if isinstance(module, _STOP_MODULES):
            return _STOP
        if isinstance(module, _POINTWISE_MODULES + self.extra_modules):
            return _POINTWISE
        public = getattr(nn, kind, None) is type(module)
        raise _unknown_error(name, kind, f"nn.{kind}" if public else f"{type(module).__module__}.{kind}")

    def _function_action(self, n: fx.Node, args: tuple, kwargs: dict, value: torch.Tensor) -> Any:
        target, name = n.target, self._name(n)
        if target in _POINTWISE_FUNCTIONS or any(target is f for f in self.extra_functions):
            return _POINTWISE
        if target in _CAT_FUNCTIONS:
            dim = _bind(_cat_arguments, args, kwargs)["dim"]
            if dim in (0, 1, -3, -4):
                return _POINTWISE
            raise TypeError(
                f"{name!r} concatenates along dimension {dim}, a spatial axis: the result is not a feature map "
                "of aligned units; concatenate feature maps along the channels (dim=1)"
            )
        if target is F.conv2d:
            a = _bind(_conv2d_arguments, args, kwargs)
            kernel, dilation = tuple(a["weight"].shape[-2:]), _pair(a["dilation"])
            return _Window(kernel, _pair(a["stride"]), _conv_padding(a["padding"], kernel, dilation), dilation)
        if target is F.max_pool2d:
            a = _bind(_max_pool2d_arguments, args, kwargs)
            return _pool_window(a["kernel_size"], a["stride"], a["padding"], a["dilation"])
        if target is F.avg_pool2d:
            a = _bind(_avg_pool2d_arguments, args, kwargs)
            return _pool_window(a["kernel_size"], a["stride"], a["padding"])
        if target is F.lp_pool2d:
            a = _bind(_lp_pool2d_arguments, args, kwargs)
            return _pool_window(a["kernel_size"], a["stride"])
        if target in (F.adaptive_avg_pool2d, F.adaptive_max_pool2d):
            return "adaptive"
        if target is F.pad:
            return _pad_window(_bind(_pad_arguments, args, kwargs)["pad"])
        if target is F.linear:
            return _STOP
        if target in _UPSAMPLING_FUNCTIONS:
            raise _upsampling_error(name, target.__name__)
        if target in _RESHAPE_FUNCTIONS:
            return self._reshape_action(n, value)
        if target is operator.getitem:
            return self._getitem_action(n, args, value)
        raise _unknown_error(name, _describe(n), _hint(n))

    def _method_action(self, n: fx.Node, args: tuple, value: torch.Tensor) -> Any:
        if n.target in _POINTWISE_METHODS or n.target in self.extra_methods:
            return _POINTWISE
        if n.target in _RESHAPE_METHODS:
            return self._reshape_action(n, value)
        raise _unknown_error(self._name(n), _describe(n), _hint(n))

    def _reshape_action(self, n: fx.Node, value: torch.Tensor) -> Any:
        """view/reshape/flatten/mean and friends: keep, pool globally, or end the spatial part."""
        source = self.geometry[n.all_input_nodes[0]]
        if value.dim() < 4:
            return _STOP  # the spatial layout is gone: flattened, or pooled away
        if value.dim() == 4 and source is not None:
            size = tuple(value.shape[-2:])
            if size == source.size:
                return _POINTWISE  # channels regrouped or reduced, pixels untouched
            if size == (1, 1):
                return _Window(source.size, source.size, (0, 0))  # keepdim global pooling
        raise _unknown_error(self._name(n), _describe(n), _hint(n))

    def _getitem_action(self, n: fx.Node, args: tuple, value: torch.Tensor) -> Any:
        index = args[1] if isinstance(args[1], tuple) else (args[1],)
        plain = all(isinstance(i, (int, slice)) for i in index)
        source = self.geometry[n.all_input_nodes[0]]
        if plain and value.dim() == 4 and source is not None and tuple(value.shape[-2:]) == source.size:
            return _POINTWISE  # batch or channel slicing
        raise TypeError(
            f"{self._name(n)!r} indexes a feature map in a way that changes its spatial layout; "
            "crop with F.pad (negative padding) or slice only the batch and channel axes"
        )


def _to_meta(tensor: torch.Tensor) -> torch.Tensor:
    return tensor if tensor.is_meta else torch.empty_like(tensor, device="meta")


def _spatial_size(value: Any) -> Pair:
    if not isinstance(value, torch.Tensor) or value.dim() != 4:
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise TypeError(f"receptive_field expects N x C x H x W feature maps, got {shape}")
    return (int(value.shape[-2]), int(value.shape[-1]))


def _adaptive_window(input_size: Pair, output_size: Pair) -> _Window | None:
    if any(i % o for i, o in zip(input_size, output_size)):
        return None
    kernel = tuple(i // o for i, o in zip(input_size, output_size))
    return _Window(kernel, kernel, (0, 0))  # type: ignore[arg-type]


def _describe(n: fx.Node) -> str:
    if n.op == "call_method":
        return f"tensor method .{n.target}()"
    return getattr(n.target, "__name__", str(n.target))


def _hint(n: fx.Node) -> str:
    if n.op == "call_method":
        return repr(n.target)
    if n.op == "call_function":
        module = getattr(n.target, "__module__", None) or "torch"
        return f"{module}.{getattr(n.target, '__name__', n.target)}"
    return n.op


# ---------------------------------------------------------------------------
# Receptive fields: the entry point
# ---------------------------------------------------------------------------


def _input_shape(input_size: Sequence[int]) -> tuple[int, int, int, int]:
    try:
        shape = tuple(_as_int("input_size", n) for n in input_size)
    except TypeError as err:
        raise TypeError(f"input_size must be a tuple such as (3, 224, 224): {err}") from None
    if len(shape) == 3:
        shape = (1, *shape)
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(
            f"input_size must be (C, H, W) or (N, C, H, W) with every entry >= 1, got {tuple(input_size)}: "
            "for one 28 x 28 grey image use (1, 28, 28)"
        )
    return shape  # type: ignore[return-value]


@functools.cache
def _torchvision():
    """Import torchvision on first use (it takes seconds) and register its pointwise layers."""
    global _POINTWISE_MODULES
    import torchvision
    from torchvision.models import feature_extraction

    _POINTWISE_MODULES += (torchvision.ops.FrozenBatchNorm2d,)
    _POINTWISE_FUNCTIONS.add(torchvision.ops.stochastic_depth)
    return torchvision, feature_extraction


def _trace(model: nn.Module) -> tuple[fx.GraphModule, dict[fx.Node, str]]:
    # torchvision's tracer names each node by its module path, the names that
    # create_feature_extractor accepts; torchvision.ops functions stay whole.
    torchvision, feature_extraction = _torchvision()
    tracer = feature_extraction.NodePathTracer(autowrap_modules=(math, torchvision.ops))
    try:
        graph = tracer.trace(model)
    except Exception as err:  # fx raises TraceError, TypeError, RuntimeError... on untraceable code
        raise TypeError(
            f"torch.fx could not trace {type(model).__name__}: {err}. receptive_field follows the graph that "
            "torch.fx records, so forward must not branch on tensor values; compute the receptive field of a "
            "traceable part (such as model.features) instead"
        ) from err
    placeholders = [n.name for n in graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise TypeError(
            f"receptive_field feeds one image batch to forward, but {type(model).__name__}.forward takes "
            f"{len(placeholders)} inputs ({', '.join(placeholders)}); wrap the model so that it takes one"
        )
    return fx.GraphModule(tracer.root, graph), dict(tracer.node_to_qualname)


@contextlib.contextmanager
def _batch_norm_passes_through(model: nn.Module) -> Iterator[None]:
    """Inside the block, the batch norm layers of ``model`` return their input unchanged.

    For runs on the meta device, which only want shapes: batch norm keeps its
    input's shape, and on meta tensors torch computes it with a slow Python
    decomposition that takes more than half the time of a ResNet's meta run.
    """
    layers = [m for m in model.modules()
              if isinstance(m, nn.modules.batchnorm._BatchNorm) and "forward" not in vars(m)]
    for layer in layers:
        layer.forward = _pass_through
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward


def _pass_through(x: torch.Tensor) -> torch.Tensor:
    return x


def receptive_field(
    model: nn.Module,
    input_size: Sequence[int],
    *,
    pointwise: Iterable[type[nn.Module] | Callable | str] = (),
    include_pointwise: bool = False,
) -> ReceptiveField:
    """Compute the receptive field, effective stride and effective padding of every layer.

    The model is traced with ``torch.fx`` in evaluation mode and run on an
    input of ``input_size`` on the meta device (no arithmetic, no memory; the
    model's tensors are not touched), which gives every node's output size.
    Meanwhile (r, j, P) flow through the graph, per axis, as described in the
    module docstring: convolutions and pools grow them, pointwise layers pass
    them on, merges take the union of their inputs' windows, and the table
    stops where the spatial part of the network ends. The training flags of
    the model's modules are restored afterwards.

    Works for ``nn.Sequential`` models (nested too) and for graphs with
    several paths such as torchvision's ResNets and GoogLeNet.

    Args:
        model: The network, or the part of it whose receptive field is wanted
            (``model.features``).
        input_size: ``(C, H, W)`` or ``(N, C, H, W)``. Receptive field sizes
            do not depend on it, but output sizes and adaptive pools do.
        pointwise: Layers this module does not know that work on each pixel
            on its own: module classes (``nn.Softmax``), functions
            (``torch.sin``) or tensor-method names (``"sin"``).
        include_pointwise: Also give pointwise layers (ReLU, BatchNorm, ...)
            a row in the table.

    Returns:
        A :class:`ReceptiveField` table; ``.size``, ``.stride`` and
        ``.padding`` give the last row's values.

    Raises:
        TypeError: The model cannot be traced, takes several inputs, or
            contains a layer whose effect on the geometry is unknown (the
            message names it and says how to proceed), or an upsampling layer.
        ValueError: A bad ``input_size``, an input too small for the model,
            or a merge of paths with different effective strides.

    Shape:
        - Input: ``input_size``, i.e. :math:`(C, H, W)` or :math:`(N, C, H, W)`.
        - Output: one row per layer, each pair (height, width).

    Example:
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3))
        >>> rf = receptive_field(model, (1, 28, 28))
        >>> rf.size, rf.stride, rf.padding
        ((8, 8), (2, 2), (0, 0))
        >>> [row.size[0] for row in rf.layers]
        [1, 3, 4, 8]
    """
    shape = _input_shape(input_size)
    pointwise = tuple(pointwise)
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        graph_module, names = _trace(model)
        floating = [p for p in chain(model.parameters(), model.buffers()) if p.is_floating_point()]
        dtype = floating[0].dtype if floating else torch.get_default_dtype()
        options = dict(pointwise=pointwise, include_pointwise=include_pointwise)
        with torch.no_grad():
            try:
                propagator = _Propagator(graph_module, names, meta=True, **options)
                with _batch_norm_passes_through(model):
                    propagator.run(torch.zeros(shape, dtype=dtype, device="meta"))
            except _MetaRunFailed as err:
                # Some operation has no meta kernel: run on real zeros on the model's device.
                device = floating[0].device if floating else torch.device("cpu")
                log.debug("the meta run failed (%s); running on zeros on %s", err, device)
                propagator = _Propagator(graph_module, names, meta=False, **options)
                propagator.run(torch.zeros(shape, dtype=dtype, device=device))
    finally:
        for module, training in modes.items():
            module.training = training
    return ReceptiveField(propagator.rows, propagator.rows[0].output_size, propagator.stopped_at)
