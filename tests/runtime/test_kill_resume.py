"""A session killed with SIGKILL mid-turn resumes from its last committed step.

A real child process runs a turn against a real SQLite store and is killed
with ``kill -9`` while a non-idempotent tool is running. Another runtime
then resumes the session: the completed lookup is not repeated, the charge
is not run a second time (its outcome is reported as unknown), and the turn
completes with nothing lost.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.runtime.crash_agent import build
from tether.runtime import Runtime, SessionStatus
from tether.spec.events import EventType
from tether.store import open_store

REPO = Path(__file__).resolve().parents[2]


def _wait_for(path: Path, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"child exited early ({proc.returncode}): {log.read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{path.name} never appeared")
        time.sleep(0.02)


@pytest.mark.parametrize("takeover", ["dead_pid", "lease_expiry"])
async def test_sigkill_mid_tool_then_resume(tmp_path: Path, takeover: str) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'sessions.sqlite'}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    log = tmp_path / "child.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: ASYNC220 - the test waits on the child on purpose
            [sys.executable, "-m", "tests.runtime.crash_agent", db_url, str(tmp_path)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        _wait_for(tmp_path / "charge-started", proc, log)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    store = await open_store(db_url)
    # Either this host's PID namespace is known to be the only one (the opt-in
    # dead-pid takeover), or the killed holder stopped renewing and its lease
    # ran out (the default: a clock past the lease's expiry).
    if takeover == "dead_pid":
        rt_ = Runtime(store=store, takeover_dead_pids=True)
    else:
        rt_ = Runtime(store=store, clock=lambda: time.time() + 16.0)
    async with rt_ as rt:
        (row,) = await store.list_sessions()
        assert row.status == SessionStatus.RUNNING  # killed mid-turn
        before = await store.events(row.id)
        assert [e.type for e in before][-2:] == [EventType.MODEL_RESPONSE, EventType.TOOL_STARTED]
        result = await rt.resume(build(str(tmp_path)), row.id)
        after = await store.events(row.id)

    assert result.status == SessionStatus.IDLE
    assert result.output is not None
    assert "outcome unknown" in result.output
    assert (tmp_path / "lookups").read_text() == "1"  # stored result reused
    assert (tmp_path / "charges").read_text() == "1"  # never charged twice
    # Nothing committed before the kill was lost or rewritten.
    assert [e.to_dict() for e in after[: len(before)]] == [e.to_dict() for e in before]
    assert [e.seq for e in after] == list(range(1, len(after) + 1))
    types = [e.type for e in after[len(before) :]]
    assert types == [
        EventType.SESSION_RESUMED,
        EventType.OPERATOR_ALERT,  # a person must check whether the charge happened
        EventType.TOOL_FINISHED,
        EventType.MODEL_RESPONSE,
        EventType.TURN_COMPLETED,
    ]
    alert = next(e for e in after if e.type == EventType.OPERATOR_ALERT)
    assert alert.data["tool"] == "charge"
    assert "outcome unknown" in alert.data["reason"]
