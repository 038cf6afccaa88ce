"""Which pixels mattered? Attribution maps for a classifier's decision, and a test of their faithfulness.

Each function takes any ``nn.Module`` that maps a batch of images ``N x C x H x W``
to class scores ``N x num_classes`` (the logits, before the softmax) and returns one
map per image, ``N x H x W``:

* :func:`saliency`: how much the target logit changes per unit change of each
  pixel, ``|d logit / d x|`` (Simonyan et al. 2014, arXiv:1312.6034);
* :func:`smoothgrad`: the same averaged over noisy copies of the image, which
  removes much of its speckle (Smilkov et al. 2017, arXiv:1706.03825);
* :func:`occlusion`: how much the logit drops when a patch is covered (Zeiler and
  Fergus 2014, arXiv:1311.2901);
* :func:`grad_cam`: the feature maps of a late layer weighted by their average
  gradient (Selvaraju et al. 2017, arXiv:1610.02391).

:func:`deletion_curve` asks whether a map is faithful: remove the pixels it ranks
highest first, and watch the probability of the class fall.

All of them run the model in eval mode (restoring its modes afterwards), compute
gradients with ``torch.autograd.grad`` with respect to the input or a layer only,
so no parameter's ``.grad`` is written, and leave no hook behind.

Example:
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
    >>> x = torch.rand(2, 1, 8, 8)
    >>> saliency(model, x, target=[0, 2]).shape
    torch.Size([2, 8, 8])
    >>> grad_cam(model, x, 1, "1").shape
    torch.Size([2, 8, 8])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .hooks import LayerRef, capture, check_images, check_logits, check_targets, evaluating, model_device

__all__ = ["DeletionCurve", "deletion_curve", "grad_cam", "occlusion", "saliency", "smoothgrad"]

Target = int | Sequence[int] | torch.Tensor


def _input_gradient(model: nn.Module, x: torch.Tensor, target: Target) -> torch.Tensor:
    """d logit_target / d x for each image (the model in eval mode)."""
    device = model_device(model, x)
    with evaluating(model), torch.enable_grad():
        inputs = x.detach().to(device).clone().requires_grad_(True)
        logits = check_logits(model(inputs))
        targets = check_targets(target, len(x), logits.shape[1]).to(device)
        (gradient,) = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), inputs)
    return gradient


def saliency(model: nn.Module, x: torch.Tensor, target: Target) -> torch.Tensor:
    """The gradient of the target logit with respect to the pixels, in absolute value, max over channels.

    Args:
        model: A classifier returning logits.
        x: The images.
        target: The class to explain: one index for all images, or one per image.

    Returns:
        One map per image, on ``x``'s device.

    Shape:
        ``x``: ``(N, C, H, W)``; returns ``(N, H, W)``.

    Raises:
        ValueError: ``x`` is not a batch of images, or a target is out of range.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
        >>> saliency(model, torch.rand(1, 1, 4, 4), 2).shape
        torch.Size([1, 4, 4])
    """
    x = check_images(x)
    return _input_gradient(model, x, target).abs().amax(dim=1).to(x.device)


def smoothgrad(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    *,
    samples: int = 25,
    noise: float = 0.15,
    seed: int = 0,
) -> torch.Tensor:
    """Saliency averaged over noisy copies of each image (SmoothGrad).

    The absolute gradient is averaged over ``samples`` copies of the image with
    Gaussian noise added, then the maximum over channels is taken, as
    :func:`saliency` does.

    Args:
        model: A classifier returning logits.
        x: The images.
        target: The class to explain: one index, or one per image.
        samples: Noisy copies per image.
        noise: Standard deviation of the noise as a fraction of each image's
            range (``max - min``); Smilkov et al. found 10-20 % best.
        seed: Seeds the noise (a private generator: the global one is untouched).

    Returns:
        One map per image.

    Shape:
        ``x``: ``(N, C, H, W)``; returns ``(N, H, W)``.

    Raises:
        ValueError: Bad images or targets, ``samples`` below 1 or a negative ``noise``.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
        >>> smoothgrad(model, torch.rand(2, 1, 4, 4), 0, samples=4).shape
        torch.Size([2, 4, 4])
    """
    x = check_images(x)
    if not (isinstance(samples, int) and samples >= 1):
        raise ValueError(f"samples must be an int >= 1 (noisy copies per image), got {samples!r}")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0 (a fraction of the image's range, e.g. 0.15), got {noise!r}")
    generator = torch.Generator().manual_seed(seed)
    spread = (x.amax(dim=(1, 2, 3)) - x.amin(dim=(1, 2, 3))).view(-1, 1, 1, 1) * noise
    total = torch.zeros_like(x)
    for _ in range(samples):
        noisy = x + spread * torch.randn(x.shape, generator=generator).to(x.device, x.dtype)
        total += _input_gradient(model, noisy, target).abs().to(x.device)
    return (total / samples).amax(dim=1)


def grad_cam(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    layer: LayerRef,
    *,
    upsample: bool = True,
) -> torch.Tensor:
    """Grad-CAM: a late layer's feature maps, weighted by the average gradient of the target logit.

    For each channel ``k`` of the layer's output ``A``, the weight ``a_k`` is the
    mean over positions of ``d logit_target / d A_k``; the map is
    ``ReLU(sum_k a_k A_k)``, upsampled bilinearly to the input's size. Gradients
    come from a tensor hook on the layer's output (see
    :mod:`cnncourse.interpret.hooks`), so in-place ReLUs after the layer are fine.

    Args:
        model: A classifier returning logits.
        x: The images.
        target: The class to explain: one index, or one per image.
        layer: The layer whose output is explained, by dotted name or as a
            module; usually the last convolutional block (``"layer3"`` for the
            CIFAR ResNet, ``"layer4"`` for torchvision's ResNet-18). Its output
            must be ``N x C x h x w``, and it must run once per forward pass.
        upsample: Resize the map to the input's ``H x W`` (bilinear,
            ``align_corners=False``); ``False`` keeps the layer's ``h x w``.

    Returns:
        One non-negative map per image, not normalised (divide by each map's
        maximum to show it).

    Shape:
        ``x``: ``(N, C, H, W)``; returns ``(N, H, W)``, or ``(N, h, w)`` without upsampling.

    Raises:
        ValueError: Bad images or targets, an unknown layer, or a layer whose
            output is not ``N x C x h x w``; the message says what to pass.

    Example:
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.LazyLinear(3))
        >>> grad_cam(model, torch.rand(2, 1, 9, 9), 0, "0").shape
        torch.Size([2, 9, 9])
        >>> grad_cam(model, torch.rand(2, 1, 9, 9), 0, "0", upsample=False).shape
        torch.Size([2, 4, 4])
    """
    x = check_images(x)
    device = model_device(model, x)
    with evaluating(model), torch.enable_grad(), capture(model, layer, gradients=True) as seen:
        name = seen.names[0]
        # An input that requires grad puts the layer in the graph even when the parameters are frozen.
        logits = check_logits(model(x.detach().to(device).clone().requires_grad_(True)))
        seen.check_ran()
        maps = seen.outputs[name]
        if maps.dim() != 4:
            raise ValueError(
                f"layer {name!r} outputs shape {tuple(maps.shape)}, not N x C x h x w: Grad-CAM needs a "
                "convolutional layer or block, such as the last one before global pooling"
            )
        targets = check_targets(target, len(x), logits.shape[1]).to(device)
        seen.backward(logits.gather(1, targets[:, None]).sum())
        weights = seen.gradients[name].mean(dim=(2, 3), keepdim=True)  # N x C x 1 x 1
        cam = F.relu((weights * maps.detach()).sum(dim=1, keepdim=True))  # N x 1 x h x w
    if upsample:
        cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return cam[:, 0].to(x.device)


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints (height, width), got {value!r}")
    if min(pair) < 1:
        raise ValueError(f"{name} must be at least 1 pixel, got {value!r}")
    return pair


def _window_starts(size: int, window: int, stride: int) -> list[int]:
    """Where the windows start along one side: every ``stride``, the last one clipped at the border.

    The same positions as captum's ``Occlusion``: ``ceil((size - window) / stride) + 1`` windows.
    """
    return [i * stride for i in range(math.ceil((size - window) / stride) + 1)]


def occlusion(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    *,
    window: int | tuple[int, int],
    stride: int | tuple[int, int],
    baseline: float = 0.0,
    batch_size: int = 512,
) -> torch.Tensor:
    """How much the target logit drops when a window of the image is covered, per pixel.

    A ``window`` slides over the image by ``stride``; for each position the
    covered pixels (all channels) are set to ``baseline`` and the drop of the
    target logit is credited to every covered pixel. Each pixel gets the mean of
    the drops of the windows that cover it. The windows are those of captum's
    ``Occlusion`` (the last one in a row is clipped at the border), so every
    pixel is covered at least once.

    Args:
        model: A classifier returning logits.
        x: The images.
        target: The class to explain: one index, or one per image.
        window: Side of the covering patch (an int, or ``(height, width)``).
        stride: Step between patches; at most the window, so no pixel is skipped.
        baseline: The value covered pixels take (0 is black, the background of
            Fashion-MNIST).
        batch_size: Occluded images per forward pass.

    Returns:
        One map per image; positive where covering hurts the prediction.

    Shape:
        ``x``: ``(N, C, H, W)``; returns ``(N, H, W)``.

    Raises:
        ValueError: Bad images or targets, a window larger than the image, or a
            stride larger than the window.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
        >>> occlusion(model, torch.rand(1, 1, 8, 8), 1, window=4, stride=2).shape
        torch.Size([1, 8, 8])
    """
    x = check_images(x)
    (wh, ww), (sh, sw) = _pair(window, "window"), _pair(stride, "stride")
    height, width = x.shape[-2:]
    if wh > height or ww > width:
        raise ValueError(f"window {(wh, ww)} is larger than the {height} x {width} image: use a smaller window")
    if sh > wh or sw > ww:
        raise ValueError(f"stride {(sh, sw)} is larger than the window {(wh, ww)}, which would skip pixels: "
                         f"use stride <= window")
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    device = model_device(model, x)
    masks = []
    for top in _window_starts(height, wh, sh):
        for left in _window_starts(width, ww, sw):
            mask = torch.zeros(height, width, device=device)
            mask[top: top + wh, left: left + ww] = 1
            masks.append(mask)
    masks = torch.stack(masks)  # P x H x W
    counts = masks.sum(dim=0)  # windows covering each pixel, >= 1
    result = torch.empty(len(x), height, width, device=device)
    with evaluating(model), torch.no_grad():
        images = x.to(device)
        logits = check_logits(model(images))
        targets = check_targets(target, len(x), logits.shape[1]).to(device)
        for i, (image, k) in enumerate(zip(images, targets)):
            drops = []
            for chunk in masks.split(batch_size):
                keep = (1 - chunk)[:, None]  # P' x 1 x H x W
                covered = image[None] * keep + baseline * (1 - keep)
                drops.append(logits[i, k] - model(covered)[:, k])
            drops = torch.cat(drops)  # P
            result[i] = (drops[:, None, None] * masks).sum(dim=0) / counts
    return result.to(x.device)


class DeletionCurve(NamedTuple):
    """The result of :func:`deletion_curve`.

    Attributes:
        fractions: The fraction of pixels removed at each step, from 0 to 1.
        probabilities: The target class's probability per image and step.
    """

    fractions: torch.Tensor
    probabilities: torch.Tensor

    def area(self) -> torch.Tensor:
        """The area under each image's curve (trapezoid rule): lower means the map found the pixels that matter."""
        return torch.trapezoid(self.probabilities, self.fractions, dim=-1)


