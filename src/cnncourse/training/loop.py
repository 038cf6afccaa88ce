"""The training loop: :func:`fit`, :func:`evaluate` and :func:`predict`.

``fit`` is deliberately one readable function, the loop chapter 7 takes
apart: train mode, batches, forward, loss, backward, step; then evaluation
under ``torch.no_grad()`` in eval mode, callbacks, and one history row.
Under ``torchrun`` the same function trains with DistributedDataParallel;
the plumbing lives in :mod:`cnncourse.distributed` (appendix B).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext

import torch
from torch import nn
from tqdm.auto import tqdm

from .. import distributed
from ..device import get_device
from .callbacks import Callback, LRScheduler
from .history import History
from .metrics import Metric, resolve_metrics

__all__ = ["fit", "evaluate", "predict"]

log = logging.getLogger(__name__)

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]
Metrics = Sequence[str] | Mapping[str, Metric] | None


def _precision(device: torch.device, amp: bool | None) -> torch.dtype | None:
    """The autocast dtype, or None for full precision.

    ``amp=None`` turns mixed precision on for CUDA only, where it is safe and
    fast: bfloat16 on GPUs that support it (no loss scaling needed), float16
    with a gradient scaler otherwise.
    """
    if amp is False or (amp is None and device.type != "cuda"):
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16  # CPU and MPS autocast


def _tqdm_disabled() -> bool:
    # tqdm's own switch; its notebook bars ignore it, so we read it for them.
    return os.environ.get("TQDM_DISABLE", "").lower() not in ("", "0", "false")


def _channels_last(device: torch.device, requested: bool | None) -> bool:
    """NHWC by default where cuDNN and oneDNN are faster with it; MPS is not."""
    return device.type in ("cuda", "cpu") if requested is None else requested


def _to_device(batch, device: torch.device, channels_last: bool):
    x, y = batch
    if channels_last and x.ndim == 4:
        x = x.to(device, non_blocking=True, memory_format=torch.channels_last)
    else:
        x = x.to(device, non_blocking=True)
    return x, y.to(device, non_blocking=True)


class _Running:
    """Batch-size-weighted sums of the loss and metrics, kept on the device."""

    def __init__(self, metrics: dict[str, Metric]) -> None:
        self.metrics, self.sums, self.count = metrics, {}, 0

    @torch.no_grad()
    def update(self, loss: torch.Tensor, y_hat: torch.Tensor, y: torch.Tensor) -> None:
        n = len(y)
        self.count += n
        values = {"loss": loss.detach(), **{name: fn(y_hat.detach(), y) for name, fn in self.metrics.items()}}
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0.0) + value.float() * n

    def result(self, prefix: str = "") -> dict[str, float]:
        # summed over every rank of a process group (one all-reduce), so each rank reports the global values
        names = ["loss", *self.metrics]
        *totals, count = distributed.sum_over_ranks([*(self.sums.get(n, 0.0) for n in names), self.count]).tolist()
        if count == 0:
            raise ValueError("the loader yielded no batches")
        return {prefix + name: total / count for name, total in zip(names, totals)}


def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else get_device()


def fit(
    model: nn.Module,
    train_loader: Batches,
    val_loader: Batches | None = None,
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer | None = None,
    loss_fn: nn.Module | None = None,
    scheduler=None,
    scheduler_interval: str = "epoch",
    callbacks: Sequence[Callback] = (),
    metrics: Metrics = ("accuracy",),
    device: str | torch.device | None = None,
    amp: bool | None = None,
    channels_last: bool | None = None,
    progress: bool = True,
) -> History:
    """Train ``model`` for ``epochs`` full passes over ``train_loader``.

    Args:
        model: Any module mapping a batch of inputs to logits.
        train_loader: Any iterable of ``(inputs, targets)`` batches.
        val_loader: Batches evaluated after every epoch (logged as ``val_*``).
        epochs: Number of full passes over ``train_loader``.
        optimizer: Default ``Adam(model.parameters(), lr=1e-3)``.
        loss_fn: Returns the batch mean; default ``nn.CrossEntropyLoss()``.
        scheduler: A ``torch.optim.lr_scheduler`` scheduler. ``ReduceLROnPlateau``
            is stepped with ``val_loss`` (``loss`` without a validation set).
        scheduler_interval: Step the scheduler every ``"epoch"`` or ``"batch"``.
        callbacks: :class:`Callback` objects, called in order.
        metrics: Metric names (``"accuracy"``, ``"top5_accuracy"``) or a dict of
            name -> ``fn(logits, targets)`` returning the batch mean.
        device: Where to train; default :func:`~cnncourse.get_device`.
        amp: Mixed precision; default on for CUDA only (bfloat16 where supported).
        channels_last: NHWC memory layout for 4-D inputs; default on for CUDA
            and CPU, whose convolution libraries (cuDNN, oneDNN) run faster in
            it, off for MPS.
        progress: Show ``tqdm`` progress bars (``TQDM_DISABLE=1`` also hides them).

    Under a process group (``torchrun``, :func:`cnncourse.distributed.init_from_env`)
    ``model`` is wrapped in DistributedDataParallel (unless it already is: then
    it must be on ``device`` and in the memory layout asked for already) and
    trained in place; each rank iterates over its own shard of the data
    (:func:`~cnncourse.data.tensor_loader` shards by itself, a
    ``DistributedSampler`` gets ``set_epoch``). Only rank 0 shows progress,
    logs and runs ``main_process_only`` callbacks (checkpoints); a callback
    that stops any rank stops all of them.

    Returns:
        A :class:`History` with ``loss``, the metrics, ``val_*`` values, the
        learning rate ``lr`` and the epoch's wall time ``time`` in seconds.
        Training values are averages over the epoch, taken while the weights
        were changing and with dropout on. Under a process group they are
        averages over every rank's examples (the same history on every rank),
        and ``time`` is the slowest rank's.

    Example:
        >>> history = fit(model, train_loader, val_loader, epochs=5)  # doctest: +SKIP
        >>> history.plot()  # doctest: +SKIP
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    device = get_device(device)
    channels_last = _channels_last(device, channels_last)
    dtype = _precision(device, amp)
    model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    net, model = distributed.wrap(model, device), distributed.unwrap(model)  # DDP under torchrun, else model
    main = distributed.is_main_process()
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    autocast = torch.autocast(device.type, dtype=dtype) if dtype else nullcontext()
    metric_fns = resolve_metrics(metrics)
    callbacks = [c for c in callbacks if main or not c.main_process_only]
    if scheduler is not None:
        monitor = "val_loss" if val_loader is not None else "loss"
        callbacks.insert(0, LRScheduler(scheduler, monitor=monitor, interval=scheduler_interval))

    history, step = History(), 0
    distributed.check_same_on_all_ranks(len(train_loader) if hasattr(train_loader, "__len__") else -1, "batches")
    for callback in callbacks:
        callback.on_train_begin(model)
    quiet = {"disable": True} if not progress or _tqdm_disabled() or not main else {}
    epoch_bar = tqdm(range(epochs), desc="epochs", unit="epoch", **quiet)
    for epoch in epoch_bar:
        start, lr = time.perf_counter(), optimizer.param_groups[0]["lr"]
        distributed.set_epoch(train_loader, epoch)
        model.train()
        running = _Running(metric_fns)
        for batch in tqdm(train_loader, desc=f"epoch {epoch + 1}", leave=False, **quiet):
            x, y = _to_device(batch, device, channels_last)
            with autocast:
                y_hat = net(x)
                loss = loss_fn(y_hat, y)
            optimizer.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                optimizer.step()
            else:  # float16 needs the loss scaled so small gradients do not underflow
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            running.update(loss, y_hat, y)
            for callback in callbacks:
                callback.on_batch_end(step)
            step += 1

        logs = running.result()
        if val_loader is not None:
            logs |= evaluate(model, val_loader, loss_fn=loss_fn, metrics=metric_fns, device=device,
                             amp=dtype is not None, channels_last=channels_last, prefix="val_")
        logs |= {"lr": lr, "time": distributed.max_over_ranks(time.perf_counter() - start)}
        history.append(logs)
        if main:
            log.info("epoch %d/%d: %s", epoch + 1, epochs, ", ".join(f"{k} {v:.4g}" for k, v in logs.items()))
        epoch_bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if k not in ("lr", "time")})
        for callback in callbacks:
            callback.on_epoch_end(epoch, logs)
        if distributed.any_rank(any(callback.stop_training for callback in callbacks)):
            break
    for callback in callbacks:
        callback.on_train_end(history)
    return history


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Batches,
    *,
    loss_fn: nn.Module | None = None,
    metrics: Metrics = ("accuracy",),
    device: str | torch.device | None = None,
    amp: bool | None = None,
    channels_last: bool | None = None,
    prefix: str = "",
) -> dict[str, float]:
    """Return the mean loss and metrics of ``model`` over ``loader`` in eval mode.

    Args:
        model: The model; it is moved to ``device`` if that is given.
        loader: Any iterable of ``(inputs, targets)`` batches.
        loss_fn: Default ``nn.CrossEntropyLoss()``.
        metrics: As for :func:`fit`.
        device: Default: where the model's parameters are.
        amp: Autocast as in :func:`fit` (default on for CUDA only).
        channels_last: As in :func:`fit`.
        prefix: Prepended to every key (``"val_"``, ``"test_"``).

    Returns:
        ``{"loss": ..., "accuracy": ...}`` averaged over every example. Under
        a process group, over every rank's examples: each rank must call it,
        with its shard (an unshuffled :func:`~cnncourse.data.tensor_loader`
        counts every example once).
    """
    device = torch.device(device) if device is not None else _model_device(model)
    model.to(device)
    channels_last = _channels_last(device, channels_last)
    dtype = _precision(device, amp)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    running = _Running(resolve_metrics(metrics))
    was_training = model.training
    model.eval()
    for batch in loader:
        x, y = _to_device(batch, device, channels_last)
        with torch.autocast(device.type, dtype=dtype) if dtype else nullcontext():
            y_hat = model(x)
            loss = loss_fn(y_hat, y)
        running.update(loss, y_hat, y)
    model.train(was_training)
    return running.result(prefix)


@torch.no_grad()
def predict(model: nn.Module, loader: Batches, *, device: str | torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(logits, targets)`` for every example of ``loader``, on the CPU.

    Under a process group each rank predicts its own shard; nothing is gathered.

    Example:
        >>> logits, y = predict(model, test_loader)  # doctest: +SKIP
        >>> confusion_matrix(logits, y, num_classes=10)  # doctest: +SKIP
    """
    device = torch.device(device) if device is not None else _model_device(model)
    was_training = model.training
    model.eval()
    outputs, targets = [], []
    for x, y in loader:
        outputs.append(model(x.to(device)).float().cpu())
        targets.append(y.cpu())
    model.train(was_training)
    return torch.cat(outputs), torch.cat(targets)
