"""cnncourse.viz: pictures, animations and explorers, checked against direct computations.

The explorers' precomputed states are compared with what torch computes for the
same settings, since on the website those states are all a reader sees.
"""

from __future__ import annotations

import io
import itertools
import re

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.animation import FuncAnimation
from matplotlib.figure import Figure
from PIL import Image

import cnncourse.viz as viz
from cnncourse.viz import (
    apply_kernel,
    array_to_jpeg,
    array_to_png,
    classic_kernels,
    conv_explorer,
    draw_convolution,
    figure_to_jpeg,
    figure_to_png,
    jpeg_figure,
    kernel_explorer,
    offline_jshtml,
    png_widget,
    show_feature_maps,
    show_kernels,
    sliding_window_animation,
)
from cnncourse.viz._geometry import ConvGeometry
from cnncourse.viz.explorers import LIVE_ONLY_CLASS
from cnncourse.viz.sliding import MIN_FONT

try:  # tests/ may or may not be a package
    from .widget_helpers import decode, recording_jslinks, walk
except ImportError:
    from widget_helpers import decode, recording_jslinks, walk


def only(widget: widgets.Widget, kind: type) -> widgets.Widget:
    found = [w for w in walk(widget) if isinstance(w, kind)]
    assert len(found) == 1, f"expected one {kind.__name__}, found {len(found)}"
    return found[0]


def texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def direct_output_size(input_size: int, k: int, s: int, p: int, d: int) -> int | None:
    """The output side that torch gives, or None when torch refuses the combination."""
    try:
        out = F.conv2d(torch.zeros(1, 1, input_size, input_size), torch.zeros(1, 1, k, k),
                       stride=s, padding=p, dilation=d)
    except RuntimeError:
        return None
    return out.shape[-1]


# --- the sliding-window picture -------------------------------------------------------


def test_worked_example_3x3_input_2x2_kernel():
    values, kernel = torch.arange(9.0).view(3, 3), torch.arange(4.0).view(2, 2)
    fig = draw_convolution(3, 2, values=values, kernel=kernel)
    assert isinstance(fig, Figure)
    shown = texts(fig)
    for number in ("19", "25", "37", "43"):
        assert number in shown
    assert "19 = 0\u00b70 + 1\u00b71 + 3\u00b72 + 4\u00b73" in shown  # the dot product at (0, 0)
    assert "output 2\u00d72" in shown


def test_worked_example_5x5_input_3x3_kernel_matches_conv2d():
    values = torch.arange(25.0).view(5, 5)
    kernel = torch.tensor([[0.0, 1, 2], [2, 2, 0], [0, 1, 2]])
    expected = F.conv2d(values[None, None], kernel[None, None])[0, 0]
    shown = texts(draw_convolution(5, 3, values=values, kernel=kernel, position=(2, 2)))
    for value in expected.flatten().tolist():
        assert str(int(value)) in shown
    assert any(t.startswith(f"{int(expected[2, 2])} = ") for t in shown)


@pytest.mark.parametrize(
    "input_size, kernel_size, stride, padding, dilation",
    [(5, 3, 1, 0, 1), ((5, 4), (3, 2), (2, 1), (1, 0), (1, 2)), (7, 3, 2, 1, 2), (8, 3, 3, 0, 1), (6, 1, 2, 2, 1)],
)
def test_picture_sizes_follow_conv2d(input_size, kernel_size, stride, padding, dilation):
    size = input_size if isinstance(input_size, tuple) else (input_size, input_size)
    kernel = kernel_size if isinstance(kernel_size, tuple) else (kernel_size, kernel_size)
    out = F.conv2d(torch.zeros(1, 1, *size), torch.zeros(1, 1, *kernel), stride=stride, padding=padding,
                   dilation=dilation)
    fig = draw_convolution(input_size, kernel_size, stride=stride, padding=padding, dilation=dilation)
    assert f"output {out.shape[-2]}\u00d7{out.shape[-1]}" in texts(fig)


