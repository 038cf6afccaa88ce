"""cnncourse.viz.segmentation: the palette, the strips, and every precomputed state of the explorer."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import pytest
import torch

from cnncourse.viz.explorers import MAX_STATES, STATES_CLASS
from cnncourse.viz.segmentation import (
    SEGMENTATION_EXPLORER_CLASS,
    class_colours,
    colour_labels,
    legend_handles,
    segmentation_explorer,
    segmentation_strip,
)

try:  # tests/ may or may not be a package
    from .widget_helpers import decode, recording_jslinks, walk
except ImportError:
    from widget_helpers import decode, recording_jslinks, walk

CLASSES = ["background", "shirt", "bag", "boot"]
generator = torch.Generator().manual_seed(0)
IMAGES = torch.rand(3, 1, 10, 12, generator=generator)  # not square
TRUTH = torch.randint(0, 4, (3, 10, 12), generator=generator)
GUESS = torch.randint(0, 4, (3, 10, 12), generator=generator)


def test_palette_is_fixed_and_background_is_white():
    colours = class_colours(11)
    assert colours.shape == (11, 3) and colours[0].tolist() == [1.0, 1.0, 1.0]
    assert len({tuple(c) for c in colours}) == 11  # every class its own colour
    assert class_colours(15).shape == (15, 3)
    with pytest.raises(ValueError, match="not enough"):
        class_colours(40)
    painted = colour_labels(torch.tensor([[0, 3], [1, 0]]), 4)
    np.testing.assert_array_equal(painted[0, 1], class_colours(4)[3])
    with pytest.raises(ValueError, match="outside 0..3"):
        colour_labels(torch.tensor([[4]]), 4)
    assert [h.get_label() for h in legend_handles(CLASSES)] == CLASSES


def test_strip_puts_the_panels_side_by_side():
    strip = segmentation_strip(IMAGES[0], [TRUTH[0], GUESS[0]], num_classes=4, scale=2)
    assert strip.shape == (20, 3 * 24 + 2 * 2, 3)
    np.testing.assert_allclose(strip[::2, :24:2, 0], 1 - IMAGES[0, 0].numpy(), atol=1e-6)  # dark on light
    np.testing.assert_array_equal(strip[::2, 26:50:2], colour_labels(TRUTH[0], 4))
    np.testing.assert_array_equal(strip[::2, 52::2], colour_labels(GUESS[0], 4))
    with pytest.raises(ValueError, match="beside an image"):
        segmentation_strip(IMAGES[0], [TRUTH[0, :5]], num_classes=4)


@pytest.fixture(scope="module")
def explorer_and_links():
    with recording_jslinks() as links:
        explorer = segmentation_explorer(IMAGES, TRUTH, {"guess": GUESS, "perfect": TRUTH}, classes=CLASSES, scale=2)
    return explorer, links


def test_explorer_layout_and_links(explorer_and_links):
    explorer, links = explorer_and_links
    assert SEGMENTATION_EXPLORER_CLASS in explorer._dom_classes
    dropdown = next(w for w in walk(explorer) if isinstance(w, widgets.Dropdown))
    assert [label for label, _ in dropdown.options] == ["canvas 0", "canvas 1", "canvas 2"]
    stack = next(w for w in walk(explorer) if isinstance(w, widgets.Stack) and STATES_CLASS in w._dom_classes)
    assert links == [((dropdown, "index"), (stack, "selected_index"))]
    assert stack.selected_index == dropdown.index == 0
    text = " ".join(w.value for w in walk(explorer) if isinstance(w, widgets.HTML))
    for word in ["image", "truth", "guess", "perfect", *CLASSES]:
        assert word in text


def test_every_state_shows_its_canvas(explorer_and_links):
    explorer, _ = explorer_and_links
    stack = next(w for w in walk(explorer) if isinstance(w, widgets.Stack) and STATES_CLASS in w._dom_classes)
    assert len(stack.children) == 3
    for i, state in enumerate(stack.children):
        caption, image = state.children
        expected = segmentation_strip(IMAGES[i], [TRUTH[i], GUESS[i], TRUTH[i]], num_classes=4, scale=2)
        np.testing.assert_array_equal(decode(image.value, "RGB"), np.round(expected * 255).astype(np.uint8))
        assert caption.value.startswith(f"canvas {i}:") and "perfect 1.00" in caption.value
        for c in set(TRUTH[i].unique().tolist()) - {0}:
            assert CLASSES[c] in caption.value


def test_explorer_rejects_what_it_cannot_show():
    with pytest.raises(ValueError, match="N x 1 x H x W"):
        segmentation_explorer(IMAGES[:, 0], TRUTH, {"guess": GUESS}, classes=CLASSES)
    with pytest.raises(ValueError, match="guess has shape"):
        segmentation_explorer(IMAGES, TRUTH, {"guess": GUESS[:2]}, classes=CLASSES)
    with pytest.raises(ValueError, match="predictions is empty"):
        segmentation_explorer(IMAGES, TRUTH, {}, classes=CLASSES)
    many = MAX_STATES + 1
    with pytest.raises(ValueError, match="between 1 and"):
        segmentation_explorer(
            torch.zeros(many, 1, 4, 4),
            torch.zeros(many, 4, 4, dtype=torch.long),
            {"g": torch.zeros(many, 4, 4, dtype=torch.long)},
            classes=CLASSES,
        )
