"""The receptive field explorer: which input pixels one unit of a layer sees.

Pick a layer and a unit of its feature map: the picture shows the input with the
unit's receptive field on it (what :meth:`cnncourse.ReceptiveField.region`
returns), the part of its window that reaches past the border into the zero
padding, and the feature map beside it with the unit marked. Deep units see large
windows, and units near the border spend much of theirs on padding; the explorer
makes both visible.

Like the other explorers (see :mod:`cnncourse.viz.explorers`), it works without a
kernel on the book's website: every state (layer x row x column) is drawn when the
explorer is built, kept as a small PNG in nested ``ipywidgets.Stack`` widgets, and the
controls are ``jslink``-ed to the stacks' ``selected_index``, links the browser runs
by itself. So the controls offer a coarse set of units (five rows and five columns
by default, spread evenly from the first to the last), not every unit.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral

import ipywidgets as widgets
import numpy as np
from ipywidgets.widgets.widget_string import HTMLStyle
import torch
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image
from torch import nn

from ..arithmetic import LayerReceptiveField, ReceptiveField, Region, receptive_field
from .explorers import MAX_STATES, _explorer, _nested_stacks
from .kernels import as_image
from .png import png_widget

__all__ = ["receptive_field_explorer"]

# The colours of the sliding-window pictures (viz.sliding): blue for what a unit
# sees, orange for the unit, grey for padding.
_PAD_FACE = "#e3e3e3"
_PAD_HATCH = "#b5b5b5"
_WINDOW_EDGE = "#1f5fa8"
_OUTPUT_FACE = "#ffd38f"
_OUTPUT_EDGE = "#c46f00"
_GRID = "#8a8a8a"
_MAP_FACE = "#f4f4f4"
_DIM = (1.0, 1.0, 1.0, 0.6)  # veils the pixels the unit does not see
#: Colours every picture keeps exactly, whatever the photo's palette leaves out.
_FIXED_COLORS = ("#ffffff", "#000000", _PAD_FACE, _PAD_HATCH, _WINDOW_EDGE, _OUTPUT_FACE, _OUTPUT_EDGE, _GRID,
                 _MAP_FACE)
_MAX_GRID_LINES = 40  # a feature map with more cells per side is drawn without cell borders
_PANELS = ((0.01, 0.58), (0.63, 0.36))  # (left, width) of the input and the feature-map panels


@dataclass(frozen=True)
class _Unit:
    """One state of the explorer: a unit, the pixels it sees and its whole window."""

    layer: str  # the row's name in the table
    y: int
    x: int
    region: Region  # clipped to the image: what ReceptiveField.region returns
    window: Region  # not clipped: may reach into the padding
    center: tuple[float, float]


@dataclass(frozen=True)
class _Plan:
    """What the explorer shows: the chosen rows, the units per row, and their states."""

    rows: list[LayerReceptiveField]
    ys: list[list[int]]  # per row, the unit rows the row slider offers
    xs: list[list[int]]  # per row, the unit columns the column slider offers
    units: dict[tuple[int, int, int], _Unit]  # (layer index, row index, column index) -> state


def receptive_field_explorer(
    model: nn.Module | ReceptiveField,
    image,
    *,
    layers: Sequence[int | str] | None = None,
    positions: int = 5,
    width: int = 440,
    dpi: float = 80,
    colors: int = 48,
) -> widgets.VBox:
    """Pick a layer and one of its units, and see the input region that the unit sees.

    Every state is precomputed (``len(layers) * positions**2`` small PNGs, 75 by
    default), so the controls work on the website as well as in a notebook.

    Args:
        model: The network, whose receptive fields are computed with
            :func:`cnncourse.receptive_field` for an input of the image's size
            and channels; or such a :class:`~cnncourse.ReceptiveField` table.
        image: The input picture (any layout :func:`~cnncourse.viz.kernels.as_image`
            accepts), in ``[0, 1]``; its size is the size the model sees.
        layers: Rows of the table to offer (indices or names, see
            :meth:`~cnncourse.ReceptiveField.row`). By default three rows spread
            evenly over the table, the last one included.
        positions: How many unit rows (and columns) the sliders offer, spread
            evenly from the first to the last of each feature map; 1 offers the
            centre unit only.
        width: Width of the pictures in pixels.
        dpi: Resolution of the pictures (sets the size of their text).
        colors: Colours per picture (at most 256): fewer make a lighter page.

    Returns:
        The explorer's top widget (end a notebook cell with it to show it).

    Raises:
        TypeError: ``model`` is neither a module nor a table, ``image`` is not a
            tensor or an array, or an option has the wrong type.
        ValueError: ``image`` has a wrong shape or a size other than the table's,
            ``layers`` is empty, repeats a row or names an unknown one, an option
            is out of range, or there would be more than
            :data:`~cnncourse.viz.explorers.MAX_STATES` states.

    Example:
        >>> model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3))
        >>> explorer = receptive_field_explorer(model, torch.rand(3, 32, 32), layers=["2", "3"], positions=3)
        >>> len(explorer.children)  # the controls, the stacked pictures, the help text
        3

        In the book: ``receptive_field_explorer(receptive_field(vgg16, (3, 224, 224)), photo,
        layers=["features.9", "features.23", "features.30"])``.
    """
    picture = as_image(image)
    size = tuple(picture.shape[1:])
    if isinstance(model, ReceptiveField):
        rf = model
        if tuple(rf.input_size) != size:
            raise ValueError(
                f"the receptive field table was computed for a {rf.input_size[0]} x {rf.input_size[1]} input, "
                f"but the image is {size[0]} x {size[1]}: resize the image, or compute the table for its size"
            )
    elif isinstance(model, nn.Module):
        first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
        if first is not None and first.in_channels != picture.shape[0]:
            fix = "image.expand(3, -1, -1)" if picture.shape[0] == 1 else "a grey image (image.mean(0, keepdim=True))"
            raise ValueError(
                f"the model's first convolution takes {first.in_channels} channel(s) but the image has "
                f"{picture.shape[0]}: pass {fix}, or a table from receptive_field"
            )
        rf = receptive_field(model, (picture.shape[0], *size))
    else:
        raise TypeError(f"model must be an nn.Module or a ReceptiveField table, got {type(model).__name__}")
    for name, value, low in (("positions", positions, 1), ("width", width, 100), ("colors", colors, None)):
        if not isinstance(value, Integral) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, got {value!r}")
        if low is not None and value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    if not len(_FIXED_COLORS) + 2 <= colors <= 256:
        raise ValueError(
            f"colors must be at least {len(_FIXED_COLORS) + 2} (the diagram keeps {len(_FIXED_COLORS)} of its own "
            f"and the photo needs some) and at most 256 (a PNG palette), got {colors}"
        )
    if not (isinstance(dpi, (int, float)) and dpi > 0):
        raise ValueError(f"dpi must be a positive number, got {dpi!r}")

    plan = _plan(rf, layers, positions)
    drawing = _Drawing(picture, plan, width=width, dpi=dpi, colors=colors)
    # One Layout (and one style) model shared by every picture, caption and box of the
    # states: without them each state brings three Layouts and a style of its own, a
    # sixth of the page's widget state.
    image_layout, shared_layout, caption_style = widgets.Layout(), widgets.Layout(), HTMLStyle()

    def leaf(index: tuple[int, int, int]) -> widgets.Widget:
        unit = plan.units[index]
        row = plan.rows[index[0]]
        png = drawing.png(row, unit)
        caption = widgets.HTML(_caption(row, unit), layout=shared_layout, style=caption_style)
        # At its own width: a page that stretches the picture would blur it.
        return widgets.VBox([caption, png_widget(png, width=width, layout=image_layout)], layout=shared_layout)

    middle = (positions - 1) // 2
    initial = (len(plan.rows) - 1, middle, middle)
    choice = widgets.Dropdown(
        options=[(f"{row.name} ({row.type}, {_size(row.size)})", i) for i, row in enumerate(plan.rows)],
        index=initial[0], description="layer", style={"description_width": "6.5em"},
        layout=widgets.Layout(width="max-content", min_width="22em"),
    )
    steps = [(_percent(i, positions), i) for i in range(positions)]
    sliders = [
        widgets.SelectionSlider(options=steps, index=middle, description=what, continuous_update=True,
                                style={"description_width": "6.5em"})
        for what in ("unit row", "unit column")
    ]
    controls = [choice, *sliders]
    counts = (len(plan.rows), positions, positions)
    stack = _nested_stacks(initial, counts, leaf, controls)
    drawing.close()
    return _explorer(
        [widgets.VBox(controls), stack],
        "cnncourse-receptive-field-explorer",
        "Choose a layer and move the unit across its feature map (right, orange): the sliders go "
        f"from the first to the last row and column in {positions} steps. On the input (left), the blue "
        "square is the region the unit sees, its receptive field, and the rest of the image is veiled; a "
        "dashed outline continues the window "
        "where it reaches past the border into the zero padding (grey), and a cross marks the window's "
        "centre. Every state is precomputed, so the controls work on the website as well as in a "
        "notebook.",
    )


# --- what to show ----------------------------------------------------------------------


def _plan(rf: ReceptiveField, layers: Sequence[int | str] | None, positions: int) -> _Plan:
    """Resolve the rows and the units the controls offer, and each unit's region."""
    if layers is None:
        last = len(rf.layers) - 1
        picks = sorted({round(v) for v in np.linspace(min(1, last), last, min(3, last or 1))})
        rows = [rf.layers[i] for i in picks]
    else:
        if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
            raise TypeError(f"layers must be a list of row names or indices, e.g. ['features.9'], got {layers!r}")
        if not layers:
            raise ValueError("layers is empty: name at least one row of the receptive field table")
        rows = [rf.row(layer) for layer in layers]
        names = [row.name for row in rows]
        if len(set(names)) != len(names):
            raise ValueError(f"layers repeats a row: {names}")
    count = len(rows) * positions**2
    if count > MAX_STATES:
        raise ValueError(
            f"{len(rows)} layers x {positions} x {positions} positions is {count} states, more than {MAX_STATES}: "
            "every state is a picture in the page, so offer fewer layers or positions"
        )
    index_of = {id(row): i for i, row in enumerate(rf.layers)}
    ys = [_spread(row.output_size[0], positions) for row in rows]
    xs = [_spread(row.output_size[1], positions) for row in rows]
    units = {}
    for li, row in enumerate(rows):
        at = index_of[id(row)]
        for iy, y in enumerate(ys[li]):
            for ix, x in enumerate(xs[li]):
                units[li, iy, ix] = _Unit(
                    row.name, y, x,
                    region=rf.region(y, x, layer=at),
                    window=rf.region(y, x, layer=at, clip=False),
                    center=rf.center(y, x, layer=at),
                )
    return _Plan(rows, ys, xs, units)


