"""benchmarks/gpu_check.py, the script a GPU session runs first, runs end to end in its dry mode on a CPU."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_check_runs_dry_and_prints_every_figure() -> None:
    run = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--dry"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert re.search(r"\[video encode\] [\d.]+ TFLOP per 121x64x64 target", out), out
    for batch in (1, 2):
        assert re.search(rf"\[video encode\] batch {batch}: [\d.]+ clips/s", out), out
    assert re.search(r"\[two workers\] batch \d each: [\d.]+ clips/s together, [\d.]+x one worker", out), out
    assert re.search(r"\[audio encode, float32\] batch 1: [\d.]+ clips/s, batch 4: [\d.]+ clips/s", out), out
    assert re.search(r"\[decode\] FFmpeg software \(PyAV, threads\): \d+ frames/s \(50 frames of 1280x720\)", out), out
    assert "[cuda tests] not run (--dry)" in out and "[done]" in out
