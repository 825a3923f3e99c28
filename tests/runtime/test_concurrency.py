"""Operations racing on one session: one proceeds, the others are refused before anything runs.

Each race holds the winner inside the ``charge`` tool (it waits on an event)
and requires the loser to come back *while the charge is still held*: a
refusal that came only after the side effect would mean the loser waited on
the winner, or ran something itself. Side effects are counted in the
ledger; afterwards the stored session must be settled: ``idle``, its lease
free, no ``operator.alert``.

Races run in one runtime, in two runtimes sharing a store (two replicas in
one process: different lease owners), and with a real second process.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.session_peer import (
    REPO,
    USER,
    Ledger,
    Shared,
    payments_agent,
    peer_env,
    script,
    shared_store,
    until,
)
from tether import Agent, ProviderError
from tether.exceptions import ApprovalError, InvalidSessionState, SessionConflict
from tether.runtime import Runtime, SessionStatus, TurnResult
from tether.spec.events import EventType
from tether.spec.model import ModelRequest
from tether.testing import FunctionModel, GatedModel, ScriptedResponse

BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
WAIT = 10.0  # a bound on waits that should take milliseconds, so a bug fails instead of hanging


@pytest.fixture
async def shared(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Shared]:
    async with shared_store(request.param, tmp_path) as s:
        yield s


@asynccontextmanager
async def runtimes(shared: Shared, n: int) -> AsyncIterator[list[Runtime]]:
    """``n`` runtimes, each on its own store object of the shared database (n replicas)."""
    async with AsyncExitStack() as stack:
        rts = []
        for _ in range(n):
            rt = Runtime(store=await shared.open(), close_store=False)
            rts.append(await stack.enter_async_context(rt))
        yield rts


@dataclass
class Attempt:
    """How one racing operation ended, and what the ledger held at that moment."""

    result: TurnResult | None
    error: BaseException | None
    charges_then: int
    finished_then: int


async def attempt(ledger: Ledger, op: Awaitable[TurnResult]) -> Attempt:
    try:
        result = await op
    except Exception as exc:
        return Attempt(None, exc, len(ledger.charges), ledger.finished)
    return Attempt(result, None, len(ledger.charges), ledger.finished)


async def race(
    ledger: Ledger,
    first: Callable[[], Awaitable[TurnResult]],
    second: Callable[[], Awaitable[TurnResult]],
    *,
    mid_tool: bool,
) -> tuple[Attempt, Attempt]:
    """Run ``first`` and ``second`` at once (or ``second`` once ``first`` is in the charge).

    The charge is released only after one of them came back: the loser must
    not wait for the winner's side effect.
    """
    a = asyncio.create_task(attempt(ledger, first()))
    try:
        if mid_tool:
            await asyncio.wait_for(ledger.entered.wait(), WAIT)
        b = asyncio.create_task(attempt(ledger, second()))
        await asyncio.wait_for(ledger.entered.wait(), WAIT)
        done, pending = await asyncio.wait({a, b}, timeout=WAIT, return_when="FIRST_COMPLETED")
        assert len(done) == 1, "the losing operation did not come back while the charge was held"
        assert ledger.finished == 0
        ledger.release.set()
        await asyncio.wait_for(asyncio.gather(*pending), WAIT)
        return a.result(), b.result()
    finally:
        ledger.release.set()


def one_winner(x: Attempt, y: Attempt) -> tuple[TurnResult, Attempt]:
    """The winner's result and the loser, checking there is exactly one of each."""
    winners = [t for t in (x, y) if t.error is None]
    losers = [t for t in (x, y) if t.error is not None]
    assert len(winners) == 1, f"expected exactly one to proceed, got {x!r} and {y!r}"
    (win,), (lose,) = winners, losers
    assert win.result is not None
    assert lose.finished_then == 0, "the loser came back only after the side effect"
    return win.result, lose


def refused(exc: BaseException | None) -> bool:
    """Refused as a concurrent operation should be: a conflict, or 'already decided'."""
    if isinstance(exc, SessionConflict):
        return True
    return isinstance(exc, ApprovalError) and "already" in str(exc)


async def awaiting_approval(rt: Runtime, agent: Agent) -> tuple[str, str]:
    first = await rt.session(agent, principal=USER).send("charge 42")
    assert first.status == SessionStatus.AWAITING_APPROVAL
    assert first.approval is not None
    return first.session_id, first.approval.id


async def assert_settled(rt: Runtime, agent: Agent, sid: str) -> None:
    """Stored: idle, lease free, no alert; and there is nothing to resume."""
    row = await rt.store.get(sid)
    assert row.status == SessionStatus.IDLE
    assert row.lease_owner is None
    assert row.lease_expires is None
    types = [e.type for e in await rt.store.events(sid)]
    assert EventType.OPERATOR_ALERT not in types
    assert types[-1] == EventType.TURN_COMPLETED
    with pytest.raises(InvalidSessionState, match="only a running"):
        await rt.session(agent, sid).resume()
    assert (await rt.store.get(sid)).lease_owner is None


