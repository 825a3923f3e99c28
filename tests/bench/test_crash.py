"""bench/crash.py runs, prints its JSON last, and its guarantees hold on a small run.

A real worker process is killed with SIGKILL at random points while it
drives 20 sessions that cancel orders and send emails behind approvals. The
numbers asserted are behaviour (the worker was killed, nothing ran twice, no
approval was lost, every session ended idle), not timings.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_crash_guarantees_hold_on_20_sessions() -> None:
    done = subprocess.run(
        [sys.executable, "bench/crash.py", "--sessions", "20", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for key in (
        "sessions",
        "kills",
        "duplicated_side_effects",
        "lost_approvals",
        "unresumable",
        "outcome_unknown",
        "approvals",
        "side_effects",
        "wall_s",
    ):
        assert key in result, key
    assert result["sessions"] == 20
    assert result["worker_exit"] == 0, done.stdout  # it finished on its own in the end
    assert result["kills"] > 0  # the worker really was killed
    assert result["duplicated_side_effects"] == 0
    assert result["duplicate_keys"] == 0
    assert result["lost_approvals"] == 0
    assert result["unapproved_side_effects"] == 0
    assert result["unresumable"] == 0
    assert result["sessions_in_store"] == 20  # no session left behind by a kill
    assert result["completed"] == 20
    assert result["broken_logs"] == 0
    assert result["approvals_decided_twice"] == 0
    # Two approvals per session, each decided once; each approved call ran, or was
    # reported "outcome unknown" (killed between its intent and its result), or both.
    assert result["approvals"] == result["approvals_decided"] == 40
    ran_or_unknown = (
        result["side_effects"] + result["outcome_unknown"] - result["outcome_unknown_ran"]
    )
    assert ran_or_unknown == 40