@pytest.mark.parametrize(
    "input_size, k, s, p, d",
    [(7, 3, 1, 0, 1), (8, 3, 3, 0, 1), (7, 2, 3, 0, 1), (7, 4, 2, 2, 2), (7, 3, 2, 1, 2), (5, 1, 2, 1, 1)],
)
def test_hatched_pixels_are_those_no_window_reaches(input_size, k, s, p, d):
    # Direct computation: a pixel is used iff the output depends on it (non-zero gradient).
    x = torch.zeros(1, 1, input_size, input_size, requires_grad=True)
    F.conv2d(x, torch.ones(1, 1, k, k), stride=s, padding=p, dilation=d).sum().backward()
    unused = int((x.grad == 0).sum())
    geometry = ConvGeometry.of(input_size, k, stride=s, padding=p, dilation=d)
    inside = geometry.covered()[p:p + input_size, p:p + input_size]
    np.testing.assert_array_equal(inside, x.grad[0, 0].numpy() != 0)
    notes = [t for t in texts(draw_convolution(input_size, k, stride=s, padding=p, dilation=d))
             if t.startswith("hatched")]
    if unused:
        assert notes == [f"hatched: {unused} input pixel{'s' if unused > 1 else ''} that no window reaches"]
    else:
        assert notes == []


def test_progressive_shows_the_outputs_so_far():
    values, kernel = torch.arange(16.0).view(4, 4), torch.ones(2, 2)
    outputs = F.conv2d(values[None, None], kernel[None, None])[0, 0]  # 3 x 3
    fig = draw_convolution(4, 2, values=values, kernel=kernel, position=(1, 0), progressive=True)
    shown = [t for t in texts(fig)]
    assert str(int(outputs[1, 0])) in shown
    assert str(int(outputs[2, 2])) not in shown  # not computed yet


def test_text_stays_legible_in_a_small_panel():
    # four 5x5 pictures in a 7-inch figure: the dot product wraps onto two lines
    # instead of shrinking, and no text is below MIN_FONT points
    values = torch.arange(25.0).view(5, 5) * 7
    kernel = torch.tensor([[0.0, 0, 1], [1, 0, 0], [0, 0, 1]])
    fig, axes = plt.subplots(2, 2, figsize=(7, 5.8))
    draw_convolution(5, 3, values=values, kernel=kernel, position=(2, 2), ax=axes[1, 1])
    sizes = [t.get_fontsize() for t in axes[1, 1].texts]
    assert min(sizes) >= MIN_FONT == 9
    value = int(F.conv2d(values[None, None], kernel[None, None])[0, 0, 2, 2])
    lines = [t.get_text() for t in axes[1, 1].texts if t.get_text().startswith((f"{value} = ", "    "))]
    assert len(lines) == 2 and lines[0].endswith(" +")
    window = values[2:5, 2:5].flatten().tolist()
    terms = [f"{int(x)}\u00b7{int(w)}" for x, w in zip(window, kernel.flatten().tolist())]
    assert (lines[0] + lines[1]).replace("    ", " ") == f"{value} = " + " + ".join(terms)
    plt.close(fig)


