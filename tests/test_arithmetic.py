"""Tests of cnncourse.arithmetic: output sizes and receptive fields.

Output sizes are checked against what torch's own layers produce over a grid
of sizes, kernels, strides, paddings and dilations (torch refusing means we
must raise ValueError). Receptive fields are checked three ways: by hand on
small stacks, empirically (the input gradient of one output unit of a copy
with all-ones weights is nonzero exactly on its receptive field), and against
the values published by Araujo, Norris & Sim, "Computing Receptive Fields of
Convolutional Neural Networks", Distill (2019), doi:10.23915/distill.00021,
for torchvision's AlexNet, VGG-16, ResNet-50 and GoogLeNet.

The torchvision models are built on the meta device: no weights are
allocated, so building VGG-16 takes milliseconds.
"""

from __future__ import annotations

import itertools
import random

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from cnncourse.arithmetic import (
    LayerReceptiveField,
    ReceptiveField,
    Region,
    conv_output_size,
    conv_transpose_output_size,
    pool_output_size,
    receptive_field,
    same_padding,
)

# ---------------------------------------------------------------------------
# Output sizes against torch
# ---------------------------------------------------------------------------


def torch_size(run) -> int | None:
    """The width torch produces, or None when torch refuses the arithmetic."""
    try:
        return run().shape[-1]
    except RuntimeError:
        return None


def assert_same_as_torch(expected: int | None, ours, *args, **kwargs) -> None:
    where = f"{ours.__name__}{args}{kwargs or ''}"
    if expected is None:
        with pytest.raises(ValueError):
            ours(*args, **kwargs)
            pytest.fail(f"{where}: torch refuses it, ours returned a size")
    else:
        assert ours(*args, **kwargs) == expected, where


@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("s", [1, 2, 3])
@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_conv_output_size_matches_torch(k, s, d):
    weight = torch.zeros(1, 1, k, k)
    for i, p in itertools.product(range(1, 10), range(3)):
        x = torch.zeros(1, 1, i, i)
        expected = torch_size(lambda: F.conv2d(x, weight, stride=s, padding=p, dilation=d))
        assert_same_as_torch(expected, conv_output_size, i, k, s, p, d)


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("s", [None, 1, 2, 3])
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_pool_output_size_matches_max_pool(k, s, d, ceil_mode):
    for i, p in itertools.product(range(1, 10), range(3)):
        x = torch.zeros(1, 1, i, i)
        expected = torch_size(lambda: F.max_pool2d(x, k, s, p, d, ceil_mode=ceil_mode))
        assert_same_as_torch(expected, pool_output_size, i, k, s, p, d, ceil_mode=ceil_mode)


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("s", [None, 1, 2, 3])
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_pool_output_size_matches_avg_pool(k, s, ceil_mode):
    for i, p in itertools.product(range(1, 10), range(3)):
        x = torch.zeros(1, 1, i, i)
        expected = torch_size(lambda: F.avg_pool2d(x, k, s, p, ceil_mode=ceil_mode))
        assert_same_as_torch(expected, pool_output_size, i, k, s, p, ceil_mode=ceil_mode)


def test_ceil_mode_drops_a_window_that_would_start_in_the_padding():
    # i=5, k=2, s=2, p=1: rounding up gives 4 windows, but the 4th starts at 6 = i + p.
    assert (5 + 2 - 2 + 1) // 2 + 1 == 4
    assert pool_output_size(5, 2, 2, 1, ceil_mode=True) == 3
    assert F.max_pool2d(torch.zeros(1, 1, 5, 5), 2, 2, 1, ceil_mode=True).shape[-1] == 3


@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("s", [1, 2, 3])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_conv_transpose_output_size_matches_torch(k, s, d):
    weight = torch.zeros(1, 1, k, k)
    for i, p, output_padding in itertools.product(range(1, 5), range(3), range(3)):
        x = torch.zeros(1, 1, i, i)
        expected = torch_size(
            lambda: F.conv_transpose2d(x, weight, stride=s, padding=p, output_padding=output_padding, dilation=d)
        )
        assert_same_as_torch(expected, conv_transpose_output_size, i, k, s, p, output_padding, d)


def test_transposed_convolution_undoes_the_size_change_of_a_strided_one():
    for i in range(5, 20):
        o = conv_output_size(i, 3, 2, 1)
        sizes = {conv_transpose_output_size(o, 3, 2, 1, output_padding) for output_padding in (0, 1)}
        assert i in sizes


