"""Fixtures shared by the unit tests: a tiny separable problem, a tiny CNN, and the CUDA switch."""

from __future__ import annotations

import os
from collections.abc import Callable

import matplotlib
import pytest
import torch
from torch import nn

matplotlib.use("Agg")  # no display on CI machines; must happen before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402


#: Set to 1 (benchmarks/gpu_check.py --dry-run does) to run the tests marked ``cuda`` on the CPU: that proves
#: the tests themselves run before a GPU is lent, though not what only CUDA can show.
CUDA_TESTS_ON_CPU = "CNNCOURSE_CUDA_TESTS_ON_CPU"


def pytest_collection_modifyitems(config, items):
    """Skip the tests marked ``cuda`` where there is no CUDA GPU (unless they are asked to run on the CPU)."""
    if torch.cuda.is_available() or os.environ.get(CUDA_TESTS_ON_CPU) == "1":
        return
    skip = pytest.mark.skip(reason=f"needs a CUDA GPU ({CUDA_TESTS_ON_CPU}=1 runs it on the CPU)")
    for item in items:
        if item.get_closest_marker("cuda"):
            item.add_marker(skip)


@pytest.fixture
def cuda_device() -> torch.device:
    """The GPU for the tests marked ``cuda``: ``cuda``, or the CPU in a dry run without one."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture(autouse=True)
def _close_figures():
    """Close the figures a test leaves open (matplotlib keeps them all, and warns past 20)."""
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def one_thread():
    """Run a module on one thread: on tensors this small, a second thread costs more than it gives
    (several times more on a busy machine). Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def blobs() -> tuple[torch.Tensor, torch.Tensor]:
    """90 tiny images (N x 1 x 4 x 4) from 3 far-apart Gaussian blobs: linearly separable.

    The centres are 3 * sqrt(2) apart and the noise has std 0.3, so the classes
    are separated by about 7 standard deviations.
    """
    generator = torch.Generator().manual_seed(0)
    y = torch.arange(90) % 3
    centres = 3.0 * torch.eye(3, 16)
    X = centres[y] + 0.3 * torch.randn(90, 16, generator=generator)
    return X.view(-1, 1, 4, 4), y


@pytest.fixture
def tiny_cnn() -> Callable[..., nn.Module]:
    """Build a seeded 3-class CNN for 1 x 4 x 4 inputs (two convs, one linear layer)."""

    def make(seed: int = 0) -> nn.Module:
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Conv2d(1, 4, kernel_size=3, padding=1),  # N x 4 x 4 x 4
            nn.ReLU(),
            nn.Conv2d(4, 4, kernel_size=3, padding=1),  # N x 4 x 4 x 4
            nn.ReLU(),
            nn.Flatten(),  # N x 64
            nn.Linear(64, 3),
        )

    return make
