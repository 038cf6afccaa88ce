"""Explorers: widgets that let a reader change a convolution and see what happens.

They must work in two places. In Jupyter or Colab a kernel runs behind them; on
the book's website nothing does, and the page has only the widget state that the
build saved. So every state a control can select is computed when the explorer is
built and kept in an ``ipywidgets.Stack`` (which shows one child, its
``selected_index``); each control is ``jslink``-ed to that index, a link that the
browser runs by itself. Several controls nest the stacks: a stack per kernel size
holds a stack per stride, and so on, and a control is linked to every stack of its
level. The website's widget manager (``_static/vendor/jupyter-widgets``) renders
the saved state and runs the links; no CDN is involved.

What needs Python stays live-only and says so: the kernel explorer's nine-number
editor recomputes the feature map through an ``observe`` callback.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence

import ipywidgets as widgets
import numpy as np
import torch
import torch.nn.functional as F
from ipywidgets.widgets.widget_description import DescriptionStyle
from ipywidgets.widgets.widget_string import HTMLStyle
from matplotlib.figure import Figure

from ._geometry import ConvGeometry, Pair, to_pair
from .kernels import apply_kernel, as_image, classic_kernels
from .png import array_to_jpeg, array_to_png, figure_to_png, png_widget
from .sliding import draw_on, frame_size, note_count

__all__ = ["LIVE_ONLY_CLASS", "MAX_STATES", "conv_explorer", "kernel_explorer"]

#: Most states (pictures) one explorer may precompute; each one is embedded in the page.
MAX_STATES = 160
#: CSS classes on the page: the explorers' top widgets, and the stack of their states
#: (only the selected state is rendered), which tests/test_explorers_site.py looks for.
KERNEL_EXPLORER_CLASS = "cnncourse-kernel-explorer"
CONV_EXPLORER_CLASS = "cnncourse-conv-explorer"
STATES_CLASS = "cnncourse-explorer-states"
#: Controls that only a running kernel can act on; the website makes them read-only
#: (``_static/cnncourse.js``), since no Python runs behind its pages.
LIVE_ONLY_CLASS = "cnncourse-live-only"

_KERNEL_DECIMALS = 4  # what the editor shows (and so what the maps are computed with)
_ERROR_STYLE = "color: #b00020; max-width: 40em; padding: 0.5em 0"


def kernel_explorer(
    image: torch.Tensor | np.ndarray,
    kernels: Mapping[str, torch.Tensor] | None = None,
    *,
    max_size: int = 256,
    image_format: str = "png",
    quality: int = 85,
) -> widgets.VBox:
    """Pick a 3x3 kernel and see the image filtered with it, beside the image.

    On the website the list of kernels switches between precomputed feature
    maps. In a running notebook the nine numbers under the map can also be
    edited, and the map is recomputed (an ``observe`` callback, so not on the
    website; the help text says so).

    Args:
        image: The picture, e.g. ``sample_image("camera")`` (any layout that
            :func:`~cnncourse.viz.kernels.as_image` accepts).
        kernels: Named 3x3 kernels; :func:`~cnncourse.viz.kernels.classic_kernels`
            by default. Values are rounded to 4 decimals, as the editor shows them.
        max_size: Pictures are shrunk (antialiased) so that their longer side is
            at most this many pixels, which keeps the page light.
        image_format: ``"png"`` (lossless) or ``"jpeg"``, which stores a photo
            and its feature maps in a quarter of the bytes or less: every map
            is embedded in the website's page.
        quality: JPEG quality (1 to 95), when ``image_format`` is ``"jpeg"``.

    Returns:
        The explorer's top widget (end a notebook cell with it to show it).

    Raises:
        TypeError: ``image`` is not a tensor or an array, or a kernel is not numbers.
        ValueError: ``image`` has a wrong shape, ``kernels`` is empty or holds a
            kernel that is not 3x3, ``max_size`` is below 8, ``image_format`` is
            neither ``"png"`` nor ``"jpeg"`` or ``quality`` is out of range.

    Example:
        >>> from cnncourse.data import sample_image
        >>> explorer = kernel_explorer(sample_image("camera"))  # doctest: +SKIP
    """
    if not (isinstance(max_size, int) and max_size >= 8):
        raise ValueError(f"max_size must be an int >= 8, got {max_size!r}")
    encode = _encoder(image_format, quality)
    picture = _shrink(as_image(image), max_size)
    kernels = _check_kernels(classic_kernels() if kernels is None else kernels)

    # One Layout (and style) model for all 9 x N cells, and one for the other widgets of
    # the states: hundreds fewer models in the page's widget state.
    cell_layout = widgets.Layout(width="5.2em")
    cell_style = DescriptionStyle(description_width="0px")
    grid_layout = widgets.Layout(grid_template_columns="repeat(3, 5.4em)", grid_gap="2px 2px")
    shared = dict(layout=widgets.Layout())
    html_style = HTMLStyle()
    pages = []
    for name, values in kernels.items():
        feature_map = png_widget(encode(apply_kernel(picture, _as_kernel(values))), **shared)
        cells = [widgets.FloatText(value=v, step=0.1, layout=cell_layout, style=cell_style) for v in values]
        recompute = _recompute_map(picture, cells, feature_map, encode)
        for cell in cells:
            cell.observe(recompute, names="value")
        pages.append(widgets.VBox([
            widgets.HTML("<b>feature map</b>", style=html_style, **shared),
            feature_map,
            widgets.HTML(f"kernel <i>{_escape(name)}</i>:", style=html_style, **shared),
            _live_only(widgets.GridBox(cells, layout=grid_layout)),
        ], **shared))
    stack = widgets.Stack(pages, selected_index=0)
    stack.add_class(STATES_CLASS)
    choice = widgets.Dropdown(options=list(kernels), index=0, description="kernel")
    widgets.jslink((choice, "index"), (stack, "selected_index"))

    original = widgets.VBox([widgets.HTML("<b>image</b>"), png_widget(encode(picture))],
                            layout=widgets.Layout(margin="0 1.5em 0 0"))
    return _explorer(
        [choice, widgets.HBox([original, stack])],
        KERNEL_EXPLORER_CLASS,
        "The feature map is the image filtered with the kernel: each pixel becomes the "
        "sum of its 3&times;3 neighbourhood weighted by the nine numbers (borders repeated, "
        "results clipped to the visible range 0&ndash;1). Choose a kernel from the list. "
        "<b>Editing the nine numbers works only in a running notebook</b> (Jupyter or Colab), "
        "where the map is recomputed; on the website the maps are precomputed, so there only "
        "the list changes the picture.",
    )


def conv_explorer(
    input_size: int | Pair = 7,
    *,
    kernel_sizes: Sequence[int] = (1, 2, 3, 4),
    strides: Sequence[int] = (1, 2, 3),
    paddings: Sequence[int] = (0, 1, 2),
    dilations: Sequence[int] = (1, 2),
    width: int = 640,
    dpi: float = 72,
    colors: int = 64,
) -> widgets.VBox:
    """Sliders for kernel size, stride, padding and dilation over a sliding-window picture.

    Every combination is precomputed (4 x 3 x 3 x 2 = 72 small PNGs by default,
    well under 1 MB), so the sliders work on the website too. Each state shows
    the output-size formula with its numbers, and the picture of the first
    window (:func:`~cnncourse.viz.sliding.draw_convolution`); a combination whose
    kernel does not fit shows why instead.

    Args:
        input_size: Height and width of the input (an int for a square).
        kernel_sizes, strides, paddings, dilations: The values each slider offers.
        width: Width of the pictures in pixels (all states share one scale).
        dpi: Resolution of the pictures (sets the size of their text).
        colors: Colours per picture (a PNG palette, 2 to 256): the diagrams have a
            handful of colours and their anti-aliased edges, so 32 still draws
            them faithfully, in less of the page.

    Returns:
        The explorer's top widget.

    Raises:
        TypeError: A size or an option is not an int.
        ValueError: An option is out of range or repeated, a list is empty,
            ``colors`` is out of range, or there are more than :data:`MAX_STATES`
            combinations.

    Example:
        >>> explorer = conv_explorer(7)  # doctest: +SKIP
    """
    size = to_pair(input_size, "input_size", minimum=1)
    options = {
        "kernel size": _options(kernel_sizes, "kernel_sizes", minimum=1),
        "stride": _options(strides, "strides", minimum=1),
        "padding": _options(paddings, "paddings", minimum=0),
        "dilation": _options(dilations, "dilations", minimum=1),
    }
    count = math.prod(len(v) for v in options.values())
    if count > MAX_STATES:
        raise ValueError(
            f"{count} combinations is more than {MAX_STATES}: every one is a picture in the page, "
            "so offer fewer kernel sizes, strides, paddings or dilations"
        )
    if not (isinstance(width, int) and width >= 100):
        raise ValueError(f"width must be an int >= 100 (pixels), got {width!r}")
    if isinstance(colors, bool) or not isinstance(colors, int) or not 2 <= colors <= 256:
        raise ValueError(f"colors must be an int from 2 to 256, got {colors!r}")

    geometries = {}
    for combo in itertools.product(*options.values()):
        try:
            geometries[combo] = ConvGeometry.of(size, combo[0], stride=combo[1], padding=combo[2],
                                                dilation=combo[3])
        except ValueError as error:
            geometries[combo] = error
    # One scale for every picture: all are as many cells wide as the widest one, so a
    # cell keeps its size when a slider moves; each is only as tall as it needs.
    frames = {combo: frame_size(g, note_count(g, equation=False))
              for combo, g in geometries.items() if isinstance(g, ConvGeometry)}
    cells_wide = max((f[0] for f in frames.values()), default=1.0)
    figure = Figure(dpi=dpi)
    # Every state's widgets share one Layout and one style model: dozens fewer models in the page.
    shared = dict(layout=widgets.Layout())
    html_style = HTMLStyle()

    def state(combo: tuple[int, ...]) -> widgets.Widget:
        geometry = geometries[combo]
        formula = _formula_html(size, *combo)
        if isinstance(geometry, ValueError):
            message = f"{formula}<div style='{_ERROR_STYLE}'>No output: {_escape(str(geometry))}.</div>"
            return widgets.HTML(message, style=html_style, **shared)
        frame = (cells_wide, frames[combo][1])
        figure.clear()
        figure.set_size_inches(width / dpi, width / dpi * frame[1] / frame[0])
        draw_on(figure.add_axes((0, 0, 1, 1)), geometry, position=(0, 0), frame=frame)
        return widgets.VBox([widgets.HTML(formula, style=html_style, **shared),
                             png_widget(figure_to_png(figure, colors=colors), **shared)], **shared)

    initial = {"kernel size": 3, "stride": 1, "padding": 0, "dilation": 1}
    sliders = [
        widgets.SelectionSlider(
            options=[(str(v), v) for v in values], value=initial[name] if initial[name] in values else values[0],
            description=name, continuous_update=True, style={"description_width": "6.5em"},
        )
        for name, values in options.items()
    ]
    stack = _nested_stacks([s.index for s in sliders], [len(v) for v in options.values()],
                           lambda index: state(tuple(v[i] for v, i in zip(options.values(), index))), sliders)
    return _explorer(
        [widgets.VBox(sliders), stack],
        CONV_EXPLORER_CLASS,
        "The picture shows the input (padding in grey), the cells the kernel touches for the "
        "first output pixel (blue; a dashed frame is the span of a dilated kernel) and that output "
        "pixel (orange). Hatched input pixels are never used by any window: the division in the "
        "formula rounds down. Every combination is precomputed, so the sliders work on the website "
        "as well as in a notebook.",
    )


# --- helpers -------------------------------------------------------------------------


def _nested_stacks(
    initial: Sequence[int],
    counts: Sequence[int],
    leaf: Callable[[tuple[int, ...]], widgets.Widget],
    controls: Sequence[widgets.Widget],
) -> widgets.Stack:
    """Stacks nested one level per control, the leaves built by ``leaf(indices)``.

    Control ``k`` is ``jslink``-ed from its ``index`` to the ``selected_index`` of
    every stack at depth ``k``, so the browser alone picks the leaf. The top stack
    carries ``STATES_CLASS``, by which the site tests find the states.
    """
    levels: list[list[widgets.Stack]] = [[] for _ in counts]
    layout = widgets.Layout()  # shared: one model for every stack

    def build(prefix: tuple[int, ...]) -> widgets.Widget:
        depth = len(prefix)
        if depth == len(counts):
            return leaf(prefix)
        stack = widgets.Stack([build(prefix + (i,)) for i in range(counts[depth])],
                              selected_index=initial[depth], layout=layout)
        levels[depth].append(stack)
        return stack

    top = build(())
    for control, stacks in zip(controls, levels):
        for stack in stacks:
            widgets.jslink((control, "index"), (stack, "selected_index"))
    top.add_class(STATES_CLASS)
    return top


def _explorer(rows: Sequence[widgets.Widget], css_class: str, help_html: str) -> widgets.VBox:
    """Assemble an explorer: its rows, then a short help text, in a box tagged ``css_class``."""
    help_text = widgets.HTML(f"<small>{help_html}</small>", layout=widgets.Layout(max_width="46em"))
    explorer = widgets.VBox([*rows, help_text])
    explorer.add_class(css_class)
    return explorer


def _live_only(widget: widgets.DOMWidget) -> widgets.DOMWidget:
    widget.add_class(LIVE_ONLY_CLASS)
    return widget


def _recompute_map(
    picture: torch.Tensor,
    cells: list[widgets.FloatText],
    target: widgets.Image,
    encode: Callable[[torch.Tensor], bytes] = array_to_png,
):
    """The live-only callback of the kernel editor: refilter with the nine current values."""

    def recompute(change: dict) -> None:
        target.value = encode(apply_kernel(picture, _as_kernel([cell.value for cell in cells])))

    return recompute


def _encoder(image_format: str, quality: int) -> Callable[[torch.Tensor], bytes]:
    """The function that turns a picture in [0, 1] into the bytes of its ``image_format`` file."""
    if image_format == "png":
        return array_to_png
    if image_format == "jpeg":
        if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 95:
            raise ValueError(f"quality must be an int from 1 to 95, got {quality!r}")
        return lambda picture: array_to_jpeg(picture, quality=quality)
    raise ValueError(f"image_format must be 'png' or 'jpeg', got {image_format!r}")


def _as_kernel(values: Sequence[float]) -> torch.Tensor:
    """Nine numbers, as the editor holds them, to the 3x3 kernel the map is computed with."""
    return torch.tensor(values, dtype=torch.float32).view(3, 3)


def _check_kernels(kernels: Mapping[str, torch.Tensor]) -> dict[str, list[float]]:
    """Each kernel's nine values in reading order, rounded as the editor shows them."""
    if not isinstance(kernels, Mapping) or not kernels:
        raise ValueError("kernels must be a non-empty dict of named 3x3 kernels, e.g. classic_kernels()")
    checked = {}
    for name, kernel in kernels.items():
        try:
            tensor = torch.as_tensor(kernel, dtype=torch.float32)
        except (TypeError, ValueError) as error:
            raise TypeError(f"kernel {name!r} is not numbers: {error}") from None
        if tensor.shape != (3, 3):
            raise ValueError(
                f"kernel {name!r} has shape {tuple(tensor.shape)}: the explorer's editor holds 3x3 kernels"
            )
        checked[str(name)] = [round(v, _KERNEL_DECIMALS) for v in tensor.flatten().tolist()]
    return checked