def test_draws_into_given_axes():
    fig, (left, right) = plt.subplots(1, 2)
    assert draw_convolution(4, 3, ax=right) is fig
    assert not left.texts and right.texts


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(input_size=4, kernel_size=5), ValueError, r"height: the kernel spans 5 pixels but the padded input has 4.*padding >= 1"),
        (dict(input_size=3, kernel_size=3, dilation=2), ValueError, r"spans 5 pixels.*padding >= 1"),
        (dict(input_size=5, kernel_size=3, position=(3, 0)), ValueError, r"outside the 3x3 output"),
        (dict(input_size=5, kernel_size=3, stride=0), ValueError, r"stride must be >= 1"),
        (dict(input_size=5, kernel_size=3, padding=-1), ValueError, r"padding must be >= 0"),
        (dict(input_size=5, kernel_size=1.5), TypeError, r"kernel_size must be an int or a pair"),
        (dict(input_size=5, kernel_size=3, stride=True), TypeError, r"stride must be an int"),
        (dict(input_size=3, kernel_size=2, values=torch.zeros(4, 4)), ValueError, r"values has shape \(4, 4\)"),
        (dict(input_size=3, kernel_size=2, kernel=[[1, 2, 3]]), ValueError, r"kernel has shape \(1, 3\)"),
        (dict(input_size=3, kernel_size=2, values=[["a", "b"]]), TypeError, r"values must be numbers"),
    ],
)
def test_draw_convolution_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        draw_convolution(**kwargs)


# --- the animation ---------------------------------------------------------------------


@pytest.mark.parametrize("input_size, k, s, p, d", [(3, 2, 1, 0, 1), (5, 3, 1, 1, 1), (7, 3, 2, 0, 2)])
def test_animation_has_one_frame_per_output_cell(input_size, k, s, p, d):
    figures = plt.get_fignums()
    anim = sliding_window_animation(input_size, k, stride=s, padding=p, dilation=d)
    out = direct_output_size(input_size, k, s, p, d)
    assert isinstance(anim, FuncAnimation)
    assert len(list(anim.new_frame_seq())) == out * out
    assert plt.get_fignums() == figures  # not a pyplot figure: a notebook shows only the player
    anim._draw_was_started = True  # not rendered on purpose: no "deleted without rendering" warning


def test_animation_html_works_offline():
    values, kernel = torch.arange(9.0).view(3, 3), torch.arange(4.0).view(2, 2)
    html = sliding_window_animation(3, 2, values=values, kernel=kernel).to_jshtml()
    assert "font-awesome" not in html and "https://" not in html and "http://" not in html
    assert len(re.findall(r"frames\[\d+\] = ", html)) == 4
    assert re.search(r'<img id="_anim_img[0-9a-f]+" src="data:image/png;base64,', html)
    assert 'class="fa' not in html


def test_offline_jshtml_fixes_a_plain_matplotlib_animation():
    fig = Figure(figsize=(1, 1), dpi=20)
    ax = fig.add_subplot()
    html = FuncAnimation(fig, lambda i: ax.set_title(str(i)), frames=3).to_jshtml()
    assert "maxcdn" in html  # what matplotlib does by itself
    fixed = offline_jshtml(html)
    assert "maxcdn" not in fixed and fixed.count("aria-hidden") == 9


def test_animation_image_says_what_it_shows():
    html = sliding_window_animation(5, 3, stride=2, padding=1).to_jshtml()
    alt = re.search(r'<img id="_anim_img[0-9a-f]+" src="[^"]*" alt="([^"]*)"', html).group(1)
    assert "5\u00d75 input" in alt and "stride 2" in alt and "9 output cells" in alt


def test_offline_jshtml_rejects_other_html():
    with pytest.raises(ValueError, match="not the HTML"):
        offline_jshtml("<p>hello</p>")


# --- PNG helpers --------------------------------------------------------------------


def test_figure_to_png_has_the_figure_size():
    fig = Figure(figsize=(2, 1), dpi=50)
    fig.add_subplot().plot([0, 1])
    png = figure_to_png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(io.BytesIO(png)).size == (100, 50)
    assert Image.open(io.BytesIO(png)).mode == "P"  # a palette
    assert Image.open(io.BytesIO(figure_to_png(fig, colors=None))).mode == "RGB"


def test_array_to_png_round_trips():
    gray = torch.rand(5, 7)
    np.testing.assert_array_equal(decode(array_to_png(gray)), np.round(gray.numpy() * 255).astype(np.uint8))
    rgb = torch.rand(3, 4, 6)
    assert decode(array_to_png(rgb)).shape == (4, 6, 3)
    assert decode(array_to_png(np.zeros((4, 6, 3), np.uint8))).shape == (4, 6, 3)


