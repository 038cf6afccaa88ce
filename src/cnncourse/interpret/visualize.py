"""Feature visualization: optimise an image until a part of the network responds to it strongly.

Olah, Mordvintsev and Schubert, "Feature Visualization", Distill 2017
(doi:10.23915/distill.00007), lay out what can be maximised; the five objectives
here are theirs:

* :class:`Neuron`: one unit, ``layer[n, c, y, x]``;
* :class:`Channel`: one feature map, averaged over positions, ``layer[n, c].mean()``;
* :class:`Layer`: a whole layer's mean squared activation, the DeepDream objective
  (Mordvintsev, Olah and Tyka 2015);
* :class:`ClassLogit`: a class score before the softmax;
* :class:`ClassProbability`: the same class after the softmax, which the network can
  raise by *lowering the other classes*, so it tends to give poorer pictures.

Unconstrained, gradient ascent on the pixels finds high-frequency patterns that
excite the network without looking like anything (the raw material of adversarial
examples). :func:`maximize_activation` therefore regularises, as Olah et al.
describe: it jitters the image by a pixel or two before each step (the picture must
work at every shift), blurs it now and then, penalises its L2 norm and total
variation, and clamps it to the data's range.

Example:
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
    >>> result = maximize_activation(model, ClassLogit([0, 1, 2]), size=(1, 8, 8), steps=20)
    >>> result.images.shape
    torch.Size([3, 1, 8, 8])
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .hooks import capture, check_images, check_logits, evaluating, model_device, resolve_layer

__all__ = [
    "Channel",
    "ClassLogit",
    "ClassProbability",
    "Layer",
    "Neuron",
    "Objective",
    "Visualization",
    "deep_dream",
    "maximize_activation",
]


def _indices(value: int | Sequence[int], name: str) -> tuple[int, ...]:
    values = (value,) if isinstance(value, int) else tuple(value)
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
        raise ValueError(f"{name} must be an index >= 0 or a non-empty list of them, got {value!r}")
    return values


class Objective:
    """What to maximise: a score per image, read from one layer's output (or from the logits).

    Subclasses set :attr:`layer` (a dotted name, or ``None`` for the model's
    output) and :attr:`count` (how many images one optimisation makes: one per
    channel or class listed), and define :meth:`score`.
    """

    # Every subclass has a ``layer`` (a dataclass field, or a property for the logits); it is not declared
    # here because a class attribute would become a default of the subclasses' dataclass fields.

    @property
    def count(self) -> int:
        return 1

    def score(self, output: torch.Tensor) -> torch.Tensor:
        """The quantity to maximise for each image: ``(N,)`` from the layer's output (or the logits)."""
        raise NotImplementedError

    def _pick(self, output: torch.Tensor, indices: tuple[int, ...], what: str) -> torch.Tensor:
        if output.dim() < 2 or max(indices) >= output.shape[1]:
            size = output.shape[1] if output.dim() >= 2 else 0
            raise ValueError(f"{type(self).__name__}: {what} {max(indices)} is out of range for an output of "
                             f"shape {tuple(output.shape)}: use 0 ... {size - 1}")
        index = torch.tensor(indices, device=output.device)
        if len(indices) == 1:
            index = index.expand(len(output))
        elif len(indices) != len(output):
            raise ValueError(f"{type(self).__name__} lists {len(indices)} {what}s for {len(output)} images")
        return output[torch.arange(len(output), device=output.device), index]  # N x ...


