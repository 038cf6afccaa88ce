import pytest
import torch
from torch import nn

from cnncourse.models import Standardize, simple_cnn


def test_shapes_and_named_halves():
    model = simple_cnn(num_classes=7, in_channels=3, widths=(8, 16, 32), image_size=32)
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 7)
    assert model.features(torch.rand(2, 3, 32, 32)).shape == (2, 32, 4, 4)
    assert isinstance(model.classifier.fc, nn.Linear) and model.classifier.fc.in_features == 32 * 4 * 4


def test_default_parameter_count():
    # conv1 1*32*9, bn1 2*32, conv2 32*64*9, bn2 2*64, fc 64*7*7*10 + 10
    expected = 288 + 64 + 18432 + 128 + 31360 + 10
    assert sum(p.numel() for p in simple_cnn().parameters()) == expected


def test_options_add_and_remove_layers():
    plain = simple_cnn(batch_norm=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert plain.features.conv1.bias is not None
    assert simple_cnn().features.conv1.bias is None  # batch norm's shift replaces the bias
    assert isinstance(simple_cnn(dropout=0.3).classifier.dropout, nn.Dropout)
    assert not hasattr(simple_cnn().classifier, "dropout")


def test_norm_layer_replaces_batch_norm():
    model = simple_cnn(widths=(8, 16), norm_layer=lambda c: nn.GroupNorm(4, c))
    assert isinstance(model.features.norm1, nn.GroupNorm) and model.features.norm2.num_channels == 16
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert model.features.conv1.bias is None  # the norm's shift replaces the bias
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    # a single image in training mode: group norm needs no batch
    assert model.train()(torch.rand(1, 1, 28, 28)).shape == (1, 10)
    with pytest.raises(TypeError, match="nn.Module"):
        simple_cnn(norm_layer=lambda c: c)


def test_deep_plain_blocks_and_other_activations():
    model = simple_cnn(widths=(8, 16), convs_per_block=3, batch_norm=False, activation=nn.Tanh)
    convs = [name for name, m in model.features.named_children() if isinstance(m, nn.Conv2d)]
    assert convs == ["conv1_1", "conv1_2", "conv1_3", "conv2_1", "conv2_2", "conv2_3"]
    assert isinstance(model.features.act2_3, nn.Tanh) and not any(isinstance(m, nn.ReLU) for m in model.modules())
    assert model.features.conv1_2.in_channels == 8 and model.features.conv2_1.in_channels == 8
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    with_bn = simple_cnn(widths=(8, 16), convs_per_block=2)
    assert isinstance(with_bn.features.bn2_2, nn.BatchNorm2d) and isinstance(with_bn.features.relu1_1, nn.ReLU)
    # the default keeps its names: checkpoints of earlier chapters still load
    assert list(simple_cnn(widths=(8, 16)).features.state_dict()) == [
        "conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked",
        "conv2.weight", "bn2.weight", "bn2.bias", "bn2.running_mean", "bn2.running_var", "bn2.num_batches_tracked",
    ]
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="convs_per_block"):
            simple_cnn(convs_per_block=bad)
    with pytest.raises(TypeError, match="activation"):
        simple_cnn(activation=lambda: "tanh")


def test_normalize_standardises_the_input():
    model = simple_cnn(mean=0.5, std=0.25)
    x = torch.full((1, 1, 28, 28), 0.75)
    torch.testing.assert_close(model.features.normalize(x), torch.ones_like(x))
    rgb = simple_cnn(in_channels=3, mean=(0.4, 0.5, 0.6), std=(0.2, 0.2, 0.2), image_size=32)
    assert rgb(torch.rand(1, 3, 32, 32)).shape == (1, 10)


def test_standardize_matches_torchvision_normalize():
    from torchvision.transforms import v2

    mean, std = [0.4, 0.5, 0.6], [0.2, 0.3, 0.25]
    x = torch.rand(4, 3, 8, 8)
    torch.testing.assert_close(Standardize(mean, std)(x), v2.Normalize(mean, std)(x))
    torch.testing.assert_close(Standardize(mean, std)(x[0]), v2.Normalize(mean, std)(x[0]))  # one image, (C, H, W)
    torch.testing.assert_close(Standardize(0.5, 0.25)(x), v2.Normalize([0.5] * 3, [0.25] * 3)(x))


def test_standardize_keeps_its_statistics_in_the_state_dict():
    model = simple_cnn(mean=0.3, std=0.4)
    state = model.state_dict()
    assert torch.equal(state["features.normalize.mean"], torch.tensor([[[0.3]]]))
    assert not any(p is model.features.normalize.std for p in model.parameters())  # a buffer: nothing learns it
    other = simple_cnn(mean=0.0, std=1.0)
    other.load_state_dict(state)  # the statistics come with the weights
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(other.eval()(x), model.eval()(x))
    assert "mean=[0.3], std=[0.4]" in repr(model.features.normalize)
    assert model.to(torch.float64).features.normalize.mean.dtype == torch.float64  # follows the model


@pytest.mark.parametrize(
    ("mean", "std", "message"),
    [(0.5, 0.0, "positive"), (0.5, -1.0, "positive"), (float("nan"), 1.0, "finite"), ([0.1, 0.2], [1, 1, 1], "one per")],
)
def test_standardize_rejects_bad_statistics(mean, std, message):
    with pytest.raises(ValueError, match=message):
        Standardize(mean, std)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_size": 30}, "not divisible"),
        ({"widths": ()}, "widths"),
        ({"dropout": 1.0}, "dropout"),
        ({"mean": 0.5}, "both mean and std"),
        ({"mean": (0.5, 0.5), "std": (0.2, 0.2)}, "one value per input channel"),
    ],
)
def test_bad_configurations_say_what_to_change(kwargs, message):
    with pytest.raises(ValueError, match=message):
        simple_cnn(**kwargs)
