"""Pick the fastest available device and say which one is in use.

Chapters call :func:`get_device` once and print :func:`describe_device` as a
banner, so a reader always knows whether the numbers that follow came from a
GPU or a laptop CPU.
"""

from __future__ import annotations

import os
import sys

import torch

__all__ = ["get_device", "describe_device", "in_colab"]

_KINDS = ("cuda", "mps", "cpu")

COLAB_GPU_HINT = (
    "On Colab, choose Runtime > Change runtime type > T4 GPU (or better) "
    "and rerun the notebook to train on a GPU."
)


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def in_colab() -> bool:
    """Return True when running inside a Google Colab runtime."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def get_device(prefer: str | torch.device | None = None) -> torch.device:
    """Return the device to compute on: CUDA, then Apple MPS, then the CPU.

    Args:
        prefer: Ask for a device instead of the automatic choice, for example
            ``"cpu"`` to compare timings or ``"cuda:1"`` for a second GPU.

    Returns:
        A :class:`torch.device`.

    Raises:
        ValueError: ``prefer`` names an unknown kind, or a device that this
            machine does not have.

    Example:
        >>> get_device("cpu")
        device(type='cpu')
    """
    if prefer is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")

    try:
        device = torch.device(prefer)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"prefer={prefer!r} is not a device: use one of {', '.join(_KINDS)} "
            "(optionally with an index, as in 'cuda:0')"
        ) from err
    if device.type not in _KINDS:
        raise ValueError(f"prefer={prefer!r}: cnncourse supports {', '.join(_KINDS)}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            hint = COLAB_GPU_HINT if in_colab() else "use prefer='cpu' or leave prefer unset"
            raise ValueError(f"CUDA was requested but no CUDA GPU is visible: {hint}")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"{device} was requested but only {torch.cuda.device_count()} GPU(s) exist: "
                f"use an index below {torch.cuda.device_count()}"
            )
    if device.type == "mps" and not _mps_available():
        raise ValueError(
            "MPS was requested but is not available (it needs Apple silicon and a "
            "macOS build of torch): use prefer='cpu' or leave prefer unset"
        )
    return device


def _gib(num_bytes: float) -> str:
    return f"{num_bytes / 2**30:.1f} GiB"


def _system_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def describe_device(device: str | torch.device | None = None) -> str:
    """Return a one-line banner naming the device, its memory and torch's version.

    Args:
        device: The device to describe; by default the one :func:`get_device`
            picks.

    Returns:
        One line of text. On a Colab runtime without a GPU it ends with how to
        switch the runtime to one.

    Example:
        >>> describe_device("cpu")  # doctest: +ELLIPSIS
        'Device: CPU (... threads, ... GiB RAM), torch ...'
    """
    device = get_device(device)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        what = f"CUDA GPU {props.name} ({_gib(props.total_memory)})"
    elif device.type == "mps":
        memory = _system_memory()
        shared = f", {_gib(memory)} unified memory" if memory else ""
        what = f"Apple MPS GPU{shared}"
    else:
        memory = _system_memory()
        ram = f", {_gib(memory)} RAM" if memory else ""
        what = f"CPU ({torch.get_num_threads()} threads{ram})"
    banner = f"Device: {what}, torch {torch.__version__}"
    if device.type == "cpu" and in_colab():
        banner += f". {COLAB_GPU_HINT}"
    return banner