@dataclass(frozen=True)
class Neuron(Objective):
    """One unit of a convolutional layer: channel ``channel`` at position ``(y, x)`` (the centre by default).

    Example:
        >>> Neuron("layer2", 5).layer
        'layer2'
    """

    layer: str
    channel: int | Sequence[int]
    y: int | None = None
    x: int | None = None

    @property
    def count(self) -> int:
        return len(_indices(self.channel, "channel"))

    def score(self, output: torch.Tensor) -> torch.Tensor:
        if output.dim() != 4:
            raise ValueError(f"Neuron needs a layer with N x C x H x W output, {self.layer!r} gives "
                             f"{tuple(output.shape)}: use ClassLogit for the logits or Channel for a linear unit")
        maps = self._pick(output, _indices(self.channel, "channel"), "channel")  # N x H x W
        y = maps.shape[1] // 2 if self.y is None else self.y
        x = maps.shape[2] // 2 if self.x is None else self.x
        if not (0 <= y < maps.shape[1] and 0 <= x < maps.shape[2]):
            raise ValueError(f"position ({y}, {x}) is outside the {maps.shape[1]} x {maps.shape[2]} map of "
                             f"{self.layer!r}")
        return maps[:, y, x]


@dataclass(frozen=True)
class Channel(Objective):
    """One channel (feature map) of a layer, averaged over positions; one unit for a linear layer.

    ``channel`` may list several channels: one image is optimised for each.

    Example:
        >>> Channel("layer3", [0, 1, 2]).count
        3
    """

    layer: str
    channel: int | Sequence[int]

    @property
    def count(self) -> int:
        return len(_indices(self.channel, "channel"))

    def score(self, output: torch.Tensor) -> torch.Tensor:
        picked = self._pick(output, _indices(self.channel, "channel"), "channel")
        return picked.flatten(1).mean(dim=1) if picked.dim() > 1 else picked


@dataclass(frozen=True)
class Layer(Objective):
    """A whole layer's mean squared activation: the DeepDream objective.

    Example:
        >>> Layer("layer2").count
        1
    """

    layer: str

    def score(self, output: torch.Tensor) -> torch.Tensor:
        return output.pow(2).flatten(1).mean(dim=1)


@dataclass(frozen=True)
class ClassLogit(Objective):
    """The score of class ``k`` before the softmax (one image per class listed).

    Example:
        >>> ClassLogit(range(10)).count
        10
    """

    k: int | Sequence[int]

    @property
    def layer(self) -> None:  # the model's output
        return None

    @property
    def count(self) -> int:
        return len(_indices(self.k, "class"))

    def score(self, output: torch.Tensor) -> torch.Tensor:
        return self._pick(output, _indices(self.k, "class"), "class")


@dataclass(frozen=True)
class ClassProbability(ClassLogit):
    """The probability of class ``k`` (after the softmax): it rises when the *other* classes fall, too.

    Example:
        >>> ClassProbability(3).count
        1
    """

    def score(self, output: torch.Tensor) -> torch.Tensor:
        return self._pick(output.softmax(dim=1), _indices(self.k, "class"), "class")


class Visualization(NamedTuple):
    """The result of :func:`maximize_activation`.

    Attributes:
        images: The optimised images, ``N x C x H x W``, on the CPU.
        history: The objective (without the penalties) before each step, ``steps x N``.
    """

    images: torch.Tensor
    history: torch.Tensor


