"""Time ``cnncourse.fit`` against a plain hand-written PyTorch loop, in one run.

Both train the same model (chapter 1's CNN) on the same Fashion-MNIST batches on
the same device, with the same memory layout and precision, so the ratio is the
cost of what ``fit`` adds: metrics, callbacks, the history and progress bars.
Epochs alternate between the two (plain, fit, plain, fit, ...) so that drift in
the machine's speed hits both alike; the median epoch time of each is compared.

    python benchmarks/bench_fit.py                 # CPU or the GPU get_device() picks
    python benchmarks/bench_fit.py --rounds 7 --train-size 20000 --device cuda
    python benchmarks/bench_fit.py --json fit.json     # also write the numbers (gpu_check.py does)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from cnncourse import describe_device, fit, get_device, seed_everything
from cnncourse.data import fashion_mnist
from cnncourse.training.loop import _channels_last, _precision


def make_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10),
    )


def plain_epoch(model, loader, optimizer, loss_fn, device, channels_last, dtype) -> None:
    """The loop every tutorial writes, with fit's layout and precision."""
    model.train()
    memory_format = torch.channels_last if channels_last else torch.preserve_format
    for x, y in loader:
        x = x.to(device, non_blocking=True, memory_format=memory_format)
        y = y.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="epochs timed for each of the two loops")
    parser.add_argument("--train-size", type=int, default=10_000, help="training images per epoch")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: get_device())")
    parser.add_argument("--progress", action="store_true", help="let fit draw its progress bars")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args()

    device = get_device(args.device)
    print(describe_device(device))
    seed_everything(0)
    data = fashion_mnist(train_size=args.train_size)
    loader = data.loaders(batch_size=args.batch_size, device=device)[0]
    channels_last, dtype = _channels_last(device, None), _precision(device, None)
    loss_fn = nn.CrossEntropyLoss()

    memory_format = torch.channels_last if channels_last else torch.preserve_format
    plain_model = make_cnn().to(device, memory_format=memory_format)
    fit_model = make_cnn()
    plain_opt = torch.optim.Adam(plain_model.parameters(), lr=1e-3)
    fit_opt = torch.optim.Adam(fit_model.parameters(), lr=1e-3)

    # one untimed warm-up epoch each (allocator, oneDNN/cuDNN kernel choice)
    plain_epoch(plain_model, loader, plain_opt, loss_fn, device, channels_last, dtype)
    fit(fit_model, loader, epochs=1, optimizer=fit_opt, device=device, progress=args.progress)

    plain_times, fit_times = [], []
    for _ in range(args.rounds):
        synchronize(device)
        start = time.perf_counter()
        plain_epoch(plain_model, loader, plain_opt, loss_fn, device, channels_last, dtype)
        synchronize(device)
        plain_times.append(time.perf_counter() - start)

        start = time.perf_counter()
        fit(fit_model, loader, epochs=1, optimizer=fit_opt, device=device, progress=args.progress)
        synchronize(device)
        fit_times.append(time.perf_counter() - start)

    plain, fitted = statistics.median(plain_times), statistics.median(fit_times)
    print(f"{args.train_size} images, batch {args.batch_size}, {args.rounds} epochs each, "
          f"channels_last={channels_last}, autocast={dtype}")
    print(f"plain loop: median {plain:.3f} s/epoch  ({', '.join(f'{t:.3f}' for t in plain_times)})")
    print(f"fit:        median {fitted:.3f} s/epoch  ({', '.join(f'{t:.3f}' for t in fit_times)})")
    print(f"fit / plain = {fitted / plain:.3f}  ({(fitted / plain - 1) * 100:+.1f}% time per epoch)")
    if args.json:
        args.json.write_text(json.dumps({
            "device": describe_device(device), "train_size": args.train_size, "batch_size": args.batch_size,
            "channels_last": channels_last, "autocast": str(dtype), "plain_seconds": plain_times,
            "fit_seconds": fit_times, "plain_median": plain, "fit_median": fitted, "ratio": fitted / plain,
        }, indent=1))


if __name__ == "__main__":
    main()
