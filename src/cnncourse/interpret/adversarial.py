"""Fooling images: the fast gradient sign method.

Goodfellow, Shlens and Szegedy, "Explaining and Harnessing Adversarial
Examples", ICLR 2015 (arXiv:1412.6572): move every pixel by ``eps`` in the
direction that increases the loss, ``x + eps * sign(d loss / d x)``. One
gradient, one step, and a change too small for a person to notice is often
enough to change a network's answer.

Example:
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    >>> fgsm(model, torch.rand(2, 1, 4, 4), torch.tensor([0, 1]), eps=0.1).shape
    torch.Size([2, 1, 4, 4])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .hooks import check_images, check_logits, check_targets, evaluating, model_device

__all__ = ["fgsm"]


def fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: int | Sequence[int] | torch.Tensor,
    eps: float,
    *,
    value_range: tuple[float, float] | None = (0.0, 1.0),
) -> torch.Tensor:
    """The fast gradient sign attack: one step of size ``eps`` up the loss of the true labels.

    Args:
        model: A classifier returning logits (run in eval mode; its modes are
            restored and no parameter's ``.grad`` is written).
        x: The clean images.
        y: Their true labels (one index for all, or one per image).
        eps: The largest change of a pixel (the perturbation's L-infinity norm).
        value_range: Clamp the result to ``(low, high)``, the data's range;
            ``None`` leaves it unclamped.

    Returns:
        The perturbed images, detached, on ``x``'s device.

    Shape:
        ``x``: ``(N, C, H, W)``; ``y``: ``(N,)``; returns ``(N, C, H, W)``.

    Raises:
        ValueError: Bad images or labels, or a negative ``eps``.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
        >>> x = torch.full((1, 1, 2, 2), 0.5)
        >>> float((fgsm(model, x, 0, eps=0.1) - x).abs().max())  # doctest: +ELLIPSIS
        0.1...
    """
    x = check_images(x)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
        raise ValueError(f"eps must be a number >= 0 (the largest change of a pixel, e.g. 0.1), got {eps!r}")
    if value_range is not None and not value_range[0] < value_range[1]:
        raise ValueError(f"value_range must be (low, high) with low < high, or None, got {value_range!r}")
    device = model_device(model, x)
    with evaluating(model), torch.enable_grad():
        inputs = x.detach().to(device).clone().requires_grad_(True)
        logits = check_logits(model(inputs))
        labels = check_targets(y, len(x), logits.shape[1], name="y").to(device)
        (gradient,) = torch.autograd.grad(F.cross_entropy(logits, labels), inputs)
    adversarial = inputs.detach() + eps * gradient.sign()
    if value_range is not None:
        adversarial = adversarial.clamp(*value_range)
    return adversarial.to(x.device)
