"""Semantic segmentation: a Dice loss, class weights, and the scores of a whole data set.

A segmenter is trained like a classifier, with one classification per pixel:
``nn.CrossEntropyLoss`` already takes logits ``(N, C, H, W)`` and targets
``(N, H, W)``, and its ``weight`` argument gives rare classes more say
(:func:`class_weights`). The Dice loss of V-Net is the other common answer to
imbalance: it scores each class by the overlap of its predicted and true
masks, so a class's size does not matter.

The scores that papers report are computed over the whole test set:
:func:`segmentation_scores` sums the confusion matrices of all batches, then
takes each class's intersection over union from the sum.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..notebook import Table
from .metrics import confusion_matrix, iou_from_confusion

__all__ = ["DiceLoss", "SegmentationScores", "class_weights", "dice_loss", "segmentation_scores"]


def dice_loss(logits: torch.Tensor, targets: torch.Tensor, *, smooth: float = 1.0) -> torch.Tensor:
    """One minus the mean soft Dice coefficient of the classes (Milletari et al. 2016, V-Net).

    With ``p`` the softmax probabilities of a class and ``g`` its true mask
    (one-hot), summed over the batch's pixels, the class's Dice coefficient is
    ``(2 sum p g + smooth) / (sum p^2 + sum g^2 + smooth)``: 1 when the
    prediction is the mask, near 0 when they do not overlap. For hard 0/1
    predictions it is the F1 score of the class's pixels. Every class present
    counts the same, however few pixels it has; ``smooth`` keeps a class that
    is absent from both from dividing by zero (its coefficient is then 1).

    Shape:
        logits: ``(N, C, H, W)``; targets: ``(N, H, W)`` class indices.

    Example:
        >>> logits = torch.tensor([[[[9.0]], [[-9.0]]]])  # class 0, almost certainly
        >>> round(dice_loss(logits, torch.tensor([[[0]]]), smooth=0.0).item(), 4)  # class 1 absent: 0 / 0
        nan
        >>> round(dice_loss(logits, torch.tensor([[[0]]])).item(), 4)
        0.0
    """
    if logits.ndim != targets.ndim + 1:
        raise ValueError(
            f"logits {tuple(logits.shape)} need one dimension more than targets {tuple(targets.shape)} (the classes)"
        )
    num_classes = logits.shape[1]
    probs = logits.float().softmax(dim=1)
    truth = F.one_hot(targets.long(), num_classes).movedim(-1, 1).to(probs.dtype)
    dims = [0, *range(2, logits.ndim)]  # the batch and the pixels: one coefficient per class
    overlap = (probs * truth).sum(dims)
    total = probs.square().sum(dims) + truth.sum(dims)  # truth is 0 or 1: its square is itself
    dice = (2 * overlap + smooth) / (total + smooth)
    return 1 - dice.mean()


class DiceLoss(nn.Module):
    """:func:`dice_loss` as a module, optionally added to a cross-entropy (a common pairing).

    Args:
        smooth: Added to the numerator and denominator of each class's coefficient.
        cross_entropy: Weight of a per-pixel cross-entropy added to the Dice
            loss (0: Dice alone).
        weight: Class weights of that cross-entropy (see :func:`class_weights`).

    Example:
        >>> loss_fn = DiceLoss(cross_entropy=1.0)
        >>> loss_fn(torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long)).shape
        torch.Size([])
    """

    def __init__(self, *, smooth: float = 1.0, cross_entropy: float = 0.0, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.smooth, self.cross_entropy = smooth, cross_entropy
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss = dice_loss(logits, targets, smooth=self.smooth)
        if self.cross_entropy:
            loss = loss + self.cross_entropy * F.cross_entropy(logits, targets, weight=self.weight)
        return loss


def class_weights(targets: torch.Tensor, num_classes: int, *, power: float = 1.0) -> torch.Tensor:
    """Weights that give rare classes more say in a cross-entropy: inverse frequency to ``power``.

    ``weight_c = (1 / frequency_c) ** power``, scaled so that the weights
    average 1 over the pixels of ``targets`` (the loss keeps its scale).
    ``power=1`` balances the classes completely, ``0.5`` halfway (on a log
    scale), ``0`` not at all.

    Args:
        targets: Class indices of the training pixels (any shape).
        num_classes: Number of classes.
        power: How far to go towards balance.

    Returns:
        ``(num_classes,)`` float32, for ``nn.CrossEntropyLoss(weight=...)``.

    Raises:
        ValueError: A class never occurs in ``targets`` (no frequency to invert).

    Example:
        >>> class_weights(torch.tensor([0, 0, 0, 1]), 2)
        tensor([0.6667, 2.0000])
    """
    counts = torch.bincount(targets.flatten().long().cpu(), minlength=num_classes).double()
    if len(counts) > num_classes:
        raise ValueError(f"targets hold class {len(counts) - 1}, outside 0..{num_classes - 1}")
    if (counts == 0).any():
        missing = (counts == 0).nonzero().flatten().tolist()
        raise ValueError(f"class(es) {missing} never occur in targets: weigh a sample that holds every class")
    weights = (counts.sum() / counts) ** power
    weights *= counts.sum() / (weights * counts).sum()  # average 1 per pixel
    return weights.float()


@dataclass(frozen=True)
class SegmentationScores:
    """The scores of a segmenter over a whole data set, from one confusion matrix.

    Attributes:
        confusion: ``(C, C)`` pixel counts, rows the true class, columns the predicted one.
        loss: Mean per-pixel cross-entropy (``nan`` if not computed).
    """

    confusion: torch.Tensor
    loss: float = float("nan")

    @property
    def iou(self) -> torch.Tensor:
        """``(C,)`` intersection over union of each class (``nan`` where a class occurs nowhere)."""
        return iou_from_confusion(self.confusion)

    @property
    def mean_iou(self) -> float:
        """The mean of :attr:`iou` over the classes that occur, background included."""
        return self.iou.nanmean().item()

    @property
    def pixel_accuracy(self) -> float:
        """The fraction of pixels classified right."""
        return (self.confusion.diagonal().sum() / self.confusion.sum()).item()

    def to_dict(self) -> dict[str, float | list[float]]:
        """``mean_iou``, ``pixel_accuracy``, ``loss`` and the per-class ``iou``, as JSON numbers."""
        return {
            "mean_iou": self.mean_iou,
            "pixel_accuracy": self.pixel_accuracy,
            "loss": self.loss,
            "iou": [round(v, 6) for v in self.iou.tolist()],
        }

    def table(self, classes: Sequence[str]) -> Table:
        """Per-class IoU and pixel count as a :class:`~cnncourse.Table`, with the mean below."""
        if len(classes) != len(self.confusion):
            raise ValueError(f"{len(classes)} class names for {len(self.confusion)} classes")
        pixels = self.confusion.sum(1)
        rows = [[name, f"{iou:.3f}", f"{n:,}"] for name, iou, n in zip(classes, self.iou.tolist(), pixels.tolist())]
        footer = [f"mean IoU {self.mean_iou:.4f}, pixel accuracy {self.pixel_accuracy:.4f}"]
        return Table(["class", "IoU", "pixels"], rows, footer=footer)


@torch.no_grad()
def segmentation_scores(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    num_classes: int | None = None,
    device: str | torch.device | None = None,
) -> SegmentationScores:
    """Run ``model`` over ``loader`` in eval mode and score it on every pixel at once.

    Args:
        model: Maps ``(N, C_in, H, W)`` images to ``(N, num_classes, H, W)`` logits.
        loader: Batches of images and ``(N, H, W)`` class maps.
        num_classes: Read from the logits when omitted.
        device: Where to run (default: where the model's parameters are).

    Returns:
        The :class:`SegmentationScores` of the summed confusion matrix, and
        the mean cross-entropy over all pixels.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, loss, pixels = None, 0.0, 0
    try:
        for x, y in loader:
            logits = model(x.to(device)).float()
            y = y.to(device)
            classes = num_classes or logits.shape[1]
            matrix = confusion_matrix(logits, y, classes)
            total = matrix if total is None else total + matrix
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            pixels += y.numel()
    finally:
        model.train(was_training)
    if total is None:
        raise ValueError("the loader yielded no batches")
    return SegmentationScores(total, loss / pixels)
