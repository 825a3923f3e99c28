"""bench/chaos.py runs, prints its JSON last, and its guarantees hold on a small run.

The numbers asserted are behaviour (every session completes, no action on a
fallback, one trial per cool-down, no fabricated answer), not timings.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_chaos_guarantees_hold_on_300_sessions() -> None:
    done = subprocess.run(
        [sys.executable, "bench/chaos.py", "--sessions", "300", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for key in (
        "sessions",
        "complete_rate_transient",
        "explicit_fail_rate_critical",
        "critical_actions_on_fallback",
        "dead_tool_calls_after_open",
        "cooldowns",
        "fabricated_answers",
    ):
        assert key in result, key
    assert result["sessions"] == 300
    assert result["transient_faults_injected"] > 0  # faults were really injected
    assert result["complete_rate_transient"] == 1.0
    assert result["explicit_fail_rate_critical"] == 1.0
    assert result["critical_actions_on_fallback"] == 0
    assert result["fallback_calls_critical"] == 0
    assert 0 < result["dead_tool_calls_after_open"] <= result["cooldowns"]
    assert result["fabricated_answers"] == 0