@pytest.mark.parametrize("bad", [torch.zeros(2, 4, 4), torch.zeros(4), torch.zeros(1, 1, 4, 4)])
def test_array_to_png_rejects_bad_shapes(bad):
    with pytest.raises(ValueError, match="expected an H x W"):
        array_to_png(bad)


def test_png_widget():
    image = png_widget(array_to_png(torch.zeros(4, 4)), width=40)
    assert isinstance(image, widgets.Image) and image.format == "png" and image.width == "40"
    with pytest.raises(ValueError, match="PNG"):
        png_widget(b"GIF89a")


# --- galleries -------------------------------------------------------------------------


def test_show_feature_maps():
    fig = show_feature_maps(torch.randn(1, 10, 8, 8), ncols=4)
    assert len(fig.axes) == 10
    assert [ax.get_title() for ax in fig.axes][:2] == ["0", "1"]
    image = fig.axes[3].images[0]
    assert image.get_clim()[0] == -image.get_clim()[1]  # centred on zero


@pytest.mark.parametrize(
    "maps, kwargs, error, match",
    [
        (torch.zeros(8, 8), {}, ValueError, "C x H x W"),
        (torch.zeros(2, 3, 8, 8), {}, ValueError, "pick one image"),
        (torch.zeros(3, 8, 8), dict(titles=["a"]), ValueError, "1 titles for 3"),
        (torch.zeros(3, 8, 8), dict(ncols=0), ValueError, "ncols"),
        ([[0.0]], {}, TypeError, "torch.Tensor or a numpy array"),
    ],
)
def test_show_feature_maps_rejects_bad_input(maps, kwargs, error, match):
    with pytest.raises(error, match=match):
        show_feature_maps(maps, **kwargs)


def test_show_kernels_of_rgb_layer_in_colour():
    weight = torch.nn.Conv2d(3, 16, 5).weight
    fig = show_kernels(weight)
    assert len(fig.axes) == 16
    assert fig.axes[0].images[0].get_array().shape == (5, 5, 3)


def test_show_kernels_from_a_dict_with_numbers():
    kernels = classic_kernels()
    fig = show_kernels(kernels, ncols=4)
    assert [ax.get_title() for ax in fig.axes] == list(kernels)
    assert len(fig.axes[0].texts) == 9  # annotated: small kernels, few of them
    assert show_kernels(torch.nn.Conv2d(8, 4, 3).weight, in_channel=2).axes[0].images[0].get_array().shape == (3, 3)


@pytest.mark.parametrize(
    "weight, kwargs, match",
    [
        (torch.zeros(4, 8, 3, 3), {}, "in_channel=0 ... 7"),
        (torch.zeros(4, 8, 3, 3), dict(in_channel=8), "between 0 and 7"),
        (torch.zeros(4, 3, 3), dict(in_channel=0), "only applies to a 4-D weight"),
        (torch.zeros(3), {}, "C_out x C_in x kH x kW"),
        ({}, {}, "empty dict"),
        ({"a": torch.zeros(3, 3), "b": torch.zeros(5, 5)}, {}, "of one shape"),
    ],
)
def test_show_kernels_rejects_bad_input(weight, kwargs, match):
    with pytest.raises(ValueError, match=match):
        show_kernels(weight, **kwargs)


# --- kernels ---------------------------------------------------------------------------


