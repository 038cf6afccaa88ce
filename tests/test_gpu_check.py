"""benchmarks/gpu_check.py: its command line and report (the whole --dry-run is a CI step of .ci/run)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules["gpu_check"]


def test_a_dry_run_of_the_banner_writes_the_report(gpu_check, tmp_path):
    assert gpu_check.main(["--dry-run", "--steps", "banner", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["dry_run"] and report["steps"]["banner"]["status"] == "passed"
    assert report["steps"]["banner"]["banner"].startswith("Device: CPU")
    assert "| banner | passed |" in (tmp_path / "report.md").read_text()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_without_cuda_it_asks_for_a_dry_run(gpu_check, tmp_path, capsys):
    with pytest.raises(SystemExit):
        gpu_check.main(["--out", str(tmp_path)])
    assert "--dry-run" in capsys.readouterr().err


def test_the_report_summarises_a_gpu_run(gpu_check):
    rows = [{"entry": "resnet20", "layout": layout, "compiled": compiled, "images_per_second": 1000.0 * (i + 1),
             "warmup_seconds": 30.0 * compiled} for i, (layout, compiled) in enumerate(
                 [("default", False), ("plain fp32", False), ("default", True), ("plain fp32", True)])]
    report = {"device": "NVIDIA H100", "dry_run": False, "started": "now", "seconds": 400.0, "steps": {
        "tests": {"status": "passed", "seconds": 30.0, "tests": 13, "failures": 0, "errors": 0, "skipped": 0},
        "recipe": {"status": "failed", "seconds": 150.0, "entry": "resnet20_wide", "test_accuracy": 0.9487,
                   "goal": 0.95, "epochs": 40, "train_seconds": 140.0, "seconds_per_epoch": 3.5},
        "chapters": {"status": "passed", "seconds": 100.0, "jobs": 4, "failed": [], "on_cuda": 1,
                     "notebooks": {"01_why_convolutions": {"status": "passed", "seconds": 20.0,
                                                           "banner": "Device: CUDA GPU NVIDIA H100 (79.1 GiB)"}}},
        "throughput": {"status": "passed", "seconds": 120.0, "compiled": {
            "images": 9984, "batch_size": 256, "default": "channels_last=True", "rows": rows}},
    }}
    text = gpu_check.markdown(report)
    assert "# GPU check: NVIDIA H100" in text
    assert "| recipe | failed | 150 | resnet20_wide: test accuracy 0.9487 (goal 0.950) after 40 epochs" in text
    assert "1 of 1 ran, 1 on CUDA" in text and "| 01_why_convolutions | passed | 20 | CUDA GPU" in text
    assert "| resnet20 | plain fp32 | yes | 4,000 | 30.0 |" in text
