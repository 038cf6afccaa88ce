"""Tests of cnncourse.seed: one call makes Python, NumPy and torch repeat themselves."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

import cnncourse
from cnncourse.seed import seed_everything


@pytest.fixture
def keep_determinism(monkeypatch: pytest.MonkeyPatch):
    """Restore torch's global determinism switches (and cuBLAS's variable) after the test."""
    # setenv then delenv: monkeypatch restores the variable's original state,
    # whether or not it existed, even after seed_everything sets it again.
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", "")
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
    )
    yield
    enabled, warn_only, benchmark, deterministic = saved
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
    torch.backends.cudnn.benchmark = benchmark
    torch.backends.cudnn.deterministic = deterministic


def _draws() -> tuple[float, np.ndarray, torch.Tensor]:
    return random.random(), np.random.rand(3), torch.rand(3)


def test_package_reexports_seed_everything():
    assert cnncourse.seed_everything is seed_everything


def test_returns_nothing_so_a_notebook_cell_shows_no_stray_value(keep_determinism):
    assert seed_everything(1234) is None


def test_draws_repeat_after_reseeding(keep_determinism):
    seed_everything(7)
    first = _draws()
    seed_everything(7)
    second = _draws()
    assert first[0] == second[0]
    np.testing.assert_array_equal(first[1], second[1])
    torch.testing.assert_close(first[2], second[2], rtol=0, atol=0)


def test_another_seed_gives_other_draws(keep_determinism):
    seed_everything(7)
    first = _draws()
    seed_everything(8)
    second = _draws()
    assert first[0] != second[0]
    assert not np.array_equal(first[1], second[1])
    assert not torch.equal(first[2], second[2])


def test_each_generator_gets_the_seed(keep_determinism):
    seed_everything(42)
    python, numpy, torch_draw = _draws()
    assert python == random.Random(42).random()
    np.testing.assert_array_equal(numpy, np.random.RandomState(42).rand(3))
    torch.testing.assert_close(torch_draw, torch.rand(3, generator=torch.Generator().manual_seed(42)))


def test_a_seed_beyond_numpys_range_is_folded_into_it(keep_determinism):
    seed_everything(2**32 + 5)
    np.testing.assert_array_equal(np.random.rand(3), np.random.RandomState(5).rand(3))


def test_deterministic_switches_torch_on_and_off(keep_determinism):
    seed_everything(0, deterministic=True)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.backends.cudnn.deterministic
    assert not torch.backends.cudnn.benchmark
    seed_everything(0, deterministic=False)
    assert not torch.are_deterministic_algorithms_enabled()
    assert not torch.backends.cudnn.deterministic


def test_deterministic_sets_the_cublas_workspace(keep_determinism):
    seed_everything(0, deterministic=True)
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


def test_deterministic_keeps_a_cublas_workspace_chosen_by_the_user(keep_determinism, monkeypatch):
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    seed_everything(0, deterministic=True)
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"


@pytest.mark.parametrize("seed", [-1, 2**63, 2**64, 1.5, 2.0, "0", None, True, False])
def test_bad_seeds_raise(seed, keep_determinism):
    with pytest.raises(ValueError, match=r"seed must be an int in \[0, 2\*\*63\)"):
        seed_everything(seed)
