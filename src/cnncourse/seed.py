"""Seed every random number generator a chapter touches."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["seed_everything"]


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """Seed Python's, NumPy's and torch's generators (CPU and every GPU).

    Args:
        seed: An integer in [0, 2**63).
        deterministic: Also make torch choose deterministic algorithms, so
            that two runs on the same GPU give bit-identical results. This is
            slower on CUDA, and ops without a deterministic version raise an
            error naming themselves.

    Raises:
        ValueError: ``seed`` is negative or not an integer.

    Example:
        >>> seed_everything(0)
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an int in [0, 2**63), got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds the CPU and every CUDA device
    if deterministic:
        # cuBLAS needs a fixed workspace to be deterministic (CUDA >= 10.2).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True)
    elif torch.are_deterministic_algorithms_enabled():
        # only when needed: the first call costs about 2 s (torch imports its compiler stack)
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
    else:
        torch.backends.cudnn.deterministic = False
