"""bench/guard.py runs on a small subset and prints its figures, JSON last.

Behaviour only (the figures exist, are rates, and the detector separates
attacks from benign text on the subset); no timings are asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_guard_bench_on_a_subset() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "bench/guard.py",
            "--split",
            "dev",
            "--limit",
            "60",
            "--runs",
            "1",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "| balanced accuracy, direct attacks" in done.stdout
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["split"] == "dev"
    assert report["direct_n"] == 60
    assert report["tool_n"] == 60
    for key in ("direct_balanced_accuracy", "buried_recall", "tool_fp_rate"):
        assert 0.0 <= report[key] <= 1.0
    assert report["direct_balanced_accuracy"] >= 0.8
    assert report["tool_fp_rate"] <= 0.05
    assert report["ms_per_kb"] > 0


def test_guard_bench_refuses_to_show_held_out_mistakes() -> None:
    done = subprocess.run(
        [sys.executable, "bench/guard.py", "--split", "heldout", "--errors", "--runs", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "tuning on them" in done.stderr
