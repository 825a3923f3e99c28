"""Running one sandbox process: feed stdin, read output under a cap, kill on the clock.

The process is started in a new session (its own process group), so a kill
reaches the sandbox launcher and what shares its group; the backends make
sure that ends everything inside (bubblewrap: a PID namespace whose init
dies with the launcher; Docker: ``docker kill``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tether.controls.sandbox._bootstrap import classify
from tether.controls.sandbox._types import KilledBy, SandboxFailed, SandboxLimits, SandboxResult

__all__ = ["Capture", "run_capped"]

_CHUNK = 1 << 16
#: how long to wait for a killed process and its pipes before giving up on them
_GRACE = 2.0


class Capture:
    """One output stream: the first ``cap`` bytes, and whether there were more."""

    __slots__ = ("cap", "data", "total")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> bool:
        """Keep what fits; return whether the stream has gone over its cap."""
        self.total += len(chunk)
        room = self.cap - len(self.data)
        if room > 0:
            self.data += chunk[:room]
        return self.total > self.cap

    def text(self) -> str:
        out = self.data.decode("utf-8", errors="replace")
        if self.total > self.cap:
            out += f"\n[... truncated: the program wrote more than {self.cap:,} bytes here]\n"
        return out


@dataclass(slots=True)
class _Run:
    proc: asyncio.subprocess.Process
    on_stop: Callable[[], Awaitable[None]] | None
    stopped: KilledBy | None = None
    stop_task: asyncio.Task[None] | None = None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def stop(self, reason: KilledBy) -> None:
        if self.stopped is None:
            self.stopped = reason
        self.kill()
        if self.on_stop is not None and self.stop_task is None:
            self.stop_task = asyncio.ensure_future(self.on_stop())


def _close_pipes(proc: asyncio.subprocess.Process) -> None:
    """Close the process's pipes now (a reader that stopped early leaves them open)."""
    transport = getattr(proc, "_transport", None)  # asyncio offers no public close
    if transport is not None:
        transport.close()


async def run_capped(
    argv: list[str],
    data: bytes,
    *,
    limits: SandboxLimits,
    backend: str,
    on_stop: Callable[[], Awaitable[None]] | None = None,
    kill_group_on_exit: bool = False,
    **popen: Any,
) -> SandboxResult:
    """Run ``argv`` with ``data`` on stdin under ``limits``; never raise for what it does.

    ``on_stop`` runs once when the caller stops the run (a backend whose
    processes live outside the launcher's group, Docker, kills them there).
    ``kill_group_on_exit`` kills the process group as soon as the launcher
    exits, for a backend with no PID namespace to do it. Raises
    :class:`SandboxFailed` when ``argv`` cannot be started.
    """
    start = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            **popen,
        )
    except OSError as exc:
        raise SandboxFailed(f"the {backend} sandbox could not start: {exc}") from exc
    run = _Run(proc, on_stop)
    out, err = Capture(limits.output_bytes), Capture(limits.output_bytes)

    async def pump(stream: asyncio.StreamReader | None, capture: Capture) -> None:
        if stream is None:  # pragma: no cover - always a pipe here
            return
        # Read to the end even past the cap: a reader that stops leaves the pipe
        # paused, its end never seen, and the transport never closed.
        while chunk := await stream.read(_CHUNK):
            if capture.add(chunk) and run.stopped is None:
                run.stop("output")

    async def feed() -> None:
        if proc.stdin is None:  # pragma: no cover - always a pipe here
            return
        try:
            proc.stdin.write(data)
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the program exited (or stopped reading): the rest of stdin is not needed
        finally:
            proc.stdin.close()

    async def wait() -> None:
        await proc.wait()
        if kill_group_on_exit:
            run.kill()  # what the program left running in its group ends with it

    tasks = [
        asyncio.ensure_future(pump(proc.stdout, out)),
        asyncio.ensure_future(pump(proc.stderr, err)),
        asyncio.ensure_future(feed()),
        asyncio.ensure_future(wait()),
    ]
    try:
        _, pending = await asyncio.wait(tasks, timeout=limits.wall_seconds)
        if pending:
            run.stop("timeout")
            _, pending = await asyncio.wait(pending, timeout=_GRACE)
    except BaseException:  # cancelled: the sandbox must not outlive its caller
        run.stop("timeout")
        for task in tasks:
            task.cancel()
        _close_pipes(proc)
        raise
    if pending:  # something outside the group holds a pipe: stop listening to it
        for task in pending:
            task.cancel()
        _close_pipes(proc)
    failures = [t.exception() for t in tasks if t.done() and not t.cancelled()]
    if any(failures):
        run.stop("timeout")
        raise next(f for f in failures if f is not None)
    if run.stop_task is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(run.stop_task, timeout=10)
    duration = time.monotonic() - start
    exit_code, killed_by = classify(
        proc.returncode, stopped=run.stopped, duration=duration, limits=limits
    )
    return SandboxResult(
        stdout=out.text(),
        stderr=err.text(),
        exit_code=exit_code,
        killed_by=killed_by,
        duration=duration,
        backend=backend,
        limits=limits,
    )
