"""cnncourse.summary: parameters, MACs, shapes and receptive fields per layer, against torchvision and the papers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnncourse
from cnncourse import create_model, receptive_field, summary
from cnncourse.summary_table import LayerSummary, ModelSummary, layer_macs

try:  # tests/ may or may not be a package
    from .meta_models import on_meta
except ImportError:
    from meta_models import on_meta

torchvision = pytest.importorskip("torchvision")


def gmacs(name: str, **kwargs) -> float:
    return summary(on_meta(name, **kwargs), (3, 224, 224), receptive_fields=False).total_macs / 1e9


# ---------------------------------------------------------------------------
# Against torchvision's metadata and the papers
# ---------------------------------------------------------------------------

WEIGHTS = {
    "alexnet": "AlexNet_Weights",
    "vgg11": "VGG11_Weights",
    "vgg13": "VGG13_Weights",
    "vgg16": "VGG16_Weights",
    "vgg19": "VGG19_Weights",
    "googlenet": "GoogLeNet_Weights",
    "resnet18": "ResNet18_Weights",
    "resnet34": "ResNet34_Weights",
    "resnet50": "ResNet50_Weights",
    "resnet101": "ResNet101_Weights",
    "resnet152": "ResNet152_Weights",
}


@pytest.mark.parametrize("name", list(WEIGHTS))
def test_macs_and_parameters_match_torchvisions_metadata(name):
    meta = getattr(torchvision.models, WEIGHTS[name]).IMAGENET1K_V1.meta  # offline: no download
    s = summary(on_meta(name), (3, 224, 224), receptive_fields=False)
    assert s.total_params == meta["num_params"]
    # torchvision publishes GFLOPS = conv + linear multiply-accumulates, rounded to 3 decimals
    assert s.total_macs / 1e9 == pytest.approx(meta["_ops"], rel=0.005, abs=0)
    assert abs(s.total_macs / 1e9 - meta["_ops"]) <= 0.0005 + 1e-9


@pytest.mark.parametrize("depth", [11, 16])
def test_batch_norm_adds_no_macs(depth):
    meta = getattr(torchvision.models, f"VGG{depth}_BN_Weights").IMAGENET1K_V1.meta
    s = summary(on_meta(f"vgg{depth}", batch_norm=True), (3, 224, 224), receptive_fields=False)
    assert s.total_params == meta["num_params"]
    assert abs(s.total_macs / 1e9 - meta["_ops"]) <= 0.0005 + 1e-9


def test_resnet_papers_table_1_flops():
    # He et al. 2016, table 1: 1.8, 3.6, 3.8, 7.6 and 11.3 x 10^9 "FLOPs" (multiply-adds). The paper's models
    # put the downsampling stride in the bottleneck's first 1 x 1 conv (v1, stride_in_1x1=True); the table
    # seems to round down (3.66 -> 3.6). torchvision's v1.5 moves it to the 3 x 3, which costs more.
    paper = {18: 1.8, 34: 3.6, 50: 3.8, 101: 7.6, 152: 11.3}
    for depth, flops in paper.items():
        v1 = gmacs(f"resnet{depth}", **({"stride_in_1x1": True} if depth >= 50 else {}))
        assert abs(v1 - flops) / flops < 0.02, (depth, v1)
    # v1.5 runs the first 1 x 1 of stages 2-4 on the full-size map: 4x its v1 cost, i.e. 3 x (v1 cost) more,
    # and v1's cost there is 28^2 * 256 * 128 = 14^2 * 512 * 256 = 7^2 * 1024 * 512 = 25,690,112 MACs
    extra = summary(on_meta("resnet50"), (3, 224, 224), receptive_fields=False).total_macs
    extra -= summary(on_meta("resnet50", stride_in_1x1=True), (3, 224, 224), receptive_fields=False).total_macs
    assert extra == 3 * 3 * 25_690_112
    assert round(gmacs("resnet50"), 2) == 4.09 and round(gmacs("resnet50", stride_in_1x1=True), 2) == 3.86


def test_se_costs_2_c_squared_over_r_macs_per_block():
    # Hu et al. 2018 give SE-ResNet-50 3.87 GFLOPs against ResNet-50's 3.86 (v1, as their models), +0.26%.
    # Counting convolutions and linear layers only, the gates cost +0.07% (3.8580 -> 3.8605 G): the paper's
    # figure must count more (the pooling and the channel scaling, which are cheap but not free).
    se, plain = gmacs("se_resnet50", stride_in_1x1=True), gmacs("resnet50", stride_in_1x1=True)
    assert (round(plain, 2), round(se, 2)) == (3.86, 3.86)
    channels = [256] * 3 + [512] * 4 + [1024] * 6 + [2048] * 3
    assert round((se - plain) * 1e9) == sum(2 * c * c // 16 for c in channels) == 2_514_944


# ---------------------------------------------------------------------------
# Counting, layer by layer
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "x", "expected"),
    [
        (nn.Conv2d(3, 8, 3, padding=1), torch.zeros(1, 3, 4, 4), 8 * 4 * 4 * 3 * 9),
        (nn.Conv2d(3, 8, 3, stride=2, bias=False), torch.zeros(2, 3, 9, 9), 2 * 8 * 4 * 4 * 3 * 9),
        (nn.Conv2d(8, 8, 3, padding=1, groups=8), torch.zeros(1, 8, 5, 5), 8 * 5 * 5 * 9),  # depthwise
        (nn.Conv2d(8, 4, 1, groups=2), torch.zeros(1, 8, 5, 5), 4 * 5 * 5 * 4),
        (nn.ConvTranspose2d(4, 2, 2, stride=2), torch.zeros(1, 4, 3, 3), 4 * 3 * 3 * 2 * 4),
        (nn.Linear(10, 5), torch.zeros(3, 10), 3 * 5 * 10),
        (nn.BatchNorm2d(3), torch.zeros(1, 3, 4, 4), 0),
        (nn.MaxPool2d(2), torch.zeros(1, 3, 4, 4), 0),
    ],
    ids=["conv", "strided-batch", "depthwise", "grouped", "transposed", "linear", "batchnorm", "pool"],
)
def test_layer_macs_by_hand(layer, x, expected):
    assert layer_macs(layer, (x,), layer(x)) == expected


def test_transposed_convolution_macs_equal_those_of_the_convolution_it_transposes():
    conv, transposed = nn.Conv2d(2, 4, 3, stride=2), nn.ConvTranspose2d(4, 2, 3, stride=2)
    x = torch.zeros(1, 2, 9, 9)
    y = conv(x)
    assert layer_macs(conv, (x,), y) == layer_macs(transposed, (y,), transposed(y))


def test_rows_of_a_small_cnn():
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3), nn.Flatten(), nn.Linear(16 * 25, 10),
    )  # fmt: skip
    s = summary(model, (1, 14, 14))
    assert isinstance(s, ModelSummary) and all(isinstance(r, LayerSummary) for r in s.rows)
    assert [r.name for r in s.rows] == ["0", "1", "2", "3", "4", "5"]
    assert [r.output_shape for r in s.rows] == [
        (1, 8, 14, 14), (1, 8, 14, 14), (1, 8, 7, 7), (1, 16, 5, 5), (1, 400), (1, 10)
    ]  # fmt: skip
    assert [r.params for r in s.rows] == [80, 0, 0, 1168, 0, 4010]
    assert [r.macs for r in s.rows] == [8 * 14 * 14 * 9, 0, 0, 16 * 25 * 72, 0, 4000]
    assert [r.receptive_field for r in s.rows] == [(3, 3), (3, 3), (4, 4), (8, 8), None, None]
    assert (s.total_params, s.total_macs, s.output_shape) == (5258, 14112 + 28800 + 4000, (1, 10))
    assert s.receptive_field == (8, 8) and s.input_size == (1, 1, 14, 14)


def test_macs_scale_with_the_batch():
    model = create_model("vgg_small")
    one, four = summary(model, (1, 28, 28)), summary(model, (4, 1, 28, 28))
    assert four.total_macs == 4 * one.total_macs and four.rows[0].output_shape[0] == 4
    assert four.total_params == one.total_params


def test_depth_groups_layers_and_keeps_the_totals():
    model = create_model("resnet20")
    leaves, stages, blocks = (summary(model, (1, 28, 28), depth=d) for d in (None, 1, 2))
    assert [r.name for r in stages.rows] == ["conv1", "bn1", "relu", "layer1", "layer2", "layer3", "avgpool", "fc"]
    assert [r.name for r in blocks.rows][3:6] == ["layer1.0", "layer1.1", "layer1.2"]
    for s in (leaves, stages, blocks):
        assert sum(r.params for r in s.rows) == s.total_params == 269_434
        assert sum(r.macs for r in s.rows) == s.total_macs
    assert stages.row("layer3").output_shape == (1, 64, 7, 7)
    # the field of a stage is that of its last layer
    assert stages.row("layer2").receptive_field == leaves.row("layer2.2.relu2").receptive_field
    with pytest.raises(ValueError, match="depth"):
        summary(model, (1, 28, 28), depth=0)


def test_receptive_fields_are_those_of_arithmetic():
    model = on_meta("resnet18")
    s = summary(model, (3, 224, 224), depth=1)
    rf = receptive_field(model, (3, 224, 224))
    assert s.row("layer4").receptive_field == rf.row("layer4").size == (435, 435)
    assert s.row("conv1").receptive_field == (7, 7) and s.row("maxpool").receptive_field == (11, 11)
    assert s.row("fc").receptive_field is None  # after the spatial part
    assert s.receptive_field == rf.size


def test_a_module_called_twice_gets_two_rows_and_its_parameters_once():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            return self.conv(self.conv(x))

    s = summary(Twice(), (4, 8, 8))
    assert [r.name for r in s.rows] == ["conv", "conv"]
    assert [r.params for r in s.rows] == [4 * 4 * 9 + 4, 0]
    assert [r.macs for r in s.rows] == [4 * 64 * 36] * 2
    assert [r.receptive_field for r in s.rows] == [(3, 3), (5, 5)]


def test_an_untraceable_model_gets_an_empty_receptive_field_column():
    class Branchy(nn.Module):  # control flow on tensor values: neither torch.fx nor the meta device can run it
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            return self.conv(x) if x.sum() >= 0 else -self.conv(x)

    s = summary(Branchy(), (1, 5, 5))
    assert s.rows[0].output_shape == (1, 2, 3, 3) and s.total_macs == 2 * 9 * 9
    assert s.rows[0].receptive_field is None and s.receptive_field is None


def test_summary_leaves_the_model_as_it_was():
    model = create_model("googlenet_small")
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    summary(model, (1, 28, 28))
    assert all(m.training for m in model.modules())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # batch norm statistics untouched
    assert all(p.grad is None for p in model.parameters())


def test_imagenet_models_cost_no_memory():
    # parameters on the meta device and a meta input: nothing is allocated or computed
    s = summary(on_meta("vgg16"), (3, 224, 224))
    assert s.row("features.30").output_shape == (1, 512, 7, 7) and s.receptive_field == (212, 212)


def test_bad_input_says_what_is_wrong():
    with pytest.raises(ValueError, match="'features.30'.*large enough"):
        summary(on_meta("vgg16"), (3, 16, 16))
    with pytest.raises(ValueError, match="conv1.*channels"):
        summary(create_model("resnet20"), (3, 28, 28))
    with pytest.raises(TypeError, match="input_size"):
        summary(create_model("resnet20"), 28)


# ---------------------------------------------------------------------------
# Display
# ---------------------------------------------------------------------------


def test_text_html_and_pretty_displays():
    model = create_model("lenet5")
    s = summary(model, (1, 28, 28))
    text = str(s)
    assert text.splitlines()[0].split() == ["layer", "type", "output", "shape", "params", "MACs", "receptive", "field"]
    assert "features.c5" in text and "48,120" in text and "61,706" in text and "32 x 32" in text
    page = s._repr_html_()
    assert page.startswith("<table") and page.count("<tr>") == len(s.rows) + 2 and "features.c5" in page
    pretty = pytest.importorskip("IPython.lib.pretty")
    assert pretty.pretty(s) == text
    assert s.to_rows()[0] == {
        "name": "features.c1", "type": "Conv2d", "output_shape": (1, 6, 28, 28), "params": 156,
        "macs": 6 * 28 * 28 * 25, "receptive_field": (5, 5), "depth": 2,
    }  # fmt: skip
    with pytest.raises(KeyError, match="features.c1"):
        s.row("c1")


def test_layers_that_did_not_run_are_reported():
    s = summary(on_meta("googlenet", aux_logits=True), (3, 224, 224), depth=1, receptive_fields=False)
    assert s.total_params - sum(r.params for r in s.rows) == 13_004_888 - 6_624_904
    assert "did not run" in str(s)


def test_package_exports():
    assert cnncourse.summary is summary
    assert cnncourse.create_model is create_model and "resnet20" in cnncourse.list_models()
    assert {"summary", "create_model", "list_models"} <= set(cnncourse.__all__)
