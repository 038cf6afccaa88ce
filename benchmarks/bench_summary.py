"""Time of ``cnncourse.summary`` on the meta device, with and without batch norm passed through, in one run.

``summary`` and ``receptive_field`` run a model on the meta device to learn its
shapes. Torch computes batch norm on meta tensors with a Python decomposition,
so both let batch norm return its input instead (its output has the input's
shape). This compares that with the decomposition, model by model, in
alternating rounds, and checks that the tables are identical.

    python benchmarks/bench_summary.py
    python benchmarks/bench_summary.py resnet50 resnet152 --rounds 5
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from unittest import mock

import torch

from cnncourse import create_model, summary

MODELS = {  # name: input size
    "resnet20": (1, 28, 28), "se_resnet20": (1, 28, 28), "googlenet_small": (1, 28, 28), "resnet56": (1, 28, 28),
    "resnet18": (3, 224, 224), "resnet50": (3, 224, 224), "resnet152": (3, 224, 224), "googlenet": (3, 224, 224),
}


def decomposed() -> list:
    """Patches that undo the pass-through: batch norm runs as torch runs it on meta tensors."""
    null = lambda model: contextlib.nullcontext()  # noqa: E731
    return [mock.patch(f"cnncourse.{module}._batch_norm_passes_through", null)
            for module in ("arithmetic", "summary_table")]


def timed(name: str, size: tuple[int, ...], *, pass_through: bool) -> tuple[float, str]:
    with torch.device("meta"):
        model = create_model(name).eval()
    with contextlib.ExitStack() as stack:
        for patch in [] if pass_through else decomposed():
            stack.enter_context(patch)
        start = time.perf_counter()
        table = str(summary(model, size))
        return time.perf_counter() - start, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"models (default: {', '.join(MODELS)})")
    parser.add_argument("--rounds", type=int, default=3, help="timed summaries of each variant")
    args = parser.parse_args()

    print(f"torch {torch.__version__}; {args.rounds} rounds, median seconds of one summary (receptive fields included)")
    print(f"{'model':<16}{'pass-through':>14}{'decomposed':>12}{'ratio':>8}")
    for name in args.names or MODELS:
        size = MODELS.get(name, (3, 224, 224))
        _, expected = timed(name, size, pass_through=False)  # warm-up, and the reference table
        fast, slow = [], []
        for _ in range(args.rounds):
            seconds, table = timed(name, size, pass_through=True)
            assert table == expected, f"{name}: the table changed"
            fast.append(seconds)
            slow.append(timed(name, size, pass_through=False)[0])
        a, b = statistics.median(fast), statistics.median(slow)
        print(f"{name:<16}{a:>14.3f}{b:>12.3f}{b / a:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
