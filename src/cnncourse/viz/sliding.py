"""The sliding-window picture of a 2-D convolution, and its animation.

One picture shows the padded input grid (padding cells grey), the cells the
(dilated) kernel touches for one output position, and the output grid beside it
with that output cell marked. Input pixels that no window ever reaches, because
the output-size formula rounds down, are hatched. With ``values`` and ``kernel``
the cells carry numbers and the picture spells out the dot product for the
marked cell, as in the book's worked examples.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ._geometry import ConvGeometry, Pair
from .animation import OfflineFuncAnimation

__all__ = ["draw_convolution", "sliding_window_animation"]

#: A grid of numbers: a tensor, an array or nested lists.
Numbers = torch.Tensor | np.ndarray | Sequence[Sequence[float]]

_GAP = 1.5  # cells between the input grid and the output grid
_TOP = 2.1  # cells above the grids, for the title and the labels
_UNIT_SQUARE = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
_CELL_INCHES = 0.42  # default size of a cell when draw_convolution makes its own figure

_EDGE = "#8a8a8a"
_PAD_FACE = "#e3e3e3"
_WINDOW_FACE = "#9cc3ea"
_WINDOW_EDGE = "#1f5fa8"
_OUTPUT_FACE = "#ffd38f"
_OUTPUT_EDGE = "#c46f00"
_IGNORED = "#d62728"
#: The smallest font, in points, of any text in the picture: what the website shows legibly.
MIN_FONT = 9.0


def draw_convolution(
    input_size: int | Pair,
    kernel_size: int | Pair,
    *,
    stride: int | Pair = 1,
    padding: int | Pair = 0,
    dilation: int | Pair = 1,
    position: Pair = (0, 0),
    values: Numbers | None = None,
    kernel: Numbers | None = None,
    ax: Axes | None = None,
    progressive: bool = False,
) -> Figure:
    """Draw one step of a 2-D convolution: the window on the padded input, and the output.

    Args:
        input_size: Height and width of the input (an int for a square).
        kernel_size: Height and width of the kernel.
        stride: Step of the window, as in ``torch.nn.Conv2d``.
        padding: Zeros added on every side.
        dilation: Spacing between the cells the kernel touches.
        position: ``(row, column)`` of the output cell whose window is shown.
        values: Optional input numbers, ``H x W`` (tensor, array or nested lists).
        kernel: Optional kernel numbers, ``kernel_size`` (tensor, array or lists).
            With both, every output cell shows its value (computed with
            ``F.conv2d``) and the picture writes out the dot product of ``position``.
        ax: Axes to draw into; a new figure sized to the grids by default. In a
            notebook that figure is shown at the end of the cell, like any pyplot one.
        progressive: Show only the outputs up to ``position`` in reading order
            (what the animation does), instead of all of them.

    Returns:
        The figure.

    Raises:
        TypeError: A size is not an int or a pair of ints.
        ValueError: A size is out of range, the kernel does not fit in the padded
            input, ``position`` is off the output grid, or ``values``/``kernel``
            have the wrong shape.

    Shape:
        ``values``: ``(H, W)`` = ``input_size``; ``kernel``: ``(kH, kW)`` = ``kernel_size``.

    Example:
        >>> fig = draw_convolution(3, 2, values=torch.arange(9.0).view(3, 3),
        ...                        kernel=torch.arange(4.0).view(2, 2))  # output [[19, 25], [37, 43]]
    """
    geometry = ConvGeometry.of(input_size, kernel_size, stride=stride, padding=padding, dilation=dilation)
    position = geometry.check_position(position)
    grid = _as_grid(values, geometry.input_size, "values", "input_size")
    weights = _as_grid(kernel, geometry.kernel_size, "kernel", "kernel_size")
    outputs = _convolve(grid, weights, geometry) if grid is not None and weights is not None else None
    if ax is None:
        frame = frame_size(geometry, note_count(geometry, equation=outputs is not None))
        fig = plt.figure(figsize=_figsize(frame))
        ax = fig.add_axes((0, 0, 1, 1))  # the picture sets its own margins, in cells
    draw_on(ax, geometry, position=position, values=grid, kernel=weights, outputs=outputs, progressive=progressive)
    return _root_figure(ax)


def sliding_window_animation(
    input_size: int | Pair,
    kernel_size: int | Pair,
    *,
    stride: int | Pair = 1,
    padding: int | Pair = 0,
    dilation: int | Pair = 1,
    values: Numbers | None = None,
    kernel: Numbers | None = None,
    interval: int = 800,
    dpi: float = 80,
) -> OfflineFuncAnimation:
    """Animate the window visiting every output position, in reading order.

    The arguments are those of :func:`draw_convolution`; each frame is one
    output position, and with ``values`` and ``kernel`` the output fills in as
    the window moves. The animation's figure is not a pyplot figure, so a
    notebook shows only the player, not a stray still image.

    Args:
        interval: Milliseconds per frame.
        dpi: Resolution of the frames (they are all embedded in the page).

    Returns:
        An :class:`~cnncourse.viz.animation.OfflineFuncAnimation` with one frame
        per output cell; end a notebook cell with it (or call ``to_jshtml()``)
        to get a player that needs no internet.

    Raises:
        TypeError, ValueError: as :func:`draw_convolution`.

    Example:
        >>> anim = sliding_window_animation(3, 2)  # 4 frames, one per output cell
        >>> "https://" in anim.to_jshtml()
        False
    """
    geometry = ConvGeometry.of(input_size, kernel_size, stride=stride, padding=padding, dilation=dilation)
    if not (isinstance(interval, int) and interval > 0):
        raise ValueError(f"interval must be a positive number of milliseconds, got {interval!r}")
    oh, ow = geometry.output_size
    frame_cells = frame_size(geometry, note_count(geometry, equation=values is not None and kernel is not None))
    fig = Figure(figsize=_figsize(frame_cells), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    args = dict(stride=stride, padding=padding, dilation=dilation, values=values, kernel=kernel)

    def frame(index: int) -> list:
        ax.clear()
        draw_convolution(input_size, kernel_size, position=divmod(index, ow), ax=ax, progressive=True, **args)
        return []

    frame(0)  # checks values and kernel now, not when the first frame is rendered
    (h, w), (kh, kw) = geometry.input_size, geometry.kernel_size
    alt = (f"Animation of a convolution ({geometry.describe()}) on a {h}\u00d7{w} input: the {kh}\u00d7{kw} "
           f"window visits the {oh * ow} output cells in reading order, one frame each"
           + (", and each frame writes out its dot product." if values is not None and kernel is not None else "."))
    return OfflineFuncAnimation(fig, frame, frames=oh * ow, interval=interval, repeat=True, alt=alt)


# --- helpers -------------------------------------------------------------------------


def _root_figure(ax: Axes) -> Figure:
    fig = ax.figure
    while not isinstance(fig, Figure):  # a SubFigure: its .figure is the parent
        fig = fig.figure
    return fig


def _as_grid(data, shape: Pair, name: str, size_name: str) -> np.ndarray | None:
    if data is None:
        return None
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().double().numpy()
    try:
        grid = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be numbers (a tensor, array or nested lists): {error}") from None
    if grid.shape != tuple(shape):
        raise ValueError(f"{name} has shape {grid.shape} but {size_name} is {tuple(shape)}: they must match")
    return grid


def _convolve(grid: np.ndarray, weights: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    out = F.conv2d(
        torch.from_numpy(grid)[None, None], torch.from_numpy(weights)[None, None],
        stride=geometry.stride, padding=geometry.padding, dilation=geometry.dilation,
    )
    return out[0, 0].numpy()


def note_count(geometry: ConvGeometry, *, equation: bool) -> int:
    """How many lines of notes go under the grids (the dot product, the hatching note).

    The dot product gets two lines: at the smallest legible size (:data:`MIN_FONT`)
    a long one is wrapped after half of its terms.
    """
    return 2 * int(equation) + int(not geometry.covered()[_inside(geometry)].all())


def _inside(geometry: ConvGeometry) -> tuple[slice, slice]:
    (ph, pw), (h, w) = geometry.padding, geometry.input_size
    return slice(ph, ph + h), slice(pw, pw + w)


def frame_size(geometry: ConvGeometry, notes: int) -> tuple[float, float]:
    """Width and height, in cells, of everything the picture draws (axes limits)."""
    (hp, wp), (_, wo) = geometry.padded_size, geometry.output_size
    # At least 4 cells for the output grid, so that its label fits above it.
    return wp + _GAP + max(wo, 4) + 0.4, _TOP + hp + 0.35 + 0.85 * notes


def _figsize(frame: tuple[float, float]) -> tuple[float, float]:
    return frame[0] * _CELL_INCHES, frame[1] * _CELL_INCHES


def _fmt(x: float) -> str:
    if abs(x - round(x)) < 1e-9:
        text = str(int(round(x)))
    else:
        text = f"{x:.3g}"
    return text.replace("-", "\u2212")


def _term(x: float, w: float) -> str:
    weight = _fmt(w)
    return f"{_fmt(x)}\u00b7{'(' + weight + ')' if w < 0 else weight}"


def draw_on(
    ax: Axes,
    geometry: ConvGeometry,
    *,
    position: Pair,
    values: np.ndarray | None = None,
    kernel: np.ndarray | None = None,
    outputs: np.ndarray | None = None,
    progressive: bool = False,
    frame: tuple[float, float] | None = None,
) -> None:
    """Draw the picture into ``ax`` (checked arguments; see :func:`draw_convolution`).

    ``frame`` (width, height in cells, at least :func:`frame_size`) fixes the axes
    limits, so that pictures of different geometries share one scale (the
    explorer); by default the limits fit this picture.
    """
    (h, w), (p_top, p_left) = geometry.input_size, geometry.padding
    (hp, wp), (oh, ow) = geometry.padded_size, geometry.output_size
    x_out, y_out = wp + _GAP, (hp - oh) / 2
    window = geometry.window(position)
    covered = geometry.covered()
    ignored = [(r, c) for r in range(p_top, p_top + h) for c in range(p_left, p_left + w) if not covered[r, c]]

    notes = []
    terms = []
    if outputs is not None:
        terms = [_term(_padded_value(values, geometry, r, c), wt) for (r, c), wt in zip(window, kernel.ravel())]
        notes.append(f"{_fmt(outputs[position])} = " + " + ".join(terms))
    if ignored:
        notes.append(f"hatched: {len(ignored)} input pixel{'s' if len(ignored) > 1 else ''} that no window reaches")
    lines = len(notes) + (1 if outputs is not None else 0)  # the dot product may take two
    width, height = frame if frame is not None else frame_size(geometry, lines)
    ax.set_xlim(-0.2, width - 0.2)
    ax.set_ylim(height - _TOP, -_TOP)  # rows go down
    ax.set_aspect("equal")
    ax.axis("off")
    size, width_pt = _font_size(ax, width, height)

    def fit(text: str, points: float, cells: float = width) -> float:
        # Shrink a line of text that would not fit in `cells` (a character is about 0.58 em wide),
        # but never below MIN_FONT: a figure too small for its text must be made larger.
        return max(MIN_FONT, min(points, 0.95 * cells * width_pt / width / (0.58 * len(text))))

    def fits(text: str, points: float) -> bool:
        return 0.58 * len(text) * points <= 0.95 * width_pt

    # Cells are drawn as a few PatchCollections (one artist each, not one per cell):
    # that makes the explorer's dozens of pictures several times faster to render.
    def cells(origins, **style) -> None:
        if origins:
            corners = np.asarray(origins, dtype=float)[:, None, :] + _UNIT_SQUARE  # N x 4 x 2
            ax.add_collection(PolyCollection(corners, **style), autolim=False)

    # The input grid, padding in grey, then the pixels no window reaches, hatched.
    grid_cells = [(c, r) for r in range(hp) for c in range(wp)]
    faces = [_PAD_FACE if not (p_top <= r < p_top + h and p_left <= c < p_left + w) else "white"
             for c, r in grid_cells]
    cells(grid_cells, facecolors=faces, edgecolors=_EDGE, linewidths=0.8, zorder=1)
    cells([(c, r) for r, c in ignored], facecolors="none", edgecolors=_IGNORED, linewidths=0, hatch="///",
          zorder=1.5)
    # The window: the cells the kernel touches, and the span of the dilated kernel.
    cells([(c, r) for r, c in window], facecolors=_WINDOW_FACE, edgecolors=_EDGE, linewidths=0.8, zorder=2)
    (r0, c0), (eh, ew) = window[0], geometry.extent
    dashed = max(geometry.dilation) > 1
    ax.add_artist(Rectangle((c0, r0), ew, eh, fill=False, edgecolor=_WINDOW_EDGE, lw=2.2,
                            linestyle="--" if dashed else "-", zorder=3))
    # The output grid and the cell this window computes.
    i, j = position
    cells([(x_out + c, y_out + r) for r in range(oh) for c in range(ow)], facecolors="white", edgecolors=_EDGE,
          linewidths=0.8, zorder=2)
    ax.add_artist(Rectangle((x_out + j, y_out + i), 1, 1, facecolor=_OUTPUT_FACE, edgecolor=_OUTPUT_EDGE,
                            lw=2.2, zorder=3))

    # Numbers: input values (0 in the padding), kernel weights, outputs.
    if values is not None:
        for r in range(hp):
            for c in range(wp):
                inside = p_top <= r < p_top + h and p_left <= c < p_left + w
                ax.text(c + 0.5, r + (0.38 if kernel is not None else 0.45),
                        _fmt(_padded_value(values, geometry, r, c)), ha="center",
                        va="center", fontsize=size, color="black" if inside else "#777777", zorder=4)
    if kernel is not None:
        corner = values is not None  # weights go in a corner when the cell holds a value
        for (r, c), wt in zip(window, kernel.ravel()):
            ax.text(c + (0.97 if corner else 0.5), r + (0.97 if corner else 0.5), f"\u00d7{_fmt(wt)}",
                    ha="right" if corner else "center", va="bottom" if corner else "center",
                    fontsize=max(MIN_FONT, size * 0.62) if corner else size, color=_WINDOW_EDGE, zorder=4)
    if outputs is not None:
        shown = i * ow + j
        for r in range(oh):
            for c in range(ow):
                if not progressive or r * ow + c <= shown:
                    ax.text(x_out + c + 0.5, y_out + r + 0.5, _fmt(outputs[r, c]), ha="center", va="center",
                            fontsize=size, zorder=4)

    title = geometry.describe()
    ax.text(0, -1.3, title, ha="left", va="bottom", fontsize=fit(title, size * 1.1))
    label = f"input {h}\u00d7{w}" + (f", padding {_pad_label(geometry)}" if max(geometry.padding) else "")
    label_size = fit(label, size, x_out - 0.3)
    ax.text(0, -0.3, label, ha="left", va="bottom", fontsize=label_size)
    ax.text(x_out, -0.3, f"output {oh}\u00d7{ow}", ha="left", va="bottom", fontsize=label_size)
    shown_lines = []
    for note in notes:
        if terms and note.endswith(" + ".join(terms)) and not fits(note, max(MIN_FONT, size * 0.9)):
            half = (len(terms) + 1) // 2  # the dot product, wrapped after half of its terms
            head = note[: len(note) - len(" + ".join(terms))]
            first, second = head + " + ".join(terms[:half]) + " +", "    " + " + ".join(terms[half:])
            points = fit(max(first, second, key=len), size * 0.9)
            shown_lines += [(first, points), (second, points)]
        else:
            shown_lines.append((note, fit(note, size * 0.9)))
    for k, (note, points) in enumerate(shown_lines):
        ax.text(0, hp + 0.3 + 0.85 * k, note, ha="left", va="top", fontsize=points,
                color=_IGNORED if note.startswith("hatched") else "black")


def _pad_label(geometry: ConvGeometry) -> str:
    ph, pw = geometry.padding
    return f"{ph} (grey)" if ph == pw else f"{ph}x{pw} (grey)"


def _padded_value(grid: np.ndarray | None, geometry: ConvGeometry, r: int, c: int) -> float:
    (ph, pw), (h, w) = geometry.padding, geometry.input_size
    if grid is None or not (ph <= r < ph + h and pw <= c < pw + w):
        return 0.0
    return float(grid[r - ph, c - pw])


def _font_size(ax, width_cells: float, height_cells: float) -> tuple[float, float]:
    """A font size (points) that fits a number in a cell, and the picture's width in points.

    Computed from the axes' size on the figure; with an equal aspect the picture
    fills the axes in one direction.
    """
    fig, box = _root_figure(ax), ax.get_position()
    width_pt = box.width * fig.get_figwidth() * 72
    height_pt = box.height * fig.get_figheight() * 72
    cell = min(width_pt / width_cells, height_pt / height_cells)
    return float(np.clip(0.45 * cell, MIN_FONT, 12)), cell * width_cells
