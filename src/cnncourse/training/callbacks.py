"""Callbacks for :func:`~cnncourse.training.fit`, in the manner of Keras and Lightning.

A callback is told when training begins (and given the model), after every
batch and after every epoch (with that epoch's logs), and when training ends
(with the history). It stops training by setting ``self.stop_training``; the
loop checks the flag after each epoch.

Under ``torchrun`` (see :mod:`cnncourse.distributed`) every rank runs the
callbacks with the same, global logs, except those marked
``main_process_only`` (checkpoints, TensorBoard), which only rank 0 runs. A
callback that stops training on any rank stops all of them together.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from ..distributed import is_main_process
from .history import History

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint", "LRScheduler", "TensorBoard"]

log = logging.getLogger(__name__)

Mode = Literal["auto", "min", "max"]


class Callback:
    """Base class: override the hooks you need; each does nothing by default.

    Set ``main_process_only = True`` in a callback that writes files or logs,
    so that only rank 0 runs it when several processes train together.
    """

    stop_training: bool = False
    main_process_only: bool = False

    def on_train_begin(self, model: nn.Module) -> None:
        """Called once before the first epoch."""

    def on_batch_end(self, step: int) -> None:
        """Called after every optimizer step; ``step`` counts from 0 across epochs."""

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Called after every epoch (``epoch`` counts from 0) with its logs."""

    def on_train_end(self, history: History) -> None:
        """Called once after the last epoch."""


def _monitored(logs: dict[str, float], monitor: str) -> float:
    if monitor not in logs:
        hint = " (validation values need a val_loader)" if monitor.startswith("val_") else ""
        raise KeyError(f"monitor {monitor!r} is not in the logs {sorted(logs)}{hint}")
    return logs[monitor]


class _Best:
    """Tracks the best value of a monitored quantity.

    A new value counts as an improvement only when it beats the best so far
    by more than ``min_delta``: lower for ``mode="min"``, higher for
    ``mode="max"``. ``"auto"`` means ``max`` for accuracies, else ``min``.
    """

    def __init__(self, monitor: str, mode: Mode, min_delta: float) -> None:
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if min_delta < 0:
            raise ValueError(f"min_delta is a size and must be >= 0, got {min_delta}")
        self.monitor, self.mode, self.min_delta = monitor, mode, min_delta
        self.value = math.inf if mode == "min" else -math.inf

    def update(self, logs: dict[str, float]) -> bool:
        """Record the epoch's value; return True if it is an improvement."""
        current = _monitored(logs, self.monitor)
        if self.mode == "min":
            better = current < self.value - self.min_delta
        else:
            better = current > self.value + self.min_delta
        if better:
            self.value = current
        return better


