"""The learning-rate range test: one short run with a growing learning rate.

Leslie Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017
(arXiv:1506.01186), trains for a while with a learning rate that grows from
tiny to huge and watches the loss. While the rate is too small, the loss barely
moves; over a middle range it falls quickly; past some point the steps overshoot
and the loss shoots up. fastai made the test popular as ``lr_find``, with the
learning rate growing exponentially over one short run, a smoothed loss, and an
early stop once the loss has clearly diverged. :func:`lr_range_test` does the
same and leaves the model, the optimizer and torch's random number generators
exactly as it found them, so the real training can start right after it.

Two rules turn the curve into one learning rate (:class:`LRRangeTest`):

``"min/10"`` (the default)
    a tenth of the learning rate at which the smoothed loss is lowest. The
    minimum sits near the edge of divergence; one order of magnitude less is
    back inside the range where the loss falls fast, on the safe side. It rests
    on the position of the minimum of a smoothed curve, which moves little from
    one run to the next.
``"steepest"``
    the learning rate where the smoothed loss falls fastest per factor of
    learning rate (the most negative slope against ``log(lr)``), looked for up
    to the minimum. It rests on a numerical derivative of a noisy curve, and on
    Fashion-MNIST it jumped by orders of magnitude between seeds where
    ``"min/10"`` moved by a factor of two or three; that is why it is not the
    default.

The smoothing is an exponential moving average with bias correction (as in
Adam), the same curve that decides the early stop. It trails the raw loss by
about ``1 / smoothing`` steps, so its minimum comes a little after the raw
one; the tenth in ``"min/10"`` more than makes up for it.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

__all__ = ["LRRangeTest", "ema", "lr_range_test"]

log = logging.getLogger(__name__)

Rule = Literal["min/10", "steepest"]
_RULES = ("min/10", "steepest")


def ema(values: Iterable[float], smoothing: float) -> list[float]:
    """Exponential moving average with bias correction (the first value is kept as it is).

    ``out[i] = avg[i] / (1 - (1 - smoothing) ** (i + 1))`` with
    ``avg[i] = (1 - smoothing) * avg[i - 1] + smoothing * values[i]`` and
    ``avg[-1] = 0``: the division undoes the pull towards the zero start.

    Example:
        >>> ema([1.0, 1.0, 1.0], 0.1)
        [1.0, 1.0, 1.0]
    """
    beta, avg, out = 1.0 - smoothing, 0.0, []
    for i, value in enumerate(values):
        avg = beta * avg + smoothing * value
        out.append(avg / (1.0 - beta ** (i + 1)))
    return out


@dataclass(frozen=True)
class LRRangeTest:
    """What :func:`lr_range_test` measured, and the learning rate it suggests.

    Attributes:
        lrs: The learning rate of each step.
        losses: The training loss of each step's batch, computed before that
            step's update (so it reflects the learning rates before it).
        smoothed: The smoothed losses (:func:`ema`) the suggestions are read from.
        rule: The rule behind :attr:`suggestion`: ``"min/10"`` or ``"steepest"``.
        diverged: True if the run stopped early because the loss blew up.
    """

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    rule: Rule = "min/10"
    diverged: bool = False

    @property
    def lr_at_min(self) -> float:
        """The learning rate at which the smoothed loss is lowest."""
        return self.lrs[int(np.argmin(self.smoothed))]

    @property
    def steepest(self) -> float:
        """The learning rate of the steepest fall of the smoothed loss against ``log(lr)``.

        Looked for from the start up to the minimum; with fewer than three points
        there is no slope to compare and the first learning rate is returned.
        """
        end = int(np.argmin(self.smoothed)) + 1
        if end < 3:
            return self.lrs[0]
        slope = np.gradient(np.asarray(self.smoothed[:end]), np.log(np.asarray(self.lrs[:end])))
        return self.lrs[int(np.argmin(slope))]

    @property
    def suggestion(self) -> float:
        """The suggested learning rate, by :attr:`rule`."""
        return self.lr_at_min / 10 if self.rule == "min/10" else self.steepest

    def plot(self, ax=None, *, raw: bool = True, label: str | None = None):
        """Draw the loss against the learning rate (log axis) and mark the suggestion.

        Args:
            ax: Matplotlib axes to draw into; a new figure by default.
            raw: Also draw the unsmoothed losses, faintly.
            label: Legend label of the smoothed curve (default ``"smoothed loss"``).

        Returns:
            The axes.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        line = ax.plot(self.lrs, self.smoothed, label=label or "smoothed loss")[0]
        if raw:
            ax.plot(self.lrs, self.losses, color=line.get_color(), alpha=0.3, linewidth=0.8)
        ax.axvline(self.suggestion, color=line.get_color(), linestyle="--", linewidth=1)
        ax.plot([self.suggestion], [np.interp(np.log(self.suggestion), np.log(self.lrs), self.smoothed)], "o",
                color=line.get_color(), label=f"suggestion ({self.rule}): {self.suggestion:.2g}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        # keep the explosion from squashing the interesting part of the curve
        low, high = min(self.losses if raw else self.smoothed), self.smoothed[0]
        ax.set_ylim(low - 0.1 * (high - low), high + 0.6 * (high - low) if high > low else None)
        ax.legend(fontsize=8)
        return ax


def _batches(loader: Iterable, steps: int) -> Iterator:
    """Go through ``loader`` again and again until ``steps`` batches have been yielded."""
    count = 0
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
            count += 1
            if count == steps:
                return
        if empty:  # an empty loader would otherwise be cycled for ever
            return


def lr_range_test(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    optimizer: torch.optim.Optimizer | None = None,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    steps: int = 100,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    device: str | torch.device | None = None,
    smoothing: float = 0.05,
    diverge_factor: float = 4.0,
    rule: Rule = "min/10",
) -> LRRangeTest:
    """Train for ``steps`` batches with a learning rate growing from ``start_lr`` to ``end_lr``.

    Step ``i`` uses ``start_lr * (end_lr / start_lr) ** (i / (steps - 1))``, for
    every parameter group. The run stops early once the smoothed loss exceeds
    ``diverge_factor`` times its lowest value, or the loss is not finite. At the
    end the model's and the optimizer's state (weights, batch-norm statistics,
    momentum buffers, learning rates), the model's train/eval mode and torch's
    random number generators are put back as they were; the loader is not (it
    has been iterated).

    Args:
        model: The model to probe, as it will start training.
        loader: Training batches ``(inputs, targets)``; it is cycled if it has
            fewer than ``steps`` batches.
        optimizer: The optimizer the real training will use (its own learning
            rate is ignored); default ``Adam(model.parameters())`` as in
            :func:`~cnncourse.training.fit`.
        start_lr: The first learning rate.
        end_lr: The last learning rate, reached only if the loss never diverges.
        steps: Number of optimizer steps (batches).
        loss_fn: Returns the batch mean; default ``nn.CrossEntropyLoss()``.
        device: Where to run; default where the model's parameters are.
        smoothing: Weight of the newest loss in the moving average, in (0, 1].
        diverge_factor: Stop once the smoothed loss is this many times its
            lowest value so far; must be > 1.
        rule: How :attr:`LRRangeTest.suggestion` is chosen: ``"min/10"`` or
            ``"steepest"`` (see the module's docstring).

    Returns:
        An :class:`LRRangeTest` with ``lrs``, ``losses``, ``smoothed``,
        ``suggestion`` and ``plot()``.

    Raises:
        ValueError: A setting is out of range, or the loader yields no batches.

    Example:
        >>> result = lr_range_test(model, train_loader)  # doctest: +SKIP
        >>> result.plot(); result.suggestion  # doctest: +SKIP
    """
    if not 0 < start_lr < end_lr:
        raise ValueError(f"need 0 < start_lr < end_lr, got start_lr={start_lr}, end_lr={end_lr}")
    if not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be an int >= 2 (one per learning rate tried), got {steps!r}")
    if not 0 < smoothing <= 1:
        raise ValueError(f"smoothing is the weight of the newest loss and must be in (0, 1], got {smoothing}")
    if not diverge_factor > 1:
        raise ValueError(f"diverge_factor must be > 1 (a multiple of the lowest loss), got {diverge_factor}")
    if rule not in _RULES:
        raise ValueError(f"rule must be one of {_RULES}, got {rule!r}")

    if device is not None:
        model.to(device)
    param = next(model.parameters(), None)
    if param is None:
        raise ValueError("the model has no parameters to train")
    device = param.device
    optimizer = optimizer or torch.optim.Adam(model.parameters())
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    model_state = copy.deepcopy(model.state_dict())
    optimizer_state = copy.deepcopy(optimizer.state_dict())
    was_training = model.training
    factor = (end_lr / start_lr) ** (1 / (steps - 1))

    lrs: list[float] = []
    losses: list[float] = []
    diverged = False
    rng_devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=rng_devices, device_type=device.type):
            model.train()
            running, beta, best = 0.0, 1.0 - smoothing, math.inf
            for i, (x, y) in enumerate(_batches(loader, steps)):
                lr = start_lr * factor**i
                for group in optimizer.param_groups:
                    group["lr"] = lr
                x, y = x.to(device), y.to(device)
                loss = loss_fn(model(x), y)
                value = loss.item()
                if not math.isfinite(value):
                    diverged = True
                    log.info("lr_range_test: the loss is %s at lr %.3g; stopping", value, lr)
                    break
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                lrs.append(lr)
                losses.append(value)
                running = beta * running + smoothing * value
                smooth = running / (1 - beta ** (i + 1))
                best = min(best, smooth)
                if smooth > diverge_factor * best:
                    diverged = True
                    log.info("lr_range_test: the smoothed loss %.3g exceeds %g x its minimum %.3g at lr %.3g; "
                             "stopping", smooth, diverge_factor, best, lr)
                    break
    finally:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optimizer_state)
        model.train(was_training)
    if not lrs:
        raise ValueError("the loader yielded no batches (or the very first loss was not finite)")
    if len(lrs) < 10:
        log.warning("lr_range_test: only %d steps before the loss diverged; lower start_lr", len(lrs))
    return LRRangeTest(lrs=lrs, losses=losses, smoothed=ema(losses, smoothing), rule=rule,
                       diverged=diverged)