def deletion_curve(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    attribution: torch.Tensor,
    *,
    steps: int = 20,
    baseline: float = 0.0,
    batch_size: int = 512,
) -> DeletionCurve:
    """Remove the pixels an attribution ranks highest first, and follow the target's probability.

    A faithful map puts the pixels the model needs first, so the probability
    falls fast; a random ranking (``attribution=torch.rand(N, H, W)``) is the
    baseline to beat. At step ``s`` of ``steps`` the ``round(s / steps * H * W)``
    highest-ranked pixels (all channels) are set to ``baseline``.

    Args:
        model: A classifier returning logits.
        x: The images.
        target: The class whose probability is followed: one index, or one per image.
        attribution: One map per image; higher means more important.
        steps: Number of deletion steps (the curve has ``steps + 1`` points).
        baseline: The value removed pixels take.
        batch_size: Images per forward pass.

    Returns:
        A :class:`DeletionCurve`: the fractions removed, ``(steps + 1,)``, and the
        probabilities, ``(N, steps + 1)``, on the CPU.

    Shape:
        ``x``: ``(N, C, H, W)``; ``attribution``: ``(N, H, W)``.

    Raises:
        ValueError: Bad images or targets, a map of the wrong shape, or ``steps`` below 1.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
        >>> x = torch.rand(2, 1, 4, 4)
        >>> curve = deletion_curve(model, x, 0, saliency(model, x, 0), steps=4)
        >>> curve.probabilities.shape
        torch.Size([2, 5])
    """
    x = check_images(x)
    n, channels, height, width = x.shape
    if not isinstance(attribution, torch.Tensor) or tuple(attribution.shape) != (n, height, width):
        shape = tuple(attribution.shape) if isinstance(attribution, torch.Tensor) else type(attribution).__name__
        raise ValueError(f"attribution must hold one H x W map per image, shape {(n, height, width)}, got {shape}")
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    device = model_device(model, x)
    pixels = height * width
    order = attribution.detach().reshape(n, pixels).argsort(dim=1, descending=True, stable=True).to(device)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(pixels, device=device).expand(n, -1))  # rank of every pixel
    counts = [round(s / steps * pixels) for s in range(steps + 1)]
    images, probabilities = x.to(device), []
    with evaluating(model), torch.no_grad():
        targets = None
        for count in counts:
            keep = (rank >= count).view(n, 1, height, width).to(x.dtype)
            removed = images * keep + baseline * (1 - keep)
            logits = torch.cat([check_logits(model(chunk)) for chunk in removed.split(batch_size)])
            if targets is None:
                targets = check_targets(target, n, logits.shape[1]).to(device)
            probabilities.append(logits.softmax(dim=1).gather(1, targets[:, None])[:, 0])
    fractions = torch.tensor([c / pixels for c in counts])
    return DeletionCurve(fractions, torch.stack(probabilities, dim=1).cpu())
