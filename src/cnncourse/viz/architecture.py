"""Diagrams of a whole network, drawn from the model itself: the classic LeNet figure.

:func:`architecture` draws a network the way the LeNet-5 paper drew its own: a
row of feature-map blocks from the input to the output, each labelled with what
produced it and its shape. A feature map of ``C x H x W`` is a box whose
thickness grows with ``C`` (logarithmically) and whose face grows with ``H`` and
``W`` (as their square roots, so that a 7 x 7 map next to a 224 x 224 one stays
visible); a vector, after the spatial part, is a thin bar. Rows wrap at
:data:`~cnncourse.viz.FIGURE_WIDTH`.

Nothing is typed next to the model: the boxes and their shapes come from the
model's modules and from :func:`cnncourse.summary`, which runs the model once
on the meta device per nesting level (no memory, no arithmetic), so the figure
cannot drift from the code. :func:`architecture_blocks` returns what the figure
draws, for code and tests. Which modules become boxes:

* The model is opened, and so is every plain container in it (``nn.Sequential``,
  ``nn.ModuleList``, ``nn.ModuleDict``); every other module is drawn whole, so a
  ``Bottleneck`` or an ``Inception`` module is one box (their insides are what
  :func:`~cnncourse.viz.block_diagram` draws).
* Layers that keep the shape and do no mixing of their own (batch norm,
  activations, dropout, ``Flatten``, and any layer without parameters that
  leaves the shape as it was, such as an adaptive pool that has nothing to do)
  are folded into the box before them.
* Neighbours that do the same thing, give the same shape and sit in the same
  container are drawn once, marked ``x n``: ResNet-152's 36 bottleneck blocks
  of ``layer3`` are one box, "Bottleneck x36" (``group=False`` draws them all).

Labels follow the papers' figures: ``3×3 conv`` for a convolution, ``, /2``
for a stride of 2, ``fc`` for a fully connected layer, the class name for a
block; above it, the module's name where it has one (``c1``, ``layer3``,
``inception4a–c``), not for the numbered layers of an ``nn.Sequential``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from math import log2, sqrt

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import Polygon, Rectangle
from matplotlib.textpath import TextPath
from torch import nn

from ..summary_table import ModelSummary, summary
from .style import FIGURE_WIDTH

__all__ = ["ArchitectureBlock", "architecture", "architecture_blocks"]

Shape = tuple[int, ...]

#: Face and edge colours by kind of layer, shared with :mod:`cnncourse.viz.block_diagram`.
COLORS = {
    "input": ("#eeeeee", "#6b6b6b"),
    "conv": ("#cfe0f3", "#2a6bb0"),
    "pool": ("#fde1c2", "#c46f00"),
    "dense": ("#e3d7f0", "#6a4a9c"),
    "block": ("#d3ecd4", "#2f8a3b"),
    "other": ("#eeeeee", "#6b6b6b"),
}
FONT_SIZE = 9  # points: the smallest the book allows
#: Jupyter's inline backend saves figures with ``bbox_inches="tight"``, which pads the drawing by
#: 0.1 inch on each side: a drawing that fills its figure is shown 0.2 inch wider than the figure.
SAVE_PAD = 0.2
#: The widest figure these diagrams make, so that the saved image stays within FIGURE_WIDTH.
MAX_WIDTH = FIGURE_WIDTH - SAVE_PAD
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)
_SHORT_NAMES = {"BatchNorm1d": "BN", "BatchNorm2d": "BN", "GroupNorm": "GN", "LayerNorm": "LN",
                "InstanceNorm2d": "IN", "LocalResponseNorm": "LRN", "Sigmoid": "sigmoid", "Tanh": "tanh",
                "Softmax": "softmax", "Dropout": "dropout", "Dropout2d": "dropout"}


@dataclass(frozen=True)
class ArchitectureBlock:
    """One box of an :func:`architecture` figure.

    Attributes:
        name: The module's path in the model (``"features.c1"``, ``"layer3"``),
            ``"input"`` for the input; for a group, its container's path, or the
            first and last names (``"inception4a–c"``).
        label: What the box says it does: ``"5×5 conv"``, ``"Bottleneck ×36"``.
        shape: Output shape without the batch dimension: ``(6, 28, 28)`` or ``(84,)``.
        kind: ``"input"``, ``"conv"``, ``"pool"``, ``"dense"``, ``"block"`` or ``"other"`` (the colour).
        layers: The paths of the modules the box stands for, in the order they
            ran (one, or ``n`` for a group); the folded layers are not listed.
        title: The line above the label: the short name, or ``""`` when the
            name is a number of an ``nn.Sequential``.
    """

    name: str
    label: str
    shape: Shape
    kind: str
    layers: tuple[str, ...] = ()
    title: str = ""

    @property
    def shape_text(self) -> str:
        """The shape as the figure writes it: ``"6×28×28"``, ``"84"``."""
        return shape_text(self.shape)


def shape_text(shape: Shape | None) -> str:
    """``(6, 28, 28)`` -> ``"6×28×28"``; None -> ``""``."""
    return "" if shape is None else "×".join(str(n) for n in shape)


# ---------------------------------------------------------------------------
# What a module does, in a few words
# ---------------------------------------------------------------------------


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)  # type: ignore[return-value]


def _size_text(value) -> str:
    h, w = _pair(value)
    return f"{h}×{w}"


def _stride_text(stride) -> str:
    sh, sw = _pair(stride)
    if (sh, sw) == (1, 1):
        return ""
    return f", /{sh}" if sh == sw else f", /{sh}×{sw}"


def is_folded_layer(module: nn.Module) -> bool:
    """Batch norm, an activation, dropout, identity or flatten: layers drawn inside the box before them."""
    return (
        isinstance(module, (*_NORMS, nn.Identity, nn.Flatten, nn.modules.dropout._DropoutNd))
        or type(module).__module__ == "torch.nn.modules.activation"
    )


def short_name(module: nn.Module) -> str:
    """``"BN"``, ``"ReLU"``, ``"sigmoid"``, ...: how a folded layer is named in a block diagram."""
    name = type(module).__name__
    return _SHORT_NAMES.get(name, name)


def _weighted(module: nn.Module) -> bool:
    return isinstance(module, (nn.modules.conv._ConvNd, nn.Linear))


def describe(module: nn.Module, output_shape: Shape | None = None) -> tuple[str, str]:
    """Say what a module does in a few words, and its kind.

    Args:
        module: A layer or a block.
        output_shape: Its output without the batch dimension, if known: a
            1 x 1 convolution whose output is 1 x 1 is called ``fc`` (it is a
            fully connected layer, as in a squeeze-and-excitation block).

    Returns:
        ``(label, kind)``, such as ``("3×3 conv, /2", "conv")`` or
        ``("Bottleneck", "block")``. A block made of one convolution or linear
        layer plus folded layers (GoogLeNet's ``BasicConv2d``) is described by
        that layer.
    """
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return f"{_size_text(module.kernel_size)} transposed conv{_stride_text(module.stride)}", "conv"
    if isinstance(module, nn.modules.conv._ConvNd):
        k = _pair(module.kernel_size)
        if k == (1, 1) and output_shape is not None and tuple(output_shape[1:]) == (1, 1):
            return "fc", "dense"
        kind = "depthwise conv" if module.groups > 1 and module.groups == module.in_channels else "conv"
        return f"{_size_text(k)} {kind}{_stride_text(module.stride)}", "conv"
    if isinstance(module, nn.Linear):
        return "fc", "dense"
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        kind = "avg" if isinstance(module, nn.AdaptiveAvgPool2d) else "max"
        size = _pair(module.output_size)
        if size == (1, 1):
            return f"global {kind} pool", "pool"
        return f"{kind} pool to {_size_text(size)}", "pool"
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        kind = "max" if isinstance(module, nn.MaxPool2d) else "avg"
        stride = module.stride if module.stride is not None else module.kernel_size
        return f"{_size_text(module.kernel_size)} {kind} pool{_stride_text(stride)}", "pool"
    if is_folded_layer(module):
        return short_name(module), "other"
    leaves = [m for m in module.modules() if next(m.children(), None) is None]
    weighted = [m for m in leaves if _weighted(m)]
    if len(weighted) == 1 and all(m is weighted[0] or is_folded_layer(m) for m in leaves):
        return describe(weighted[0], output_shape)
    if not leaves and next(module.parameters(), None) is None:
        return type(module).__name__, "other"
    return type(module).__name__, "block"


# ---------------------------------------------------------------------------
# Which modules become boxes, and their shapes
# ---------------------------------------------------------------------------


def _units(model: nn.Module) -> dict[str, nn.Module]:
    """The modules drawn whole: the model opened, and every plain container in it."""
    if next(model.children(), None) is None:
        return {"": model}
    found: dict[str, nn.Module] = {}

    def walk(module: nn.Module, prefix: str) -> None:
        for name, child in module.named_children():
            path = f"{prefix}.{name}" if prefix else name
            if isinstance(child, _CONTAINERS):
                walk(child, path)
            else:
                found[path] = child

    walk(model, "")
    return found


def _depth(name: str) -> int:
    return 0 if name == "" else name.count(".") + 1


def module_calls(
    model: nn.Module, input_size: Sequence[int], names: Iterable[str]
) -> tuple[list[tuple[str, Shape | None]], ModelSummary]:
    """The calls of the given modules, in the order they ran, with their output shapes.

    Every name must be a module of ``model`` that is not inside another of
    them. The shapes are those :func:`cnncourse.summary` records, at each
    name's nesting level; the order is that of the leaf layers, each leaf
    standing for the named module that holds it.

    Returns:
        ``[(name, shape without the batch dimension), ...]`` (the shape is None
        for a module that returns no tensor), and the leaf-level summary.
    """
    names = list(names)
    leaves = summary(model, input_size, receptive_fields=False)
    by_depth = {
        depth: summary(model, input_size, depth=depth, receptive_fields=False)
        for depth in sorted({_depth(n) for n in names} - {0})
    }
    shapes: dict[tuple[str, int], Shape | None] = {}
    for s in by_depth.values():
        seen: dict[str, int] = {}
        for row in s.rows:
            k = seen.get(row.name, 0)
            seen[row.name] = k + 1
            shapes.setdefault((row.name, k), _unbatched(row.output_shape))
    if "" in names:  # the model is a single layer
        shapes[("", 0)] = _unbatched(leaves.output_shape)

    def owner(leaf: str) -> str | None:
        for name in names:
            if name == "" or leaf == name or leaf.startswith(name + "."):
                return name
        return None

    modules = dict(model.named_modules())
    calls: list[tuple[str, Shape | None]] = []
    counts: dict[str, int] = {}
    previous = None
    for row in leaves.rows:
        name = owner(row.name)
        if name is None:
            continue
        # consecutive leaves of one block are one call of it; a layer called twice in a row, two calls
        if name != previous or next(modules[name].children(), None) is None:
            k = counts.get(name, 0)
            counts[name] = k + 1
            calls.append((name, shapes.get((name, k))))
        previous = name
    return calls, leaves


def _unbatched(shape) -> Shape | None:
    if shape is None or not shape or isinstance(shape[0], tuple):
        return None  # no tensor, or several: nothing to draw
    return tuple(shape[1:])


def _title(name: str) -> str:
    """The line above a box: the module's own name, or nothing for the numbered layers of a Sequential."""
    last = name.rpartition(".")[2]
    return "" if last.isdigit() else last


def _group_names(run: list[ArchitectureBlock], model: nn.Module) -> tuple[str, str]:
    """Name and title of a group: its container's when it is the whole container, else first–last."""
    names = [b.name for b in run]
    parent = names[0].rpartition(".")[0]
    siblings = [n for n, _ in model.get_submodule(parent).named_children()] if parent else []
    if parent and [n.rpartition(".")[2] for n in names] == siblings:
        return parent, _title(parent)  # "layer3"
    return _span(names[0], names[-1]), _span(run[0].title, run[-1].title) if run[0].title else ""


def _span(first: str, last: str) -> str:
    """``"inception4a", "inception4c"`` -> ``"inception4a–c"``; ``"f.10", "f.14"`` -> ``"f.10–14"``."""
    start = last.rfind(".") + 1  # the last name only
    tail = last[start:]
    shared = len(os.path.commonprefix([first[start:], tail])) if first[:start] == last[:start] else 0
    while shared and tail[shared - 1].isdigit() and tail[shared:].isdigit():
        shared -= 1  # "10", "14": keep the whole number
    return f"{first}–{tail[shared:]}"


def architecture_blocks(model: nn.Module, input_size: Sequence[int], *, group: bool = True) -> list[ArchitectureBlock]:
    """Return the boxes :func:`architecture` draws, input first (see the module docstring).

    Args:
        model: The network.
        input_size: ``(C, H, W)`` of one image (or ``(N, C, H, W)``).
        group: Draw neighbours that do the same thing to the same shape once, as ``x n``.

    Returns:
        One :class:`ArchitectureBlock` per box.

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
        ValueError: ``input_size`` is not an image size, or the model fails on it.

    Example:
        >>> from cnncourse.models import lenet5
        >>> [b.shape_text for b in architecture_blocks(lenet5(), (1, 28, 28))]
        ['1×28×28', '6×28×28', '6×14×14', '16×10×10', '16×5×5', '120×1×1', '84', '10']
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    size = _image_size(input_size)
    units = _units(model)
    calls, leaves = module_calls(model, size, units)
    input_shape = tuple(leaves.input_size[1:])
    blocks: list[ArchitectureBlock] = [ArchitectureBlock("input", "input", input_shape, "input", (), "input")]
    # the shape so far, and the one the last box shows: folded layers change the first, not the second
    current: Shape | None = input_shape
    for name, shape in calls:
        module = units[name]
        if shape is None:
            continue  # returns no tensor (or several): nothing to draw
        has_params = next(module.parameters(), None) is not None
        if is_folded_layer(module) or (not has_params and shape == current):
            current = shape
            continue
        label, kind = describe(module, shape)
        blocks.append(ArchitectureBlock(name or type(model).__name__, label, shape, kind, (name,), _title(name)))
        current = shape
    output = _unbatched(leaves.output_shape)
    if output is not None and current is not None and output != current:
        # the forward ends in a function, not a module (an FCN's F.interpolate back to the
        # input's size): draw what the network returns, or the figure would stop short of it
        grows = len(output) == len(current) == 3 and output[1] > current[1]
        blocks.append(ArchitectureBlock("output", "upsample" if grows else "reshape", output, "other", (), "output"))
    if len(blocks) == 1:
        raise ValueError(
            f"{type(model).__name__} has no layer that changes its input's shape or has weights: nothing to draw"
        )
    return _grouped(blocks, model) if group else blocks


def _grouped(blocks: list[ArchitectureBlock], model: nn.Module) -> list[ArchitectureBlock]:
    out: list[ArchitectureBlock] = []
    run: list[ArchitectureBlock] = []

    def same(a: ArchitectureBlock, b: ArchitectureBlock) -> bool:
        return (
            a.kind != "input" and (a.label, a.shape, a.kind) == (b.label, b.shape, b.kind)
            and a.name.rpartition(".")[0] == b.name.rpartition(".")[0]
        )

    def flush() -> None:
        if len(run) == 1:
            out.append(run[0])
        elif run:
            name, title = _group_names(run, model)
            first = run[0]
            out.append(ArchitectureBlock(name, f"{first.label} ×{len(run)}", first.shape, first.kind,
                                         tuple(b.name for b in run), title))
        run.clear()

    for block in blocks:
        if run and not same(run[-1], block):
            flush()
        run.append(block)
    flush()
    return out


def _image_size(input_size: Sequence[int]) -> tuple[int, ...]:
    try:
        size = tuple(int(n) for n in input_size)
    except TypeError:
        raise TypeError(f"input_size must be a tuple of ints such as (3, 224, 224), got {input_size!r}") from None
    if len(size) not in (3, 4) or min(size) < 1 or (len(size) == 4 and size[0] != 1):
        raise ValueError(
            f"input_size must be the size of one image, (C, H, W) such as (1, 28, 28) or (3, 224, 224), "
            f"got {tuple(input_size)}"
        )
    return size[-3:]


# ---------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------

_PT = 1 / 72  # inches per point
_LINE = FONT_SIZE * 1.35 * _PT  # height of a line of text
_MARGIN = 0.3  # left margin of wrapped rows (room for the connector between them), inches
_ONE_ROW_MARGIN = 0.05  # left margin when everything fits in one row
_GAP = 0.18  # between two boxes' slots, inches
_FACE_MAX, _FACE_MIN = 0.8, 0.06  # height of a map's front face, inches
_THICK_MAX, _THICK_MIN = 0.3, 0.03  # thickness for the most and the fewest channels
_DEPTH = 0.4  # oblique depth of a face of height 1, as a fraction
_BAR = 0.07  # width of a vector's bar


def text_width(text: str, size: float = FONT_SIZE) -> float:
    """Width of ``text`` in inches at ``size`` points, in the current font."""
    return TextPath((0, 0), text, size=size).get_extents().width * _PT if text else 0.0


@dataclass
class _Box:
    block: ArchitectureBlock
    thick: float  # front face width
    face: float  # front face height
    depth: float  # oblique offset (x and y)
    width: float = field(init=False)  # slot width
    lines_above: list[str] = field(init=False)

    def __post_init__(self) -> None:
        title = self.block.title if self.block.title != self.block.label else ""  # no "fc" over "fc"
        self.lines_above = [t for t in (title, self.block.label) if t]
        if self.block.kind == "input":
            self.lines_above = ["input"]
        texts = [*self.lines_above, self.block.shape_text]
        self.width = max(self.thick + self.depth, *(text_width(t) for t in texts))

    @property
    def height(self) -> float:
        return self.face + self.depth


def _boxes(blocks: list[ArchitectureBlock]) -> list[_Box]:
    spatial = [b.shape for b in blocks if len(b.shape) == 3]
    vectors = [b.shape[0] for b in blocks if len(b.shape) == 1]
    side_max = max((max(s[1:]) for s in spatial), default=1)
    channels_max = max((s[0] for s in spatial), default=2)
    features_max = max(vectors, default=10)

    def face(n: int) -> float:
        return _FACE_MIN + (_FACE_MAX - _FACE_MIN) * sqrt((n - 1) / max(side_max - 1, 1))

    def thick(c: int) -> float:
        return _THICK_MIN + (_THICK_MAX - _THICK_MIN) * log2(c) / log2(max(channels_max, 2))

    boxes = []
    for b in blocks:
        if len(b.shape) == 3:
            c, h, w = b.shape
            boxes.append(_Box(b, thick(c), face(h), _DEPTH * face(w)))
        elif len(b.shape) == 1:
            # a bar whose height grows with the log of the number of features
            height = 0.15 + 0.55 * _FACE_MAX * log2(max(b.shape[0], 2)) / log2(max(features_max, 2))
            boxes.append(_Box(b, _BAR, height, 0.03))
        else:  # another rank: a small square
            boxes.append(_Box(b, 0.2, 0.2, 0.05))
    return boxes


def _draw_box(ax, box: _Box, x: float, y: float) -> None:
    """Draw the box with its front face's lower left corner at (x, y)."""
    face, edge = COLORS.get(box.block.kind, COLORS["other"])
    t, h, d = box.thick, box.face, box.depth
    style = dict(facecolor=face, edgecolor=edge, linewidth=0.8, joinstyle="round")
    ax.add_patch(Polygon([(x, y + h), (x + t, y + h), (x + t + d, y + h + d), (x + d, y + h + d)], **style))
    ax.add_patch(Polygon([(x + t, y), (x + t + d, y + d), (x + t + d, y + h + d), (x + t, y + h)], **style))
    ax.add_patch(Rectangle((x, y), t, h, **style))
    if len(box.block.shape) == 3 and box.block.shape[0] > 1 and t > 0.08:
        # a few sheets on the front face: a stack of feature maps
        for i in range(1, 4):
            xi = x + t * i / 4
            ax.plot([xi, xi], [y, y + h], color=edge, linewidth=0.4, alpha=0.5)


def _arrow(ax, points: list[tuple[float, float]]) -> None:
    xs, ys = zip(*points)
    ax.plot(xs[:-1], ys[:-1], color="#444444", linewidth=0.9, solid_capstyle="butt")
    ax.annotate("", xy=points[-1], xytext=points[-2],
                arrowprops=dict(arrowstyle="-|>", color="#444444", linewidth=0.9, shrinkA=0, shrinkB=0,
                                mutation_scale=8))


def _pack(boxes: list[_Box], capacity: float) -> list[list[_Box]]:
    rows: list[list[_Box]] = [[]]
    used = 0.0
    for box in boxes:
        need = box.width + (_GAP if rows[-1] else 0.0)
        if rows[-1] and used + need > capacity:
            rows.append([])
            used, need = 0.0, box.width
        rows[-1].append(box)
        used += need
    return rows


def _rows(boxes: list[_Box], usable: float) -> list[list[_Box]]:
    """As few rows as fit in ``usable`` inches, of about equal widths (no lone box on the last row)."""
    count = len(_pack(boxes, usable))
    low, high = max(box.width for box in boxes), usable
    for _ in range(30):  # the narrowest capacity that needs no more rows
        middle = (low + high) / 2
        low, high = (low, middle) if len(_pack(boxes, middle)) <= count else (middle, high)
    return _pack(boxes, high)


def _draw_row(ax, row: list[_Box], top: float, entry: tuple[float, float] | None, *, last: bool, margin: float):
    """Draw a row of boxes below ``top``, joined by arrows; return where its connector to the next row leaves."""
    above = max(len(b.lines_above) for b in row) * _LINE
    tallest = max(b.height for b in row)
    centre = top - above - 0.08 - tallest / 2  # the row's middle line, through the front faces
    x, right = margin, 0.0  # the left of the next slot, the right of the last box
    for i, box in enumerate(row):
        slot_centre = x + box.width / 2
        bx = slot_centre - (box.thick + box.depth) / 2
        by = centre - box.face / 2 - box.depth / 2
        _draw_box(ax, box, bx, by)
        for j, line in enumerate(reversed(box.lines_above)):
            ax.text(slot_centre, by + box.height + 0.05 + j * _LINE, line, ha="center", va="bottom",
                    fontsize=FONT_SIZE)
        ax.text(slot_centre, by - 0.05, box.block.shape_text, ha="center", va="top", fontsize=FONT_SIZE,
                color="#333333")
        if i > 0:
            _arrow(ax, [(right + 0.03, centre), (bx - 0.03, centre)])
        elif entry is not None:  # down from the row above, left along the gap, into the first box
            turn, left = top + 0.02, margin * 0.4
            _arrow(ax, [entry, (entry[0], turn), (left, turn), (left, centre), (bx - 0.03, centre)])
        right = bx + box.thick + box.depth / 2
        x += box.width + _GAP
    exit_point = (x - _GAP + 0.08, centre)
    if not last:
        ax.plot([right + 0.03, exit_point[0]], [centre, centre], color="#444444", linewidth=0.9)
    return exit_point


def architecture(
    model: nn.Module,
    input_size: Sequence[int],
    *,
    group: bool = True,
    title: str | None = None,
    width: float = MAX_WIDTH,
) -> Figure:
    """Draw a network as a row of feature-map blocks with their shapes (the classic LeNet figure).

    Each box is the output of one layer or block: its thickness grows with the
    channels, its face with the height and width; bars are vectors. Above a
    box, the module's name and what it does (``5×5 conv``, ``3×3 max pool, /2``
    for a stride of 2, ``Bottleneck ×36`` for 36 blocks in a row); below it,
    the output shape without the batch dimension. Rows wrap to stay within
    ``width``. See the module docstring for which modules become boxes.

    Args:
        model: The network (on any device, the meta device included: only
            shapes are computed).
        input_size: ``(C, H, W)`` of one image, such as ``(1, 28, 28)``.
        group: Draw neighbours that do the same thing to the same shape once.
        title: A title above the drawing (none by default: the book's figures
            have captions).
        width: The figure's largest width in inches, at most
            :data:`~cnncourse.viz.FIGURE_WIDTH` less the 0.2 inch that a
            notebook adds around a saved figure (the default); a network
            that fits in less gets a narrower figure.

    Returns:
        The figure (shown at the end of a notebook cell, like any pyplot figure).

    Raises:
        TypeError: ``model`` is not an ``nn.Module`` or ``input_size`` not a tuple of ints.
        ValueError: ``input_size`` is not the size of one image, the model
            fails on it (the message names the layer), or ``width`` is out of range.

    Example:
        >>> from cnncourse.models import lenet5
        >>> fig = architecture(lenet5(), (1, 28, 28))
    """
    if not 2.0 <= width <= MAX_WIDTH:
        raise ValueError(
            f"width must be between 2 and {MAX_WIDTH:g} inches (viz.FIGURE_WIDTH less the 0.2 inch a notebook adds "
            f"around a saved figure), got {width}"
        )
    blocks = architecture_blocks(model, input_size, group=group)
    boxes = _boxes(blocks)
    one_row = sum(box.width for box in boxes) + _GAP * (len(boxes) - 1)
    if one_row <= width - 2 * _ONE_ROW_MARGIN:  # the classic picture: one row, no connectors
        margin, rows = _ONE_ROW_MARGIN, [boxes]
    else:
        margin = _MARGIN
        usable = width - _MARGIN - 0.1
        widest = max(box.width for box in boxes)
        if widest > usable:  # cannot happen with the book's labels; keep the figure legible anyway
            raise ValueError(f"a label is {widest:.1f} inches wide, more than the {usable:.1f} a row has")
        rows = _rows(boxes, usable)

    # heights: text above (up to two lines), the tallest box, the shape below
    row_heights = []
    for row in rows:
        above = max(len(b.lines_above) for b in row) * _LINE
        row_heights.append(above + max(b.height for b in row) + _LINE + 0.25)
    widest_row = max(sum(b.width for b in row) + _GAP * (len(row) - 1) for row in rows)
    fig_width = min(width, margin + widest_row + (_ONE_ROW_MARGIN if len(rows) == 1 else 0.15))
    title_height = 0.3 if title else 0.0
    fig_height = sum(row_heights) + title_height + 0.1
    fig = plt.figure(figsize=(fig_width, fig_height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, fig_width)
    ax.set_ylim(0, fig_height)
    ax.set_axis_off()
    if title:
        ax.text(fig_width / 2, fig_height - 0.08, title, ha="center", va="top", fontsize=11)

    top = fig_height - title_height - 0.05
    exit_point: tuple[float, float] | None = None  # where the connector from the row above leaves
    for row, row_height in zip(rows, row_heights):
        exit_point = _draw_row(ax, row, top, exit_point, last=row is rows[-1], margin=margin)
        top -= row_height
    return fig