def _gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(2 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    padded = F.pad(images, (radius, radius, radius, radius), mode="replicate")
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(rows, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def _total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels, per image."""
    dy = (images[:, :, 1:, :] - images[:, :, :-1, :]).pow(2).flatten(1).mean(dim=1)
    dx = (images[:, :, :, 1:] - images[:, :, :, :-1]).pow(2).flatten(1).mean(dim=1)
    return dy + dx


def maximize_activation(
    model: nn.Module,
    objective: Objective,
    *,
    size: tuple[int, int, int] = (1, 28, 28),
    start: torch.Tensor | None = None,
    steps: int = 200,
    lr: float = 0.05,
    jitter: int = 1,
    blur_every: int = 4,
    blur_sigma: float = 0.5,
    l2: float = 0.0,
    tv: float = 0.0,
    value_range: tuple[float, float] | None = (0.0, 1.0),
    seed: int = 0,
) -> Visualization:
    """Gradient ascent on the pixels of an image, to maximise an objective of the network.

    Starts from a grey image (the middle of ``value_range``, plus faint seeded
    noise) or from ``start``, and takes ``steps`` Adam steps. Before each step the
    image is shifted by up to ``jitter`` pixels (a circular roll, undone after);
    every ``blur_every`` steps it is blurred a little; ``l2`` and ``tv`` weigh
    penalties on its distance from grey and its total variation; after each step
    it is clamped to ``value_range``. ``jitter=0, blur_every=0, l2=0, tv=0`` is
    plain, unregularised ascent.

    Args:
        model: The network (run in eval mode; its modes are restored, and no
            parameter's ``.grad`` is written).
        objective: What to maximise: :class:`Neuron`, :class:`Channel`,
            :class:`Layer`, :class:`ClassLogit` or :class:`ClassProbability`.
            One image is made per channel or class it lists.
        size: ``(C, H, W)`` of the images made from grey.
        start: Images to start from instead, ``N x C x H x W`` (DeepDream).
        steps: Optimisation steps.
        lr: Adam's learning rate (pixels move by about this much per step).
        jitter: Largest random shift in pixels before each step (0: none).
        blur_every: Blur the image every this many steps (0: never).
        blur_sigma: Standard deviation of that blur, in pixels.
        l2: Weight of the mean squared distance from grey.
        tv: Weight of the total variation (mean squared neighbour difference).
        value_range: Clamp the pixels to ``(low, high)`` after each step; ``None``
            leaves them free.
        seed: Seeds the start noise and the jitter (private generator).

    Returns:
        A :class:`Visualization`: the images and the objective's history.

    Shape:
        ``start``: ``(N, C, H, W)``; ``images``: ``(N, C, H, W)`` with ``N`` the
        objective's count (or ``start``'s batch); ``history``: ``(steps, N)``.

    Raises:
        ValueError: An unknown layer, a channel or class out of range, a bad
            ``start`` or option; the message says what to pass.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
        >>> out = maximize_activation(model, ClassLogit(1), size=(1, 4, 4), steps=10)
        >>> bool(out.history[-1, 0] > out.history[0, 0])
        True
    """
    if not isinstance(objective, Objective):
        raise TypeError(f"objective must be a Neuron, Channel, Layer, ClassLogit or ClassProbability, "
                        f"got {type(objective).__name__}")
    for name, value in (("steps", steps), ("jitter", jitter), ("blur_every", blur_every)):
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= (1 if name == "steps" else 0)):
            raise ValueError(f"{name} must be an int >= {1 if name == 'steps' else 0}, got {value!r}")
    for name, value in (("lr", lr), ("blur_sigma", blur_sigma)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")
    for name, value in (("l2", l2), ("tv", tv)):
        if not value >= 0:
            raise ValueError(f"{name} must be >= 0 (0 switches the penalty off), got {value!r}")
    if value_range is not None and not value_range[0] < value_range[1]:
        raise ValueError(f"value_range must be (low, high) with low < high, or None, got {value_range!r}")
    if objective.layer is not None:
        resolve_layer(model, objective.layer)  # an unknown name fails here, before any work

    device = model_device(model, torch.empty(0))
    generator = torch.Generator().manual_seed(seed)
    grey = 0.5 * (value_range[0] + value_range[1]) if value_range is not None else 0.0
    if start is None:
        if len(size) != 3 or not all(isinstance(s, int) and s >= 1 for s in size):
            raise ValueError(f"size must be (channels, height, width), got {size!r}")
        start = grey + 0.01 * torch.randn((objective.count, *size), generator=generator)
    else:
        start = check_images(start, "start").detach().cpu()
        if objective.count not in (1, len(start)):
            raise ValueError(f"the objective makes {objective.count} images but start holds {len(start)}: "
                             "give one start image per channel or class, or a single-index objective")
    image = start.clone().float().to(device).requires_grad_(True)
    optimizer = torch.optim.Adam([image], lr=lr)
    history = []
    # gradients=True keeps the captured output attached to the graph, so the objective can be differentiated
    inside = capture(model, objective.layer, gradients=True) if objective.layer is not None else nullcontext()
    with evaluating(model), torch.enable_grad(), inside as seen:
        for step in range(steps):
            shift = [int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=generator)] if jitter \
                else [0, 0]
            logits = check_logits(model(torch.roll(image, shifts=shift, dims=(2, 3))))
            if seen is not None:
                seen.check_ran()
                output = seen.outputs[objective.layer]
            else:
                output = logits
            value = objective.score(output)
            history.append(value.detach().cpu())
            penalty = 0.0
            if l2:
                penalty = penalty + l2 * (image - grey).pow(2).flatten(1).mean(dim=1)
            if tv:
                penalty = penalty + tv * _total_variation(image)
            loss = -(value - penalty).sum()
            (image.grad,) = torch.autograd.grad(loss, image)
            optimizer.step()
            with torch.no_grad():
                if blur_every and (step + 1) % blur_every == 0 and step + 1 < steps:
                    image.copy_(_gaussian_blur(image, blur_sigma))
                if value_range is not None:
                    image.clamp_(*value_range)
    return Visualization(image.detach().cpu(), torch.stack(history))


def deep_dream(
    model: nn.Module,
    image: torch.Tensor,
    layer: str,
    *,
    steps: int = 50,
    lr: float = 0.02,
    octaves: int = 1,
    octave_scale: float = 1.4,
    jitter: int = 1,
    blur_every: int = 0,
    blur_sigma: float = 0.5,
    value_range: tuple[float, float] | None = (0.0, 1.0),
    seed: int = 0,
) -> torch.Tensor:
    """DeepDream: amplify whatever a layer already sees in a real image.

    Gradient ascent on the layer's mean squared activation (:class:`Layer`),
    starting from ``image``. With ``octaves > 1`` it works from a coarse copy to
    full size, each octave ``octave_scale`` times larger, carrying the detail it
    added from one scale to the next (Mordvintsev et al. 2015); at 28 x 28 one
    octave is enough.

    Args:
        model: The network.
        image: The images to dream on.
        layer: The layer to amplify, by dotted name.
        steps: Ascent steps per octave.
        lr: Adam's learning rate.
        octaves: Number of scales.
        octave_scale: Size ratio between successive octaves.
        jitter, blur_every, blur_sigma, value_range, seed: As in :func:`maximize_activation`.

    Returns:
        The dreamed images, on the CPU.

    Shape:
        ``image``: ``(N, C, H, W)``; returns ``(N, C, H, W)``.

    Raises:
        ValueError: Bad images, an unknown layer, or ``octaves`` below 1.

    Example:
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(3))
        >>> deep_dream(model, torch.rand(1, 1, 8, 8), "1", steps=5).shape
        torch.Size([1, 1, 8, 8])
    """
    image = check_images(image, "image").detach().cpu().float()
    if not (isinstance(octaves, int) and octaves >= 1):
        raise ValueError(f"octaves must be an int >= 1, got {octaves!r}")
    if not octave_scale > 1:
        raise ValueError(f"octave_scale must be > 1, got {octave_scale!r}")
    height, width = image.shape[-2:]
    sizes = [(max(1, round(height / octave_scale**o)), max(1, round(width / octave_scale**o)))
             for o in reversed(range(octaves))]
    detail = torch.zeros_like(image)
    for size in sizes:
        base = F.interpolate(image, size=size, mode="bilinear", align_corners=False) if size != (height, width) \
            else image
        detail = F.interpolate(detail, size=size, mode="bilinear", align_corners=False)
        dreamed = maximize_activation(model, Layer(layer), start=base + detail, steps=steps, lr=lr, jitter=jitter,
                                      blur_every=blur_every, blur_sigma=blur_sigma, value_range=value_range,
                                      seed=seed).images
        detail = dreamed - base
    return dreamed
