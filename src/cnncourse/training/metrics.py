"""Classification and segmentation metrics on logits.

A metric is a function ``metric(logits, targets) -> Tensor`` that returns the
batch mean as a 0-d tensor. :func:`~cnncourse.training.fit` weights each batch
by its size, so the epoch value is exact (a count divided by N), and it keeps
the sums on the device so that a GPU never waits for a ``.item()`` mid-epoch.

Segmentation is classification of every pixel: logits ``(N, C, H, W)`` and
targets ``(N, H, W)``. :func:`accuracy` then counts pixels (it is
:func:`pixel_accuracy`), and :func:`confusion_matrix` counts pixels too. The
intersection over union of each class comes from that matrix
(:func:`iou_from_confusion`): it is not an average over batches, so the
benchmark figure, the IoU of the whole data set, sums the matrices of all
batches first (:func:`~cnncourse.training.segmentation_scores`);
:func:`mean_iou` as a ``fit`` metric is the mean of per-batch values, an
estimate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import partial

import torch

__all__ = [
    "Metric",
    "accuracy",
    "confusion_matrix",
    "iou_from_confusion",
    "mean_iou",
    "multilabel_accuracy",
    "pixel_accuracy",
    "resolve_metrics",
    "top_k_accuracy",
]

Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Fraction of rows whose highest logit is the target class.

    Shape:
        logits: ``N x num_classes``; targets: ``N`` class indices. Or, for
        segmentation, ``N x num_classes x H x W`` and ``N x H x W``: the
        fraction of pixels.

    Example:
        >>> accuracy(torch.tensor([[2.0, 1.0], [0.0, 3.0]]), torch.tensor([0, 0]))
        tensor(0.5000)
    """
    return (logits.argmax(dim=1) == targets).float().mean()


def top_k_accuracy(logits: torch.Tensor, targets: torch.Tensor, k: int = 5) -> torch.Tensor:
    """Fraction of rows whose target is among the ``k`` highest logits (ImageNet's top-5).

    Example:
        >>> logits = torch.tensor([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0]])
        >>> top_k_accuracy(logits, torch.tensor([1, 2]), k=2)
        tensor(0.5000)
    """
    if not 1 <= k <= logits.shape[1]:
        raise ValueError(f"k must be between 1 and the number of classes {logits.shape[1]}, got {k}")
    top = logits.topk(k, dim=1).indices
    return (top == targets.unsqueeze(1)).any(dim=1).float().mean()


def pixel_accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Fraction of pixels whose highest logit is the target class: :func:`accuracy` over pixels.

    On canvases that are mostly background it flatters a model: one that
    predicts background everywhere already scores the background's share.

    Shape:
        logits: ``N x num_classes x H x W``; targets: ``N x H x W`` class indices.

    Example:
        >>> logits = torch.zeros(1, 2, 2, 2)
        >>> logits[0, 1, 0, 0] = 1.0  # class 1 at the top-left pixel, class 0 elsewhere
        >>> pixel_accuracy(logits, torch.tensor([[[1, 0], [0, 1]]]))
        tensor(0.7500)
    """
    if logits.ndim != targets.ndim + 1:
        raise ValueError(
            f"logits {tuple(logits.shape)} need one dimension more than targets {tuple(targets.shape)} (the classes)"
        )
    return accuracy(logits, targets)


def multilabel_accuracy(logits: torch.Tensor, targets: torch.Tensor, *, exact: bool = False) -> torch.Tensor:
    """Accuracy of independent yes/no tags, one logit per tag (a sigmoid head).

    A tag is predicted when its logit is positive, that is when its sigmoid
    probability exceeds 0.5.

    Args:
        logits: ``N x K`` logits, one column per tag.
        targets: ``N x K`` zeros and ones (any dtype).
        exact: Count a row as right only if all its ``K`` tags are right (the
            *exact-match ratio*); otherwise score every tag decision on its own.

    Returns:
        A 0-d tensor: the share of right tag decisions (or of right rows).

    Example:
        >>> logits = torch.tensor([[2.0, -1.0], [0.5, 3.0]])
        >>> targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> multilabel_accuracy(logits, targets), multilabel_accuracy(logits, targets, exact=True)
        (tensor(0.7500), tensor(0.5000))
    """
    if logits.shape != targets.shape or logits.ndim != 2:
        raise ValueError(
            f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} must both be N x K, one column per tag"
        )
    right = (logits > 0) == targets.bool()
    return (right.all(dim=1) if exact else right).float().mean()


def confusion_matrix(predictions: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Count how often each true class (row) was predicted as each class (column).

    Works for classification (``N`` examples) and for segmentation (every
    pixel of ``N x H x W`` maps counts once).

    Args:
        predictions: Predicted class indices, shaped like ``targets``; or
            logits with the classes along dimension 1 (``N x num_classes`` or
            ``N x num_classes x H x W``), one dimension more than ``targets``.
        targets: True class indices.
        num_classes: Number of classes.

    Returns:
        A ``num_classes x num_classes`` ``int64`` tensor; its diagonal holds the hits.

    Example:
        >>> confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]), 2)
        tensor([[1, 1],
                [0, 1]])
    """
    if predictions.ndim == targets.ndim + 1:
        if predictions.shape[1] != num_classes:
            raise ValueError(f"logits have {predictions.shape[1]} classes (dimension 1) but num_classes is {num_classes}")
        predictions = predictions.argmax(dim=1)
    if predictions.shape != targets.shape:
        raise ValueError(f"predictions {tuple(predictions.shape)} and targets {tuple(targets.shape)} differ")
    for name, labels in (("predictions", predictions), ("targets", targets)):
        if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(
                f"{name} hold class {labels.min().item()}..{labels.max().item()}, outside 0..{num_classes - 1}: "
                "is num_classes right?"
            )
    index = targets.long() * num_classes + predictions.long()
    counts = torch.bincount(index.flatten().cpu(), minlength=num_classes**2)
    return counts.reshape(num_classes, num_classes)


