"""Training throughput of the zoo's models: ``fit``'s defaults against plain float32, eager against compiled, in one run.

For each zoo entry (classifiers only: the batches are Fashion-MNIST's), the same model and batches are trained with
``cnncourse.fit`` in up to four variants: as ``fit`` does by default (on
CUDA: channels-last memory layout and bfloat16/float16 autocast) and with both
turned off (``channels_last=False, amp=False``), each eager and compiled with
``torch.compile``. Every variant is built and warmed up once (the compiled
ones compile then: the warm-up time is reported on its own), then the timed
epochs alternate between the variants, so that drift in the machine's speed
hits all alike; the medians are compared. Batches are full (the last partial
one is dropped, so a compiled model sees one shape). Validation is left out:
this is images per second of training.

    python benchmarks/bench_zoo_throughput.py                       # every entry, eager only, get_device()
    python benchmarks/bench_zoo_throughput.py resnet20 --compile both --device cuda --train-size 50000
    python benchmarks/bench_zoo_throughput.py lenet5 --compile both --backend eager --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from cnncourse import describe_device, fit, get_device, seed_everything, zoo
from cnncourse.data import fashion_mnist, tensor_loader
from cnncourse.training.loop import _channels_last, _precision

LAYOUTS = {"default": {}, "plain fp32": {"channels_last": False, "amp": False}}


class Variant:
    """One model trained one way; ``epoch()`` trains it for one epoch and returns the seconds."""

    def __init__(self, name: str, layout: str, compiled: bool, loader, device, backend: str) -> None:
        self.name, self.layout, self.compiled, self.loader, self.device = name, layout, compiled, loader, device
        seed_everything(0)
        model = zoo.build(name)
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        self.model = torch.compile(model, backend=backend) if compiled else model
        start = time.perf_counter()
        self.epoch()  # warm-up: cuDNN's autotuning, caches, and the compilation
        self.warmup_seconds = time.perf_counter() - start
        self.times: list[float] = []

    def epoch(self) -> float:
        history = fit(self.model, self.loader, epochs=1, optimizer=self.optimizer, device=self.device,
                      progress=False, **LAYOUTS[self.layout])
        return history["time"][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="zoo entries (default: all classifiers)")
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs of each variant")
    parser.add_argument("--train-size", type=int, default=10_000, help="training images per timed epoch")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: get_device())")
    parser.add_argument("--compile", choices=("off", "on", "both"), default="off",
                        help="torch.compile the models: not, only, or both ways (compiling takes a while)")
    parser.add_argument("--backend", default="inductor", help="torch.compile's backend ('eager' only traces)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args()

    device = get_device(args.device)
    data = fashion_mnist(train_size=args.train_size)
    loader = tensor_loader(data.train, args.batch_size, shuffle=True, drop_last=True,
                           device=device if device.type != "cpu" else None)
    images = len(loader) * args.batch_size
    default = f"channels_last={_channels_last(device, None)}, autocast={_precision(device, None)}"
    compiled = {"off": (False,), "on": (True,), "both": (False, True)}[args.compile]
    print(describe_device(device))
    print(f"{args.rounds} rounds of {images} images, batch {args.batch_size}; fit's default here: {default}; "
          f"compiled: {args.compile} (backend {args.backend})")
    print(f"{'entry':<16}{'layout':<12}{'compiled':>9}{'img/s':>10}{'warm-up s':>11}")
    rows = []
    # the batches are Fashion-MNIST images: the segmenters and the detector (canvases) are left out by default
    classifiers = zoo.names("classification")
    for name in args.names or classifiers:
        variants = [Variant(name, layout, c, loader, device, args.backend) for c in compiled for layout in LAYOUTS]
        for _ in range(args.rounds):
            for variant in variants:
                variant.times.append(variant.epoch())
        for v in variants:
            rate = images / statistics.median(v.times)
            rows.append({"entry": name, "layout": v.layout, "compiled": v.compiled, "images_per_second": rate,
                         "warmup_seconds": v.warmup_seconds, "seconds": v.times})
            print(f"{name:<16}{v.layout:<12}{'yes' if v.compiled else 'no':>9}{rate:>10,.0f}"
                  f"{v.warmup_seconds:>11.1f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({
            "device": describe_device(device), "images": images, "batch_size": args.batch_size,
            "rounds": args.rounds, "default": default, "backend": args.backend, "rows": rows,
        }, indent=1))


if __name__ == "__main__":
    main()