class EarlyStopping(Callback):
    """Stop when the monitored value has not improved for ``patience`` epochs.

    Args:
        monitor: A key of the epoch logs, such as ``"val_loss"`` or ``"val_accuracy"``.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (max for accuracies).
        patience: Epochs without improvement to allow before stopping.
        min_delta: An epoch improves only if it beats the best value so far
            by more than this much.
        restore_best_weights: At the end, load the weights of the best epoch.

    Example:
        >>> stopper = EarlyStopping(monitor="val_loss", patience=3, min_delta=1e-3)
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        *,
        mode: Mode = "auto",
        patience: int = 5,
        min_delta: float = 0.0,
        restore_best_weights: bool = True,
    ) -> None:
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        _Best(monitor, mode, min_delta)  # validates mode and min_delta now, not at the first epoch
        self.monitor, self.mode, self.patience, self.min_delta = monitor, mode, patience, min_delta
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, model: nn.Module) -> None:
        self.model = model
        self.best = _Best(self.monitor, self.mode, self.min_delta)
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.stop_training = False

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self.best.update(logs):
            self.best_epoch, self.wait = epoch, 0
            if self.restore_best_weights:
                self.best_state = copy.deepcopy(self.model.state_dict())
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch, self.stop_training = epoch, True
            since = "the start" if self.best_epoch is None else f"epoch {self.best_epoch + 1}"
            if is_main_process():  # every rank stops; one says so
                log.info("Early stopping after epoch %d: %s has not improved since %s (patience %d)",
                         epoch + 1, self.monitor, since, self.patience)

    def on_train_end(self, history: History) -> None:
        history.stopped_early = self.stopped_epoch is not None
        history.best_epoch = self.best_epoch
        last = len(history) - 1
        if self.best_state is not None and self.best_epoch != last:
            self.model.load_state_dict(self.best_state)
            if is_main_process():
                log.info("Restored the weights of epoch %d", self.best_epoch + 1)


class ModelCheckpoint(Callback):
    """Save the model's ``state_dict`` to ``path`` when the monitored value improves.

    The file is written next to its final name and then renamed, so a crash
    never leaves a truncated checkpoint. Under ``torchrun`` only rank 0 saves.

    Args:
        path: Where to write the checkpoint (a ``.pt`` file).
        monitor: A key of the epoch logs.
        mode: ``"min"``, ``"max"`` or ``"auto"``.
        save_best_only: Save only improvements (otherwise every epoch).
    """

    main_process_only = True

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        monitor: str = "val_loss",
        mode: Mode = "auto",
        save_best_only: bool = True,
    ) -> None:
        _Best(monitor, mode, 0.0)  # validates mode
        self.path = Path(path)
        self.monitor, self.mode, self.save_best_only = monitor, mode, save_best_only

    def on_train_begin(self, model: nn.Module) -> None:
        self.model = model
        self.best = _Best(self.monitor, self.mode, 0.0)
        self.best_epoch: int | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        improved = self.best.update(logs)
        if improved:
            self.best_epoch = epoch
        if improved or not self.save_best_only:
            partial = self.path.with_name(self.path.name + ".partial")
            torch.save(self.model.state_dict(), partial)
            os.replace(partial, self.path)
            log.info("Saved %s (epoch %d, %s %.4g)", self.path, epoch + 1, self.monitor, logs[self.monitor])


class LRScheduler(Callback):
    """Step a ``torch.optim.lr_scheduler`` scheduler at the right moment.

    ``ReduceLROnPlateau`` is stepped with the monitored value after each
    epoch; any other scheduler is stepped after each epoch, or after each
    batch with ``interval="batch"`` (``OneCycleLR``, warm-ups).
    :func:`~cnncourse.training.fit` wraps its ``scheduler=`` argument in this.
    """

    def __init__(self, scheduler, *, monitor: str = "val_loss", interval: Literal["epoch", "batch"] = "epoch") -> None:
        if interval not in ("epoch", "batch"):
            raise ValueError(f"interval must be 'epoch' or 'batch', got {interval!r}")
        self.plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
        if self.plateau and interval == "batch":
            raise ValueError("ReduceLROnPlateau needs an epoch's monitored value: use interval='epoch'")
        self.scheduler, self.monitor, self.interval = scheduler, monitor, interval

    def on_batch_end(self, step: int) -> None:
        if self.interval == "batch":
            self.scheduler.step()

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self.plateau:
            self.scheduler.step(_monitored(logs, self.monitor))
        elif self.interval == "epoch":
            self.scheduler.step()


class TensorBoard(Callback):
    """Write every epoch's logs as TensorBoard scalars (needs ``pip install tensorboard``).

    Example:
        >>> fit(model, train_loader, epochs=5, callbacks=[TensorBoard("runs/cnn")])  # doctest: +SKIP

    Then ``tensorboard --logdir runs`` shows the curves. Under ``torchrun`` only rank 0 writes.
    """

    main_process_only = True

    def __init__(self, log_dir: str | os.PathLike) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise ImportError(
                "TensorBoard logging needs the tensorboard package: "
                "pip install 'cnncourse[tensorboard]' (or pip install tensorboard)"
            ) from err
        # the writer (and its folder) is made when training begins, on the rank that writes
        self.make_writer, self.log_dir = SummaryWriter, str(log_dir)

    def on_train_begin(self, model: nn.Module) -> None:
        self.writer = self.make_writer(log_dir=self.log_dir)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        for name, value in logs.items():
            self.writer.add_scalar(name, value, epoch + 1)
        self.writer.flush()

    def on_train_end(self, history: History) -> None:
        self.writer.close()
