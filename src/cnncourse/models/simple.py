"""A small, configurable CNN for the training chapters (7-10).

Blocks of 3x3 convolution, optional normalization (batch normalization by default,
or any layer ``norm_layer`` builds), ReLU and 2x2 max pooling, then a
flatten-dropout-linear head. The two halves are named ``features`` and
``classifier`` so that transfer learning can freeze one and replace the other.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
from torch import nn


class Standardize(nn.Module):
    """Standardise each channel: ``(x - mean) / std``, with ``mean`` and ``std`` fixed.

    It computes what ``torchvision.transforms.v2.Normalize`` computes, as a layer
    whose statistics are *buffers*: they are saved in the model's ``state_dict``
    (a checkpoint carries the scaling its weights were trained with), they move
    with ``model.to(device)``, and no optimizer touches them. It needs nothing
    beyond torch.

    Args:
        mean: One value per channel (or one for all of them).
        std: One positive value per channel (or one for all of them).

    Shape:
        Input ``(N, C, H, W)`` or ``(C, H, W)``; output the same.

    Example:
        >>> layer = Standardize(mean=[0.5], std=[0.25])
        >>> layer(torch.full((1, 1, 2, 2), 0.75)).flatten().tolist()
        [1.0, 1.0, 1.0, 1.0]
    """

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float]) -> None:
        super().__init__()
        mean_, std_ = (torch.as_tensor(v, dtype=torch.float32).flatten() for v in (mean, std))
        if mean_.numel() != std_.numel() and min(mean_.numel(), std_.numel()) != 1:
            raise ValueError(f"mean has {mean_.numel()} values and std {std_.numel()}: give one per channel")
        if not bool((std_ > 0).all()) or not bool(torch.isfinite(mean_).all()):
            raise ValueError(f"std must be positive and mean finite, got mean={mean_.tolist()}, std={std_.tolist()}")
        # shaped (C, 1, 1) so that they broadcast over the height and width of (N, C, H, W) or (C, H, W)
        self.register_buffer("mean", mean_[:, None, None])
        self.register_buffer("std", std_[:, None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        def show(t: torch.Tensor) -> str:
            return "[" + ", ".join(f"{v:.4g}" for v in t.flatten().tolist()) + "]"

        return f"mean={show(self.mean)}, std={show(self.std)}"


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
    norm_layer: Callable[[int], nn.Module] | None = None,
    convs_per_block: int = 1,
    activation: Callable[[], nn.Module] | None = None,
) -> nn.Sequential:
    """Build ``features`` (one conv block per entry of ``widths``) and ``classifier``.

    Each block halves the height and width, so ``image_size`` must be divisible by
    ``2 ** len(widths)``. With ``mean`` and ``std`` the network standardises its own
    input (a :class:`Standardize` layer named ``normalize`` comes first), so it can be
    fed the [0, 1] tensors of ``cnncourse.data`` directly, and its checkpoints carry
    the statistics.

    Args:
        num_classes: Outputs of the last linear layer.
        in_channels: Channels of the input images.
        widths: Output channels of each convolution block.
        image_size: Height and width of the input.
        batch_norm: A ``BatchNorm2d`` (named ``bn1``, ``bn2``, ...) after each
            convolution, whose bias it replaces.
        dropout: Dropout probability before the linear layer (0: no dropout layer).
        mean: The input's per-channel mean, for a ``Standardize`` layer.
        std: The input's per-channel standard deviation.
        norm_layer: Builds the normalization after each convolution from its
            channel count, instead of batch normalization (the layers are named
            ``norm1``, ``norm2``, ...; ``batch_norm`` is then ignored), e.g.
            ``lambda c: nn.GroupNorm(4, c)``.
        convs_per_block: Convolutions (each with its normalization and
            activation) before each pooling; with more than one, the layers of
            block ``i`` are named ``conv{i}_1``, ``conv{i}_2``, ... (and
            ``bn{i}_1``, ``relu{i}_1``, ...), for deep plain networks.
        activation: Builds the activation after each convolution, e.g.
            ``nn.Tanh``; its layers are named ``act1``, ``act2``, ... Default:
            ``nn.ReLU(inplace=True)``, named ``relu1``, ``relu2``, ...

    Example:
        >>> model = simple_cnn(widths=(8, 16), norm_layer=lambda c: nn.GroupNorm(4, c))
        >>> type(model.features.norm1).__name__, model.features.norm1.num_groups
        ('GroupNorm', 4)
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
    if isinstance(convs_per_block, bool) or not isinstance(convs_per_block, int) or convs_per_block < 1:
        raise ValueError(f"convs_per_block must be an int >= 1, got {convs_per_block!r}")

    features: list[tuple[str, nn.Module]] = []
    if mean is not None:
        mean_, std_ = ([float(v)] * in_channels if isinstance(v, (int, float)) else list(v) for v in (mean, std))
        if not len(mean_) == len(std_) == in_channels:
            raise ValueError(f"mean and std need one value per input channel ({in_channels}), got {mean} and {std}")
        features.append(("normalize", Standardize(mean_, std_)))
    channels = in_channels
    normalized = batch_norm or norm_layer is not None
    for i, width in enumerate(widths, start=1):
        for j in range(1, convs_per_block + 1):
            tag = f"{i}" if convs_per_block == 1 else f"{i}_{j}"  # conv1, or conv1_1, conv1_2, ...
            features.append((f"conv{tag}", nn.Conv2d(channels, width, 3, padding=1, bias=not normalized)))
            if norm_layer is not None:
                layer = norm_layer(width)
                if not isinstance(layer, nn.Module):
                    raise TypeError(f"norm_layer({width}) must return an nn.Module, got {type(layer).__name__}")
                features.append((f"norm{tag}", layer))
            elif batch_norm:
                features.append((f"bn{tag}", nn.BatchNorm2d(width)))
            if activation is None:
                features.append((f"relu{tag}", nn.ReLU(inplace=True)))
            else:
                act = activation()
                if not isinstance(act, nn.Module):
                    raise TypeError(f"activation() must return an nn.Module, got {type(act).__name__}")
                features.append((f"act{tag}", act))
            channels = width
        features.append((f"pool{i}", nn.MaxPool2d(2)))

    classifier: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
    if dropout:
        classifier.append(("dropout", nn.Dropout(dropout)))
    classifier.append(("fc", nn.Linear(channels * cells * cells, num_classes)))
    return nn.Sequential(
        OrderedDict(features=nn.Sequential(OrderedDict(features)), classifier=nn.Sequential(OrderedDict(classifier)))
    )
