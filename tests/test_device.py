"""Tests of cnncourse.device: choosing the device and the one-line banner.

The automatic choice is tested with ``torch.cuda.is_available`` and the MPS
probe monkeypatched, so the tests mean the same on a laptop, a GPU runner and
a Mac. No test calls a real CUDA function.
"""

from __future__ import annotations

import sys

import pytest
import torch

import cnncourse
from cnncourse import device as device_module
from cnncourse.device import COLAB_GPU_HINT, describe_device, get_device, in_colab


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine with neither CUDA nor MPS, outside Colab."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_module, "_mps_available", lambda: False)
    monkeypatch.setattr(device_module, "in_colab", lambda: False)


@pytest.fixture
def one_cuda_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend one CUDA GPU is visible (only the probes are patched, nothing runs on it)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


def test_package_reexports_the_device_helpers():
    assert cnncourse.get_device is get_device
    assert cnncourse.describe_device is describe_device


# get_device: the automatic choice


def test_auto_choice_is_cpu_without_a_gpu(no_gpu):
    assert get_device() == torch.device("cpu")


def test_auto_choice_prefers_cuda(one_cuda_gpu, monkeypatch):
    monkeypatch.setattr(device_module, "_mps_available", lambda: True)
    assert get_device() == torch.device("cuda")


def test_auto_choice_takes_mps_without_cuda(no_gpu, monkeypatch):
    monkeypatch.setattr(device_module, "_mps_available", lambda: True)
    assert get_device() == torch.device("mps")


# get_device: an explicit preference


@pytest.mark.parametrize("prefer", ["cpu", torch.device("cpu")])
def test_prefer_cpu(prefer, one_cuda_gpu):
    assert get_device(prefer) == torch.device("cpu")


def test_prefer_cuda_without_cuda_says_how_to_fix_it(no_gpu):
    with pytest.raises(ValueError, match="no CUDA GPU is visible") as excinfo:
        get_device("cuda")
    assert "prefer='cpu'" in str(excinfo.value)
    assert COLAB_GPU_HINT not in str(excinfo.value)


def test_prefer_cuda_on_colab_without_a_gpu_names_the_runtime_switch(no_gpu, monkeypatch):
    monkeypatch.setattr(device_module, "in_colab", lambda: True)
    with pytest.raises(ValueError, match="no CUDA GPU is visible") as excinfo:
        get_device("cuda:0")
    assert COLAB_GPU_HINT in str(excinfo.value)


@pytest.mark.parametrize("prefer", ["cuda", "cuda:0", torch.device("cuda", 0)])
def test_prefer_an_existing_cuda_device(prefer, one_cuda_gpu):
    assert get_device(prefer) == torch.device(prefer)


def test_prefer_a_cuda_index_that_does_not_exist(one_cuda_gpu):
    with pytest.raises(ValueError, match=r"only 1 GPU\(s\) exist: use an index below 1"):
        get_device("cuda:1")


@pytest.mark.parametrize("prefer", ["tpu", "garbage", "cuda:x", ""])
def test_prefer_something_that_is_not_a_device(prefer):
    with pytest.raises(ValueError, match="is not a device: use one of cuda, mps, cpu"):
        get_device(prefer)


@pytest.mark.parametrize("prefer", ["meta", "xla", "xpu"])
def test_prefer_a_torch_device_that_cnncourse_does_not_support(prefer):
    with pytest.raises(ValueError, match="cnncourse supports cuda, mps, cpu"):
        get_device(prefer)


def test_prefer_mps_where_it_is_absent(no_gpu):
    with pytest.raises(ValueError, match="MPS was requested but is not available") as excinfo:
        get_device("mps")
    assert "prefer='cpu'" in str(excinfo.value)


def test_prefer_mps_where_it_exists(no_gpu, monkeypatch):
    monkeypatch.setattr(device_module, "_mps_available", lambda: True)
    assert get_device("mps") == torch.device("mps")


# in_colab and describe_device


def test_in_colab_reads_the_environment(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    assert in_colab() is False
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20250101-060000_RC00")
    assert in_colab() is True


def test_describe_cpu_is_one_line_naming_cpu_and_torch(no_gpu):
    banner = describe_device("cpu")
    assert "\n" not in banner
    assert banner.startswith("Device: CPU (")
    assert f"{torch.get_num_threads()} threads" in banner
    assert banner.endswith(f"torch {torch.__version__}")
    assert COLAB_GPU_HINT not in banner


def test_describe_the_automatic_choice(no_gpu):
    assert describe_device() == describe_device("cpu")


def test_describe_cpu_without_a_known_memory_size(no_gpu, monkeypatch):
    monkeypatch.setattr(device_module, "_system_memory", lambda: None)
    assert describe_device("cpu") == (
        f"Device: CPU ({torch.get_num_threads()} threads), torch {torch.__version__}"
    )


def test_describe_cpu_on_colab_says_how_to_get_a_gpu(no_gpu, monkeypatch):
    monkeypatch.setattr(device_module, "in_colab", lambda: True)
    banner = describe_device("cpu")
    assert "\n" not in banner
    assert "CPU" in banner and torch.__version__ in banner
    assert banner.endswith(COLAB_GPU_HINT)
    assert "Runtime > Change runtime type" in banner


def test_describe_a_cuda_gpu_names_it_and_its_memory(one_cuda_gpu, monkeypatch):
    class Properties:  # what torch.cuda.get_device_properties returns, reduced to what is read
        name = "NVIDIA T4"
        total_memory = 15 * 2**30

    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: Properties())
    monkeypatch.setattr(device_module, "in_colab", lambda: True)  # no runtime hint on a GPU
    assert describe_device("cuda") == f"Device: CUDA GPU NVIDIA T4 (15.0 GiB), torch {torch.__version__}"


def test_describe_mps_names_the_unified_memory(no_gpu, monkeypatch):
    monkeypatch.setattr(device_module, "_mps_available", lambda: True)
    monkeypatch.setattr(device_module, "_system_memory", lambda: 16 * 2**30)
    assert describe_device() == f"Device: Apple MPS GPU, 16.0 GiB unified memory, torch {torch.__version__}"


def test_describe_an_absent_device_raises(no_gpu):
    with pytest.raises(ValueError, match="no CUDA GPU is visible"):
        describe_device("cuda")