def _shrink(picture: torch.Tensor, max_size: int) -> torch.Tensor:
    height, width = picture.shape[1:]
    if max(height, width) <= max_size:
        return picture
    scale = max_size / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return F.interpolate(picture[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1)


def _options(values: Sequence[int], name: str, *, minimum: int) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a sequence of ints, e.g. {name}=(1, 2, 3), got {values!r}")
    values = tuple(values)
    if not values:
        raise ValueError(f"{name} is empty: give at least one value")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must hold ints, got {v!r}")
        if v < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {v}")
    if len(set(values)) != len(values):
        raise ValueError(f"{name} repeats a value: {values}")
    return tuple(int(v) for v in values)


def _formula_html(size: Pair, k: int, s: int, p: int, d: int) -> str:
    """The output-size formula with this state's numbers, one line per distinct dimension."""
    general = ("output = &lfloor;(<i>n</i> + 2<i>p</i> &minus; <i>d</i>(<i>k</i> &minus; 1) &minus; 1) "
               "/ <i>s</i>&rfloor; + 1")
    lines = []
    for dim, n in (("height", size[0]), ("width", size[1])) if size[0] != size[1] else (("", size[0]),):
        out = (n + 2 * p - d * (k - 1) - 1) // s + 1
        numbers = (f"&lfloor;({n} + 2&middot;{p} &minus; {d}&middot;({k} &minus; 1) &minus; 1) / {s}&rfloor; + 1 "
                   f"= <b>{out}</b>".replace("-", "&minus;"))
        lines.append(f"{dim + ': ' if dim else ''}{general} = {numbers}")
    return "<div class='cnncourse-formula'>" + "<br>".join(lines) + "</div>"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
