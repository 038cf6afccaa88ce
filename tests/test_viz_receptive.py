"""cnncourse.viz.receptive: the receptive field explorer's states match ReceptiveField.region.

On the website the precomputed states are all a reader sees, so each one is
checked against the table that :func:`cnncourse.receptive_field` computes.
"""

from __future__ import annotations

import itertools
import re

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgb
from torch import nn

from cnncourse import receptive_field
from cnncourse.arithmetic import Region
from cnncourse.viz.explorers import MAX_STATES
from cnncourse.viz.receptive import _OUTPUT_FACE, _WINDOW_EDGE, _plan, receptive_field_explorer

try:  # tests/ may or may not be a package
    from .widget_helpers import decode, recording_jslinks, walk
except ImportError:
    from widget_helpers import decode, recording_jslinks, walk


def small_model() -> nn.Sequential:
    # Rows: input, conv (r 3), pool (r 4, stride 2), strided conv (r 8, stride 4), padded conv (r 16).
    return nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2, 2, 3, stride=2), nn.Conv2d(2, 2, 3, padding=1),
    )


IMAGE = torch.rand(1, 20, 26)  # not square, so that rows and columns cannot be swapped unnoticed
LAYERS = [1, "2", 4]  # an index, a name, and the last row (the only one with padding at depth)
POSITIONS = 3


@pytest.fixture(scope="module")
def explorer_and_links():
    with recording_jslinks() as links:
        explorer = receptive_field_explorer(small_model(), IMAGE, layers=LAYERS, positions=POSITIONS, width=240)
    yield explorer, links
    plt.close("all")


def leaves(explorer: widgets.VBox):
    """(layer, row, column) indices and the leaf widget, in the order the stacks nest them."""
    top = only_top_stack(explorer)
    for index in itertools.product(range(len(LAYERS)), range(POSITIONS), range(POSITIONS)):
        node = top
        for i in index:
            assert isinstance(node, widgets.Stack)
            node = node.children[i]
        yield index, node


def only_top_stack(explorer: widgets.VBox) -> widgets.Stack:
    stacks = [w for w in explorer.children if isinstance(w, widgets.Stack)]
    assert len(stacks) == 1
    return stacks[0]


def test_every_state_shows_the_region_of_receptive_field():
    rf = receptive_field(small_model(), (1, 20, 26))
    plan = _plan(rf, LAYERS, POSITIONS)
    assert [row.name for row in plan.rows] == ["0", "2", "4"]
    for (li, iy, ix), unit in plan.units.items():
        row = plan.rows[li]
        h, w = row.output_size
        assert unit.y == plan.ys[li][iy] and unit.x == plan.xs[li][ix]
        assert plan.ys[li] == [0, round((h - 1) / 2), h - 1] and plan.xs[li] == [0, round((w - 1) / 2), w - 1]
        assert unit.region == rf.region(unit.y, unit.x, layer=row.name)
        assert unit.window == rf.region(unit.y, unit.x, layer=row.name, clip=False)
        assert unit.center == rf.center(unit.y, unit.x, layer=row.name)


def test_captions_name_the_unit_and_its_pixels(explorer_and_links):
    explorer, _ = explorer_and_links
    rf = receptive_field(small_model(), (1, 20, 26))
    rows = [rf.row(layer) for layer in LAYERS]
    clipped = 0
    for (li, iy, ix), leaf in leaves(explorer):
        caption = " ".join(w.value for w in walk(leaf) if isinstance(w, widgets.HTML))
        y, x = map(int, re.search(r"unit \((\d+), (\d+)\)", caption).groups())
        h, w = rows[li].output_size
        assert (y, x) == ([0, round((h - 1) / 2), h - 1][iy], [0, round((w - 1) / 2), w - 1][ix])
        assert f"<b>{rows[li].name}</b>" in caption and f"of its {h}×{w} output" in caption
        region = rf.region(y, x, layer=rows[li].name)
        assert (f"rows {region.top}&ndash;{region.bottom - 1} and columns {region.left}&ndash;{region.right - 1}"
                in caption)
        if region.clipped:
            clipped += 1
            window = rf.region(y, x, layer=rows[li].name, clip=False)
            share = region.height * region.width / (window.height * window.width)
            assert f"only {share:.0%} of its window lies on the image" in caption
        else:
            assert "all inside the image" in caption
    assert clipped > 0  # the corner units of the padded layers reach into the padding


def test_controls_are_linked_to_every_stack_of_their_level(explorer_and_links):
    explorer, links = explorer_and_links
    choice = [w for w in walk(explorer) if isinstance(w, widgets.Dropdown)]
    sliders = [w for w in walk(explorer) if isinstance(w, widgets.SelectionSlider)]
    assert len(choice) == 1 and [s.description for s in sliders] == ["unit row", "unit column"]
    assert [label for label, _ in choice[0].options] == ["0 (Conv2d, 3×3)", "2 (MaxPool2d, 4×4)", "4 (Conv2d, 16×16)"]
    assert [label for label, _ in sliders[0].options] == ["0%", "50%", "100%"]
    controls = [choice[0], *sliders]
    levels, frontier = [], [only_top_stack(explorer)]
    for _ in controls:
        levels.append(frontier)
        frontier = [child for stack in frontier for child in stack.children]
    assert [len(level) for level in levels] == [1, 3, 9]
    assert all(source[1] == "index" and target[1] == "selected_index" for source, target in links)
    for control, level in zip(controls, levels):
        targets = [target[0] for source, target in links if source[0] is control]
        assert set(map(id, targets)) == set(map(id, level)) and len(targets) == len(level)
        assert {stack.selected_index for stack in level} == {control.index}
    assert choice[0].index == len(LAYERS) - 1 and sliders[0].index == sliders[1].index == 1  # last layer, centre


