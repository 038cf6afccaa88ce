"""Diagrams of a building block, drawn from its ``forward``: residual, bottleneck, Inception, SE.

:func:`block_diagram` traces a block module with ``torch.fx``, which records
which layer feeds which as ``forward`` runs, and draws that graph from top to
bottom: a box per layer (with its output shape), ``+`` and ``×`` circles where
paths are added or multiplied, a ``concat`` box where they are concatenated, and
shortcuts that skip layers as lines around the right side. The picture is drawn
from the module that the networks use, not from a description typed next to it,
so it shows what the code computes: the place of the stride in a ResNet v1.5
bottleneck, the 3 x 3 kernel torchvision's GoogLeNet has in its "5 x 5" branch,
the SE block on the residual branch before the addition.

How the graph is simplified for reading:

* Layers from ``torch.nn`` are drawn as single boxes; plain containers
  (``nn.Sequential``) are opened; blocks nested in the block (an SE block in an
  SE-ResNet block, a zero-padding shortcut) are single boxes named by their
  class, or opened too with ``expand=True``.
* A batch norm, activation or dropout right after a layer joins its box:
  ``3×3 conv, BN, ReLU``. A 1 x 1 convolution whose output is 1 x 1 is labelled
  ``fc`` (it is a fully connected layer, as in the SE block).
* The output shapes come from :func:`cnncourse.summary` (on the meta device);
  those of ``+``, ``×`` and ``concat`` follow from their inputs' shapes.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyBboxPatch
from torch import fx, nn

from .architecture import (
    _CONTAINERS,
    COLORS,
    FONT_SIZE,
    MAX_WIDTH,
    _image_size,
    _unbatched,
    describe,
    is_folded_layer,
    shape_text,
    short_name,
    text_width,
)
from ..summary_table import summary
from .style import FIGURE_WIDTH

__all__ = ["block_diagram"]

Shape = tuple[int, ...]

_JOINS = {operator.add: "+", torch.add: "+", operator.iadd: "+", operator.mul: "×", torch.mul: "×",
          operator.imul: "×", torch.cat: "concat", torch.concat: "concat"}
_MAX_RANKS = 14
_PAD = 0.08  # inside a box, inches
_LINE = FONT_SIZE * 1.3 / 72
_RADIUS = 0.13  # of a + or × circle
_COLUMN_GAP = 0.22
_RANK_GAP = 0.3
_SKIP_STEP = 0.28  # between the lines of nested shortcuts


class _BlockTracer(fx.Tracer):
    """Open the block and its plain containers; keep torch.nn layers (and nested blocks, unless expanding) whole."""

    def __init__(self, expand: bool) -> None:
        super().__init__()
        self.expand = expand

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if isinstance(m, _CONTAINERS) or module_qualified_name == "":
            return False
        return super().is_leaf_module(m, module_qualified_name) or not self.expand


@dataclass(eq=False)
class _Node:
    ops: list[str]  # "3×3 conv", "BN", "ReLU"; or "+" / "×" / "concat" / "input"
    kind: str  # colour: input, conv, pool, dense, block, other, join
    shape: Shape | None
    preds: list[_Node] = field(default_factory=list)
    succs: list[_Node] = field(default_factory=list)
    rank: int = 0
    column: float = 0.0
    x: float = 0.0
    y: float = 0.0  # centre
    width: float = 0.0
    height: float = 0.0

    @property
    def circle(self) -> bool:
        return self.ops[0] in ("+", "×")

    @property
    def lines(self) -> list[str]:
        head = ", ".join(self.ops) if not self.circle else self.ops[0]
        return [head] if self.circle else [head, shape_text(self.shape)] if self.shape else [head]

    @property
    def top(self) -> float:
        return self.y + self.height / 2

    @property
    def bottom(self) -> float:
        return self.y - self.height / 2


def _trace(block: nn.Module, expand: bool) -> fx.Graph:
    try:
        return _BlockTracer(expand).trace(block)
    except Exception as err:  # fx raises TraceError, TypeError, RuntimeError... on untraceable code
        raise TypeError(
            f"torch.fx could not trace {type(block).__name__}: {err}. block_diagram follows the graph torch.fx "
            "records, so forward must not branch on tensor values"
        ) from err


def _module_shapes(block: nn.Module, size: tuple[int, ...], targets: list[str]) -> dict[tuple[str, int], Shape]:
    """Output shapes of the called modules, by (path, call number), from cnncourse.summary."""
    shapes: dict[tuple[str, int], Shape] = {}
    for depth in sorted({t.count(".") + 1 for t in targets}):
        seen: dict[str, int] = {}
        for row in summary(block, size, depth=depth, receptive_fields=False).rows:
            k = seen.get(row.name, 0)
            seen[row.name] = k + 1
            shape = _unbatched(row.output_shape)
            if shape is not None:
                shapes.setdefault((row.name, k), shape)
    return shapes


def _join_shape(target, args: Sequence, kwargs: dict, shapes: dict[fx.Node, Shape | None]) -> Shape | None:
    """The shape of an addition, a product or a concatenation, from its inputs' (no batch dimension)."""
    if target in (torch.cat, torch.concat):
        parts = [shapes.get(a) for a in args[0]]
        dim = (args[1] if len(args) > 1 else kwargs.get("dim", 0)) - 1  # the shapes have no batch dimension
        if any(p is None for p in parts) or dim < 0:
            return None
        out = list(parts[0])
        out[dim] = sum(p[dim] for p in parts)
        return tuple(out)
    inputs = [shapes.get(a) for a in args if isinstance(a, fx.Node)]
    if any(p is None for p in inputs) or not inputs:
        return None
    try:
        return tuple(torch.broadcast_shapes(*inputs))
    except RuntimeError:
        return None


