"""cnncourse.viz.architecture and block_diagram: a legible diagram of every registered model and block.

The shapes written on a figure are checked against a forward pass with hooks
(on the meta device), not against cnncourse.summary, which the figure uses.
"""

from __future__ import annotations

import inspect
import io

import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image
from torch import nn

import cnncourse.models as models
from cnncourse import create_model, list_models, viz
from cnncourse.models import BasicBlock, Bottleneck, Inception, SqueezeExcitation, lenet5, squeeze_excitation
from cnncourse.viz import architecture, architecture_blocks, block_diagram

try:  # tests/ may or may not be a package
    from .meta_models import on_meta
except ImportError:
    from meta_models import on_meta

pytestmark = pytest.mark.usefixtures("one_thread")


def input_size(name: str) -> tuple[int, int, int]:
    """The size each builder is made for: 224 x 224 RGB for the ImageNet ones, 28 x 28 grey for the rest."""
    defaults = inspect.signature(getattr(models, name)).parameters
    return (3, 224, 224) if defaults["num_classes"].default == 1000 else (1, 28, 28)


def texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts if t.get_text()]  # arrows are empty texts


def assert_legible(fig: Figure) -> None:
    width, _ = fig.get_size_inches()
    assert width <= viz.FIGURE_WIDTH + 1e-9, f"{width:.2f} inches is wider than the website's column"
    # as a notebook saves it: bbox_inches="tight" pads the drawing by 0.1 inch on each side
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    saved = Image.open(buffer).size[0]
    assert saved <= 100 * viz.FIGURE_WIDTH, f"saved {saved} pixels wide, more than FIGURE_WIDTH at 100 dpi"
    small = [(t.get_text(), t.get_fontsize()) for ax in fig.axes for t in ax.texts if t.get_fontsize() < 9]
    assert not small, f"fonts below 9 pt: {small}"
    # every text inside the figure (nothing cut off at the edges)
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    for ax in fig.axes:
        for t in ax.texts:
            extent = t.get_window_extent(renderer)
            assert box.x0 - 1 <= extent.x0 and extent.x1 <= box.x1 + 1, f"{t.get_text()!r} is cut off"
            assert box.y0 - 1 <= extent.y0 and extent.y1 <= box.y1 + 1, f"{t.get_text()!r} is cut off"


