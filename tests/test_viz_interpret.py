"""cnncourse.viz.interpret_explorer: every precomputed state shows that image's feature maps and Grad-CAM.

On the website the precomputed PNGs are all a reader sees, so each state is decoded
and compared with the panel recomputed from cnncourse.interpret.
"""

from __future__ import annotations

import itertools

import ipywidgets as widgets
import numpy as np
import pytest
import torch
from torch import nn

from cnncourse import zoo
from cnncourse.data import fashion_mnist
from cnncourse.interpret import activations, grad_cam
from cnncourse.viz import feature_explorer
from cnncourse.viz.explorers import MAX_STATES, STATES_CLASS
from cnncourse.viz.interpret_explorer import FEATURE_EXPLORER_CLASS, feature_panel
from cnncourse.viz.png import array_to_png

try:  # tests/ may or may not be a package
    from .widget_helpers import decode, recording_jslinks, walk
except ImportError:
    from widget_helpers import decode, recording_jslinks, walk

pytestmark = pytest.mark.usefixtures("one_thread")

LAYERS = ["0", "2", "4"]
CLASSES = ["cat", "dog", "bird"]


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 5, 3, padding=1),  # N x 5 x 12 x 12
        nn.ReLU(),
        nn.Conv2d(5, 6, 3, padding=1, stride=2),  # N x 6 x 6 x 6
        nn.ReLU(),
        nn.Conv2d(6, 4, 3, padding=1),  # N x 4 x 6 x 6
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 3),
    ).eval()