def _graph(block: nn.Module, input_size: Sequence[int], expand: bool) -> list[_Node]:
    size = _image_size(input_size)
    graph = _trace(block, expand)
    modules = dict(block.named_modules())
    targets = [n.target for n in graph.nodes if n.op == "call_module"]
    module_shapes = _module_shapes(block, size, targets)
    shapes: dict[fx.Node, Shape | None] = {}
    nodes: dict[fx.Node, _Node] = {}
    calls: dict[str, int] = {}
    for n in graph.nodes:
        if n.op == "placeholder":
            shapes[n] = size
            nodes[n] = _Node(["input"], "input", size)
        elif n.op == "call_module":
            k = calls.get(n.target, 0)
            calls[n.target] = k + 1
            shapes[n] = module_shapes.get((n.target, k))
            module = modules[n.target]
            if is_folded_layer(module):
                label, kind = short_name(module), "other"
            else:
                label, kind = describe(module, shapes[n])
            ops = [label]
            leaves = [m for m in module.modules() if next(m.children(), None) is None]
            if kind != "block" and len(leaves) > 1:  # a conv block such as BasicConv2d: conv, BN, ReLU
                ops += [short_name(m) for m in leaves[1:] if not isinstance(m, nn.Identity)]
            nodes[n] = _Node(ops, kind, shapes[n])
        elif n.op == "call_function" and n.target in _JOINS:
            shapes[n] = _join_shape(n.target, n.args, n.kwargs, shapes)
            nodes[n] = _Node([_JOINS[n.target]], "join", shapes[n])
        elif n.op in ("call_function", "call_method"):
            shapes[n] = None  # an operation the drawing does not know: no shape written
            name = getattr(n.target, "__name__", str(n.target))
            nodes[n] = _Node([name], "other", shapes[n])
        else:  # get_attr, output
            continue
        for a in n.all_input_nodes:
            if a in nodes:
                nodes[n].preds.append(nodes[a])
                nodes[a].succs.append(nodes[n])
    return _collapse(list(nodes.values()))


def _collapse(nodes: list[_Node]) -> list[_Node]:
    """Fold a batch norm or activation into the layer before it when nothing else reads that layer."""
    kept: list[_Node] = []
    for node in nodes:
        pred = node.preds[0] if len(node.preds) == 1 else None
        if (
            pred is not None and node.kind == "other" and len(pred.succs) == 1
            and pred.kind in ("conv", "dense", "pool") and node.ops[0] in _FOLDABLE
        ):
            pred.ops += node.ops
            pred.shape = node.shape or pred.shape
            pred.succs = node.succs
            for succ in node.succs:
                succ.preds = [pred if p is node else p for p in succ.preds]
            continue
        kept.append(node)
    return kept


_FOLDABLE = {"BN", "GN", "LN", "IN", "ReLU", "sigmoid", "tanh", "dropout", "ReLU6", "GELU", "SiLU", "Hardswish"}