def test_classic_kernels():
    kernels = classic_kernels()
    assert list(kernels) == ["identity", "outline", "Sobel left", "Sobel right", "Sobel top", "Sobel bottom",
                             "box blur", "Gaussian blur", "sharpen", "emboss", "lighten", "darken"]
    assert all(k.shape == (3, 3) and k.dtype == torch.float32 for k in kernels.values())
    torch.testing.assert_close(kernels["box blur"].sum(), torch.tensor(1.0))
    torch.testing.assert_close(kernels["Gaussian blur"].sum(), torch.tensor(1.0))
    assert kernels["lighten"][1, 1] == 1.5 and kernels["darken"][1, 1] == 0.5
    torch.testing.assert_close(kernels["Sobel right"], -kernels["Sobel left"])
    kernels["identity"][1, 1] = 7  # a fresh copy each call
    assert classic_kernels()["identity"][1, 1] == 1


@pytest.mark.parametrize("name", list(classic_kernels()))
def test_apply_kernel_is_conv2d_with_repeated_borders(name):
    kernel = classic_kernels()[name]
    image = torch.rand(3, 9, 11)
    expected = F.conv2d(F.pad(image[:, None], (1, 1, 1, 1), mode="replicate"), kernel[None, None])[:, 0]
    torch.testing.assert_close(apply_kernel(image, kernel, clip=False), expected)
    torch.testing.assert_close(apply_kernel(image, kernel), expected.clamp(0, 1))


def test_apply_kernel_accepts_numpy_layouts_and_rejects_bad_input():
    picture = np.random.default_rng(0).random((6, 5, 3))  # H x W x 3
    assert apply_kernel(picture, classic_kernels()["identity"]).shape == (3, 6, 5)
    with pytest.raises(ValueError, match="odd sides"):
        apply_kernel(torch.rand(1, 8, 8), torch.ones(2, 2))
    with pytest.raises(ValueError, match="H x W, 1 x H x W or 3 x H x W"):
        apply_kernel(torch.rand(2, 8, 8), torch.ones(3, 3))
    with pytest.raises(TypeError, match="torch.Tensor or a numpy array"):
        apply_kernel([[0.0] * 4] * 4, torch.ones(3, 3))


def test_jpeg_helpers():
    fig = Figure(figsize=(2, 1), dpi=50)
    ax = fig.add_subplot()
    ax.imshow(np.random.default_rng(0).random((8, 8)))
    ax.axis("off")
    jpeg = figure_to_jpeg(fig, quality=80)
    width, height = Image.open(io.BytesIO(jpeg)).size
    assert jpeg[:3] == b"\xff\xd8\xff" and width <= 100 and height <= 50  # cropped, never wider
    gray = torch.linspace(0, 1, 64).view(8, 8)
    shown = np.asarray(Image.open(io.BytesIO(array_to_jpeg(gray, quality=95))), dtype=float)
    assert np.abs(shown - gray.numpy() * 255).max() < 8  # lossy, but close
    assert Image.open(io.BytesIO(array_to_jpeg(torch.rand(3, 6, 4)))).size == (4, 6)
    widget = png_widget(array_to_jpeg(gray))
    assert widget.format == "jpeg"
    with pytest.raises(ValueError, match="quality"):
        array_to_jpeg(gray, quality=0)


def test_jpeg_figure_shows_a_jpeg_and_closes_the_figure():
    fig, ax = plt.subplots(figsize=(2, 1))
    ax.imshow(np.zeros((4, 4)))
    image = jpeg_figure(fig)
    assert image.format == "jpeg" and image.data[:2] == b"\xff\xd8"
    assert fig.number not in plt.get_fignums()


def test_png_figure_is_a_palette_png_and_closes_the_figure():
    fig = draw_convolution(5, 3, values=torch.arange(25.0).view(5, 5), kernel=torch.ones(3, 3))
    full = io.BytesIO()
    fig.savefig(full, format="png", bbox_inches="tight", pad_inches=0.1)
    image = viz.png_figure(fig, colors=32)
    assert image.format == "png" and fig.number not in plt.get_fignums()
    shown = Image.open(io.BytesIO(image.data))
    assert shown.mode == "P" and len(shown.getcolors()) <= 32
    assert shown.size == Image.open(full).size  # cropped as Jupyter crops
    assert len(image.data) < 0.6 * len(full.getvalue())
    with pytest.raises(ValueError, match="colors"):
        viz.png_figure(Figure(), colors=1)


