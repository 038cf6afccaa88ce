"""The GPU check: one command that exercises every CUDA path of cnncourse on a lent GPU, sized for 8 minutes.

    python benchmarks/gpu_check.py                  # on a CUDA machine (or: make gpu-check)
    python benchmarks/gpu_check.py --dry-run        # anywhere: every step at toy size on the CPU (CI runs it)
    python benchmarks/gpu_check.py --steps recipe   # some steps only
    python benchmarks/gpu_check.py --out DIR        # where the report goes (default: _build/gpu-check)

The steps, each in a process of its own with a time limit, so that a failure
or a hang in one leaves the results of the others:

1. ``banner``: the device banner; torch, CUDA and cuDNN versions; the GPU's
   name, memory and compute capability; where Fashion-MNIST is.
2. ``tests``: the tests marked ``cuda`` (``pytest -m cuda tests``): mixed
   precision, channels-last, GPU-resident data, the zoo and DDP with NCCL.
3. ``recipe``: the zoo's GPU recipe, ``resnet20_wide``, trained by its recipe:
   its test accuracy against the book's goal (0.950) and the time. The entry is
   stored under ``DIR/zoo``; copy its files (and its two lines of
   ``SHA256SUMS``) into ``data/zoo`` to ship it.
4. ``chapters``: every chapter in its smoke profile (``CNNCOURSE_FAST=1``),
   several at a time; chapters pick CUDA by themselves (the report records
   the banner each one printed).
5. ``fit``: ``benchmarks/bench_fit.py``, ``fit`` against a plain loop.
6. ``throughput``: ``benchmarks/bench_zoo_throughput.py``, the zoo's training
   images per second with channels-last and mixed precision on and off, and
   ``torch.compile`` on and off (ResNet-20; compiling costs a minute).

``DIR/report.json`` holds everything (rewritten after every step, so a run cut
short keeps what it did) and ``DIR/report.md`` the tables, which are printed
at the end; ``DIR/logs/`` has every step's output. The exit status is 0 when
every step passed and, on a GPU, the recipe reached the goal.

``--dry-run`` runs the same steps at toy size on the CPU: the tests marked
``cuda`` on the CPU (``CNNCOURSE_CUDA_TESTS_ON_CPU=1``), the recipe for one
step on 32 images, a tiny generated notebook instead of the chapters, one
epoch of a few hundred images in the benchmarks, and ``torch.compile`` with
its ``eager`` backend (tracing without code generation). It proves that the
command works before a GPU ever sees it, not what only a GPU can show.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import datetime
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL = 0.950  # the book's accuracy goal for the best zoo model, on Fashion-MNIST's test set
RECIPE = "resnet20_wide"
STEPS = ("banner", "tests", "recipe", "chapters", "fit", "throughput")

try:  # a bare checkout with torch installed works too
    import cnncourse  # noqa: F401
except ImportError:
    sys.path.insert(0, str(ROOT / "src"))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))


@dataclasses.dataclass
class Check:
    """One run of the check: where the report goes, and at what size."""

    out: Path
    dry: bool
    jobs: int
    report: dict = dataclasses.field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ, TQDM_DISABLE="1", **extra)
        if self.dry:
            env["CNNCOURSE_CUDA_TESTS_ON_CPU"] = "1"
        return env

    def call(self, name: str, command: list[str], timeout: float, **env: str) -> tuple[int, float]:
        """Run ``command`` from the repository's root with its output in ``logs/NAME.log``.

        Returns ``(exit status, seconds)``; past ``timeout`` the command and
        everything it started are killed and the status is -9.
        """
        log = self.out / "logs" / f"{name}.log"
        start = time.perf_counter()
        with open(log, "w") as output:
            process = subprocess.Popen(command, cwd=ROOT, env=self.env(**env), stdout=output,
                                       stderr=subprocess.STDOUT, start_new_session=True)
            try:
                status = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # the command's own process group: kernels included
                process.wait()
                status = -9
                output.write(f"\n[gpu_check] killed after {timeout:.0f} s\n")
        return status, time.perf_counter() - start

    def save(self) -> None:
        (self.out / "report.json").write_text(json.dumps(self.report, indent=1) + "\n")
        (self.out / "report.md").write_text(markdown(self.report))


def run_step(check: Check, name: str, step: Callable[[Check], dict]) -> None:
    """Run one step, record its status, time and results, and rewrite the report."""
    print(f"[gpu_check] {name} ...", flush=True)
    start = time.perf_counter()
    try:
        result = step(check)
        status = result.pop("status", "passed")
    except Exception as error:  # a step's failure is a result too: go on with the others
        result, status = {"error": f"{type(error).__name__}: {error}"}, "failed"
    seconds = time.perf_counter() - start
    check.report["steps"][name] = {"status": status, "seconds": round(seconds, 1), **result}
    check.save()
    print(f"[gpu_check] {name}: {status} in {seconds:.0f} s", flush=True)


# --- the steps ------------------------------------------------------------------------------------------------------


def banner(check: Check) -> dict:
    import torch

    from cnncourse import describe_device, get_device
    from cnncourse.data import prepare_fashion_mnist

    device = get_device("cpu" if check.dry else "cuda")
    result = {"banner": describe_device(device), "torch": torch.__version__, "cuda": torch.version.cuda,
              "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
              "gpus": torch.cuda.device_count(), "data": str(prepare_fashion_mnist())}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        result |= {"gpu": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
                   "capability": f"{props.major}.{props.minor}", "bf16": torch.cuda.is_bf16_supported()}
    print(result["banner"], flush=True)
    return result


def tests(check: Check) -> dict:
    junit = check.out / "tests.xml"
    status, _ = check.call("tests", [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider",
                                     f"--junitxml={junit}", "tests"], timeout=120 if check.dry else 150)
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    if junit.is_file():
        suite = ElementTree.parse(junit).getroot()
        suite = suite if suite.tag == "testsuite" else suite[0]
        counts = {key: int(suite.get(key, 0)) for key in counts}
    failed = status != 0 or counts["tests"] == 0 or counts["skipped"] > 0  # on a GPU (or a dry run) none may skip
    return {"status": "failed" if failed else "passed", "exit": status, **counts}


def recipe(check: Check) -> dict:
    result_file = check.out / "recipe.json"
    result_file.unlink(missing_ok=True)
    command = [sys.executable, __file__, "_recipe", str(check.out)] + (["--dry-run"] if check.dry else [])
    status, _ = check.call("recipe", command, timeout=120 if check.dry else 300)
    if not result_file.is_file():
        return {"status": "failed", "exit": status}
    result = json.loads(result_file.read_text())
    # the goal counts on a GPU; a dry run trains one step
    reached = check.dry or result["test_accuracy"] >= GOAL
    return {"status": "passed" if status == 0 and reached else "failed", "exit": status, **result}


def train_recipe(out: Path, dry: bool) -> None:
    """``_recipe``: train and store the GPU recipe; write what it reached to ``out/recipe.json``."""
    import logging

    import torch

    from cnncourse import describe_device, get_device, zoo
    from cnncourse.data import fashion_mnist

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")  # fit logs every epoch
    device = get_device("cpu" if dry else "cuda")
    if dry:  # one step on 32 images, tested on 64
        data = fashion_mnist(train_size=32, val_size=64)
        data = dataclasses.replace(data, test=torch.utils.data.TensorDataset(*(t[:64] for t in data.test.tensors)))
    else:
        data = fashion_mnist()
    start = time.perf_counter()
    model, history = zoo.train(RECIPE, device=device, epochs=1 if dry else None, data=data, progress=False)
    seconds = time.perf_counter() - start
    where = describe_device(device).removeprefix("Device: ")
    info = zoo.save(RECIPE, model, history, device=where, train_seconds=seconds, data=data, directory=out / "zoo")
    result = {"entry": RECIPE, "test_accuracy": info.test_accuracy, "goal": GOAL, "epochs": len(history),
              "train_seconds": round(seconds, 1), "seconds_per_epoch": info.seconds_per_epoch,
              "best_val_accuracy": max(history["val_accuracy"]), "params": info.params, "device": where}
    print(json.dumps(result, indent=1))
    (out / "recipe.json").write_text(json.dumps(result, indent=1))


def tiny_notebook(path: Path) -> Path:
    """A notebook shaped like a chapter, seconds long: the dry run's stand-in for the book."""
    import nbformat

    cells = [
        nbformat.v4.new_markdown_cell("# A tiny chapter\n\nThe GPU check's dry run executes this instead of the book."),
        nbformat.v4.new_code_cell(
            "import torch\nfrom torch.utils.data import TensorDataset\n\n"
            "from cnncourse import describe_device, fast_profile, fit, get_device, seed_everything\n"
            "from cnncourse.data import tensor_loader"),
        nbformat.v4.new_code_cell("fast = fast_profile()\ndevice = get_device()\nprint(describe_device(device))\n"
                                  "seed_everything(0)"),
        nbformat.v4.new_code_cell(
            "X, y = torch.randn(64, 1, 8, 8), torch.arange(64) % 2\nX[y == 1] += 1.0\n"
            "model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))\n"
            "history = fit(model, tensor_loader(TensorDataset(X, y), 16, shuffle=True), epochs=3,\n"
            "              device=device, progress=False)\n"
            "assert fast and history['loss'][-1] < history['loss'][0]"),
    ]
    notebook = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def chapters(check: Check) -> dict:
    notebooks = [tiny_notebook(check.out / "notebooks" / "tiny.ipynb")] if check.dry else sorted(
        (ROOT / "book").glob("*.ipynb"))
    executed = check.out / "executed"
    executed.mkdir(exist_ok=True)
    # the machine's cores shared out among the kernels that run at once
    threads = str(max(1, (os.cpu_count() or 1) // check.jobs))

    def one(path: Path) -> tuple[str, dict]:
        target = executed / path.name
        status, seconds = check.call(f"chapter-{path.stem}", [sys.executable, __file__, "_notebook", str(path),
                                     str(target)], timeout=120 if check.dry else 240, CNNCOURSE_FAST="1",
                                     OMP_NUM_THREADS=threads)
        return path.stem, {"status": "passed" if status == 0 else "failed", "seconds": round(seconds, 1),
                           "banner": printed_banner(target)}

    with concurrent.futures.ThreadPoolExecutor(check.jobs) as pool:
        results = dict(pool.map(one, notebooks))
    failed = [name for name, r in results.items() if r["status"] != "passed"]
    on_cuda = sum("CUDA" in (r["banner"] or "") for r in results.values())
    return {"status": "failed" if failed else "passed", "notebooks": results, "failed": failed,
            "on_cuda": on_cuda, "jobs": check.jobs}


def printed_banner(path: Path) -> str | None:
    """The ``Device: ...`` line an executed notebook printed, if any."""
    if not path.is_file():
        return None
    for cell in json.loads(path.read_text())["cells"]:
        for output in cell.get("outputs", []):
            for line in "".join(output.get("text", "")).splitlines():
                if line.startswith("Device: "):
                    return line
    return None


def execute_notebook(path: Path, target: Path) -> int:
    """``_notebook``: execute one notebook with nbclient, write the executed copy; 1 on an error."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
        return 0
    except CellExecutionError as error:
        print(str(error)[-3000:])
        return 1
    finally:
        nbformat.write(notebook, target)


def fit_benchmark(check: Check) -> dict:
    output = check.out / "bench_fit.json"
    size = ["--rounds", "1", "--train-size", "512", "--device", "cpu"] if check.dry else \
        ["--rounds", "5", "--train-size", "20000", "--device", "cuda"]
    status, _ = check.call("fit", [sys.executable, "benchmarks/bench_fit.py", *size, "--json", str(output)],
                           timeout=120 if check.dry else 120)
    result = json.loads(output.read_text()) if output.is_file() else {}
    return {"status": "passed" if status == 0 and result else "failed", "exit": status, **result}


def throughput(check: Check) -> dict:
    if check.dry:
        size = ["--rounds", "1", "--train-size", "512", "--batch-size", "128", "--device", "cpu"]
        runs = {"eager": ["lenet5", "--compile", "off"], "compiled": ["lenet5", "--compile", "both", "--backend",
                                                                      "eager"]}
    else:
        size = ["--rounds", "3", "--train-size", "10000", "--device", "cuda"]
        runs = {"eager": ["--compile", "off"], "compiled": ["resnet20", "--compile", "both"]}
    results, statuses = {}, []
    for name, options in runs.items():
        output = check.out / f"throughput_{name}.json"
        status, _ = check.call(f"throughput-{name}", [sys.executable, "benchmarks/bench_zoo_throughput.py",
                                                      *options, *size, "--json", str(output)],
                               timeout=120 if check.dry else 200)
        statuses.append(status)
        results[name] = json.loads(output.read_text()) if output.is_file() else None
    ok = all(s == 0 for s in statuses) and all(results.values())
    return {"status": "passed" if ok else "failed", "exit": statuses, **results}


STEP_FUNCTIONS: dict[str, Callable[[Check], dict]] = {
    "banner": banner, "tests": tests, "recipe": recipe, "chapters": chapters, "fit": fit_benchmark,
    "throughput": throughput,
}


# --- the report ----------------------------------------------------------------------------------------------------


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def summary(name: str, step: dict) -> str:
    """One line of results for a step."""
    if "error" in step:
        return step["error"]
    if name == "banner":
        return step.get("banner", "").removeprefix("Device: ")
    if name == "tests":
        return f"{step['tests']} tests, {step['failures']} failed, {step['errors']} errors, {step['skipped']} skipped"
    if name == "recipe" and "test_accuracy" in step:
        epochs = f"{step['epochs']} epoch" + ("s" if step["epochs"] != 1 else "")
        return (f"{step['entry']}: test accuracy {step['test_accuracy']:.4f} (goal {step['goal']:.3f}) after "
                f"{epochs}, {step['train_seconds']:.0f} s ({step['seconds_per_epoch']:.1f} s/epoch)")
    if name == "chapters":
        n = len(step.get("notebooks", {}))
        failed = ", ".join(step.get("failed", [])) or "none"
        return f"{n - len(step.get('failed', []))} of {n} ran, {step.get('on_cuda', 0)} on CUDA; failed: {failed}"
    if name == "fit" and "ratio" in step:
        return (f"fit {step['fit_median']:.3f} s/epoch, plain loop {step['plain_median']:.3f} s/epoch: "
                f"ratio {step['ratio']:.3f} ({step['train_size']} images, autocast {step['autocast']})")
    if name == "throughput" and step.get("compiled"):
        rows = step["compiled"]["rows"]
        parts = [f"{r['layout']}{', compiled' if r['compiled'] else ''} {r['images_per_second']:,.0f}"
                 for r in rows]
        return f"{rows[0]['entry']} img/s: " + "; ".join(parts)
    return f"exit status {step.get('exit')}"


def markdown(report: dict) -> str:
    steps = report.get("steps", {})
    parts = [f"# GPU check{' (dry run)' if report.get('dry_run') else ''}: {report.get('device', '?')}",
             f"Started {report.get('started')}, {report.get('seconds', 0):.0f} s in all. Goal: {RECIPE} "
             f">= {GOAL:.3f} test accuracy.", "",
             table(["step", "status", "seconds", "result"],
                   [[name, s["status"], f"{s['seconds']:.0f}", summary(name, s)] for name, s in steps.items()])]
    if notebooks := steps.get("chapters", {}).get("notebooks"):
        parts += ["", f"## Chapters, smoke profile ({steps['chapters']['jobs']} at a time)", "",
                  table(["notebook", "status", "seconds", "device"],
                        [[n, r["status"], f"{r['seconds']:.0f}", (r["banner"] or "-").removeprefix("Device: ")]
                         for n, r in notebooks.items()])]
    for name in ("eager", "compiled"):
        if bench := steps.get("throughput", {}).get(name):
            parts += ["", f"## Training throughput, {name} run ({bench['images']} images per epoch, batch "
                      f"{bench['batch_size']}; fit's default: {bench['default']})", "",
                      table(["entry", "layout", "compiled", "images/s", "warm-up s"],
                            [[r["entry"], r["layout"], "yes" if r["compiled"] else "no",
                              f"{r['images_per_second']:,.0f}", f"{r['warmup_seconds']:.1f}"]
                             for r in bench["rows"]])]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_recipe"]:  # the steps' own processes
        train_recipe(Path(argv[1]), dry="--dry-run" in argv)
        return 0
    if argv[:1] == ["_notebook"]:
        return execute_notebook(Path(argv[1]), Path(argv[2]))

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="every step at toy size on the CPU")
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS), help="the steps to run")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "gpu-check", help="where the report goes")
    parser.add_argument("--jobs", type=int, default=4, help="chapters executed at a time")
    args = parser.parse_args(argv)

    import torch

    if not args.dry_run and not torch.cuda.is_available():
        parser.error("no CUDA GPU is visible: run it on a GPU machine, or with --dry-run to test the command")
    (args.out / "logs").mkdir(parents=True, exist_ok=True)
    check = Check(args.out.resolve(), args.dry_run, args.jobs if not args.dry_run else 1)
    started = time.perf_counter()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() and not args.dry_run else "CPU"
    check.report = {"device": device, "dry_run": args.dry_run, "goal": GOAL, "steps": {},
                    "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    for name in args.steps:
        run_step(check, name, STEP_FUNCTIONS[name])
        check.report["seconds"] = round(time.perf_counter() - started, 1)
        check.save()
    print("\n" + markdown(check.report))
    print(f"[gpu_check] report: {check.out / 'report.json'} and {check.out / 'report.md'}")
    return 0 if all(step["status"] == "passed" for step in check.report["steps"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