def real_shapes(model: nn.Module, size: tuple[int, ...], names: list[str]) -> dict[str, list[tuple[int, ...]]]:
    """Output shapes (no batch dimension) of the named modules, from a forward pass with hooks on the meta device."""
    found: dict[str, list[tuple[int, ...]]] = {name: [] for name in names}
    handles = []
    for name in names:
        def hook(module, args, output, name=name):
            found[name].append(tuple(output.shape[1:]))
        handles.append(model.get_submodule(name).register_forward_hook(hook))
    try:
        with torch.no_grad():
            output = model.eval()(torch.zeros(1, *size, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    found["output"] = [tuple(output.shape[1:])]
    return found


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_draws_its_real_shapes(name):
    model, size = on_meta(name), input_size(name)
    blocks = architecture_blocks(model, size)
    fig = architecture(model, size)
    assert_legible(fig)
    shown = texts(fig)
    # the shapes are written in the order of the blocks
    at = -1
    for block in blocks:
        at = shown.index(block.shape_text, at + 1)
    assert blocks[0].kind == "input" and blocks[0].shape == size
    layers = [layer for block in blocks for layer in block.layers]
    real = real_shapes(model, size, sorted(set(layers)))
    for block in blocks[1:]:
        for layer in block.layers:
            assert block.shape in real[layer], (block, real[layer])
    assert blocks[-1].shape == real["output"][0]


def test_lenet_is_the_classic_figure():
    blocks = architecture_blocks(lenet5(), (1, 28, 28))
    assert [b.shape_text for b in blocks] == ["1×28×28", "6×28×28", "6×14×14", "16×10×10", "16×5×5", "120×1×1",
                                              "84", "10"]
    assert [b.title for b in blocks[1:6]] == ["c1", "s2", "c3", "s4", "c5"]
    assert [b.label for b in blocks[1:3]] == ["5×5 conv", "2×2 avg pool, /2"]
    assert [b.kind for b in blocks] == ["input", "conv", "pool", "conv", "pool", "conv", "dense", "dense"]
    shown = texts(architecture(lenet5(), (1, 28, 28)))
    assert "5×5 conv" in shown and "16×5×5" in shown


def test_repeated_blocks_are_grouped_and_can_be_drawn_one_by_one():
    model = on_meta("resnet152")
    blocks = architecture_blocks(model, (3, 224, 224))
    layer3 = next(b for b in blocks if b.name == "layer3")
    assert layer3.label == "Bottleneck ×36" and layer3.shape == (1024, 14, 14) and len(layer3.layers) == 36
    assert [b.label for b in blocks[1:3]] == ["7×7 conv, /2", "3×3 max pool, /2"]
    every = architecture_blocks(model, (3, 224, 224), group=False)
    assert sum(b.label == "Bottleneck" for b in every) == 3 + 8 + 36 + 3
    # VGG-16: thirteen convolutions in five groups, three fully connected layers
    vgg = architecture_blocks(on_meta("vgg16"), (3, 224, 224))
    convs = [b for b in vgg if b.kind == "conv"]
    assert [len(b.layers) for b in convs] == [2, 2, 3, 3, 3]
    assert convs[2].name == "features.10–14" and convs[2].title == ""
    assert sum(len(b.layers) for b in vgg if b.kind == "dense") == 3
    googlenet = architecture_blocks(on_meta("googlenet"), (3, 224, 224))
    assert any(b.title == "inception4a–c" and b.label == "Inception ×3" for b in googlenet)


def test_layers_without_weights_that_keep_the_shape_are_folded():
    # AlexNet's adaptive pool does nothing at 224 x 224, and its dropout, ReLUs never get a box
    blocks = architecture_blocks(on_meta("alexnet"), (3, 224, 224), group=False)
    assert [b.label for b in blocks[1:]] == [
        "11×11 conv, /4", "3×3 max pool, /2", "5×5 conv", "3×3 max pool, /2", "3×3 conv", "3×3 conv", "3×3 conv",
        "3×3 max pool, /2", "fc", "fc", "fc",
    ]
    # ... but on 32 x 32 inputs the adaptive pool changes 3 x 3 into 2 x 2 and is drawn
    small = architecture_blocks(create_model("alexnet_small"), (1, 32, 32))
    assert any(b.label == "avg pool to 2×2" and b.shape == (64, 2, 2) for b in small)


def test_a_single_layer_and_a_plain_sequential():
    blocks = architecture_blocks(nn.Conv2d(3, 8, 3, stride=2), (3, 32, 32))
    assert [(b.label, b.shape) for b in blocks[1:]] == [("3×3 conv, /2", (8, 15, 15))]
    seq = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
    assert [b.shape_text for b in architecture_blocks(seq, (1, 28, 28))] == ["1×28×28", "4×26×26", "10"]


def test_width_option_wraps_into_more_rows():
    model = on_meta("vgg16")
    wide, narrow = architecture(model, (3, 224, 224)), architecture(model, (3, 224, 224), width=3.5)
    assert wide.get_size_inches()[0] <= viz.FIGURE_WIDTH - 0.2
    assert narrow.get_size_inches()[0] <= 3.5 < wide.get_size_inches()[0]
    assert narrow.get_size_inches()[1] > wide.get_size_inches()[1]
    assert_legible(narrow)
    assert "VGG-16" in texts(architecture(model, (3, 224, 224), title="VGG-16"))


@pytest.mark.parametrize(
    ("model", "size", "kwargs", "error", "match"),
    [
        (lenet5(), (28, 28), {}, ValueError, r"one image, \(C, H, W\)"),
        (lenet5(), (4, 1, 28, 28), {}, ValueError, "one image"),
        (lenet5(), (1, 0, 28), {}, ValueError, "one image"),
        (lenet5(), "28", {}, ValueError, "one image"),
        (lenet5(), (3, 28, 28), {}, ValueError, r"fails on an input of size \[1, 3, 28, 28\]"),
        (create_model("alexnet_small"), (1, 8, 8), {}, ValueError, "fails on an input"),
        (lenet5(), (1, 28, 28), {"width": 9}, ValueError, "FIGURE_WIDTH"),
        (lenet5(), (1, 28, 28), {"width": 7.0}, ValueError, "0.2 inch"),
        (nn.Sequential(nn.ReLU()), (1, 28, 28), {}, ValueError, "nothing to draw"),
        ("lenet5", (1, 28, 28), {}, TypeError, "torch.nn.Module"),
        (lenet5(), None, {}, TypeError, "tuple of ints"),
    ],
)
def test_architecture_rejects_bad_input(model, size, kwargs, error, match):
    with pytest.raises(error, match=match):
        architecture(model, size, **kwargs)


# --- block diagrams -----------------------------------------------------------------------


def test_residual_block_has_its_shortcut_and_shapes():
    fig = block_diagram(BasicBlock(64, 64), (64, 56, 56))
    assert_legible(fig)
    shown = texts(fig)
    assert shown.count("3×3 conv, BN, ReLU") == 1 and shown.count("3×3 conv, BN") == 1
    assert "+" in shown and "identity" in shown and shown.count("64×56×56") == 4  # input, two convs, ReLU


def test_downsampling_block_draws_its_projection_beside_the_convolutions():
    shortcut = nn.Sequential(nn.Conv2d(64, 128, 1, stride=2, bias=False), nn.BatchNorm2d(128))
    shown = texts(block_diagram(BasicBlock(64, 128, 2, shortcut), (64, 56, 56)))
    assert "3×3 conv, /2, BN, ReLU" in shown and "1×1 conv, /2, BN" in shown
    assert "identity" not in shown and shown.count("128×28×28") == 4


def test_bottleneck_shows_the_stride_where_the_code_puts_it():
    shown = texts(block_diagram(Bottleneck(256, 64), (256, 56, 56)))
    assert [s for s in shown if "conv" in s] == ["1×1 conv, BN, ReLU", "3×3 conv, BN, ReLU", "1×1 conv, BN"]
    assert ["256×56×56", "64×56×56", "64×56×56", "256×56×56"] == [s for s in shown if "×56×56" in s][:4]
    v1 = nn.Sequential(nn.Conv2d(256, 512, 1, stride=2, bias=False), nn.BatchNorm2d(512))
    shown = texts(block_diagram(Bottleneck(256, 128, 2, v1, stride_in_1x1=True), (256, 56, 56)))
    assert "1×1 conv, /2, BN, ReLU" in shown and "3×3 conv, BN, ReLU" in shown


def test_inception_module_concatenates_four_branches():
    fig = block_diagram(Inception(192, 64, 96, 128, 16, 32, 32), (192, 28, 28))
    assert_legible(fig)
    shown = texts(fig)
    assert "concat" in shown and "256×28×28" in shown  # 64 + 128 + 32 + 32
    assert "3×3 max pool" in shown and shown.count("1×1 conv, BN, ReLU") == 4
    for branch in ("64×28×28", "128×28×28", "32×28×28"):
        assert branch in shown
    five = texts(block_diagram(Inception(192, 64, 96, 128, 16, 32, 32, branch3_kernel_size=5), (192, 28, 28)))
    assert "5×5 conv, BN, ReLU" in five


def test_se_block_squeezes_excites_and_scales():
    fig = block_diagram(SqueezeExcitation(64, reduction=16), (64, 56, 56))
    assert_legible(fig)
    shown = texts(fig)
    assert ["global avg pool", "64×1×1", "fc, ReLU", "4×1×1", "fc, sigmoid", "64×1×1", "×"] == shown[2:9], shown
    se_resnet_block = BasicBlock(64, 64, attention=squeeze_excitation(16))
    se_block = texts(block_diagram(se_resnet_block, (64, 56, 56)))
    assert se_block.index("SqueezeExcitation") < se_block.index("+")
    # opened: the gates scale the residual branch before the shortcut is added
    fig = block_diagram(se_resnet_block, (64, 56, 56), expand=True)
    assert_legible(fig)
    opened = texts(fig)
    assert "SqueezeExcitation" not in opened
    order = [opened.index(t) for t in ("3×3 conv, BN", "global avg pool", "fc, sigmoid", "×", "+", "ReLU")]
    assert order == sorted(order) and opened.count("identity") == 1


@pytest.mark.parametrize("name", ["resnet20", "resnet50", "se_resnet50", "googlenet_small"])
def test_blocks_taken_from_registered_networks(name):
    model = create_model(name) if name.endswith(("20", "small")) else on_meta(name)
    first = dict(model.named_modules())["layer2.0" if "resnet" in name else "inception3a"]
    size = {"resnet20": (16, 28, 28), "resnet50": (256, 56, 56), "se_resnet50": (256, 56, 56),
            "googlenet_small": (48, 14, 14)}[name]
    fig = block_diagram(first, size)
    assert_legible(fig)
    assert len(texts(fig)) > 6


def test_block_diagram_rejects_bad_input():
    with pytest.raises(ValueError, match="too deep for one block diagram"):
        block_diagram(on_meta("resnet50"), (3, 224, 224))
    with pytest.raises(ValueError, match="one image"):
        block_diagram(BasicBlock(64, 64), (64, 56))
    with pytest.raises(ValueError, match="fails on an input"):
        block_diagram(BasicBlock(64, 64), (32, 56, 56))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        block_diagram("BasicBlock", (64, 56, 56))

    class Branchy(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(TypeError, match="could not trace"):
        block_diagram(Branchy(), (1, 4, 4))


def test_public_api():
    assert {"architecture", "architecture_blocks", "block_diagram", "ArchitectureBlock"} <= set(viz.__all__)
