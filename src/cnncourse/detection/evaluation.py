"""Running a detector over a data set, and scoring it during training.

A detector in evaluation mode returns detections (torchvision's format), not
the logits that :func:`~cnncourse.evaluate` averages a loss over, so its
validation is done by a callback of :func:`~cnncourse.fit`:
:class:`DetectionValidation` adds the validation loss and mAP to each
epoch's logs. The data are canvases as :meth:`~cnncourse.data.FashionCanvas.detection_dataset`
gives them: images and padded boxes.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset

from ..models.centernet import unpad_targets
from ..training.callbacks import Callback
from .metrics import DetectionScores, mean_average_precision

__all__ = ["DetectionValidation", "detect", "evaluate_detector"]

Detections = list[dict[str, torch.Tensor]]


def _device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@torch.no_grad()
def detect(
    model: nn.Module,
    images: torch.Tensor,
    *,
    batch_size: int = 100,
    device: str | torch.device | None = None,
    **options,
) -> Detections:
    """The detections of ``model`` (in evaluation mode) for every image, on the CPU.

    Args:
        model: A detector such as :class:`~cnncourse.models.CenterNet`.
        images: ``(N, C, H, W)``.
        batch_size: Images per forward pass.
        device: Where to run (default: where the model is).
        **options: Passed to ``model.detect`` (``score_threshold``, ``peaks``,
            ...); without options, ``model(images)`` in evaluation mode.

    Returns:
        ``N`` dicts with ``boxes``, ``scores`` and ``labels``.
    """
    device = torch.device(device) if device is not None else _device_of(model)
    was_training = model.training
    model.eval()
    out: Detections = []
    try:
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size].to(device)
            found = model.detect(x, **options) if options else model(x)
            out += [{k: v.cpu() for k, v in d.items()} for d in found]
    finally:
        model.train(was_training)
    return out


@torch.no_grad()
def evaluate_detector(
    model: nn.Module,
    data: TensorDataset,
    *,
    loss_fn: nn.Module | None = None,
    batch_size: int = 100,
    device: str | torch.device | None = None,
    **map_options,
) -> tuple[DetectionScores, float | None]:
    """Score a detector on ``(images, padded boxes)``: average precision, and the mean loss if asked.

    Args:
        model: A detector with methods ``dense`` (its training-mode output)
            and ``postprocess`` (detections from it), and ``num_classes``,
            such as :class:`~cnncourse.models.CenterNet`.
        data: Images ``(N, C, H, W)`` and padded boxes ``(N, K, 5)``
            (:meth:`~cnncourse.data.FashionCanvas.detection_dataset`).
        loss_fn: The training loss, averaged over batches weighted by their size.
        batch_size: Images per forward pass.
        device: Where to run (default: where the model is).
        **map_options: For :func:`~cnncourse.detection.mean_average_precision`.

    Returns:
        ``(scores, loss)``; ``loss`` is None without ``loss_fn``. Under a
        process group each rank scores every image (no sharding).
    """
    device = torch.device(device) if device is not None else _device_of(model)
    images, boxes = data.tensors
    was_training = model.training
    model.eval()
    detections: Detections = []
    total, count = 0.0, 0
    try:
        # plain slices, not tensor_loader: under a process group every rank scores the whole set
        for start in range(0, len(images), batch_size):
            x, y = images[start : start + batch_size].to(device), boxes[start : start + batch_size].to(device)
            dense = model.dense(x)
            if loss_fn is not None:
                total += float(loss_fn(dense, y)) * len(x)
                count += len(x)
            found = model.postprocess(dense, tuple(x.shape[-2:]))
            detections += [{k: v.cpu() for k, v in d.items()} for d in found]
    finally:
        model.train(was_training)
    scores = mean_average_precision(detections, unpad_targets(boxes), num_classes=model.num_classes, **map_options)
    return scores, (total / count if count else None)


class DetectionValidation(Callback):
    """Add a detector's validation loss and mAP to every epoch's logs: ``val_loss``, ``val_map_50``, ``val_map``.

    Put it first among the callbacks so that the later ones (early stopping,
    checkpoints) see its values. Under ``torchrun`` every rank scores the
    whole validation set (the same numbers on each).

    Args:
        data: Validation images and padded boxes.
        loss_fn: The training loss (for ``val_loss``).
        batch_size: Images per forward pass.

    Example:
        >>> fit(model, train_loader, epochs=5, loss_fn=model.loss_fn(), metrics=(),
        ...     callbacks=[DetectionValidation(canvases.detection_dataset(), model.loss_fn())])  # doctest: +SKIP
    """

    def __init__(self, data: TensorDataset, loss_fn: nn.Module | None = None, *, batch_size: int = 250) -> None:
        self.data, self.loss_fn, self.batch_size = data, loss_fn, batch_size

    def on_train_begin(self, model: nn.Module) -> None:
        self.model = model

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        # in full precision, even where training autocasts: boxes need more digits than bfloat16's three
        scores, loss = evaluate_detector(self.model, self.data, loss_fn=self.loss_fn, batch_size=self.batch_size)
        if loss is not None:
            logs["val_loss"] = loss
        logs["val_map_50"] = scores.map_50
        logs["val_map"] = scores.map
