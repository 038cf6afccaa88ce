"""A small, configurable CNN for the training chapters (7-10).

Blocks of 3x3 convolution, optional batch normalization, ReLU and 2x2 max pooling,
then a flatten-dropout-linear head. The two halves are named ``features`` and
``classifier`` so that transfer learning can freeze one and replace the other.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import nn


def simple_cnn(
    num_classes: int = 10,
    in_channels: int = 1,
    *,
    widths: Sequence[int] = (32, 64),
    image_size: int = 28,
    batch_norm: bool = True,
    dropout: float = 0.0,
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
) -> nn.Sequential:
    """Build ``features`` (one conv block per entry of ``widths``) and ``classifier``.

    Each block halves the height and width, so ``image_size`` must be divisible by
    ``2 ** len(widths)``. With ``mean`` and ``std`` the network standardises its own
    input (a ``torchvision.transforms.v2.Normalize`` as its first layer), so it can be
    fed the [0, 1] tensors of ``cnncourse.data`` directly.
    """
    widths = tuple(widths)
    if not widths or min(widths) < 1:
        raise ValueError(f"widths must be a non-empty sequence of positive channel counts, got {widths}")
    cells = image_size // 2 ** len(widths)
    if cells < 1 or image_size % 2 ** len(widths):
        raise ValueError(
            f"image_size {image_size} is not divisible by 2 ** {len(widths)} (one 2x2 pooling per block): "
            f"use fewer widths or an image size that is a multiple of {2 ** len(widths)}"
        )
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout is a probability in [0, 1), got {dropout}")
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std (to standardise the input) or neither")

    features: list[tuple[str, nn.Module]] = []
    if mean is not None:
        from torchvision.transforms import v2  # imported here: torchvision takes seconds to import

        mean_, std_ = ([float(v)] * in_channels if isinstance(v, (int, float)) else list(v) for v in (mean, std))
        features.append(("normalize", v2.Normalize(mean=mean_, std=std_)))
    channels = in_channels
    for i, width in enumerate(widths, start=1):
        features.append((f"conv{i}", nn.Conv2d(channels, width, 3, padding=1, bias=not batch_norm)))
        if batch_norm:
            features.append((f"bn{i}", nn.BatchNorm2d(width)))
        features += [(f"relu{i}", nn.ReLU(inplace=True)), (f"pool{i}", nn.MaxPool2d(2))]
        channels = width

    classifier: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
    if dropout:
        classifier.append(("dropout", nn.Dropout(dropout)))
    classifier.append(("fc", nn.Linear(channels * cells * cells, num_classes)))
    return nn.Sequential(
        OrderedDict(features=nn.Sequential(OrderedDict(features)), classifier=nn.Sequential(OrderedDict(classifier)))
    )
