"""Data-parallel training over several processes: the little that scripts and ``fit`` need from ``torch.distributed``.

``torchrun --nproc_per_node N script.py`` starts N copies of a script and
tells each one, through environment variables, who it is (``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``) and where the others are (``MASTER_ADDR``,
``MASTER_PORT``). A script calls :func:`init_from_env` once; from then on
:func:`~cnncourse.training.fit` trains with
:class:`~torch.nn.parallel.DistributedDataParallel`,
:func:`~cnncourse.data.tensor_loader` hands every rank its own shard of the
data, and the numbers ``fit`` reports are summed over all ranks. Run without
``torchrun``, :func:`init_from_env` initialises nothing and everything falls
back to one process, so the same script runs either way.

Work that one process does alone (saving a checkpoint, a final test) is best
done after :func:`cleanup`: the loaders and ``evaluate`` then act for that
process only, and no rank waits for another in a collective.

Example::

    from cnncourse import distributed, fit

    device = distributed.init_from_env()   # cuda:LOCAL_RANK, or the CPU (gloo)
    history = fit(model, train_loader, val_loader, epochs=5, device=device)
    distributed.cleanup()
    if distributed.is_main_process():      # still knows its rank from torchrun
        torch.save(model.state_dict(), "model.pt")
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .device import get_device

__all__ = [
    "any_rank",
    "check_same_on_all_ranks",
    "cleanup",
    "init_from_env",
    "is_initialized",
    "is_main_process",
    "launched",
    "max_over_ranks",
    "rank",
    "set_epoch",
    "sum_over_ranks",
    "unwrap",
    "world_size",
    "wrap",
]

#: What torchrun sets in every process it starts.
TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def launched() -> bool:
    """Return True in a process started by ``torchrun`` (or anything that sets its variables)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def is_initialized() -> bool:
    """Return True when a default process group exists (after :func:`init_from_env` under torchrun)."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's number in the process group, 0 to ``world_size() - 1`` (0 without a group)."""
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    """How many processes train together (1 without a group)."""
    return dist.get_world_size() if is_initialized() else 1


def is_main_process() -> bool:
    """Return True on rank 0, the process that logs, shows progress and saves.

    Without a process group it reads torchrun's ``RANK``, so that after
    :func:`cleanup` only the former rank 0 still answers True.
    """
    return rank() == 0 if is_initialized() else int(os.environ.get("RANK", "0")) == 0


def init_from_env(
    device: str | torch.device | None = None,
    *,
    backend: str | None = None,
    timeout: float | None = None,
) -> torch.device:
    """Join the process group that ``torchrun`` describes in the environment; return this rank's device.

    Without torchrun's variables nothing is initialised and the device is
    :func:`~cnncourse.get_device`'s choice (or ``device``). Under torchrun,
    each process takes the GPU numbered by its ``LOCAL_RANK`` and the NCCL
    backend when CUDA is there, and the CPU with the gloo backend otherwise
    (or when ``device="cpu"``). Calling it again is harmless.

    Args:
        device: ``"cuda"`` or ``"cpu"`` to choose; default CUDA if available, else the CPU.
        backend: Override the backend (``"gloo"``, ``"nccl"``).
        timeout: Seconds a collective may wait for the other ranks before it
            fails (torch's default is ten minutes or more); short values make a
            hang fail fast in tests.

    Returns:
        The device this rank computes on.

    Raises:
        ValueError: MPS was asked for under torchrun (no backend supports it).
    """
    if not launched():
        return get_device(device)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = get_device(device)
    if device.type == "mps":
        raise ValueError("torch.distributed has no backend for MPS: train with device='cpu' under torchrun")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)  # so that "cuda" and NCCL's buffers mean this rank's GPU
    if not is_initialized():
        wait = datetime.timedelta(seconds=timeout) if timeout is not None else None
        dist.init_process_group(backend or ("nccl" if device.type == "cuda" else "gloo"), timeout=wait)
    return device


def cleanup() -> None:
    """Leave the process group, if there is one (no barrier first: a rank that failed must not hang the others)."""
    if is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """Wrap ``model`` in DistributedDataParallel when a process group exists, unless it is wrapped already.

    DDP broadcasts rank 0's parameters and buffers to every rank when it
    wraps, then averages the gradients over all ranks during ``backward``, so
    every rank takes the same step. The wrapper shares ``model``'s parameters:
    training it trains ``model`` in place. ``device_ids`` names the GPU on
    CUDA and is left out on the CPU, as DDP requires.
    """
    if not is_initialized() or isinstance(model, DistributedDataParallel):
        return model
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return DistributedDataParallel(model, device_ids=[index])
    return DistributedDataParallel(model)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (or ``model`` itself)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def _collective_device() -> torch.device:
    # NCCL reduces CUDA tensors only; gloo reduces CPU tensors
    if is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def sum_over_ranks(values: Sequence[float | torch.Tensor]) -> torch.Tensor:
    """Sum each value over every rank, all in one all-reduce; without a group, the values themselves.

    Args:
        values: Numbers or 0-d tensors (on any device); every rank passes as
            many, in the same order.

    Returns:
        A 1-d float64 tensor on the CPU, the same on every rank.

    Example:
        >>> sum_over_ranks([1.0, torch.tensor(2)]).tolist()  # one process
        [1.0, 2.0]
    """
    device = _collective_device()
    totals = torch.stack([torch.as_tensor(v).to(device, torch.float64) for v in values])
    if is_initialized():
        dist.all_reduce(totals, op=dist.ReduceOp.SUM)
    return totals.cpu()


def _max_over_ranks(values: Sequence[float]) -> list[float]:
    tensor = torch.tensor(values, dtype=torch.float64, device=_collective_device())
    if is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor.tolist()


def max_over_ranks(value: float) -> float:
    """The largest ``value`` of any rank (``value`` itself without a group)."""
    return _max_over_ranks([value])[0]


def any_rank(flag: bool) -> bool:
    """True on every rank if ``flag`` is True on any: how one rank's decision to stop reaches all."""
    return max_over_ranks(float(flag)) > 0


def check_same_on_all_ranks(value: int, what: str) -> None:
    """Raise the same ``ValueError`` on every rank unless all ranks pass the same ``value``.

    DDP averages gradients in every ``backward``; a rank with one batch more
    than the others would wait in that average forever. Checking the number
    of batches first turns the hang into an error on every rank.
    """
    if not is_initialized():
        return
    high, minus_low = _max_over_ranks([value, -value])
    if high != -minus_low:
        raise ValueError(
            f"the ranks have between {-minus_low:.0f} and {high:.0f} {what}: every rank must take the same "
            "number of steps under DistributedDataParallel. Give training loaders even shards "
            "(tensor_loader(..., even_shards=True), or a DistributedSampler with its default drop_last=False)."
        )


def set_epoch(loader: object, epoch: int) -> None:
    """Call ``set_epoch`` on the loader's sampler (a ``DistributedSampler``) if it has one.

    A ``DistributedSampler`` draws its permutation from ``seed + epoch``; without
    this call every epoch would see the same order.
    """
    for sampler in (getattr(loader, "sampler", None), getattr(getattr(loader, "batch_sampler", None), "sampler", None)):
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
            return
