"""The CUDA paths: mixed precision, channels-last, GPU-resident data, the zoo and DDP on a GPU.

Every test here is marked ``cuda``: skipped without a CUDA GPU, run by
``python benchmarks/gpu_check.py`` on one. Its ``--dry-run`` runs them on the
CPU (``CNNCOURSE_CUDA_TESTS_ON_CPU=1``), which proves that the tests
themselves work; the checks that only mean something on CUDA are guarded by
``if on_cuda``.
"""

from __future__ import annotations

import socket

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from cnncourse import describe_device, distributed, evaluate, fit, predict, seed_everything, zoo
from cnncourse.data import fashion_mnist, tensor_loader
from cnncourse.training import lr_range_test

pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("one_thread")]


def blobs(n: int = 512, seed: int = 0) -> TensorDataset:
    """n images of 1 x 8 x 8 in 3 classes, each class a bright blob in its own place."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    X = 0.3 * torch.randn(n, 1, 8, 8, generator=g)
    for c in range(3):
        X[y == c, 0, 2 * c:2 * c + 3, 2 * c:2 * c + 3] += 1.5
    return TensorDataset(X, y)


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),  # N x 8 x 8 x 8
        nn.Conv2d(8, 16, 3, padding=1, stride=2), nn.BatchNorm2d(16), nn.ReLU(),  # N x 16 x 4 x 4
        # no adaptive pooling: its CUDA backward has no deterministic version (the deterministic test)
        nn.Flatten(), nn.Linear(16 * 4 * 4, 3),
    )


def test_the_banner_names_the_gpu(cuda_device):
    banner = describe_device(cuda_device)
    assert banner.startswith("Device: CUDA GPU" if cuda_device.type == "cuda" else "Device: CPU")


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_fit_trains_in_mixed_precision_and_channels_last(cuda_device, precision, monkeypatch):
    on_cuda = cuda_device.type == "cuda"
    if precision == "float16" and on_cuda:  # the GradScaler path, which bfloat16 GPUs never take by default
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    expected = torch.float16 if precision == "float16" and on_cuda else torch.bfloat16
    model, seen = small_cnn(), []
    model[0].register_forward_hook(lambda module, args, out: seen.append(out.dtype) if module.training else None)
    train, val = blobs(), blobs(256, seed=1)
    history = fit(model, tensor_loader(train, 64, shuffle=True), tensor_loader(val, 128), epochs=4,
                  optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), device=cuda_device,
                  amp=True, channels_last=True, progress=False)
    assert set(seen) == {expected}  # autocast computed the convolutions in half precision
    weight = model[0].weight
    assert weight.device.type == cuda_device.type and weight.dtype == torch.float32  # float32 master weights
    assert weight.is_contiguous(memory_format=torch.channels_last)
    assert history["loss"][-1] < history["loss"][0] and history["val_accuracy"][-1] > 0.9
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_the_default_on_cuda_is_mixed_precision_and_channels_last(cuda_device):
    from cnncourse.training.loop import _channels_last, _precision

    if cuda_device.type == "cuda":
        assert _precision(cuda_device, None) in (torch.bfloat16, torch.float16)
    else:
        assert _precision(cuda_device, None) is None
    assert _channels_last(cuda_device, None)


def test_gpu_resident_loader_keeps_batches_on_the_device_in_the_cpu_order(cuda_device):
    data = TensorDataset(torch.arange(100.0).view(100, 1), torch.arange(100))
    on_device = tensor_loader(data, 16, shuffle=True, seed=3, device=cuda_device)
    on_cpu = tensor_loader(data, 16, shuffle=True, seed=3)
    assert not on_device.pin_memory
    for (x, y), (_, y_cpu) in zip(on_device, on_cpu):
        assert x.device.type == y.device.type == cuda_device.type
        assert torch.equal(y.cpu(), y_cpu)


def test_host_batches_are_pinned_for_asynchronous_copies(cuda_device):
    loader = tensor_loader(TensorDataset(torch.zeros(8, 1), torch.zeros(8)), 4)
    x, _ = next(iter(loader))
    assert loader.pin_memory == x.is_pinned() == (cuda_device.type == "cuda")


def test_fashion_mnist_loaders_move_the_data_into_gpu_memory_once(cuda_device):
    data = fashion_mnist(train_size=256, val_size=128)
    train, val, test = data.loaders(64, device=cuda_device)
    for loader in (train, val, test):
        assert loader.dataset.tensors[0].device.type == cuda_device.type


def test_evaluate_and_predict_agree_with_the_cpu(cuda_device):
    model, data = small_cnn().eval(), blobs(300)
    on_cpu = evaluate(model, tensor_loader(data, 100), device="cpu", amp=False)
    on_gpu = evaluate(model, tensor_loader(data, 100), device=cuda_device, amp=False)
    assert on_gpu["accuracy"] == pytest.approx(on_cpu["accuracy"], abs=1 / 300)
    assert on_gpu["loss"] == pytest.approx(on_cpu["loss"], rel=1e-3)
    logits, targets = predict(model, tensor_loader(data, 100))
    assert logits.device.type == targets.device.type == "cpu" and logits.shape == (300, 3)


def test_deterministic_training_repeats_bit_for_bit(cuda_device):
    def run() -> list[float]:
        seed_everything(0, deterministic=True)
        model = small_cnn()
        history = fit(model, tensor_loader(blobs(), 64, shuffle=True), epochs=2, device=cuda_device,
                      optimizer=torch.optim.SGD(model.parameters(), lr=0.1), progress=False)
        return history["loss"] + [p.sum().item() for p in model.parameters()]

    try:
        assert run() == run()
    finally:
        seed_everything(0)  # deterministic algorithms off again


def test_lr_range_test_runs_on_the_device(cuda_device):
    result = lr_range_test(small_cnn(), tensor_loader(blobs(), 32, shuffle=True), steps=30, device=cuda_device)
    assert len(result.lrs) <= 30 and 1e-7 <= result.suggestion <= 10


def test_obtain_trains_on_cuda_and_loads_elsewhere(cuda_device):
    got = zoo.obtain("lenet5", device=cuda_device, smoke=True)
    assert got.trained_here == (cuda_device.type == "cuda")
    assert next(got.model.parameters()).device.type == "cpu" and not got.model.training
    assert 0 <= got.test_accuracy <= 1


def test_the_gpu_recipe_trains_with_erasing_on_the_device(cuda_device):
    data = fashion_mnist(train_size=64, val_size=64)
    model, history = zoo.train("resnet20_wide", epochs=1, data=data, device=cuda_device, progress=False)
    assert len(history) == 1 and history["loss"][0] > 0
    assert next(model.parameters()).device.type == cuda_device.type


def test_fit_under_a_one_rank_process_group_on_the_device(cuda_device, monkeypatch):
    # NCCL on a GPU (gloo on the CPU): DDP with device_ids, global values over one rank
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for name, value in dict(RANK=0, LOCAL_RANK=0, WORLD_SIZE=1, MASTER_ADDR="127.0.0.1", MASTER_PORT=port).items():
        monkeypatch.setenv(name, str(value))
    device = distributed.init_from_env(cuda_device.type, timeout=60)
    try:
        assert distributed.is_initialized() and device.type == cuda_device.type
        model = small_cnn()
        history = fit(model, tensor_loader(blobs(), 64, shuffle=True, device=device), epochs=2, device=device,
                      optimizer=torch.optim.SGD(model.parameters(), lr=0.1), progress=False)
        assert history["loss"][-1] < history["loss"][0]
        assert type(model) is nn.Sequential  # trained in place, not replaced by its wrapper
    finally:
        distributed.cleanup()
    assert not distributed.is_initialized()
