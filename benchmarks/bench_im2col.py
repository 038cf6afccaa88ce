"""Time the convolution ladder of chapter 2: loops -> im2col -> ``F.conv2d``, in one run.

The main comparison is our im2col convolution (forward only) against
``torch.nn.functional.conv2d`` on the CPU, for a ResNet-like layer: 64 -> 64
channels, 3x3 kernel, padding 1, 56x56 inputs, batch 8. After one untimed
warm-up call each, the two alternate (ours, torch, ours, torch, ...) so that
drift in the machine's speed hits both alike, and the medians are compared. The
goal is im2col within 4x of ``F.conv2d``: one big matrix multiply is most of
what an optimised convolution does too.

The loops implementation is far too slow for that layer, so it is timed, with
the other two for reference, on a smaller one (8 -> 8 channels, 28x28).

    python benchmarks/bench_im2col.py
    python benchmarks/bench_im2col.py --repeats 11 --threads 1

On a machine shared with other jobs, ``--threads 1`` gives steadier numbers:
with two OpenMP threads every small operation waits for a busy core.

Most of the time spent "building the columns" is not copying: the 58 MB column
matrix is a fresh allocation on every call, which glibc maps from the operating
system and the first write page-faults in. ``F.conv2d`` never materialises it.
To see the copy alone, let glibc keep freed memory for reuse:

    MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=4000000000 python benchmarks/bench_im2col.py
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cnncourse import describe_device
from cnncourse.layers import conv2d, im2col


def median_times(fns: dict[str, Callable[[], torch.Tensor]], repeats: int) -> dict[str, float]:
    """Warm each function up once, then call them in turn ``repeats`` times; median seconds of each."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


@dataclass
class Layer:
    """A 3x3 convolution with padding 1 (the output keeps the input's size)."""

    batch: int
    channels: int
    size: int

    def inputs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(self.batch, self.channels, self.size, self.size, generator=generator)
        weight = torch.randn(self.channels, self.channels, 3, 3, generator=generator) / (9 * self.channels) ** 0.5
        return x, weight, torch.randn(self.channels, generator=generator)

    def __str__(self) -> str:
        size = f"{self.size}x{self.size}"
        return f"{self.channels}->{self.channels}, 3x3 kernel, padding 1, {size} input, batch {self.batch}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7, help="timed calls of each implementation")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--channels", type=int, default=64, help="in and out channels of the main layer")
    parser.add_argument("--size", type=int, default=56, help="input height and width of the main layer")
    parser.add_argument("--small-channels", type=int, default=8, help="channels of the layer the loops are timed on")
    parser.add_argument("--small-size", type=int, default=28, help="input size of the layer the loops are timed on")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    args = parser.parse_args()

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(describe_device("cpu"))
    torch.set_grad_enabled(False)  # forward passes only

    main_layer = Layer(args.batch_size, args.channels, args.size)
    x, weight, bias = main_layer.inputs()
    ours, theirs = conv2d(x, weight, bias, padding=1, impl="im2col"), F.conv2d(x, weight, bias, padding=1)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)  # same layer, same numbers
    cols, kernels = im2col(x, 3, padding=1), weight.reshape(args.channels, -1)
    times = median_times(
        {
            "im2col": lambda: conv2d(x, weight, bias, padding=1, impl="im2col"),
            "F.conv2d": lambda: F.conv2d(x, weight, bias, padding=1),
            # where im2col's time goes: building the columns, and the matrix multiply
            "columns": lambda: im2col(x, 3, padding=1),
            "matmul": lambda: kernels @ cols,
        },
        args.repeats,
    )
    ratio = times["im2col"] / times["F.conv2d"]
    print(f"\n{main_layer}: median of {args.repeats}")
    print(f"  im2col   {times['im2col'] * 1e3:9.2f} ms  (of which columns {times['columns'] * 1e3:.2f} ms, "
          f"matmul {times['matmul'] * 1e3:.2f} ms)")
    print(f"  F.conv2d {times['F.conv2d'] * 1e3:9.2f} ms")
    print(f"  im2col / F.conv2d = {ratio:.2f}  ({'within' if ratio <= 4 else 'NOT within'} the 4x goal)")

    small_layer = Layer(args.batch_size, args.small_channels, args.small_size)
    x, weight, bias = small_layer.inputs()
    repeats = max(3, args.repeats // 2)  # the loops are slow; a few calls are enough
    times = median_times(
        {
            "loops": lambda: conv2d(x, weight, bias, padding=1, impl="loops"),
            "im2col": lambda: conv2d(x, weight, bias, padding=1, impl="im2col"),
            "F.conv2d": lambda: F.conv2d(x, weight, bias, padding=1),
        },
        repeats,
    )
    print(f"\nthe ladder, {small_layer}: median of {repeats}")
    for name, seconds in times.items():
        print(f"  {name:8s} {seconds * 1e3:9.2f} ms  ({seconds / times['F.conv2d']:7.1f} x F.conv2d)")


if __name__ == "__main__":
    main()
