"""bench/overhead.py measures the observers' cost: metrics, traces, both, and neither.

Behaviour only, on tiny rounds: the figures are numbers, the ratios are
taken against the unobserved figure, and the observed runs really made
spans and counted model calls. No timings are asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OBSERVED = ("step_metrics_us", "step_tracing_us", "step_observed_us")


def test_the_observed_figures_are_measured_together_and_really_observe() -> None:
    args = ["--json", "--sessions", "2", "--rounds", "2", "--only", ",".join(OBSERVED)]
    out = subprocess.run(
        [sys.executable, "bench/overhead.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("step_unobserved_us", *OBSERVED):
        assert isinstance(report[key], float), key
        assert report[key] > 0, key
        assert key in out.stdout  # and in the table
    for key in OBSERVED:
        ratio = report[key.removesuffix("_us") + "_ratio"]
        assert ratio == round(report[key] / report["step_unobserved_us"], 3)
    # each traced session is 6 spans (the turn, 3 model calls, 2 tool calls); each
    # metered one 3 model calls; two runtimes trace and two meter, as many sessions each
    spans, calls = report["spans_exported"], report["model_calls_counted"]
    assert spans > 0
    assert calls > 0
    assert spans % 6 == 0
    assert calls % 3 == 0
    assert spans // 6 == calls // 3
    assert "step_us" not in report  # only what was asked, and its baseline


def test_an_unknown_figure_is_refused() -> None:
    out = subprocess.run(
        [sys.executable, "bench/overhead.py", "--only", "step_traced_us"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode != 0
    assert "step_tracing_us" in out.stderr  # the choices are listed
