"""cnncourse.viz.augmentation: every precomputed state of the explorer shows the right draws.

On the website the precomputed PNGs are all a reader sees, so each state is decoded
and compared with the transform recomputed under the same seed.
"""

from __future__ import annotations

import itertools

import ipywidgets as widgets
import numpy as np
import pytest
import torch
from torchvision.transforms import v2

from cnncourse.augment import SaltAndPepper
from cnncourse.viz.augmentation import (
    AUGMENTATION_EXPLORER_CLASS,
    _augmented_copies,
    _grid,
    augmentation_explorer,
    default_augmentations,
)
from cnncourse.viz.explorers import MAX_STATES, STATES_CLASS

try:  # tests/ may or may not be a package
    from .widget_helpers import decode, recording_jslinks, walk
except ImportError:
    from widget_helpers import decode, recording_jslinks, walk

IMAGES = torch.rand(2, 1, 12, 20, generator=torch.Generator().manual_seed(0))  # not square
AUGMENTATIONS = {
    "flip": lambda s: v2.RandomHorizontalFlip(p=s),
    "noise": lambda s: SaltAndPepper(amount=0.3 * s),
    "rotation": lambda s: v2.RandomRotation(90 * s),
}
STRENGTHS = (0.5, 1.0)
DRAWS = 3


@pytest.fixture(scope="module")
def explorer_and_links():
    with recording_jslinks() as links:
        explorer = augmentation_explorer(IMAGES, AUGMENTATIONS, strengths=STRENGTHS, draws=DRAWS, seed=3)
    return explorer, links


def top_stack(explorer: widgets.VBox) -> widgets.Stack:
    stacks = [w for w in walk(explorer) if isinstance(w, widgets.Stack) and STATES_CLASS in w._dom_classes]
    assert len(stacks) == 1
    return stacks[0]


def leaves(explorer: widgets.VBox):
    top = top_stack(explorer)
    for index in itertools.product(range(len(AUGMENTATIONS)), range(len(STRENGTHS))):
        node = top
        for i in index:
            assert isinstance(node, widgets.Stack)
            node = node.children[i]
        yield index, node


def test_explorer_layout_and_links(explorer_and_links):
    explorer, links = explorer_and_links
    assert AUGMENTATION_EXPLORER_CLASS in explorer._dom_classes
    dropdown = next(w for w in walk(explorer) if isinstance(w, widgets.Dropdown))
    slider = next(w for w in walk(explorer) if isinstance(w, widgets.SelectionSlider))
    assert [label for label, _ in dropdown.options] == list(AUGMENTATIONS)
    assert [label for label, _ in slider.options] == ["0.5", "1"]
    # the dropdown drives the top stack, the slider every stack below it
    top = top_stack(explorer)
    assert ((dropdown, "index"), (top, "selected_index")) in links
    inner = [s for s in top.children]
    for stack in inner:
        assert ((slider, "index"), (stack, "selected_index")) in links
    assert len(links) == 1 + len(inner)
    assert top.selected_index == dropdown.index == 0
    assert all(s.selected_index == slider.index == 1 for s in inner)


def test_every_state_shows_the_seeded_draws(explorer_and_links):
    explorer, _ = explorer_and_links
    pictures = list(IMAGES)
    count = 0
    for (t, s), leaf in leaves(explorer):
        name, strength = list(AUGMENTATIONS)[t], STRENGTHS[s]
        caption, image = leaf.children
        assert name in caption.value and f"strength {strength:g}" in caption.value
        expected = _grid(pictures, _augmented_copies(pictures, AUGMENTATIONS[name](strength), draws=DRAWS, seed=3),
                         invert=False)
        shown = decode(image.value)
        assert shown.shape == tuple(expected.shape[1:])  # one channel: an 8-bit grayscale PNG
        np.testing.assert_array_equal(shown, np.round(expected[0].numpy() * 255).astype(np.uint8))
        count += 1
    assert count == len(AUGMENTATIONS) * len(STRENGTHS)