IMAGES = torch.rand(3, 1, 12, 12, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def explorer_and_links():
    with recording_jslinks() as links:
        explorer = feature_explorer(small_cnn(), IMAGES, LAYERS, labels=["a", "b", "c"], class_names=CLASSES,
                                    channels=3)
    return explorer, links


def top_stack(explorer: widgets.VBox) -> widgets.Stack:
    stacks = [w for w in walk(explorer) if isinstance(w, widgets.Stack) and STATES_CLASS in w._dom_classes]
    assert len(stacks) == 1
    return stacks[0]


def test_explorer_layout_and_links(explorer_and_links):
    explorer, links = explorer_and_links
    assert FEATURE_EXPLORER_CLASS in explorer._dom_classes
    dropdown = next(w for w in walk(explorer) if isinstance(w, widgets.Dropdown))
    slider = next(w for w in walk(explorer) if isinstance(w, widgets.SelectionSlider))
    assert [label for label, _ in dropdown.options] == ["a", "b", "c"]
    assert [label for label, _ in slider.options] == LAYERS
    top = top_stack(explorer)
    assert ((dropdown, "index"), (top, "selected_index")) in links
    for stack in top.children:  # the slider drives every stack below the top one
        assert ((slider, "index"), (stack, "selected_index")) in links
    assert len(links) == 1 + len(top.children) == 1 + len(IMAGES)
    assert top.selected_index == dropdown.index == 0
    assert all(s.selected_index == slider.index == len(LAYERS) - 1 for s in top.children)  # the last layer first


def test_every_state_shows_its_maps_and_grad_cam(explorer_and_links):
    explorer, _ = explorer_and_links
    model = small_cnn()
    maps = activations(model, IMAGES, LAYERS)
    with torch.no_grad():
        probabilities = model(IMAGES).softmax(1)
    predicted = probabilities.argmax(1)
    top = top_stack(explorer)
    for i, j in itertools.product(range(len(IMAGES)), range(len(LAYERS))):
        leaf = top.children[i].children[j]
        caption, image = leaf.children
        name = LAYERS[j]
        output = maps[name][i]
        shown = output.abs().flatten(1).mean(1).argsort(descending=True)[:3].tolist()
        size = f"{output.shape[0]} channels of {output.shape[1]}&times;{output.shape[2]}"
        assert f"<b>{name}</b>: {size}" in caption.value
        assert f"channels {', '.join(map(str, shown))}" in caption.value
        assert f"<i>{CLASSES[predicted[i]]}</i> ({probabilities[i, predicted[i]]:.0%})" in caption.value
        expected = feature_panel(IMAGES[i], grad_cam(model, IMAGES[i:i + 1], predicted[i:i + 1], name)[0],
                                 output[shown])
        pixels = decode(image.value, "RGB").astype(float)
        target = np.round(expected.permute(1, 2, 0).numpy() * 255)
        assert pixels.shape == target.shape
        difference = np.abs(pixels - target)  # the PNG holds a palette of 256 colours: close, not exact
        assert difference.mean() < 2 and difference.max() <= 48, (i, name)


def test_panel_layout():
    image = torch.zeros(1, 28, 28)
    image[0, 10:20, 5:9] = 1
    cam = torch.zeros(28, 28)
    cam[0, 0] = 2.0
    maps = torch.stack([torch.ones(7, 7), -torch.ones(7, 7)])
    panel = feature_panel(image, cam, maps)
    assert panel.shape[:2] == (3, 116) and 0 <= panel.min() and panel.max() <= 1
    # the image, enlarged 4 times by nearest neighbour (112 pixels, centred): its bar white, its background black
    assert torch.equal(panel[:, 2, 2], torch.zeros(3)) and torch.equal(panel[:, 2 + 4 * 10, 2 + 4 * 5], torch.ones(3))
    assert torch.equal(panel[:, 2 + 4 * 10 - 1, 2 + 4 * 5], torch.zeros(3))
    # the feature maps in two rows: the first all red (positive), the one below it all blue (negative)
    start = 2 * 116 + 2 * 3 * 4
    first = panel[:, 30, start + 30]
    second = panel[:, 56 + 4 + 30, start + 30]
    assert first[0] > first[2] and second[2] > second[0]


def test_inverted_images_are_dark_on_light():
    panel = feature_panel(torch.zeros(1, 8, 8), torch.zeros(8, 8), torch.ones(1, 2, 2), invert=True)
    assert torch.equal(panel[:, 5, 5], torch.ones(3))


def test_a_zoo_explorer_is_light():
    model = zoo.load_pretrained("resnet20")
    x = fashion_mnist().test.tensors[0][:6]
    explorer = feature_explorer(model, x, ["relu", "layer1", "layer2", "layer3"], invert=True)
    images = [w for w in walk(explorer) if isinstance(w, widgets.Image)]
    assert len(images) == 24
    assert sum(len(i.value) for i in images) < 200_000  # about 6 kB a state


def test_array_to_png_with_a_palette():
    palette = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 0.4, 1], [1, 1, 1]])
    rgb = palette[torch.randint(0, 4, (10, 12), generator=torch.Generator().manual_seed(0))].permute(2, 0, 1)
    png = array_to_png(rgb, colors=16)
    assert decode(png).ndim == 2  # a palette image: one index per pixel
    assert decode(png, "RGB").tobytes() == decode(array_to_png(rgb), "RGB").tobytes()  # 4 colours: exact
    with pytest.raises(ValueError, match="colors must be between 2 and 256"):
        array_to_png(rgb, colors=1)


@pytest.mark.parametrize("kwargs, match", [
    (dict(images=torch.rand(9, 1, 12, 12)), "between 1 and 8 images"),
    (dict(images=torch.rand(1, 12, 12)), r"images\[None\]"),
    (dict(layers=["9"]), "no layer '9'"),
    (dict(layers=["6"]), "not N x C x h x w"),
    (dict(labels=["a"]), "one per image"),
    (dict(class_names=["cat"]), "3 classes"),
    (dict(channels=0), "channels must be"),
])
def test_explorer_rejects_bad_input(kwargs, match):
    arguments = dict(model=small_cnn(), images=IMAGES, layers=LAYERS) | kwargs
    with pytest.raises(ValueError, match=match):
        feature_explorer(**arguments)


def test_state_limit_is_the_explorers():
    assert MAX_STATES >= 64  # 8 images x 8 layers, the explorer's own limits