def test_galleries_use_legible_fonts():
    fig = show_kernels(classic_kernels(), ncols=4, size=1.4)
    sizes = [t.get_fontsize() for ax in fig.axes for t in [ax.title, *ax.texts] if t.get_text()]
    assert sizes and min(sizes) >= 9
    assert all(ax.texts for ax in fig.axes)  # 3x3 kernels in cells of 33 points: annotated
    small = show_kernels(torch.randn(8, 1, 5, 5), ncols=8)  # cells of 11 points: no numbers
    assert not any(ax.texts for ax in small.axes)
    maps = show_feature_maps(torch.randn(4, 6, 6), ncols=4)
    assert min(ax.title.get_fontsize() for ax in maps.axes) >= 9
    plt.close("all")


# --- the kernel explorer ---------------------------------------------------------------


@pytest.fixture
def recorded_links():
    """Record every jslink an explorer makes (as (source, target) pairs) and still make it."""
    with recording_jslinks() as links:
        yield links


def test_kernel_explorer_states_match_direct_computation(recorded_links):
    picture = torch.rand(1, 20, 24)
    kernels = classic_kernels()
    explorer = kernel_explorer(picture)
    assert isinstance(explorer, widgets.VBox)
    choice, stack = only(explorer, widgets.Dropdown), only(explorer, widgets.Stack)
    assert list(choice.options) == list(kernels)
    assert len(stack.children) == len(kernels) and stack.selected_index == choice.index == 0
    assert recorded_links == [((choice, "index"), (stack, "selected_index"))]
    for page, (name, kernel) in zip(stack.children, kernels.items()):
        cells = [w for w in walk(page) if isinstance(w, widgets.FloatText)]
        assert [c.value for c in cells] == pytest.approx(kernel.flatten().tolist(), abs=1e-4)
        direct = F.conv2d(F.pad(picture[None], (1, 1, 1, 1), mode="replicate"),
                          torch.tensor([c.value for c in cells]).view(1, 1, 3, 3))[0, 0].clamp(0, 1)
        shown = decode(only(page, widgets.Image).value).astype(int)
        expected = np.round(direct.numpy() * 255).astype(int)
        assert np.abs(shown - expected).max() <= 1, name


def test_kernel_explorer_editor_recomputes_the_map_live():
    picture = torch.rand(1, 12, 12)
    explorer = kernel_explorer(picture, {"blur": torch.full((3, 3), 1 / 9)})
    page = only(explorer, widgets.Stack).children[0]
    cells = [w for w in walk(page) if isinstance(w, widgets.FloatText)]
    for cell, value in zip(cells, [0, 0, 0, 0, 1, 0, 0, 0, 0]):
        cell.value = value  # what a reader typing in Jupyter does
    np.testing.assert_array_equal(decode(only(page, widgets.Image).value),
                                  np.round(picture[0].numpy() * 255).astype(np.uint8))


def test_kernel_explorer_says_the_editor_needs_a_kernel():
    explorer = kernel_explorer(torch.rand(1, 8, 8))
    help_text = " ".join(w.value for w in walk(explorer) if isinstance(w, widgets.HTML))
    assert "only in a running notebook" in help_text and "website" in help_text


def test_kernel_explorer_marks_its_editor_as_live_only():
    # the website makes these boxes read-only (_static/cnncourse.js): no kernel runs there
    explorer = kernel_explorer(torch.rand(1, 8, 8), {"a": torch.eye(3), "b": torch.ones(3, 3)})
    grids = [w for w in walk(explorer) if isinstance(w, widgets.GridBox)]
    assert len(grids) == 2 and all(LIVE_ONLY_CLASS in g._dom_classes for g in grids)
    assert all(isinstance(c, widgets.FloatText) for g in grids for c in g.children)