def test_the_grid_holds_the_original_then_the_draws():
    pictures = list(IMAGES)
    copies = _augmented_copies(pictures, v2.RandomHorizontalFlip(p=1.0), draws=2, seed=0)
    grid = _grid(pictures, copies, invert=True)
    scale = 84 // 20 + 1  # small images are enlarged to at least 84 pixels: 20 -> 100
    tile = scale * 20
    assert grid.shape[0] == 1 and grid.shape[1] == 2 * 12 * scale + scale  # two rows and a gap
    first = grid[0, : 12 * scale, :tile]
    torch.testing.assert_close(first, 1 - pictures[0][0].repeat_interleave(scale, 0).repeat_interleave(scale, 1))
    start = tile + 4 * scale  # after the wider gap
    flipped = grid[0, : 12 * scale, start: start + tile]
    torch.testing.assert_close(flipped, (1 - pictures[0][0].flip(-1)).repeat_interleave(scale, 0)
                               .repeat_interleave(scale, 1))


def test_draws_are_seeded_and_leave_the_global_generator_alone():
    torch.manual_seed(0)
    state = torch.get_rng_state()
    pictures = list(IMAGES)
    a = _augmented_copies(pictures, v2.RandomRotation(45), draws=4, seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    b = _augmented_copies(pictures, v2.RandomRotation(45), draws=4, seed=1)
    c = _augmented_copies(pictures, v2.RandomRotation(45), draws=4, seed=2)
    assert all(torch.equal(x, y) for rx, ry in zip(a, b) for x, y in zip(rx, ry))
    assert not all(torch.equal(x, y) for rx, ry in zip(a, c) for x, y in zip(rx, ry))
    assert not torch.equal(a[0][0], a[0][1])  # a new draw per copy


def test_same_draws_at_every_strength():
    # with one seed, a rotation at strength 1 turns each copy twice as far as at strength 0.5
    image = torch.zeros(1, 41, 41)
    image[0, 20, 20:] = 1.0  # a ray from the centre to the right edge
    factory = default_augmentations()["rotation"]

    def angles(strength):
        copies = _augmented_copies([image], factory(strength), draws=5, seed=0)[0]
        out = []
        for c in copies:
            ys, xs = torch.nonzero(c[0] > 0.3, as_tuple=True)
            far = ((ys - 20) ** 2 + (xs - 20) ** 2).argmax()
            out.append(np.degrees(np.arctan2(-(ys[far] - 20).item(), (xs[far] - 20).item())))
        return np.array(out)

    half, full = angles(0.5), angles(1.0)
    assert np.all(np.abs(full) <= 62) and np.abs(full).max() > 10
    np.testing.assert_allclose(full, 2 * half, atol=4)


@pytest.mark.parametrize("colour", [False, True])
def test_default_augmentations_keep_shape_and_range(colour):
    channels = 3 if colour else 1
    image = torch.rand(channels, 28, 28, generator=torch.Generator().manual_seed(0))
    factories = default_augmentations(colour=colour)
    assert ("hue" in factories) == colour and ("saturation" in factories) == colour
    torch.manual_seed(0)
    for name, factory in factories.items():
        for strength in (0.1, 1.0):
            out = factory(strength)(image)
            assert out.shape == image.shape, name
            assert out.min() >= 0 and out.max() <= 1, name


def test_colour_images_get_colour_jitter_by_default():
    explorer = augmentation_explorer(torch.rand(3, 16, 16), strengths=(1.0,), draws=1)
    dropdown = next(w for w in walk(explorer) if isinstance(w, widgets.Dropdown))
    assert "hue" in [label for label, _ in dropdown.options]
    image = next(w for w in walk(explorer) if isinstance(w, widgets.Image))
    assert decode(image.value).ndim == 3  # RGB


def test_large_images_are_shrunk():
    explorer = augmentation_explorer(torch.rand(1, 200, 100), {"flip": lambda s: v2.RandomHorizontalFlip(s)},
                                     strengths=(1.0,), draws=1, max_size=50)
    image = next(w for w in walk(explorer) if isinstance(w, widgets.Image))
    height, width = decode(image.value).shape
    assert (height, width) == (100, 2 * 50 + 4 * 2)  # 100 x 50 enlarged twice: 2 tiles and a wide gap


def test_levels_round_the_pictures_and_lighten_them():
    exact = augmentation_explorer(IMAGES, AUGMENTATIONS, strengths=STRENGTHS, draws=DRAWS, seed=3)
    rounded = augmentation_explorer(IMAGES, AUGMENTATIONS, strengths=STRENGTHS, draws=DRAWS, seed=3, levels=4)
    exact_images = [w for w in walk(exact) if isinstance(w, widgets.Image)]
    rounded_images = [w for w in walk(rounded) if isinstance(w, widgets.Image)]
    assert len(exact_images) == len(rounded_images) == len(AUGMENTATIONS) * len(STRENGTHS)
    for a, b in zip(exact_images, rounded_images):
        shown, exact_pixels = decode(b.value).astype(float), decode(a.value).astype(float)
        assert set(np.unique(shown)) <= {0.0, 85.0, 170.0, 255.0}  # 4 levels of 0..255
        assert np.abs(shown - exact_pixels).max() <= 255 / 6 + 1  # the nearest level
    assert sum(len(b.value) for b in rounded_images) < sum(len(a.value) for a in exact_images)
    for bad in (1, 257, 2.5, True):
        with pytest.raises(ValueError, match="levels"):
            augmentation_explorer(IMAGES, AUGMENTATIONS, strengths=STRENGTHS, draws=DRAWS, levels=bad)


def test_bad_arguments():
    flip = {"flip": lambda s: v2.RandomHorizontalFlip(s)}
    with pytest.raises(ValueError, match="between 1 and 6"):
        augmentation_explorer(torch.rand(7, 1, 8, 8), flip)
    with pytest.raises(ValueError, match="one size"):
        augmentation_explorer([torch.rand(1, 8, 8), torch.rand(1, 9, 9)], flip)
    with pytest.raises(TypeError, match="tensor"):
        augmentation_explorer("cat.png", flip)
    with pytest.raises(ValueError, match="non-empty"):
        augmentation_explorer(torch.rand(1, 8, 8), {})
    with pytest.raises(TypeError, match="function of the strength"):
        augmentation_explorer(torch.rand(1, 8, 8), {"flip": v2.RandomHorizontalFlip()(torch.rand(1, 8, 8))})
    with pytest.raises(TypeError, match="not a transform"):
        augmentation_explorer(torch.rand(1, 8, 8), {"flip": lambda s: 3})
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        augmentation_explorer(torch.rand(1, 8, 8), flip, strengths=(0.0, 1.0))
    with pytest.raises(ValueError, match="repeats"):
        augmentation_explorer(torch.rand(1, 8, 8), flip, strengths=(1.0, 1.0))
    with pytest.raises(ValueError, match="empty"):
        augmentation_explorer(torch.rand(1, 8, 8), flip, strengths=())
    with pytest.raises(TypeError, match="draws"):
        augmentation_explorer(torch.rand(1, 8, 8), flip, draws=2.5)
    with pytest.raises(ValueError, match="keep the size"):
        augmentation_explorer(torch.rand(1, 8, 8), {"crop": lambda s: v2.RandomCrop(4)})
    many = {str(i): (lambda s: v2.Identity()) for i in range(MAX_STATES // 2 + 1)}
    with pytest.raises(ValueError, match="more than"):
        augmentation_explorer(torch.rand(1, 8, 8), many, strengths=(0.5, 1.0))