def iou_from_confusion(matrix: torch.Tensor) -> torch.Tensor:
    """Intersection over union of each class, from a confusion matrix (rows: truth, columns: prediction).

    For class ``c`` the intersection is ``matrix[c, c]`` (pixels of class c
    predicted as c) and the union is everything that is c or was called c:
    its row plus its column minus the diagonal cell they share. Equivalently
    ``TP / (TP + FP + FN)``.

    Returns:
        ``(num_classes,)`` float64; ``nan`` for a class that occurs neither in
        the targets nor in the predictions (its IoU is undefined, and
        ``nanmean`` leaves it out of the mean).

    Example:
        >>> iou_from_confusion(torch.tensor([[3, 1], [0, 2]]))
        tensor([0.7500, 0.6667], dtype=torch.float64)
    """
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"a confusion matrix is square, got shape {tuple(matrix.shape)}")
    matrix = matrix.double()
    hits = matrix.diagonal()
    union = matrix.sum(0) + matrix.sum(1) - hits
    return torch.where(union > 0, hits / union, torch.nan)


def mean_iou(
    predictions: torch.Tensor, targets: torch.Tensor, num_classes: int | None = None, *, per_class: bool = False
) -> torch.Tensor:
    """Mean intersection over union: the IoU of each class, averaged over the classes that occur.

    Unlike pixel accuracy, each class counts equally, however few pixels it
    has: predicting background everywhere gives the background a high IoU and
    every other class 0.

    Args:
        predictions: Logits ``N x num_classes x H x W`` or class indices like ``targets``.
        targets: ``N x H x W`` (or any shape) class indices.
        num_classes: Number of classes; read from the logits when omitted.
        per_class: Return the ``(num_classes,)`` IoUs (``nan`` for a class that
            occurs nowhere) instead of their mean.

    Returns:
        A 0-d float tensor (or ``(num_classes,)``), on the CPU.

    Example:
        >>> mean_iou(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 0, 0, 1]), 2)
        tensor(0.5833, dtype=torch.float64)
    """
    if num_classes is None:
        if predictions.ndim != targets.ndim + 1:
            raise ValueError("pass num_classes when the predictions are class indices rather than logits")
        num_classes = predictions.shape[1]
    iou = iou_from_confusion(confusion_matrix(predictions, targets, num_classes))
    return iou if per_class else iou.nanmean()


_NAMED: dict[str, Metric] = {
    "accuracy": accuracy,
    "pixel_accuracy": pixel_accuracy,
    "mean_iou": mean_iou,  # of each batch; sum confusion matrices for the data set's (segmentation_scores)
    "top5_accuracy": partial(top_k_accuracy, k=5),
}


def resolve_metrics(metrics: Iterable[str] | Mapping[str, Metric] | None) -> dict[str, Metric]:
    """Turn ``("accuracy",)`` or ``{"name": fn}`` into a name-to-function dict."""
    if metrics is None:
        return {}
    if isinstance(metrics, Mapping):
        return dict(metrics)
    if isinstance(metrics, str):
        metrics = (metrics,)
    unknown = [name for name in metrics if name not in _NAMED]
    if unknown:
        raise ValueError(
            f"unknown metric(s) {unknown}: use {sorted(_NAMED)} or pass a dict of name -> function"
        )
    return {name: _NAMED[name] for name in metrics}
