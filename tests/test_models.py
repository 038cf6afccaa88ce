"""The architecture line: registry, faithfulness to torchvision and to the papers, compact models."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnncourse import receptive_field, summary
from cnncourse.models import (
    FCN,
    BasicBlock,
    Bottleneck,
    CifarResNet,
    GoogLeNetOutputs,
    Inception,
    ResNet,
    SqueezeExcitation,
    UNet,
    ZeroPadShortcut,
    bilinear_kernel,
    create_model,
    googlenet,
    lenet5,
    list_models,
    register_model,
    resnet20,
    squeeze_excitation,
)

try:  # tests/ may or may not be a package
    from .meta_models import on_meta
except ImportError:
    from meta_models import on_meta

torchvision = pytest.importorskip("torchvision")

IMAGENET = [
    "alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "googlenet",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "se_resnet18", "se_resnet34", "se_resnet50", "se_resnet101", "se_resnet152",
]  # fmt: skip
COMPACT = [
    "lenet5", "alexnet_small", "vgg_small", "googlenet_small",
    "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
    "plain20", "plain32", "plain44", "plain56", "se_resnet20", "simple_cnn",
]  # fmt: skip
SEGMENTATION = ["fcn", "unet"]  # canvases in, 11 class scores per pixel out
DETECTION = ["centernet"]  # canvases in, boxes out (tests/test_detection.py)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def torchvision_on_meta(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GoogLeNet's warning about its initialisation
        return getattr(torchvision.models, name)(**kwargs)


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------


def test_registry_holds_exactly_the_architecture_line():
    # a newly registered model must be added to one of the lists, so that the tests below cover it
    assert sorted(list_models()) == sorted(IMAGENET + COMPACT + SEGMENTATION + DETECTION)
    assert list_models("vgg1*") == ["vgg11", "vgg13", "vgg16", "vgg19"]


def test_unknown_name_lists_the_models_and_suggests_the_closest():
    with pytest.raises(ValueError, match=r"did you mean 'resnet18'.*registered models are: .*vgg_small"):
        create_model("resnet19")


def test_registering_a_name_twice_is_refused():
    def resnet18(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
        return nn.Identity()

    with pytest.raises(ValueError, match="already registered"):
        register_model(resnet18)
    assert on_meta("resnet18", num_classes=7, in_channels=2).fc.out_features == 7  # the original is still there


# ---------------------------------------------------------------------------
# ImageNet configurations: equal to torchvision, layer for layer
# ---------------------------------------------------------------------------

PAIRS = [
    ("alexnet", {}, "alexnet", {}),
    *[(f"vgg{d}", {}, f"vgg{d}", {}) for d in (11, 13, 16, 19)],
    *[(f"vgg{d}", {"batch_norm": True}, f"vgg{d}_bn", {}) for d in (11, 13, 16, 19)],
    ("googlenet", {}, "googlenet", {"aux_logits": False, "init_weights": True}),
    ("googlenet", {"aux_logits": True}, "googlenet", {"aux_logits": True, "init_weights": True}),
    *[(f"resnet{d}", {}, f"resnet{d}", {}) for d in (18, 34, 50, 101, 152)],
]


@pytest.mark.parametrize(("ours", "kwargs", "theirs", "their_kwargs"), PAIRS, ids=lambda v: str(v) if v else "")
def test_imagenet_models_match_torchvision_parameter_for_parameter(ours, kwargs, theirs, their_kwargs):
    model, reference = on_meta(ours, **kwargs), torchvision_on_meta(theirs, **their_kwargs)
    assert n_params(model) == n_params(reference)
    # same names and shapes, buffers included: torchvision's checkpoints load into ours
    ours_state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours_state == {k: tuple(v.shape) for k, v in reference.state_dict().items()}


def test_published_parameter_counts():
    # torchvision's metadata (offline), and the papers
    weights = torchvision.models
    assert n_params(on_meta("resnet50")) == weights.ResNet50_Weights.IMAGENET1K_V1.meta["num_params"] == 25_557_032
    assert n_params(on_meta("googlenet")) == weights.GoogLeNet_Weights.IMAGENET1K_V1.meta["num_params"] == 6_624_904
    assert round(n_params(on_meta("vgg16")) / 1e6) == 138  # "138 million parameters"
    # The paper's GoogLeNet (5 x 5 branch, no batch norm): 6,990,272 weights, 8,280 biases. Table 1 of
    # Szegedy et al. counts weights in units of 1024 and sums to 6797.7K = 6.96M.
    paper = on_meta("googlenet", batch_norm=False, branch3_kernel_size=5)
    weights_only = sum(p.numel() for name, p in paper.named_parameters() if name.endswith("weight"))
    assert (weights_only, n_params(paper)) == (6_990_272, 6_998_552)
    assert abs(weights_only / 1024 - 6797.7) / 6797.7 < 0.005


@pytest.mark.parametrize("name", IMAGENET)
def test_imagenet_builders_honour_num_classes_and_in_channels(name):
    model = on_meta(name, num_classes=7, in_channels=2)
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert layers[0].in_channels == 2 and layers[-1].out_features == 7
    if name in ("alexnet", "vgg11", "googlenet", "resnet18", "se_resnet50"):  # one per family: run it
        with torch.no_grad():
            assert model.eval()(torch.zeros(1, 2, 224, 224, device="meta")).shape == (1, 7)


@pytest.mark.parametrize("name", ["googlenet", "resnet18"])
def test_forward_equals_torchvision_with_the_same_weights(name):
    # strides, paddings, pooling modes and the order of operations, not just the shapes
    # (summary's MACs, equal to torchvision's in test_summary.py, check every layer's output size too)
    torch.manual_seed(0)
    options = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
    reference = getattr(torchvision.models, name)(num_classes=10, **options).eval()
    with torch.device("meta"):
        model = create_model(name, num_classes=10)
    model.load_state_dict(reference.state_dict(), assign=True)  # torchvision's tensors, in our modules
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), reference(x))


def test_bottleneck_equals_torchvisions():
    torch.manual_seed(0)
    downsample = nn.Sequential(nn.Conv2d(256, 512, 1, stride=2, bias=False), nn.BatchNorm2d(512))
    reference = torchvision.models.resnet.Bottleneck(256, 128, stride=2, downsample=downsample).eval()
    block = Bottleneck(256, 128, stride=2, downsample=downsample).eval()
    block.load_state_dict(reference.state_dict())
    for m in reference.modules():  # non-trivial batch norm statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1), m.running_var.uniform_(0.5, 2), m.weight.data.uniform_(0.5, 2)
    block.load_state_dict(reference.state_dict())
    x = torch.randn(2, 256, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(block(x), reference(x))


def test_resnet_v1_puts_the_stride_in_the_first_1x1():
    v15, v1 = on_meta("resnet50"), on_meta("resnet50", stride_in_1x1=True)
    first = v15.layer2[0]
    assert (first.conv1.stride, first.conv2.stride) == ((1, 1), (2, 2))  # torchvision: ResNet v1.5
    first = v1.layer2[0]
    assert (first.conv1.stride, first.conv2.stride) == ((2, 2), (1, 1))  # the paper
    assert n_params(v1) == n_params(v15)
    with pytest.raises(ValueError, match="BasicBlock has no 1 x 1"):
        ResNet(BasicBlock, [2, 2, 2, 2], stride_in_1x1=True)


# ---------------------------------------------------------------------------
# Squeeze-and-excitation
# ---------------------------------------------------------------------------


def se_parameters(channels: list[int], r: int) -> int:
    """2 C^2 / r weights per block (Hu et al. 2018, section 4), plus the C / r + C biases."""
    return sum(2 * c * c // r + c // r + c for c in channels)


STAGES = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_se_adds_the_parameters_the_formula_predicts(depth):
    expansion = 4 if depth >= 50 else 1
    channels = [w * expansion for w, n in zip((64, 128, 256, 512), STAGES[depth]) for _ in range(n)]
    # the models of the num_classes test: the head cancels out
    added = n_params(on_meta(f"se_resnet{depth}", num_classes=7, in_channels=2))
    added -= n_params(on_meta(f"resnet{depth}", num_classes=7, in_channels=2))
    assert added == se_parameters(channels, 16)
    if depth == 50:
        added = n_params(on_meta("se_resnet50", reduction=8)) - n_params(on_meta("resnet50"))
        assert added == se_parameters(channels, 8)


def test_se_resnet50_has_the_papers_28_million_parameters():
    count = n_params(on_meta("se_resnet50"))
    assert count == 28_088_024  # Hu et al. 2018: ~28.1M, about 10% more than ResNet-50's 25.6M
    assert round(count / 1e6, 2) == 28.09


def test_se_resnet20_adds_the_formula_too():
    channels = [16] * 3 + [32] * 3 + [64] * 3
    assert n_params(create_model("se_resnet20")) - n_params(resnet20()) == se_parameters(channels, 16) == 2373


def test_squeeze_excitation_rescales_each_channel_by_a_gate():
    torch.manual_seed(0)
    se = SqueezeExcitation(32, reduction=4)
    x = torch.randn(3, 32, 5, 5)
    squeezed = x.mean(dim=(2, 3))  # N x C
    hidden = F.relu(F.linear(squeezed, se.fc1.weight.flatten(1), se.fc1.bias))  # N x C/r
    gate = torch.sigmoid(F.linear(hidden, se.fc2.weight.flatten(1), se.fc2.bias))  # N x C
    torch.testing.assert_close(se(x), x * gate[:, :, None, None])
    assert n_params(se) == 2 * 32 * 32 // 4 + 32 // 4 + 32
    with pytest.raises(ValueError, match="no hidden unit"):
        SqueezeExcitation(8, reduction=16)


def test_se_is_a_plug_in_of_the_block():
    block = BasicBlock(16, 16, attention=squeeze_excitation(4))
    assert isinstance(block.attention, SqueezeExcitation)
    assert BasicBlock(16, 16).attention is None


# ---------------------------------------------------------------------------
# Compact models
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", COMPACT)
def test_compact_models_give_the_right_shapes(name):
    torch.manual_seed(0)
    assert create_model(name).eval()(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    # CIFAR-sized colour images; the models with a size-dependent head are told the size
    size = {"image_size": 32} if name in ("lenet5", "simple_cnn") else {}
    model = create_model(name, num_classes=7, in_channels=3, **size).eval()
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 7)


@pytest.mark.parametrize("name", [n for n in COMPACT if n != "resnet110"])
def test_gradients_reach_every_parameter(name):
    torch.manual_seed(0)
    model = create_model(name)
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    F.cross_entropy(model(x), y).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    grads = [p.grad.abs().sum() for p in model.parameters()]
    assert sum(g > 0 for g in grads) >= 0.9 * len(grads)  # (a ReLU may be dead for all four images)
    optimizer.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_cifar_resnets_have_the_papers_parameter_counts():
    # He et al. 2016, table 6 (CIFAR-10, 3 input channels, option A shortcuts)
    for depth, millions in [(20, 0.27), (32, 0.46), (44, 0.66), (56, 0.85), (110, 1.7)]:
        model = on_meta(f"resnet{depth}", in_channels=3)
        assert round(n_params(model) / 1e6, 2 if depth < 110 else 1) == millions, depth
    for depth in (20, 32, 44, 56):  # option A shortcuts have no parameters: plain and residual nets are the same size
        assert n_params(on_meta(f"plain{depth}")) == n_params(on_meta(f"resnet{depth}"))
    assert n_params(resnet20(in_channels=3)) == 269_722
    # 6n + 2 layers with weights
    convs_and_fc = [m for m in resnet20().modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(convs_and_fc) == 20
    # option B adds two 1 x 1 projections with batch norm
    assert n_params(resnet20(shortcut="B")) - n_params(resnet20()) == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)


def test_option_a_shortcut_subsamples_and_pads_with_zeros():
    x = torch.randn(2, 16, 8, 8)
    out = ZeroPadShortcut(16, 32, 2)(x)
    torch.testing.assert_close(out[:, :16], x[:, :, ::2, ::2])
    assert out.shape == (2, 32, 4, 4) and not out[:, 16:].any()


def test_plain_networks_have_no_shortcuts():
    plain, residual = create_model("plain20"), create_model("resnet20")
    assert not any(isinstance(m, ZeroPadShortcut) for m in plain.modules())
    assert all(not b.residual for b in plain.modules() if isinstance(b, BasicBlock))
    # with the residual branch switched off (last batch norm zero), a residual block passes relu(x) on; a plain one 0
    x = torch.randn(2, 16, 28, 28)
    for model, expected in [(residual, F.relu(x)), (plain, torch.zeros_like(x))]:
        block = model.layer1[0].eval()
        nn.init.zeros_(block.bn2.weight)
        with torch.no_grad():
            torch.testing.assert_close(block(x), expected)


def test_cifar_resnet_checks_its_depth_and_widths():
    with pytest.raises(ValueError, match="6n \\+ 2"):
        CifarResNet(21)
    assert n_params(on_meta("resnet20", widths=(8, 16, 32))) < n_params(on_meta("resnet20")) / 3


def test_lenet5_layers_have_the_expected_parameters():
    model = lenet5()
    counts = {name: n_params(m) for name, m in [*model.features.named_children(), *model.classifier.named_children()]}
    # C1: 6 (25 + 1); C3 fully connected: 16 (6 * 25 + 1); C5: 120 (16 * 25 + 1); F6: 84 (120 + 1); output: 10 (84 + 1)
    assert {k: v for k, v in counts.items() if v} == {"c1": 156, "c3": 2416, "c5": 48120, "f6": 10164, "output": 850}
    assert lenet5(activation="relu", pooling="max").features.s2.__class__ is nn.MaxPool2d
    with pytest.raises(ValueError, match="image_size 28"):
        lenet5(image_size=64)


def test_googlenet_auxiliary_heads_run_in_training_only():
    with torch.device("meta"):
        model = googlenet(num_classes=5, aux_logits=True)
        x = torch.zeros(2, 3, 224, 224)
        out = model.train()(x)
        assert isinstance(out, GoogLeNetOutputs) and [t.shape for t in out] == [(2, 5)] * 3
        assert model.eval()(x).shape == (2, 5)
    assert on_meta("googlenet").aux1 is None


def test_inception_concatenates_its_four_branches():
    block = Inception(192, 64, 96, 128, 16, 32, 32)  # inception (3a)
    assert block(torch.zeros(1, 192, 28, 28)).shape == (1, 64 + 128 + 32 + 32, 28, 28)
    five = Inception(192, 64, 96, 128, 16, 32, 32, branch3_kernel_size=5, batch_norm=False)
    assert five.branch3[1].conv.kernel_size == (5, 5) and five.branch3[1].conv.bias is not None


# ---------------------------------------------------------------------------
# Segmentation models
# ---------------------------------------------------------------------------

SEGMENTER_OPTIONS = [
    ("fcn", {}), ("fcn", {"upsampling": "transposed"}), ("fcn", {"widths": (16, 32, 64, 128)}),
    ("unet", {}), ("unet", {"upsampling": "bilinear"}), ("unet", {"widths": (16, 32, 64, 128)}),
    ("unet", {"batch_norm": False}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "kwargs"), SEGMENTER_OPTIONS, ids=lambda v: str(v) if v else "")
def test_segmenters_map_images_to_scores_of_every_pixel(name, kwargs):
    torch.manual_seed(0)
    model = create_model(name, **kwargs).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 1, 64, 64)).shape == (2, 11, 64, 64)
        assert model(torch.rand(1, 1, 37, 50)).shape == (1, 11, 37, 50)  # sizes that do not halve evenly
    other = create_model(name, num_classes=4, in_channels=3, **kwargs).eval()
    with torch.no_grad():
        assert other(torch.rand(1, 3, 32, 48)).shape == (1, 4, 32, 48)


@pytest.mark.parametrize("name", SEGMENTATION)
def test_gradients_reach_every_segmenter_parameter(name):
    torch.manual_seed(0)
    model = create_model(name)
    x, y = torch.rand(2, 1, 32, 32), torch.randint(0, 11, (2, 32, 32))
    F.cross_entropy(model(x), y).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", SEGMENTATION)
def test_receptive_field_works_on_the_encoder_and_refuses_the_upsampling(name):
    model = create_model(name)
    rf = receptive_field(model.encoder, (1, 64, 64))
    assert rf.stride == (16, 16) and rf.size[0] > 35  # one unit of the bottom sees a whole item
    with pytest.raises(TypeError, match="upsamples.*receptive_field\\(model.encoder"):
        receptive_field(model, (1, 64, 64))


@pytest.mark.parametrize("name", SEGMENTATION)
def test_summary_counts_the_segmenters(name):
    model = create_model(name)
    table = summary(model, (1, 1, 64, 64))
    assert table.output_shape == (1, 11, 64, 64)
    assert table.total_params == n_params(model) and table.total_macs > 10**7
    assert table.receptive_field is None  # the whole model upsamples: no receptive field column


def test_the_fcn_classifier_is_a_linear_layer_at_every_position():
    torch.manual_seed(0)
    model = FCN(widths=(8, 16)).eval()
    scores = model.classifier[-1]  # the 1 x 1 convolution
    linear = nn.Linear(scores.in_channels, scores.out_channels)
    linear.weight.data.copy_(scores.weight.flatten(1))
    linear.bias.data.copy_(scores.bias)
    features = torch.randn(2, scores.in_channels, 5, 7)
    with torch.no_grad():
        per_pixel = linear(features.movedim(1, -1)).movedim(-1, 1)
        torch.testing.assert_close(scores(features), per_pixel)


def test_bilinear_kernel_makes_a_transposed_convolution_interpolate():
    up = nn.ConvTranspose2d(3, 3, 8, stride=4, padding=2, bias=False)
    up.weight.data.copy_(bilinear_kernel(3, 4))
    x = torch.rand(1, 3, 6, 6)
    with torch.no_grad():
        ours = up(x)
    reference = F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)
    # equal inside; at the border the transposed convolution fades to zero, interpolation repeats the edge
    torch.testing.assert_close(ours[..., 2:-2, 2:-2], reference[..., 2:-2, 2:-2])
    model = FCN(upsampling="transposed")
    assert model.factor == 16 and model.upsample.weight.shape == (11, 11, 32, 32)


def test_unet_skips_carry_the_encoder_features_to_the_decoder():
    model = UNet(widths=(4, 8, 16)).eval()
    assert [type(m).__name__ for m in model.encoder] == ["DoubleConv", "Down", "Down"]
    assert [up.conv[0].in_channels for up in model.decoder] == [16, 8]  # twice the width: skip and upsampled
    with pytest.raises(ValueError, match="at least two stages"):
        UNet(widths=(8,))
    with pytest.raises(ValueError, match="'transposed' or 'bilinear'"):
        UNet(upsampling="nearest")
    with pytest.raises(ValueError, match="'bilinear' or 'transposed'"):
        FCN(upsampling="nearest")