# --- a. two decides on one approval, one runtime -------------------------------------------------


@pytest.mark.parametrize("shared", BACKENDS, indirect=True)
@pytest.mark.parametrize("mid_tool", [False, True], ids=["together", "mid_tool"])
async def test_two_decides_in_one_runtime_charge_once(shared: Shared, mid_tool: bool) -> None:
    ledger = Ledger()
    agent = payments_agent(ledger)
    async with runtimes(shared, 1) as (rt,):
        sid, aid = await awaiting_approval(rt, agent)
        x, y = await race(
            ledger,
            lambda: rt.session(agent, sid).decide(aid, True, by=USER),
            lambda: rt.session(agent, sid).decide(aid, True, by=USER),
            mid_tool=mid_tool,
        )
        won, lost = one_winner(x, y)
        assert isinstance(lost.error, SessionConflict)
        assert "already has a turn in progress" in str(lost.error)
        assert won.status == SessionStatus.IDLE
        assert won.output == "final: charged 42"
        assert ledger.charges == [42]
        await assert_settled(rt, agent, sid)
        # and the approval cannot be used again now that it ran
        with pytest.raises(ApprovalError, match="already approved by u1"):
            await rt.session(agent, sid).decide(aid, True, by=USER)
    assert ledger.charges == [42]


# --- b. two replicas, and a second process -------------------------------------------------------


@pytest.mark.parametrize("shared", BACKENDS, indirect=True)
@pytest.mark.parametrize("mid_tool", [False, True], ids=["together", "mid_tool"])
async def test_two_decides_in_two_runtimes_charge_once(shared: Shared, mid_tool: bool) -> None:
    ledger = Ledger()
    agent = payments_agent(ledger)
    async with runtimes(shared, 2) as (one, two):
        assert one.owner != two.owner
        sid, aid = await awaiting_approval(one, agent)
        x, y = await race(
            ledger,
            lambda: one.session(agent, sid).decide(aid, True, by=USER),
            lambda: two.session(agent, sid).decide(aid, True, by=USER),
            mid_tool=mid_tool,
        )
        won, lost = one_winner(x, y)
        assert refused(lost.error), lost.error
        assert won.status == SessionStatus.IDLE
        assert ledger.charges == [42]
        await assert_settled(one, agent, sid)
        await assert_settled(two, agent, sid)


async def run_peer(shared: Shared, sid: str, aid: str, workdir: Path) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.runtime.session_peer",
        "decide",
        str(shared.url),
        shared.schema or "-",
        sid,
        aid,
        str(workdir),
        cwd=REPO,
        env=peer_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    report: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return report


@pytest.mark.parametrize("shared", SQL_BACKENDS, indirect=True)
async def test_a_decide_from_another_process_mid_tool_is_refused(
    shared: Shared, tmp_path: Path
) -> None:
    ledger = Ledger(workdir=tmp_path)
    agent = payments_agent(ledger)
    async with runtimes(shared, 1) as (rt,):
        sid, aid = await awaiting_approval(rt, agent)
        winner = asyncio.create_task(rt.session(agent, sid).decide(aid, True, by=USER))
        try:
            await asyncio.wait_for(ledger.entered.wait(), WAIT)
            peer = await run_peer(shared, sid, aid, tmp_path)
            # refused while this process is still inside the charge
            assert ledger.finished == 0
            assert peer["outcome"] == "conflict", peer
            assert peer["holder"].startswith(rt.owner)
            assert peer["charges_here"] == 0
            assert ledger.file_charges() == 1
        finally:
            ledger.release.set()
        result = await asyncio.wait_for(winner, WAIT)
        assert result.status == SessionStatus.IDLE
        await assert_settled(rt, agent, sid)
        # once it ran, the other process is told it was decided, and runs nothing
        late = await run_peer(shared, sid, aid, tmp_path)
        assert late["outcome"] == "approval_error", late
        assert "already approved by u1" in late["error"]
        await assert_settled(rt, agent, sid)
    assert ledger.file_charges() == 1
    assert ledger.charges == [42]


# --- c. decide + send, send + resume -------------------------------------------------------------


