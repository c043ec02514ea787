"""`bench/gpu.py` runs where CI can run it: the tiny model on the CPU, both paths, with the ratio line
a GPU run records. The figures themselves belong in bench/README.md, not in a test."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_gpu_bench_runs_the_engine_and_plain_diffusers_on_the_cpu() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.gpu", "--device", "cpu", "--size", "tiny", "--steps", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.startswith("cpu, float32, vram normal, tiny 64×64, 2 steps")
    for path in ("engine", "diffusers"):
        assert re.search(rf"eager\s+{path}\s+[0-9.]+ s", run.stdout), run.stdout
    assert re.search(r"eager\s+ratio\s+[0-9.]+", run.stdout), run.stdout
