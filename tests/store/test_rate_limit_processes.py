"""Three processes sharing a real Redis enforce a per-user limit of N sessions per hour.

Each process (``rate_limit_worker.py``) runs a ``Runtime`` whose limiter
lives in Redis under one fresh key prefix, and starts N sessions for the
same user at the same moment as the others: out of 3N attempts exactly N
are accepted and 2N refused with ``RateLimited``.

Redis is ``$TETHER_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``);
skipped locally without it, a failure under ``TETHER_REQUIRE_SERVICES`` or
``CI=true``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from tests.services import delete_redis_keys, redis_url, require_redis
from tether.store.redis_limits import new_prefix

WORKER = Path(__file__).with_name("rate_limit_worker.py")
ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 60.0  # importing and connecting, on a slow machine
RUN_TIMEOUT = 120.0


class Worker:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    async def read(self, within: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout=within)
        if not line:
            raise AssertionError(f"worker exited early with {await self.proc.wait()}")
        self.lines.append(line.decode())
        out: dict[str, Any] = json.loads(line)
        return out

    async def stderr(self) -> str:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        assert self.proc.stderr is not None
        return (await self.proc.stderr.read()).decode(errors="replace")


async def start(n: int, attempts: int, prefix: str) -> Worker:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        "--url",
        redis_url(),
        "--prefix",
        prefix,
        "--n",
        str(n),
        "--attempts",
        str(attempts),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    return Worker(proc)


async def _report(workers: list[Worker]) -> str:
    parts = []
    for i, w in enumerate(workers):
        err = await w.stderr()
        parts.append(
            f"--- worker {i} (exit {w.proc.returncode}) stdout:\n{''.join(w.lines)}"
            f"--- stderr:\n{err[-4000:]}"
        )
    return "\n".join(parts)


async def test_three_processes_accept_exactly_n_of_3n_concurrent_sessions() -> None:
    require_redis()
    n = 10
    prefix = new_prefix()
    workers: list[Worker] = []
    try:
        workers = [await start(n, n, prefix) for _ in range(3)]
        try:
            for w in workers:
                assert await w.read(STARTUP_TIMEOUT) == {"ready": True}
            # every replica is connected: all start together, a moment from now
            start_at = f"{time.time() + 0.5}\n".encode()
            for w in workers:
                assert w.proc.stdin is not None
                w.proc.stdin.write(start_at)
                await w.proc.stdin.drain()
            results = [await w.read(RUN_TIMEOUT) for w in workers]
            codes = [await asyncio.wait_for(w.proc.wait(), RUN_TIMEOUT) for w in workers]
        except (AssertionError, TimeoutError, json.JSONDecodeError) as exc:
            raise AssertionError(f"{exc!r}\n{await _report(workers)}") from exc
        detail = f"results: {results}, exit codes: {codes}"
        assert all(not r["errors"] for r in results), f"{detail}\n{await _report(workers)}"
        assert codes == [0, 0, 0], f"{detail}\n{await _report(workers)}"
        assert sum(r["accepted"] for r in results) == n, detail
        assert sum(r["refused"] for r in results) == 2 * n, detail
    finally:
        for w in workers:
            if w.proc.returncode is None:
                w.proc.kill()
                await w.proc.wait()
        await delete_redis_keys(prefix)