def test_output_sizes_work_per_axis_for_non_square_layers():
    conv = nn.Conv2d(1, 1, kernel_size=(3, 5), stride=(1, 2), padding=(1, 0), dilation=(2, 1))
    assert conv(torch.zeros(1, 1, 17, 23)).shape[-2:] == (
        conv_output_size(17, 3, 1, 1, 2),
        conv_output_size(23, 5, 2, 0, 1),
    )


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("k", [1, 3, 5, 7])
def test_same_padding_keeps_the_size_for_odd_kernels(k, d):
    p = same_padding(k, d)
    for i in (1, 8, 9, 28):
        if d * (k - 1) + 1 <= i + 2 * p:
            assert conv_output_size(i, k, 1, p, d) == i
    assert nn.Conv2d(1, 1, k, padding=p, dilation=d)(torch.zeros(1, 1, 12, 12)).shape[-1] == 12


def test_same_padding_for_an_even_kernel_needs_an_even_span():
    assert same_padding(2, d=2) == 1  # span 3: one pixel each side
    message = r"needs 3 pixels of padding in all.*padding='same'.*1 on the left/top and 2"
    with pytest.raises(ValueError, match=message):
        same_padding(4)


@pytest.mark.parametrize(
    ("function", "args", "kwargs", "message"),
    [
        (conv_output_size, (0, 3), {}, "input size i must be >= 1"),
        (conv_output_size, (5, 0), {}, "kernel size k must be >= 1"),
        (conv_output_size, (5, 3, 0), {}, "stride s must be >= 1"),
        (conv_output_size, (5, 3, 1, 0, 0), {}, "dilation d must be >= 1"),
        (conv_output_size, (5, 3, 1, -1), {}, "padding p must be >= 0.*crop"),
        (conv_output_size, (4, 3, 1, 0, 2), {}, "dilated kernel spans 5 pixels but the padded input has 4: "
                                                "use padding >= 1 or a smaller kernel"),
        (conv_output_size, (2, 5), {}, "the kernel spans 5 pixels but the padded input has 2: use padding >= 2"),
        (pool_output_size, (0, 2), {}, "input size"),
        (pool_output_size, (5, 2, 0), {}, "stride s must be >= 1"),
        (pool_output_size, (5, 3, 2, 2), {}, "padding 2 is more than half the kernel 3.*padding <= 1"),
        (pool_output_size, (5, 2, 2, -1), {}, "padding p must be >= 0"),
        (pool_output_size, (2, 5), {}, "kernel spans 5 pixels but the padded input has 2: use padding >= 2"),
        (pool_output_size, (1, 3, 1, 0, 3), {}, "dilated kernel spans 7.*smaller kernel or an input of at least 5"),
        (conv_transpose_output_size, (4, 3, 2, 0, 2), {}, "output_padding 2 must be smaller than the stride"),
        (conv_transpose_output_size, (4, 3, 2, 0, -1), {}, "output_padding must be >= 0"),
        (conv_transpose_output_size, (1, 1, 1, 1), {}, "padding 1 removes 2 pixels.*use padding <= 0"),
        (conv_transpose_output_size, (4, 3, 0), {}, "stride s must be >= 1"),
        (same_padding, (0,), {}, "kernel size k must be >= 1"),
        (same_padding, (3, 0), {}, "dilation d must be >= 1"),
    ],
)
def test_impossible_arithmetic_says_what_to_change(function, args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        function(*args, **kwargs)


@pytest.mark.parametrize("bad", [2.0, "3", True, None])
def test_sizes_must_be_integers(bad):
    with pytest.raises(TypeError, match="must be an integer"):
        conv_output_size(bad, 3)


# ---------------------------------------------------------------------------
# Receptive fields of small stacks, by hand
# ---------------------------------------------------------------------------


def conv(kernel_size, **kwargs) -> nn.Conv2d:
    return nn.Conv2d(1, 1, kernel_size, **kwargs)


@pytest.mark.parametrize(
    ("layers", "size", "stride", "padding"),
    [
        pytest.param([conv(3)], 3, 1, 0, id="one 3x3 conv"),
        pytest.param([conv(3), conv(3)], 5, 1, 0, id="two 3x3 convs"),
        pytest.param([conv(3), conv(3), conv(3)], 7, 1, 0, id="three 3x3 convs"),
        # 3, then the 2x2 pool adds (2 - 1) * 1 = 1, then the 3x3 conv adds (3 - 1) * 2 = 4
        pytest.param([conv(3), nn.MaxPool2d(2), conv(3)], 8, 2, 0, id="conv3 pool2 conv3"),
        pytest.param([conv(3, dilation=2)], 5, 1, 0, id="dilated 3x3"),
        pytest.param([conv(3, dilation=2), conv(3, dilation=2)], 9, 1, 0, id="two dilated 3x3"),
        pytest.param([conv(3, dilation=1), conv(3, dilation=2), conv(3, dilation=4)], 15, 1, 0, id="dilations 1-2-4"),
        pytest.param([conv(3, stride=2), conv(3)], 7, 2, 0, id="stride 2 then 3x3"),
        pytest.param([conv(3, stride=2), conv(3, stride=2), conv(3)], 15, 4, 0, id="two stride-2 convs"),
        pytest.param([conv(3, padding=1), conv(3, padding=1)], 5, 1, 2, id="padded 3x3 convs"),
        pytest.param([conv(3, stride=2, padding=1), conv(3, padding=1)], 7, 2, 3, id="padding after a stride"),
        pytest.param([conv(7, stride=2, padding=3), nn.MaxPool2d(3, 2, 1)], 11, 4, 5, id="ResNet stem"),
        # the LP pool's stride defaults to its kernel, 3: j = 2 * 3
        pytest.param([nn.AvgPool2d(2), nn.LPPool2d(2, 3)], 6, 6, 0, id="avg and LP pools"),
    ],
)
def test_receptive_field_of_small_stacks(layers, size, stride, padding):
    rf = receptive_field(nn.Sequential(*layers), (1, 32, 32))
    assert (rf.size, rf.stride, rf.padding) == ((size, size), (stride, stride), (padding, padding))
    assert len(rf.layers) == len(layers) + 1  # the input row, then one row per layer
    assert rf.layers[0] == LayerReceptiveField("input", "input", (32, 32), (1, 1), (1, 1), (0, 0))


def test_each_row_follows_the_recurrence():
    model = nn.Sequential(conv(3), nn.MaxPool2d(2), conv(3, dilation=2), conv(5, stride=3, padding=2))
    rf = receptive_field(model, (1, 40, 40))
    assert [row.size[0] for row in rf.layers] == [1, 3, 4, 4 + 4 * 2, 12 + 4 * 2]
    assert [row.stride[0] for row in rf.layers] == [1, 1, 2, 2, 6]
    assert [row.padding[0] for row in rf.layers] == [0, 0, 0, 0, 2 * 2]
    assert [row.name for row in rf.layers] == ["input", "0", "1", "2", "3"]
    assert [row.type for row in rf.layers] == ["input", "Conv2d", "MaxPool2d", "Conv2d", "Conv2d"]


def test_non_square_kernels_and_strides_are_followed_per_axis():
    model = nn.Sequential(conv((3, 5), stride=(1, 2), padding=(1, 0)), conv(3))
    rf = receptive_field(model, (1, 20, 30))
    assert rf.size == (3 + 2, 5 + 2 * 2)
    assert rf.stride == (1, 2)
    assert rf.padding == (1, 0)
    assert rf.layers[-1].output_size == tuple(model(torch.zeros(1, 1, 20, 30)).shape[-2:]) == (18, 11)


def test_output_sizes_are_those_of_a_forward_pass():
    model = nn.Sequential(conv(3, padding=1), nn.MaxPool2d(3, 2, ceil_mode=True), conv(2, stride=2))
    rf = receptive_field(model, (2, 1, 17, 13))  # (N, C, H, W) works too
    x = torch.zeros(2, 1, 17, 13)
    for layer, row in zip(model, rf.layers[1:]):
        x = layer(x)
        assert row.output_size == tuple(x.shape[-2:])


def test_pointwise_layers_pass_through_and_get_rows_only_when_asked():
    model = nn.Sequential(
        conv(3), nn.BatchNorm2d(1), nn.ReLU(), nn.Dropout(0.5), nn.Identity(), nn.LocalResponseNorm(2), conv(3)
    )
    rf = receptive_field(model, (1, 16, 16))
    assert rf.size == (5, 5)
    assert [row.name for row in rf.layers] == ["input", "0", "6"]
    every = receptive_field(model, (1, 16, 16), include_pointwise=True)
    assert [row.name for row in every.layers] == ["input", "0", "1", "2", "3", "4", "5", "6"]
    assert [row.size for row in every.layers[1:]] == [(3, 3)] * 6 + [(5, 5)]


def test_nested_sequentials_are_named_by_path():
    model = nn.Sequential(nn.Sequential(conv(3), nn.ReLU()), nn.Sequential(nn.Sequential(conv(3, stride=2))))
    rf = receptive_field(model, (1, 16, 16))
    assert [row.name for row in rf.layers] == ["input", "0.0", "1.0.0"]
    assert rf.size == (5, 5)
    assert rf.row("1").name == "1.0.0"  # a module's name gives its last row


def test_the_table_stops_at_flatten_and_linear():
    model = nn.Sequential(conv(3), nn.ReLU(), nn.Flatten(), nn.Linear(36, 10), nn.ReLU(), nn.Linear(10, 2))
    rf = receptive_field(model, (1, 8, 8))
    assert rf.stopped_at == "2"
    assert [row.name for row in rf.layers] == ["input", "0"]
    assert rf.size == (3, 3)


def test_a_global_pool_sees_the_whole_input():
    model = nn.Sequential(conv(3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    rf = receptive_field(model, (1, 8, 8))
    pool = rf.row("1")
    assert pool.type == "AdaptiveAvgPool2d"
    assert pool.output_size == (1, 1)
    assert pool.size == (3 + 5, 3 + 5)  # an exact pool with kernel = stride = 6
    assert rf.region(0, 0, layer="1") == Region(0, 0, 8, 8, clipped=False)
    assert rf.stopped_at == "2"


def test_an_evenly_dividing_adaptive_pool_is_an_ordinary_pool():
    rf = receptive_field(nn.Sequential(conv(3), nn.AdaptiveMaxPool2d((2, 3))), (1, 8, 8))
    assert rf.stride == (3, 2)  # 6 / 2 and 6 / 3
    assert rf.size == (3 + 2, 3 + 1)


def test_an_unevenly_dividing_adaptive_pool_ends_the_spatial_part():
    rf = receptive_field(nn.Sequential(conv(3), nn.AdaptiveAvgPool2d(4), nn.Flatten()), (1, 8, 8))
    assert rf.stopped_at == "1"
    assert rf.layers[-1].name == "0"


def test_padding_layers_shift_the_windows():
    rf = receptive_field(nn.Sequential(nn.ZeroPad2d((2, 0, 1, 0)), conv(3)), (1, 8, 8))
    assert rf.padding == (1, 2)  # top 1, left 2
    assert rf.size == (3, 3)


class Functional(nn.Module):
    """The stack conv3(p=1) -> maxpool2 -> relu -> avgpool3(s=1), written with torch.nn.functional."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, 1, 3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.weight, padding=1)
        x = F.max_pool2d(x, 2)
        x = F.relu(x)
        x = F.avg_pool2d(x, kernel_size=3, stride=1)
        x = F.pad(x, (1, 1, 1, 1))
        x = x.mean((2, 3), keepdim=True)
        return torch.flatten(x, 1)


def test_functional_layers_count_like_modules():
    rf = receptive_field(Functional(), (1, 16, 16))
    assert [row.type for row in rf.layers] == ["input", "conv2d", "max_pool2d", "avg_pool2d", "pad", "mean"]
    assert [row.size[0] for row in rf.layers] == [1, 3, 4, 8, 8, 8 + 7 * 2]
    assert rf.row("pad").padding == (1 + 2, 1 + 2)
    assert rf.stopped_at == "flatten"


# ---------------------------------------------------------------------------
# Regions, tables and inputs
# ---------------------------------------------------------------------------


def test_region_maps_a_unit_to_the_input_pixels_it_sees():
    rf = receptive_field(nn.Sequential(conv(3, padding=1), conv(3, stride=2)), (1, 12, 12))
    assert rf.size == (5, 5) and rf.stride == (2, 2) and rf.padding == (1, 1)
    assert rf.region(2, 3) == Region(top=3, left=5, bottom=8, right=10, clipped=False)
    assert rf.region(0, 0) == Region(0, 0, 4, 4, clipped=True)
    assert rf.region(0, 0, clip=False) == Region(-1, -1, 4, 4, clipped=True)
    assert rf.region(0, 0, layer="0") == Region(0, 0, 2, 2, clipped=True)
    assert rf.region(2, 3).height == 5 and rf.region(0, 0).width == 4
    assert rf.center(2, 3) == (5.0, 7.0)


def test_region_refuses_units_outside_the_output():
    rf = receptive_field(nn.Sequential(conv(3)), (1, 8, 8))
    with pytest.raises(ValueError, match=r"unit \(6, 0\) is outside the 6 x 6 output of '0': use 0 <= y < 6"):
        rf.region(6, 0)
    with pytest.raises(ValueError, match="no row is named 'head'"):
        rf.row("head")


def test_tables_render_as_text_html_and_dicts():
    rf = receptive_field(nn.Sequential(conv(3), nn.MaxPool2d(2), conv(3), nn.Flatten()), (1, 12, 12))
    lines = str(rf).splitlines()
    column = lines[0].index("receptive field")
    for line, row in zip(lines[1:], rf.layers):
        assert line.startswith(row.name)
        assert line[column:].startswith(f"{row.size[0]} x {row.size[1]}")
    assert lines[-1] == (
        "receptive field 8 x 8, effective stride 2 x 2, effective padding 0 x 0 on a 12 x 12 input; "
        "the spatial part ends at '3'"
    )
    page = rf._repr_html_()
    assert page.startswith("<table class=\"cnncourse-table\">") and page.count("<tr>") == len(rf.layers) + 2  # header, rows, footer
    assert '<th style="text-align:left">receptive field</th>' in page and "the spatial part ends at" in page
    assert rf.to_rows()[1] == {
        "name": "0", "type": "Conv2d", "output_size": (10, 10), "size": (3, 3),
        "stride": (1, 1), "padding": (0, 0), "note": "",
    }
    assert isinstance(rf, ReceptiveField)


@pytest.mark.parametrize("bad", [(28, 28), (1, 0, 28), (1, 1, 28, 28, 1)])
def test_input_size_must_be_chw_or_nchw(bad):
    with pytest.raises(ValueError, match=r"\(C, H, W\) or \(N, C, H, W\)"):
        receptive_field(nn.Sequential(conv(3)), bad)


def test_too_small_an_input_is_reported():
    with pytest.raises(ValueError, match="input_size large enough"):
        receptive_field(nn.Sequential(conv(5), conv(5)), (1, 6, 6))


def test_the_model_is_left_as_it_was():
    model = nn.Sequential(conv(3), nn.BatchNorm2d(1), nn.Dropout())
    model[2].eval()
    before = model[1].running_mean.clone(), model[0].weight.clone()
    receptive_field(model, (1, 8, 8))
    assert model.training and model[1].training and not model[2].training
    assert torch.equal(model[1].running_mean, before[0]) and torch.equal(model[0].weight, before[1])
    assert model[0].weight.device.type == "cpu"


# ---------------------------------------------------------------------------
# Graphs with several paths
# ---------------------------------------------------------------------------


class TwoPaths(nn.Module):
    """Two 1-channel paths, merged by ``merge``: 'add', 'mul' or 'cat'."""

    def __init__(self, a: nn.Module, b: nn.Module, merge: str = "add") -> None:
        super().__init__()
        self.a, self.b, self.merge = a, b, merge

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.a(x), self.b(x)
        if self.merge == "cat":
            return torch.cat([a, b], dim=1).sum(dim=1, keepdim=True)
        return a * b if self.merge == "mul" else a + b


@pytest.mark.parametrize("merge", ["add", "mul", "cat"])
def test_merging_paths_takes_the_largest_receptive_field(merge):
    model = TwoPaths(conv(3, padding=1), nn.Sequential(conv(3, padding=1), conv(3, padding=1)), merge)
    rf = receptive_field(model, (1, 10, 10))
    assert rf.row(merge).size == (5, 5)
    assert rf.row(merge).padding == (2, 2)
    assert rf.row(merge).type == merge


def test_merging_paths_with_different_strides_is_refused():
    model = TwoPaths(conv(1, stride=2), conv(5))  # both 4 x 4 from 8 x 8, with strides 2 and 1
    with pytest.raises(ValueError, match=r"'add' \(add\) merges paths whose effective strides differ"):
        receptive_field(model, (1, 8, 8))


def test_a_broadcast_gate_is_left_out_of_the_merge():
    gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), conv(1), nn.Sigmoid())  # squeeze-and-excitation
    rf = receptive_field(TwoPaths(conv(3), gate, "mul"), (1, 8, 8))
    assert rf.size == (3, 3)
    assert rf.layers[-1].note == "broadcast input from b.2 left out"


class Shifted(nn.Module):
    """A ResNet-like block whose shortcut is padded on one side: the two paths are centred differently."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(conv(3, padding=1), conv(3, padding=1))
        self.shortcut = nn.Sequential(nn.ZeroPad2d((3, 0, 0, 0)), conv(4))  # sees columns x-3 .. x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(F.pad(x, (0, 0, 1, 2)))


# ---------------------------------------------------------------------------
# Unknown layers
# ---------------------------------------------------------------------------


class Logit(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.logit(x)


class Transpose(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 1, 3, 2)


class Branchy(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if x.sum() > 0 else -x


class Glue(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, x], dim=3)


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (nn.PixelUnshuffle(2), r"layer '1' \(PixelUnshuffle\).*pass pointwise=\[nn.PixelUnshuffle\]"),
        (Logit(), r"layer '1.logit' \(logit\).*pointwise=\[torch.logit\]"),
        (Transpose(), r"layer '1.permute' \(tensor method .permute\(\)\).*pointwise=\['permute'\]"),
        (nn.ConvTranspose2d(1, 1, 2, stride=2), r"'1' \(ConvTranspose2d\) upsamples"),
        (nn.Upsample(scale_factor=2), r"'1' \(Upsample\) upsamples"),
        (Branchy(), r"torch.fx could not trace Sequential"),
        (Glue(), r"concatenates along dimension 3, a spatial axis"),
    ],
)
def test_unknown_layers_are_refused_by_name(layer, message):
    with pytest.raises(TypeError, match=message):
        receptive_field(nn.Sequential(conv(3), layer), (1, 8, 8))


def test_unknown_pointwise_layers_can_be_declared():
    model = nn.Sequential(conv(3), Logit(), nn.PixelUnshuffle(1), conv(3))
    rf = receptive_field(model, (1, 8, 8), pointwise=[torch.logit, nn.PixelUnshuffle])
    assert rf.size == (5, 5)


def test_layers_after_the_spatial_part_are_not_inspected():
    model = nn.Sequential(conv(3), nn.Flatten(), nn.Unflatten(1, (1, 6, 6)), nn.PixelUnshuffle(2))
    assert receptive_field(model, (1, 8, 8)).stopped_at == "1"


# ---------------------------------------------------------------------------
# Empirical check: the input gradient of one unit of an all-ones copy
# ---------------------------------------------------------------------------


def ones_copy(model: nn.Sequential) -> nn.Sequential:
    """Convolutions with all-ones weights and no bias; max pools become average pools (same windows)."""
    layers = []
    for layer in model:
        if isinstance(layer, nn.Conv2d):
            copy = nn.Conv2d(1, 1, layer.kernel_size, layer.stride, layer.padding, layer.dilation, bias=False)
            nn.init.ones_(copy.weight)
        elif isinstance(layer, nn.MaxPool2d):
            copy = nn.AvgPool2d(layer.kernel_size, layer.stride, layer.padding, ceil_mode=layer.ceil_mode)
        else:
            copy = layer
        layers.append(copy)
    return nn.Sequential(*layers).double()


def gradient_support(model: nn.Module, input_size: tuple[int, int], y: int, x: int) -> Region | None:
    """Bounding box of the input pixels with a nonzero gradient of output unit (y, x)."""
    image = torch.ones(1, 1, *input_size, dtype=torch.float64, requires_grad=True)
    model(image)[0, 0, y, x].backward()
    rows, cols = torch.nonzero(image.grad[0, 0], as_tuple=True)
    if len(rows) == 0:
        return None  # a unit that sees only padding
    return Region(int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1, clipped=False)


def random_stack(rng: random.Random) -> tuple[nn.Sequential, tuple[int, int]]:
    """2-5 random convs (non-square, strided, padded, dilated) and pools whose sizes work out."""
    size = (rng.randint(24, 48), rng.randint(24, 48))
    h, w = size
    layers: list[nn.Module] = []
    count = rng.randint(2, 5)
    while len(layers) < count:
        try:
            if rng.random() < 0.6:
                k, s = (rng.randint(1, 5), rng.randint(1, 5)), (rng.choice([1, 1, 2, 3]), rng.choice([1, 1, 2, 3]))
                p, d = (rng.randint(0, 2), rng.randint(0, 2)), (rng.choice([1, 1, 2, 3]), rng.choice([1, 1, 2]))
                h2, w2 = (conv_output_size(n, *axis) for n, axis in zip((h, w), zip(k, s, p, d)))
                layer: nn.Module = nn.Conv2d(1, 1, k, s, p, d)
            else:
                k, s = rng.choice([2, 3]), rng.choice([None, 1, 2])
                p, ceil_mode = rng.randint(0, k // 2), rng.random() < 0.3
                h2, w2 = (pool_output_size(n, k, s, p, ceil_mode=ceil_mode) for n in (h, w))
                pool = nn.MaxPool2d if rng.random() < 0.5 else nn.AvgPool2d
                layer = pool(k, s, p, ceil_mode=ceil_mode)
        except ValueError:
            continue  # does not fit: draw another layer
        if min(h2, w2) >= 3:
            layers.append(layer)
            h, w = h2, w2
    return nn.Sequential(*layers), size


@pytest.mark.parametrize("seed", range(16))
def test_receptive_field_equals_the_gradient_support_of_random_stacks(seed):
    rng = random.Random(seed)
    while True:  # draw until some output unit lies wholly inside the image
        model, size = random_stack(rng)
        rf = receptive_field(model, (1, *size))
        h, w = rf.layers[-1].output_size
        units = [(y, x) for y in range(h) for x in range(w)]
        inside = [u for u in units if not rf.region(*u).clipped]
        if inside:
            break
    copy = ones_copy(model)
    assert tuple(copy(torch.zeros(1, 1, *size, dtype=torch.float64)).shape[-2:]) == (h, w)
    for y, x in {inside[0], inside[len(inside) // 2], inside[-1]}:
        region = rf.region(y, x)
        assert gradient_support(copy, size, y, x) == region, (model, (y, x))
        assert (region.height, region.width) == rf.size
    for y, x in {units[0], units[-1]}:  # at the border the gradient stays within the clipped region
        support, region = gradient_support(copy, size, y, x), rf.region(y, x)
        if support is not None:
            assert region.top <= support.top and support.bottom <= region.bottom
            assert region.left <= support.left and support.right <= region.right


def ones(module: nn.Module) -> nn.Module:
    for parameter in module.parameters():
        nn.init.ones_(parameter)
    return module.double()


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(
            lambda: nn.Sequential(nn.Conv2d(1, 1, 4, padding="same", bias=False)),
            id="even 'same' conv",  # torch pads 1 on the left/top, 2 on the right/bottom
            marks=pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel"),
        ),
        pytest.param(lambda: TwoPaths(conv(3, bias=False), conv(5, dilation=1, bias=False, padding=1)), id="add"),
        pytest.param(
            lambda: TwoPaths(
                nn.Sequential(conv(3, stride=2, padding=1, bias=False), conv(3, padding=1, bias=False)),
                conv(1, stride=2, bias=False),
            ),
            id="residual block with a strided shortcut",
        ),
        pytest.param(lambda: Shifted(), id="paths centred differently"),
    ],
)
def test_receptive_field_equals_the_gradient_support_of_graphs(model):
    model = ones(model())
    rf = receptive_field(model, (1, 20, 20))
    h, w = rf.layers[-1].output_size
    inside = [(y, x) for y in range(h) for x in range(w) if not rf.region(y, x).clipped]
    assert inside
    for y, x in inside[:: max(1, len(inside) // 12)]:
        assert gradient_support(model, (20, 20), y, x) == rf.region(y, x)


def test_paths_centred_differently_merge_to_the_union_of_their_windows():
    rf = receptive_field(Shifted(), (1, 20, 20))
    body, shortcut = rf.row("body"), rf.row("shortcut")
    assert body.size == (5, 5) and body.padding == (2, 2)  # rows y-2 .. y+2, columns x-2 .. x+2
    assert shortcut.size == (4, 4) and shortcut.padding == (1, 3)  # rows y-1 .. y+2, columns x-3 .. x
    assert rf.size == (5, 6) and rf.padding == (2, 3)  # rows y-2 .. y+2, columns x-3 .. x+2


# ---------------------------------------------------------------------------
# Published values: Araujo, Norris & Sim, Distill 2019
# ---------------------------------------------------------------------------
# The Distill article's table "receptive field sizes of popular CNNs" (computed with the
# TF-Slim models at their last convolutional/pooling end point, 224 x 224 input; the same
# numbers are in google-research/receptive_field's RECEPTIVE_FIELD_TABLE.md):
#
#     alexnet_v2     r = 195   j = 32   P = 64    (pool5)
#     vgg_16         r = 212   j = 32   P = 90    (pool5)
#     resnet_v1_50   r = 483   j = 32   P = 239   (block4; P = 241 at 321 x 321)
#     inception_v2   r = 699   j = 32   P = 318   (Mixed_5c)
#
# The table has no Inception v1 (GoogLeNet) row.


def meta(build, **kwargs) -> nn.Module:
    """A torchvision architecture on the meta device: the shapes without the weights."""
    with torch.device("meta"):
        return build(weights=None, **kwargs)


@pytest.fixture(scope="module")
def resnet50() -> nn.Module:
    return meta(torchvision.models.resnet50)


def test_alexnet_matches_the_published_receptive_field():
    alexnet = meta(torchvision.models.alexnet)
    rf = receptive_field(alexnet.features, (3, 224, 224))
    # torchvision's AlexNet is the "one weird trick" variant (64 filters, no LRN), but channel
    # counts and LRN do not move windows: its kernels and strides (11/4, pool 3/2, 5, pool 3/2,
    # 3, 3, 3, pool 3/2) are those of the paper and of TF-Slim's alexnet_v2, hence 195 and 32.
    assert rf.size == (195, 195) and rf.stride == (32, 32)
    # P differs: torchvision pads conv1 by 2 (2 x 1 pixel) where alexnet_v2 uses VALID padding.
    assert rf.padding == (64 + 2, 64 + 2)
    whole = receptive_field(alexnet, (3, 224, 224)).row("features")  # the same rows inside the whole model
    assert (whole.name, whole.size, whole.padding) == ("features.12", rf.size, rf.padding)


def test_vgg16_matches_the_published_receptive_field():
    rf = receptive_field(meta(torchvision.models.vgg16).features, (3, 224, 224))
    assert (rf.size, rf.stride, rf.padding) == ((212, 212), (32, 32), (90, 90))
    assert [row.size[0] for row in rf.layers if row.type == "MaxPool2d"] == [6, 16, 44, 100, 212]


def test_torchvision_resnet50_is_v1_5_with_a_smaller_receptive_field(resnet50):
    # torchvision puts the stride of each downsampling bottleneck in its 3x3 conv (ResNet v1.5):
    # the 3x3 then works at the finer input grid, so blocks 2-4 each lose (3 - 1) * j_in:
    # 483 - 2 * (4 + 8 + 16) = 427.
    row = receptive_field(resnet50, (3, 224, 224)).row("layer4")
    assert (row.size, row.stride, row.padding) == ((427, 427), (32, 32), (213, 213))


def test_resnet50_v1_reproduces_the_published_483():
    model = meta(torchvision.models.resnet50)
    for stage in (model.layer2, model.layer3, model.layer4):  # move the stride to the first 1x1 conv: ResNet v1
        block = stage[0]
        block.conv1.stride, block.conv2.stride = block.conv2.stride, (1, 1)
    rf = receptive_field(model, (3, 224, 224))
    row = rf.row("layer4")
    assert (row.size, row.stride) == ((483, 483), (32, 32))
    # P = 241, not 239: TF-Slim's SAME max pool pads the even 112 x 112 map by 0 on top/left and 1 on
    # bottom/right, torch's MaxPool2d(3, 2, 1) by 1 on each side (one more pixel at j = 2). At 321 x 321,
    # where the map is odd and SAME pads 1 on each side, the published value is also 241.
    assert row.padding == (241, 241)
    assert rf.layers[-1].output_size == (1, 1)  # the global average pool, as an exact 7 x 7 pool


def test_resnet18_by_hand():
    # Stem 11 (j = 4); layer1 adds 4 convs x 2 x 4 = 32; layers 2-4 add 2 x (4 + 3 x 8),
    # 2 x (8 + 3 x 16), 2 x (16 + 3 x 32): 11 + 32 + 56 + 112 + 224 = 435. No published value.
    model = torchvision.models.resnet18(weights=None)  # real CPU weights: the usual path
    rf = receptive_field(model, (3, 224, 224))
    assert rf.row("layer4").size == (435, 435)
    assert rf.row("avgpool").size == (435 + 6 * 32, 435 + 6 * 32)
    assert rf.region(0, 0, layer="avgpool") == Region(0, 0, 224, 224, clipped=True)
    assert rf.stopped_at == "flatten"
    assert receptive_field(meta(torchvision.models.resnet18), (3, 224, 224)) == rf


def test_googlenet():
    googlenet = meta(torchvision.models.googlenet, aux_logits=False, init_weights=False)
    rf = receptive_field(googlenet, (3, 224, 224))
    # torchvision's Inception blocks use a 3x3 conv where the paper has a 5x5 ("a known bug" in
    # torchvision's source, inherited from TF-Slim's inception_v1), so each block adds 2 x j:
    # stem 27 (j = 8), 3a-3b +32, pool +16, 4a-4e +160, 2x2 pool +16, 5a-5b +128 = 379.
    assert rf.row("inception5b").size == (379, 379)
    assert rf.row("inception5b").stride == (32, 32)
    # With the paper's 5x5 convs every block adds 4 x j instead: 699, the value Distill publishes
    # for inception_v2, whose pairs of 3x3 convs span 5 x 5 too. (The paper's 3x3/2 pool4 would
    # give 715; torchvision, like TF-Slim, pools 2x2 there.)
    for name, module in googlenet.named_modules():
        if name.endswith("branch3.1.conv"):
            module.kernel_size, module.padding = (5, 5), (2, 2)
            module.weight = nn.Parameter(torch.empty(module.out_channels, module.in_channels, 5, 5, device="meta"))
    assert receptive_field(googlenet, (3, 224, 224)).row("inception5b").size == (699, 699)


def test_meta_runs_pass_batch_norm_through_and_restore_it():
    from cnncourse.arithmetic import _batch_norm_passes_through

    model = nn.Sequential(conv(3), nn.BatchNorm2d(1), nn.ReLU()).eval()
    x = torch.randn(2, 1, 6, 6)
    expected = model(x)
    with _batch_norm_passes_through(model):
        assert torch.equal(model[1](x), x)
    assert "forward" not in vars(model[1])
    torch.testing.assert_close(model(x), expected)
