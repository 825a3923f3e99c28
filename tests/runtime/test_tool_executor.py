"""Plain-function tools run on the runtime's own bounded threads (``ToolExecutor``).

A plain function that hangs past its timeout keeps its thread. These tests
show that such calls cannot starve other sessions' tools or DNS lookups
(which use the event loop's default pool), that the executor counts and
reports the threads they hold, and that once every thread is held it
refuses new calls with an error result instead of queueing them forever.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import tether
from tether.controls.breaker import Breakers
from tether.exceptions import ToolWorkersBusy
from tether.runtime.execute import ToolEnv, ToolRun, execute_tool
from tether.runtime.executor import DEFAULT_TOOL_WORKERS, ToolExecutor
from tether.spec.messages import ToolCall
from tether.spec.policy import BreakerPolicy, RetryPolicy
from tether.spec.tools import Tool

BUSY = "the runtime's tool workers are all busy with calls that timed out; not run"


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """What the hanging tools wait on; opened at the end so no thread outlives the test."""
    event = threading.Event()
    yield event
    event.set()


def hanging(gate: threading.Event) -> Tool:
    @tether.tool(writes=True, timeout=0.05)
    def hang(n: int) -> str:
        """Wait on a lock that is never released during the call (a stuck socket, say).

        Args:
            n: Which call this is.
        """
        gate.wait(30)
        return "late"

    return hang


@tether.tool(reads=True, timeout=5)
def instant(x: int) -> int:
    """Double a number.

    Args:
        x: The number.
    """
    return x * 2


def tool_env(executor: ToolExecutor) -> ToolEnv:
    return ToolEnv(
        agent="a",
        breakers=Breakers(),
        breaker=BreakerPolicy(failure_threshold=100),
        retry=RetryPolicy(max_retries=0),
        sleep=asyncio.sleep,
        rng=random.Random(0),
        emit=lambda type_, data: None,
        executor=executor,
    )


async def run_call(
    tools: dict[str, Tool], name: str, args: dict[str, Any], session: str, env: ToolEnv
) -> ToolRun:
    return await execute_tool(
        tools,
        ToolCall(f"call-{session}", name, args),
        session_id=session,
        step=1,
        user_id=None,
        vars={},
        deps=None,
        env=env,
    )


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_hung_sync_tools_starve_neither_other_sessions_nor_dns(
    gate: threading.Event, caplog: pytest.LogCaptureFixture
) -> None:
    loop = asyncio.get_running_loop()
    # The loop's default pool as on a 4-core machine (min(32, cores + 4) threads):
    # eight hung calls would fill it if tools ran there.
    default_pool = ThreadPoolExecutor(max_workers=8)
    loop.set_default_executor(default_pool)
    executor = ToolExecutor()
    tools = {"hang": hanging(gate), "instant": instant}
    try:
        with caplog.at_level(logging.WARNING, logger="tether.tools"):
            hung = await asyncio.gather(
                *(run_call(tools, "hang", {"n": i}, f"s{i}", tool_env(executor)) for i in range(8))
            )
        for run in hung:
            assert run.result.is_error
            assert "did not finish within 0.05 s" in run.result.content
        assert executor.abandoned == 8
        abandoned = [r for r in caplog.records if "abandoned" in r.getMessage()]
        assert len(abandoned) == 8
        assert "hang" in abandoned[0].getMessage()
        assert "8 of 32 tool threads held" in abandoned[-1].getMessage()

        # another session's instant tool still runs, at once
        run = await asyncio.wait_for(
            run_call(tools, "instant", {"x": 21}, "other", tool_env(executor)), 3
        )
        assert (run.result.content, run.result.is_error) == ("42", False)
        # and DNS (the loop's default pool) is not starved
        assert await asyncio.wait_for(loop.getaddrinfo("localhost", 80), 3)
    finally:
        gate.set()
        executor.close(wait=True)
        default_pool.shutdown(wait=True)
    assert executor.abandoned == 0  # each hung function returned: its thread is free again


async def test_every_worker_held_by_a_hung_call_refuses_new_calls_instead_of_queueing(
    gate: threading.Event,
) -> None:
    executor = ToolExecutor(max_workers=2)
    tools = {"hang": hanging(gate), "instant": instant}
    env = tool_env(executor)
    try:
        for i in range(2):
            run = await run_call(tools, "hang", {"n": i}, f"s{i}", env)
            assert "did not finish" in run.result.content
        assert executor.abandoned == 2

        run = await run_call(tools, "instant", {"x": 1}, "other", env)
        assert run.result.is_error  # refused, not queued behind the hung calls (not timed out)
        assert BUSY in run.result.content
        assert run.result.content.startswith("error: instant: ")

        gate.set()  # the hung functions return: their threads serve calls again
        await until(lambda: executor.abandoned == 0)
        run = await run_call(tools, "instant", {"x": 1}, "other", env)
        assert (run.result.content, run.result.is_error) == ("2", False)
    finally:
        executor.close(wait=True)


async def test_run_returns_the_result_or_raises_the_functions_error() -> None:
    executor = ToolExecutor(max_workers=1)
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    var.set("caller's")

    def where(suffix: str) -> str:
        return f"{threading.current_thread().name}:{var.get()}:{suffix}"

    def boom() -> None:
        raise ValueError("bad input")

    try:
        name, value, suffix = (await executor.run(where, suffix="x")).split(":")
        assert name.startswith("tether-tool")
        assert (value, suffix) == ("caller's", "x")  # context variables reach the thread
        with pytest.raises(ValueError, match="bad input"):
            await executor.run(boom)
        assert executor.abandoned == 0
    finally:
        executor.close(wait=True)


async def test_a_call_cancelled_while_queued_never_runs_and_is_not_counted(
    gate: threading.Event,
) -> None:
    executor = ToolExecutor(max_workers=1)
    ran: list[str] = []

    def hold() -> None:
        ran.append("hold")
        gate.wait(30)

    def queued() -> None:
        ran.append("queued")

    try:
        first = asyncio.create_task(executor.run(hold))
        await until(lambda: ran == ["hold"])
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await executor.run(queued)  # waits behind ``hold``, then times out
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert executor.abandoned == 1  # ``hold`` only
        gate.set()
        await until(lambda: executor.abandoned == 0)
        await asyncio.sleep(0.05)
        assert ran == ["hold"]  # the queued call was dropped, not run late
    finally:
        executor.close(wait=True)


async def test_close_does_not_wait_for_hung_calls_and_refuses_new_ones(
    gate: threading.Event,
) -> None:
    executor = ToolExecutor(max_workers=1)
    started = threading.Event()
    returned = threading.Event()

    def hold() -> None:
        started.set()
        gate.wait(30)
        returned.set()

    first = asyncio.create_task(executor.run(hold))
    await asyncio.to_thread(started.wait, 5)
    waiting = asyncio.create_task(executor.run(lambda: None))
    await asyncio.sleep(0.01)
    executor.close()
    # close() came back while the hung call still ran: it did not join its thread
    assert not returned.is_set()
    assert executor.closed
    # the queued call is dropped; its caller learns why (it was not cancelled itself)
    with pytest.raises(RuntimeError, match="closed before this call started"):
        await waiting
    with pytest.raises(RuntimeError, match="closed"):
        await executor.run(lambda: None)
    gate.set()
    await first  # the running call still finishes


def test_max_workers_is_validated() -> None:
    with pytest.raises(ValueError, match="max_workers"):
        ToolExecutor(max_workers=0)
    executor = ToolExecutor()
    assert executor.max_workers == DEFAULT_TOOL_WORKERS == 32
    assert issubclass(ToolWorkersBusy, tether.exceptions.RunError)  # not the tool's fault
    executor.close()
    executor.close()  # twice is harmless, and closing a pool never started too