def test_pictures_share_one_size_and_keep_the_diagram_colours(explorer_and_links):
    explorer, _ = explorer_and_links
    images = [w for w in walk(explorer) if isinstance(w, widgets.Image)]
    assert len(images) == len(LAYERS) * POSITIONS**2
    assert len({id(image.layout) for image in images}) == 1  # one shared Layout model
    decoded = [decode(image.value, "RGB") for image in images]
    assert len({picture.shape for picture in decoded}) == 1
    for name in (_OUTPUT_FACE, _WINDOW_EDGE):  # the palette keeps them exact in every state
        colour = np.round(np.array(to_rgb(name)) * 255).astype(np.uint8)
        assert all((picture == colour).all(axis=-1).any() for picture in decoded), name
    assert sum(len(image.value) for image in images) < 300_000


def test_a_table_and_a_model_give_the_same_explorer():
    model = small_model()
    from_model = receptive_field_explorer(model, IMAGE, layers=[4], positions=2, width=200)
    from_table = receptive_field_explorer(receptive_field(model, (1, 20, 26)), IMAGE, layers=[4], positions=2,
                                          width=200)
    captions = [[w.value for w in walk(e) if isinstance(w, widgets.HTML)] for e in (from_model, from_table)]
    assert captions[0] == captions[1]


def test_default_layers_are_three_rows_ending_with_the_last():
    rf = receptive_field(small_model(), (1, 20, 26))
    assert [row.name for row in _plan(rf, None, 1).rows] == ["0", "2", "4"]  # rows 1, 2.5 and 4 of 1..4
    single = receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3)), (1, 8, 8))
    assert [row.name for row in _plan(single, None, 1).rows] == ["0"]  # the input row is never a default


def test_a_window_in_the_padding_alone_sees_nothing():
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=3))  # unit 0 sees rows -3 to -1: padding only
    explorer = receptive_field_explorer(model, torch.rand(1, 8, 8), layers=[1], positions=2, width=200)
    captions = [w.value for w in walk(explorer) if isinstance(w, widgets.HTML)]
    # The output is 12 x 12; units 0 and 11 see rows -3..-1 and 8..10: all four corners see padding only.
    assert sum("sees no pixel of the image" in c for c in captions) == 4


@pytest.mark.parametrize(
    "model, image, kwargs, error, match",
    [
        ("vgg", IMAGE, {}, TypeError, "nn.Module or a ReceptiveField"),
        (small_model(), IMAGE.tolist(), {}, TypeError, "torch.Tensor or a numpy array"),
        (small_model(), torch.rand(2, 1, 20, 26), {}, ValueError, "H x W, 1 x H x W or 3 x H x W"),
        (receptive_field(small_model(), (1, 16, 16)), IMAGE, {}, ValueError, "resize the image"),
        (small_model(), IMAGE, dict(layers=[]), ValueError, "layers is empty"),
        (small_model(), IMAGE, dict(layers="4"), TypeError, "list of row names"),
        (small_model(), IMAGE, dict(layers=[4, "4"]), ValueError, "repeats a row"),
        (small_model(), IMAGE, dict(layers=["nope"]), ValueError, "no row is named 'nope'"),
        (small_model(), IMAGE, dict(positions=0), ValueError, "positions must be >= 1"),
        (small_model(), IMAGE, dict(positions=2.5), TypeError, "positions must be an int"),
        (small_model(), IMAGE, dict(layers=[1, 2, 3, 4], positions=7), ValueError, f"more than {MAX_STATES}"),
        (small_model(), IMAGE, dict(width=10), ValueError, "width must be >= 100"),
        (small_model(), IMAGE, dict(colors=300), ValueError, "at most 256"),
        (small_model(), IMAGE, dict(colors=10), ValueError, "colors must be at least 11"),
        (small_model(), IMAGE, dict(colors=32.0), TypeError, "colors must be an int"),
        (small_model(), torch.rand(3, 20, 26), {}, ValueError, r"takes 1 channel\(s\) but the image has 3"),
        (small_model(), IMAGE, dict(dpi=0), ValueError, "dpi must be a positive number"),
    ],
)
def test_rejects_bad_input(model, image, kwargs, error, match):
    with pytest.raises(error, match=match):
        receptive_field_explorer(model, image, **kwargs)


def test_region_type_is_the_arithmetic_one():
    rf = receptive_field(small_model(), (1, 20, 26))
    unit = _plan(rf, [4], 1).units[0, 0, 0]
    assert isinstance(unit.region, Region) and (unit.window.height, unit.window.width) == rf.row("4").size


def test_states_share_their_layout_and_style_models(explorer_and_links):
    # Every state's caption, picture and box share a few Layout and style models: a
    # model per widget would add a sixth to the page's widget state.
    explorer, _ = explorer_and_links
    states = [leaf for _, leaf in leaves(explorer)]
    layouts = {id(w.layout) for leaf in states for w in walk(leaf)}
    styles = {id(w.style) for leaf in states for w in walk(leaf) if isinstance(w, widgets.HTML)}
    assert len(states) == len(LAYERS) * POSITIONS**2 and len(layouts) <= 2 and len(styles) == 1
