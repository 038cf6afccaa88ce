"""Classification metrics on logits.

A metric is a function ``metric(logits, targets) -> Tensor`` that returns the
batch mean as a 0-d tensor. :func:`~cnncourse.training.fit` weights each batch
by its size, so the epoch value is exact (a count divided by N), and it keeps
the sums on the device so that a GPU never waits for a ``.item()`` mid-epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import partial

import torch

__all__ = ["Metric", "accuracy", "top_k_accuracy", "multilabel_accuracy", "confusion_matrix", "resolve_metrics"]

Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Fraction of rows whose highest logit is the target class.

    Shape:
        logits: ``N x num_classes``; targets: ``N`` class indices.

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

    Args:
        predictions: Predicted class indices, or ``N x num_classes`` logits.
        targets: True class indices.
        num_classes: Number of classes.

    Returns:
        A ``num_classes x num_classes`` ``int64`` tensor; its diagonal holds the hits.

    Example:
        >>> confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]), 2)
        tensor([[1, 1],
                [0, 1]])
    """
    if predictions.ndim == 2:
        if predictions.shape[1] != num_classes:
            raise ValueError(f"logits have {predictions.shape[1]} columns but num_classes is {num_classes}")
        predictions = predictions.argmax(dim=1)
    if predictions.shape != targets.shape:
        raise ValueError(f"predictions {tuple(predictions.shape)} and targets {tuple(targets.shape)} differ")
    for name, labels in (("predictions", predictions), ("targets", targets)):
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(
                f"{name} hold class {labels.min().item()}..{labels.max().item()}, outside 0..{num_classes - 1}: "
                "is num_classes right?"
            )
    index = targets.long() * num_classes + predictions.long()
    counts = torch.bincount(index.cpu(), minlength=num_classes**2)
    return counts.reshape(num_classes, num_classes)


_NAMED: dict[str, Metric] = {
    "accuracy": accuracy,
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
