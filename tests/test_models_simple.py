import pytest
import torch
from torch import nn

from cnncourse.models import simple_cnn


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


def test_normalize_standardises_the_input():
    model = simple_cnn(mean=0.5, std=0.25)
    x = torch.full((1, 1, 28, 28), 0.75)
    torch.testing.assert_close(model.features.normalize(x), torch.ones_like(x))
    rgb = simple_cnn(in_channels=3, mean=(0.4, 0.5, 0.6), std=(0.2, 0.2, 0.2), image_size=32)
    assert rgb(torch.rand(1, 3, 32, 32)).shape == (1, 10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_size": 30}, "not divisible"),
        ({"widths": ()}, "widths"),
        ({"dropout": 1.0}, "dropout"),
        ({"mean": 0.5}, "both mean and std"),
    ],
)
def test_bad_configurations_say_what_to_change(kwargs, message):
    with pytest.raises(ValueError, match=message):
        simple_cnn(**kwargs)