def _descendants(node: _Node) -> set[int]:
    seen: set[int] = set()
    stack = list(node.succs)
    while stack:
        n = stack.pop()
        if id(n) not in seen:
            seen.add(id(n))
            stack.extend(n.succs)
    return seen


def _is_skip(u: _Node, v: _Node, below: dict[int, set[int]]) -> bool:
    """Edge u -> v skips layers: v is also reached from u along a longer path."""
    return any(p is not u and id(p) in below[id(u)] for p in v.preds)


def _layout(nodes: list[_Node]) -> list[tuple[_Node, _Node]]:
    """Give each node a rank (longest path from the input) and a column; return the skip edges."""
    below = {id(n): _descendants(n) for n in nodes}
    for n in nodes:  # fx gives them in an order where every input comes first
        n.rank = max((p.rank + 1 for p in n.preds), default=0)
    proposals: dict[int, list[float]] = {id(n): [] for n in nodes}
    skips = []
    for n in nodes:
        if proposals[id(n)]:
            n.column = sum(proposals[id(n)]) / len(proposals[id(n)])
        ahead = [s for s in n.succs if not _is_skip(n, s, below)]
        skips += [(n, s) for s in n.succs if _is_skip(n, s, below)]
        for i, s in enumerate(ahead):
            proposals[id(s)].append(n.column + i - (len(ahead) - 1) / 2)
    return skips


def block_diagram(
    block: nn.Module,
    input_size: Sequence[int],
    *,
    expand: bool = False,
    title: str | None = None,
) -> Figure:
    """Draw a building block from its ``forward``: layers, shortcuts, additions and concatenations.

    Args:
        block: A block module, such as ``BasicBlock(64, 64)``, ``Bottleneck(256, 64)``,
            ``Inception(192, 64, 96, 128, 16, 32, 32)`` or ``SqueezeExcitation(64)``
            (or a block taken from a network: ``model.layer2[0]``).
        input_size: ``(C, H, W)`` of the block's input, such as ``(64, 56, 56)``.
        expand: Also open the blocks nested in this one (the SE block inside
            an SE-ResNet block, a zero-padding shortcut) instead of drawing
            each as one box named by its class.
        title: A title above the drawing (none by default: the book's figures have captions).

    Returns:
        The figure, at most :data:`~cnncourse.viz.FIGURE_WIDTH` wide once a
        notebook has saved it (with its 0.1-inch padding).

    Raises:
        TypeError: ``block`` is not an ``nn.Module``, or ``torch.fx`` cannot trace it.
        ValueError: ``input_size`` is not the size of one image, the block
            fails on it, or the graph is too deep for one figure (a whole
            network: draw it with :func:`~cnncourse.viz.architecture`).

    Example:
        >>> from cnncourse.models import BasicBlock
        >>> fig = block_diagram(BasicBlock(64, 64), (64, 56, 56))
    """
    if not isinstance(block, nn.Module):
        raise TypeError(f"block must be a torch.nn.Module, got {type(block).__name__}")
    nodes = _graph(block, input_size, expand)
    skips = _layout(nodes)
    ranks = max(n.rank for n in nodes) + 1
    if ranks > _MAX_RANKS:
        raise ValueError(
            f"{type(block).__name__} is {ranks} layers deep, too deep for one block diagram: "
            "draw a block of it (model.layer1[0]) or the whole network with viz.architecture"
        )
    # sizes: every box as wide as the widest text, every circle the same
    box_width = max(text_width(line) for n in nodes if not n.circle for line in n.lines) + 2 * _PAD
    box_height = 2 * _LINE + 2 * _PAD
    for n in nodes:
        n.width, n.height = (2 * _RADIUS, 2 * _RADIUS) if n.circle else (box_width, len(n.lines) * _LINE + 2 * _PAD)
    pitch_x, pitch_y = box_width + _COLUMN_GAP, box_height + _RANK_GAP
    low = min(n.column for n in nodes)
    high = max(n.column for n in nodes)
    levels = _skip_levels(skips)
    skip_room = (max(levels.values()) + 1) * _SKIP_STEP + 0.15 if skips else 0.0
    width = (high - low) * pitch_x + box_width + skip_room + 0.2
    if width > MAX_WIDTH:
        raise ValueError(
            f"{type(block).__name__} needs {width:.1f} inches, more than the {MAX_WIDTH:g} that fit "
            f"viz.FIGURE_WIDTH ({FIGURE_WIDTH}) once saved: it has {int(high - low) + 1} paths side by side"
        )
    title_height = 0.3 if title else 0.0
    height = ranks * pitch_y - _RANK_GAP + 0.2 + title_height
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    if title:
        ax.text(width / 2, height - 0.08, title, ha="center", va="top", fontsize=11)
    for n in nodes:
        n.x = 0.1 + box_width / 2 + (n.column - low) * pitch_x
        n.y = height - title_height - 0.1 - box_height / 2 - n.rank * pitch_y
    fans = {id(n): sum(1 for s in n.succs if (n, s) not in skips) for n in nodes}
    for n in nodes:
        for s in n.succs:
            if (n, s) not in skips:
                _edge(ax, n, s, fan_out=fans[id(n)] > 1)
    right = max(n.x + n.width / 2 for n in nodes)
    for (u, v) in skips:
        _skip(ax, u, v, right + 0.12 + levels[(id(u), id(v))] * _SKIP_STEP)
    for n in nodes:
        _draw_node(ax, n)
    return fig