def _spread(n: int, positions: int) -> list[int]:
    """``positions`` unit indices from 0 to n - 1, evenly spread (repeated when n is small)."""
    if positions == 1:
        return [(n - 1) // 2]
    return [round(i * (n - 1) / (positions - 1)) for i in range(positions)]


def _percent(i: int, positions: int) -> str:
    return "50%" if positions == 1 else f"{round(100 * i / (positions - 1))}%"


def _size(pair: tuple[int, int]) -> str:
    return f"{pair[0]}×{pair[1]}" if pair[0] != pair[1] else f"{pair[0]}×{pair[0]}"


def _caption(row: LayerReceptiveField, unit: _Unit) -> str:
    region, window = unit.region, unit.window
    where = f"<b>{_escape(row.name)}</b> ({_escape(row.type)}): unit ({unit.y}, {unit.x}) of its " \
            f"{row.output_size[0]}×{row.output_size[1]} output. Receptive field {_size(row.size)}, " \
            f"effective stride {_size(row.stride)}."
    if region.height <= 0 or region.width <= 0:
        return f"{where} Its whole window lies in the padding: it sees no pixel of the image."
    sees = f" It sees rows {region.top}&ndash;{region.bottom - 1} and columns {region.left}&ndash;{region.right - 1}"
    if not region.clipped:
        return f"{where}{sees}, all inside the image."
    inside = region.height * region.width / (window.height * window.width)
    return f"{where}{sees}; only {inside:.0%} of its window lies on the image, the rest is padding."


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- the pictures ----------------------------------------------------------------------


class _Drawing:
    """One figure, redrawn for every state: the input with the region, and the feature map.

    Within a layer the input panel keeps one scale (wide enough for the largest
    window of the units on offer), so that moving the unit never rescales the picture.

    The PNGs share one palette: the diagram's own colours, kept exact, and the main
    colours of the photo, bright and veiled. A palette computed per picture, as
    :func:`~cnncourse.viz.png.figure_to_png` does, gives the photo every entry and turns
    the small orange and blue marks grey; mapping onto a fixed palette is also thirty
    times faster.
    """

    def __init__(self, picture: torch.Tensor, plan: _Plan, *, width: int, dpi: float, colors: int) -> None:
        height, width_px = picture.shape[1:]
        self.input_size = (height, width_px)
        self.views = {}  # layer name -> (left, right, bottom, top) of the input panel
        for row in plan.rows:
            windows = [u.window for u in plan.units.values() if u.layer == row.name]
            self.views[row.name] = (
                min(0, *(w.left for w in windows)) - 0.5, max(width_px, *(w.right for w in windows)) + 0.5,
                max(height, *(w.bottom for w in windows)) + 0.5, min(0, *(w.top for w in windows)) - 0.5,
            )
        aspect = max((v[2] - v[3]) / (v[1] - v[0]) for v in self.views.values())
        inches, title = width / dpi, 0.3  # the titles need 0.3 inch above the panels
        (in_left, in_width), (map_left, map_width) = _PANELS
        height_in = inches * max(in_width * aspect, map_width) + title
        panel = 1 - title / height_in - 0.02
        self.figure = Figure(figsize=(inches, height_in), dpi=dpi)
        # Titles as figure text: an axes title makes matplotlib measure the (hidden) tick
        # labels on every draw, which took half the time of a state.
        y = 1 - 0.6 * title / height_in
        self.input_title = self.figure.text(in_left + in_width / 2, y, "", ha="center", va="center", fontsize=10)
        self.map_title = self.figure.text(map_left + map_width / 2, y, "", ha="center", va="center", fontsize=10)
        self.input_ax = self.figure.add_axes((in_left, 0.02, in_width, panel))
        self.map_ax = self.figure.add_axes((map_left, 0.02, map_width, panel))
        ax = self.input_ax
        ax.axis("off")
        lefts, rights, bottoms, tops = zip(*self.views.values())
        ax.add_patch(Rectangle((min(lefts), min(tops)), max(rights) - min(lefts), max(bottoms) - min(tops),
                               facecolor=_PAD_FACE, edgecolor=_PAD_HATCH, hatch="///", linewidth=0, zorder=0))
        shown = picture[0] if picture.shape[0] == 1 else picture.permute(1, 2, 0)
        ax.imshow(shown.numpy(), cmap="gray", vmin=0, vmax=1, extent=(0, width_px, height, 0),
                  interpolation="antialiased", zorder=0.5)
        self.veil = [ax.add_patch(Rectangle((0, 0), 0, 0, facecolor=_DIM, linewidth=0)) for _ in range(4)]
        ax.add_patch(Rectangle((0, 0), width_px, height, fill=False, edgecolor=_GRID, linewidth=0.8))
        ax.set_aspect("equal")
        self.window = ax.add_patch(Rectangle((0, 0), 1, 1, fill=False, edgecolor=_WINDOW_EDGE,
                                             linewidth=1.5, linestyle=(0, (4, 2))))
        self.region = ax.add_patch(Rectangle((0, 0), 1, 1, fill=False, edgecolor=_WINDOW_EDGE, linewidth=2))
        (self.center,) = ax.plot([0], [0], marker="+", markersize=9, markeredgewidth=1.8, color=_WINDOW_EDGE)
        self.map_row: LayerReceptiveField | None = None  # the row whose feature map is drawn
        self.palette = self._palette(plan, colors)

    def png(self, row: LayerReceptiveField, unit: _Unit) -> bytes:
        """The state's picture as PNG bytes, in the shared palette."""
        image = self._render(row, unit).quantize(palette=self.palette, dither=Image.Dither.NONE)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", optimize=True)
        return buffer.getvalue()

    def _palette(self, plan: _Plan, colors: int) -> Image.Image:
        """The diagram's own colours, and half of the rest for each of the two looks of the photo."""
        fixed = [round(c * 255) for name in _FIXED_COLORS for c in to_rgb(name)]
        # The photo as a unit sees it (bright) and as the veil leaves it (pale), each given half
        # of the entries: pooled together, the pale tones have the smaller range and lose out.
        # Median cut suits the bright photo; on the pale one it leaves rare tones (the pupils)
        # to the diagram's greys, which the octree method does not.
        height, width = self.input_size
        whole, none = Region(0, 0, height, width, False), Region(0, 0, 0, 0, True)
        free = colors - len(_FIXED_COLORS)
        entries = []
        for region, count, method in ((whole, free - free // 2, Image.Quantize.MEDIANCUT),
                                      (none, free // 2, Image.Quantize.FASTOCTREE)):
            sample = self._render(plan.rows[0], _Unit(plan.rows[0].name, 0, 0, region, whole, (0.0, 0.0)))
            learned = sample.quantize(colors=count, method=method, dither=Image.Dither.NONE)
            entries += (learned.getpalette() or [])[: 3 * count]
        entries += fixed
        palette = Image.new("P", (1, 1))
        palette.putpalette(entries + entries[-3:] * (256 - len(entries) // 3))  # pad with a repeated colour
        return palette

    def _render(self, row: LayerReceptiveField, unit: _Unit) -> Image.Image:
        if row is not self.map_row:
            self._draw_layer(row)
        w, r = unit.window, unit.region
        self.window.set_bounds(w.left, w.top, w.width, w.height)
        self.window.set_visible(r.clipped)  # otherwise the region is the whole window
        self.region.set_bounds(r.left, r.top, r.width, r.height)
        seen = r.width > 0 and r.height > 0
        self.region.set_visible(seen)
        height, width = self.input_size
        if not seen:
            bands = [(0, 0, width, height)] + [(0, 0, 0, 0)] * 3
        else:
            bands = [(0, 0, width, r.top), (0, r.bottom, width, height - r.bottom),
                     (0, r.top, r.left, r.height), (r.right, r.top, width - r.right, r.height)]
        for patch, band in zip(self.veil, bands):
            patch.set_bounds(*band)
        self.center.set_data([unit.center[1] + 0.5], [unit.center[0] + 0.5])  # pixel i spans [i, i + 1)
        self.cell.set_xy((unit.x, unit.y))
        self.marker.set_data([unit.x + 0.5], [unit.y + 0.5])
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="rgba", dpi=self.figure.dpi)
        size = self.figure.canvas.get_width_height(physical=True)
        return Image.frombuffer("RGBA", size, buffer.getbuffer(), "raw", "RGBA", 0, 1).convert("RGB")

    def _draw_layer(self, row: LayerReceptiveField) -> None:
        left, right, bottom, top = self.views[row.name]
        self.input_ax.set_xlim(left, right)
        self.input_ax.set_ylim(bottom, top)
        self.input_title.set_text(f"input {self.input_size[0]}×{self.input_size[1]}")
        ax = self.map_ax
        ax.clear()
        h, w = row.output_size
        ax.add_patch(Rectangle((0, 0), w, h, facecolor=_MAP_FACE, edgecolor=_GRID, linewidth=1))
        if max(h, w) <= _MAX_GRID_LINES:
            for i in range(1, h):
                ax.plot([0, w], [i, i], color=_GRID, linewidth=0.5)
            for j in range(1, w):
                ax.plot([j, j], [0, h], color=_GRID, linewidth=0.5)
        self.cell = ax.add_patch(Rectangle((0, 0), 1, 1, facecolor=_OUTPUT_FACE, edgecolor=_OUTPUT_EDGE,
                                           linewidth=1.5))
        side = max(h, w)
        # On a large map one cell is a pixel or two: a marker of fixed size finds it.
        (self.marker,) = ax.plot([0.5], [0.5], marker="s", markersize=9, markerfacecolor="none",
                                 markeredgecolor=_OUTPUT_EDGE, markeredgewidth=1.5,
                                 visible=side > _MAX_GRID_LINES)
        ax.set_xlim(-0.02 * side, side * 1.02)
        ax.set_ylim(side * 1.02, -0.02 * side)
        ax.set_aspect("equal")
        ax.axis("off")
        self.map_title.set_text(f"{row.name}: {h}×{w}")
        self.map_row = row

    def close(self) -> None:
        self.figure.clear()