@pytest.mark.parametrize("shared", BACKENDS, indirect=True)
@pytest.mark.parametrize("replicas", [1, 2])
@pytest.mark.parametrize("decide_first", [True, False], ids=["decide_first", "send_first"])
async def test_decide_and_a_yes_message_race(
    shared: Shared, replicas: int, decide_first: bool
) -> None:
    """A "yes" in chat approves too: the two ways to approve race; the charge runs once."""
    ledger = Ledger()
    agent = payments_agent(ledger)
    async with runtimes(shared, replicas) as rts:
        a, b = rts[0], rts[-1]
        sid, aid = await awaiting_approval(a, agent)

        def by_decide() -> Awaitable[TurnResult]:
            return a.session(agent, sid).decide(aid, True, by=USER)

        def by_message() -> Awaitable[TurnResult]:
            return b.session(agent, sid).send("yes")

        first, second = (by_decide, by_message) if decide_first else (by_message, by_decide)
        x, y = await race(ledger, first, second, mid_tool=True)
        won, lost = one_winner(x, y)
        assert refused(lost.error), lost.error
        assert won.status == SessionStatus.IDLE
        assert ledger.charges == [42]
        await assert_settled(a, agent, sid)
        events = await a.store.events(sid)
        assert [e.type for e in events].count(EventType.APPROVAL_DECIDED) == 1
        assert [e.type for e in events].count(EventType.USER_MESSAGE) == 1


def failing_once() -> FunctionModel:
    """The payments script, but its first answer is a refusal (the turn fails)."""
    calls = [0]

    def fn(request: ModelRequest) -> ScriptedResponse:
        calls[0] += 1
        if calls[0] == 1:
            raise ProviderError("bad request", provider="test", status=400)
        return script(request)

    return FunctionModel(fn, name="scripted-payments")


@pytest.mark.parametrize("shared", BACKENDS, indirect=True)
@pytest.mark.parametrize("replicas", [1, 2])
@pytest.mark.parametrize("send_first", [True, False], ids=["send_first", "resume_first"])
async def test_send_and_resume_race_on_a_failed_session(
    shared: Shared, replicas: int, send_first: bool
) -> None:
    """A failed session takes a new message and can be resumed: the two race."""
    ledger = Ledger()
    agent = payments_agent(ledger, approvals=False, model=failing_once())
    async with runtimes(shared, replicas) as rts:
        a, b = rts[0], rts[-1]
        failed = await a.session(agent, principal=USER).send("charge 42")
        sid = failed.session_id
        assert failed.status == SessionStatus.FAILED
        assert (await a.store.get(sid)).status == SessionStatus.FAILED

        def send() -> Awaitable[TurnResult]:
            return a.session(agent, sid).send("charge 42 again")

        def resume() -> Awaitable[TurnResult]:
            return b.session(agent, sid).resume()

        first, second = (send, resume) if send_first else (resume, send)
        x, y = await race(ledger, first, second, mid_tool=False)
        won, lost = one_winner(x, y)
        assert isinstance(lost.error, SessionConflict), lost.error
        assert won.status == SessionStatus.IDLE
        assert ledger.charges == [42]
        await assert_settled(a, agent, sid)
        # the loser recorded nothing: one resume or one more message, not both
        types = [e.type for e in await a.store.events(sid)]
        assert types.count(EventType.SESSION_RESUMED) + types.count(EventType.USER_MESSAGE) == 2


@pytest.mark.parametrize("shared", BACKENDS, indirect=True)
@pytest.mark.parametrize("replicas", [1, 2])
async def test_resume_while_a_turn_runs_is_refused(shared: Shared, replicas: int) -> None:
    """A running session mid-tool looks interrupted from outside; resume must not take it."""
    ledger = Ledger()
    agent = payments_agent(ledger, approvals=False)
    async with runtimes(shared, replicas) as rts:
        a, b = rts[0], rts[-1]
        handle = a.session(agent, principal=USER)
        sid = handle.id
        x, y = await race(
            ledger,
            lambda: handle.send("charge 42"),
            lambda: b.session(agent, sid).resume(),
            mid_tool=True,
        )
        won, lost = one_winner(x, y)
        assert isinstance(lost.error, SessionConflict), lost.error
        assert won.status == SessionStatus.IDLE
        assert ledger.charges == [42]
        await assert_settled(a, agent, sid)


# --- d. many sessions at once --------------------------------------------------------------------


@pytest.mark.parametrize("shared", BACKENDS, indirect=True)
async def test_fifty_concurrent_sessions_all_complete(shared: Shared) -> None:
    ledger = Ledger()
    gated = GatedModel(FunctionModel(script, name="scripted-payments"))
    agent = payments_agent(ledger, model=gated)
    n = 50
    async with runtimes(shared, 1) as (rt,):
        handles = [rt.session(agent, principal=USER) for _ in range(n)]
        tasks = [asyncio.create_task(h.send(f"lookup {i}")) for i, h in enumerate(handles)]
        try:
            await until(lambda: gated.waiting == n)  # all fifty wait in their first model call
        finally:
            gated.gate.set()
        results = await asyncio.wait_for(asyncio.gather(*tasks), WAIT * 3)
        assert [r.status for r in results] == [SessionStatus.IDLE] * n
        assert {r.output for r in results} == {"final: customer ada"}
        assert {r.session_id for r in results} == {h.id for h in handles}
        assert ledger.lookups == n
        rows = await rt.store.list_sessions(limit=None)
        assert len(rows) == n
        assert {r.status for r in rows} == {SessionStatus.IDLE}
        assert {r.lease_owner for r in rows} == {None}