def _skip_levels(skips: list[tuple[_Node, _Node]]) -> dict[tuple[int, int], int]:
    """Nested shortcuts get lines further out: the shorter one inside."""
    order = sorted(skips, key=lambda e: e[1].rank - e[0].rank)
    return {(id(u), id(v)): i for i, (u, v) in enumerate(order)}


def _draw_node(ax, n: _Node) -> None:
    if n.circle:
        ax.add_patch(Circle((n.x, n.y), _RADIUS, facecolor="white", edgecolor="#444444", linewidth=1.0, zorder=3))
        ax.text(n.x, n.y, n.ops[0], ha="center", va="center_baseline", fontsize=11, zorder=4)
        return
    face, edge = COLORS.get(n.kind, COLORS["other"]) if n.kind != "join" else ("#f4f4f4", "#6b6b6b")
    if n.kind == "input":
        face = "white"
    ax.add_patch(FancyBboxPatch((n.x - n.width / 2 + 0.03, n.bottom + 0.03), n.width - 0.06, n.height - 0.06,
                                boxstyle="round,pad=0.03", facecolor=face, edgecolor=edge, linewidth=0.9, zorder=3))
    lines = n.lines
    for i, line in enumerate(lines):
        y = n.y + (len(lines) - 1) / 2 * _LINE - i * _LINE
        ax.text(n.x, y, line, ha="center", va="center", fontsize=FONT_SIZE, zorder=4,
                color="#333333" if i else "black")


def _polyline(ax, points: list[tuple[float, float]]) -> None:
    xs, ys = zip(*points)
    style = dict(color="#444444", linewidth=0.9, zorder=2)
    if len(points) > 2:
        ax.plot(xs[:-1], ys[:-1], solid_joinstyle="miter", **style)
    ax.annotate("", xy=points[-1], xytext=points[-2], zorder=2,
                arrowprops=dict(arrowstyle="-|>", color="#444444", linewidth=0.9, shrinkA=0, shrinkB=0,
                                mutation_scale=8))


def _edge(ax, u: _Node, v: _Node, *, fan_out: bool) -> None:
    if abs(u.x - v.x) < 1e-6:
        _polyline(ax, [(u.x, u.bottom), (v.x, v.top)])
        return
    # a fan-out turns just below its source, a fan-in just above its target
    turn = u.bottom - _RANK_GAP / 2 if fan_out else v.top + _RANK_GAP / 2
    _polyline(ax, [(u.x, u.bottom), (u.x, turn), (v.x, turn), (v.x, v.top)])


def _skip(ax, u: _Node, v: _Node, x: float) -> None:
    start = u.bottom - _RANK_GAP / 2  # leaves the line below u
    ax.plot([u.x], [start], "o", color="#444444", markersize=3, zorder=2)
    _polyline(ax, [(u.x, start), (x, start), (x, v.y), (v.x + v.width / 2, v.y)])
    if v.ops[0] == "+":
        ax.text(x + 0.05, (start + v.y) / 2, "identity", rotation=90, ha="left", va="center",
                fontsize=FONT_SIZE, color="#333333")
