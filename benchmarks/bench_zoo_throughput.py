"""Training throughput of the zoo's models: ``fit``'s defaults against the plain float32 layout, in one run.

For each zoo entry, the same model and Fashion-MNIST batches are trained with
``cnncourse.fit`` twice per round: once as ``fit`` does by default (on CUDA:
channels-last memory layout and bfloat16/float16 autocast) and once with both
turned off (``channels_last=False, amp=False``). Rounds alternate the two so
that drift in the machine's speed hits both alike; the medians are compared.
Validation is left out: this is images per second of training.

    python benchmarks/bench_zoo_throughput.py                      # every entry, get_device()
    python benchmarks/bench_zoo_throughput.py resnet20 --device cuda --rounds 5 --train-size 50000
"""

from __future__ import annotations

import argparse
import statistics

import torch

from cnncourse import describe_device, fit, get_device, seed_everything, zoo
from cnncourse.data import fashion_mnist
from cnncourse.training.loop import _channels_last, _precision


def images_per_second(name: str, data, device, *, batch_size: int, **options) -> float:
    seed_everything(0)
    model = zoo.build(name)
    loader = data.loaders(batch_size, device=device)[0]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    history = fit(model, loader, epochs=1, optimizer=optimizer, device=device, progress=False, **options)
    return len(data.train) / history["time"][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="zoo entries (default: all)")
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs of each variant")
    parser.add_argument("--train-size", type=int, default=10_000, help="training images per timed epoch")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: get_device())")
    args = parser.parse_args()

    device = get_device(args.device)
    data = fashion_mnist(train_size=args.train_size)
    default = f"channels_last={_channels_last(device, None)}, autocast={_precision(device, None)}"
    print(describe_device(device))
    print(f"{args.rounds} rounds of {args.train_size} images, batch {args.batch_size}; fit's default here: {default}")
    print(f"{'entry':<18}{'default img/s':>15}{'plain fp32 img/s':>18}{'ratio':>8}")
    for name in args.names or zoo.names():
        images_per_second(name, data, device, batch_size=args.batch_size)  # warm-up: cuDNN autotuning, caches
        fast, plain = [], []
        for _ in range(args.rounds):
            fast.append(images_per_second(name, data, device, batch_size=args.batch_size))
            plain.append(images_per_second(name, data, device, batch_size=args.batch_size,
                                           channels_last=False, amp=False))
        a, b = statistics.median(fast), statistics.median(plain)
        print(f"{name:<18}{a:>15,.0f}{b:>18,.0f}{a / b:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