def test_kernel_explorer_can_store_jpeg_states():
    picture = torch.linspace(0, 1, 24 * 20).view(1, 20, 24)
    kernels = {"identity": classic_kernels()["identity"], "blur": classic_kernels()["box blur"]}
    explorer = kernel_explorer(picture, kernels, image_format="jpeg", quality=90)
    images = [w for w in walk(explorer) if isinstance(w, widgets.Image)]
    assert len(images) == 3 and {i.format for i in images} == {"jpeg"}
    stack = only(explorer, widgets.Stack)
    for page, kernel in zip(stack.children, kernels.values()):
        expected = apply_kernel(picture, kernel)[0].numpy() * 255
        assert np.abs(decode(only(page, widgets.Image).value).astype(float) - expected).mean() < 3
    # the live editor keeps the format
    cells = [w for w in walk(stack.children[0]) if isinstance(w, widgets.FloatText)]
    cells[4].value = 0.5
    assert only(stack.children[0], widgets.Image).value[:2] == b"\xff\xd8"
    with pytest.raises(ValueError, match="image_format"):
        kernel_explorer(picture, kernels, image_format="gif")


def test_kernel_explorer_shrinks_large_pictures():
    explorer = kernel_explorer(torch.rand(3, 300, 600), {"id": classic_kernels()["identity"]}, max_size=128)
    sizes = {decode(w.value).shape for w in walk(explorer) if isinstance(w, widgets.Image)}
    assert sizes == {(64, 128, 3)}


@pytest.mark.parametrize(
    "image, kernels, kwargs, error, match",
    [
        (torch.rand(1, 8, 8), {"big": torch.ones(5, 5)}, {}, ValueError, "holds 3x3 kernels"),
        (torch.rand(1, 8, 8), {}, {}, ValueError, "non-empty dict"),
        (torch.rand(1, 8, 8), {"x": [["a"] * 3] * 3}, {}, TypeError, "not numbers"),
        (torch.rand(1, 1, 8, 8), None, {}, ValueError, "H x W, 1 x H x W or 3 x H x W"),
        ([[0.5] * 8] * 8, None, {}, TypeError, "torch.Tensor or a numpy array"),
        (torch.rand(1, 8, 8), None, dict(max_size=4), ValueError, "max_size"),
    ],
)
def test_kernel_explorer_rejects_bad_input(image, kernels, kwargs, error, match):
    with pytest.raises(error, match=match):
        kernel_explorer(image, kernels, **kwargs)


# --- the convolution explorer ----------------------------------------------------------

SMALL = dict(kernel_sizes=(1, 2, 3, 4), strides=(1, 2), paddings=(0, 1), dilations=(1, 2))


@pytest.fixture(scope="module")
def small_explorer():
    """A 3x3 input, where some kernels do not fit: 32 states."""
    with recording_jslinks() as links:
        explorer = conv_explorer(3, width=300, **SMALL)
    yield explorer, links
    plt.close("all")


def _leaf(stack: widgets.Stack, indices: tuple[int, ...]) -> widgets.Widget:
    node = stack
    for i in indices:
        assert isinstance(node, widgets.Stack) and len(node.children) > i
        node = node.children[i]
    return node


def test_conv_explorer_controls_and_links(small_explorer):
    explorer, links = small_explorer
    sliders = [w for w in walk(explorer) if isinstance(w, widgets.SelectionSlider)]
    assert [s.description for s in sliders] == ["kernel size", "stride", "padding", "dilation"]
    assert [[label for label, _ in s.options] for s in sliders] == [["1", "2", "3", "4"], ["1", "2"], ["0", "1"],
                                                                    ["1", "2"]]
    assert [s.value for s in sliders] == [3, 1, 0, 1]
    top = [w for w in explorer.children if isinstance(w, widgets.Stack)][0]
    # Stacks by depth: 1, 4, 4 * 2, 4 * 2 * 2; each slider is linked to every stack of its depth.
    levels, frontier = [], [top]
    for _ in sliders:
        levels.append(frontier)
        frontier = [child for stack in frontier for child in stack.children]
    assert [len(level) for level in levels] == [1, 4, 8, 16]
    for slider, level in zip(sliders, levels):
        targets = [target[0] for source, target in links if source[0] is slider]
        assert all(source[1] == "index" and target[1] == "selected_index" for source, target in links)
        assert set(map(id, targets)) == set(map(id, level)) and len(targets) == len(level)
        assert {stack.selected_index for stack in level} == {slider.index}


def test_conv_explorer_states_match_conv2d(small_explorer):
    explorer, _ = small_explorer
    top = [w for w in explorer.children if isinstance(w, widgets.Stack)][0]
    sizes, errors = set(), 0
    for index in itertools.product(*(range(len(v)) for v in SMALL.values())):
        k, s, p, d = (v[i] for v, i in zip(SMALL.values(), index))
        leaf = _leaf(top, index)
        out = direct_output_size(3, k, s, p, d)
        html = " ".join(w.value for w in walk(leaf) if isinstance(w, widgets.HTML))
        assert f"({3} + 2&middot;{p} &minus; {d}&middot;({k} &minus; 1) &minus; 1) / {s}" in html
        if out is None:  # torch refuses: the state explains instead of crashing
            errors += 1
            assert "No output" in html and "use padding &gt;=" in html
            assert not [w for w in walk(leaf) if isinstance(w, widgets.Image)]
        else:
            assert f"= <b>{out}</b>" in html
            sizes.add(decode(only(leaf, widgets.Image).value).shape[1])
    # Kernel 4 without padding, kernel 4 with dilation 2 (spans 7 > 5), kernel 3 with
    # dilation 2 without padding: 4 combinations, for each of the 2 strides.
    assert errors == 8
    assert sizes == {300}  # every picture has the same width, so the same scale


def test_conv_explorer_pictures_keep_to_their_palette():
    explorer = conv_explorer(5, kernel_sizes=(3,), strides=(1, 2), paddings=(0,), dilations=(1,), colors=32)
    images = [Image.open(io.BytesIO(w.value)) for w in walk(explorer) if isinstance(w, widgets.Image)]
    assert len(images) == 2 and all(i.mode == "P" and len(i.getcolors()) <= 32 for i in images)


def test_conv_explorer_default_is_light():
    explorer = conv_explorer()
    images = [w for w in walk(explorer) if isinstance(w, widgets.Image)]
    assert len(images) == 4 * 3 * 3 * 2  # every combination fits in a 7x7 input
    assert sum(len(i.value) for i in images) < 1_000_000


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(kernel_sizes=range(1, 10), strides=range(1, 10), paddings=(0, 1, 2)), ValueError, "more than 160"),
        (dict(strides=()), ValueError, "strides is empty"),
        (dict(paddings=(0, -1)), ValueError, "paddings must be >= 0"),
        (dict(dilations=(1, 1)), ValueError, "repeats"),
        (dict(kernel_sizes=(1.5,)), TypeError, "kernel_sizes must hold ints"),
        (dict(kernel_sizes=3), TypeError, "sequence of ints"),
        (dict(input_size=0), ValueError, "input_size must be >= 1"),
        (dict(width=10), ValueError, "width"),
        (dict(colors=1), ValueError, "colors"),
    ],
)
def test_conv_explorer_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        conv_explorer(**kwargs)


def test_public_api():
    assert set(viz.__all__) >= {"draw_convolution", "sliding_window_animation", "show_feature_maps", "show_kernels",
                                "kernel_explorer", "conv_explorer", "figure_to_png", "png_widget"}
