"""Shutdown: ``aclose(timeout=...)`` with turns in flight leaves every session resumable.

Three turns are in flight on SQLite when the runtime closes: one waits in a
model call that will answer, one waits in a model call that will ask for a
lookup (one more step to go), and one is stuck inside a charge that is not
idempotent. While closing, new turns are refused; the first two finish their
step (one completes, one stops at the step boundary), the third is
cancelled at the timeout. A fresh runtime then resumes each unfinished
session to ``idle``, and the charge is reported "outcome unknown", never run
twice.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.runtime.session_peer import USER, Ledger, payments_agent, script, until
from tether.exceptions import InvalidSessionState, ShuttingDown
from tether.runtime import Runtime, SessionStatus
from tether.spec.events import EventType
from tether.spec.model import ModelRequest
from tether.store import open_store
from tether.testing import FunctionModel, GatedModel

WAIT = 10.0


def held_in_model(request: ModelRequest) -> bool:
    """The first model call of "answer" and "lookup" turns waits at the gate; a charge's not."""
    last = request.messages[-1]
    return last.role == "user" and not last.text.startswith("charge")


async def test_aclose_drains_turns_then_cancels_and_everything_resumes(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 's.db'}"
    ledger = Ledger()  # its release is never set: the charge hangs until cancelled
    gated = GatedModel(FunctionModel(script, name="scripted-payments"), when=held_in_model)
    agent = payments_agent(ledger, approvals=False, model=gated)
    rt = Runtime(store=await open_store(url))
    answer = rt.session(agent, principal=USER)
    lookup = rt.session(agent, principal=USER)
    charge = rt.session(agent, principal=USER)
    answering = asyncio.create_task(answer.send("answer me"))
    looking = asyncio.create_task(lookup.send("lookup ada"))
    charging = asyncio.create_task(charge.send("charge 42"))
    await until(lambda: gated.waiting == 2)
    await asyncio.wait_for(ledger.entered.wait(), WAIT)

    closing = asyncio.create_task(rt.aclose(timeout=0.5))
    await asyncio.sleep(0)
    assert rt.closing
    # new turns are refused while closing, on new and existing sessions alike
    with pytest.raises(ShuttingDown, match="shutting down"):
        await rt.session(agent, principal=USER).send("hello")
    with pytest.raises(ShuttingDown):
        await rt.session(agent, charge.id).resume()
    with pytest.raises(ShuttingDown):
        async for _ev in rt.session(agent, lookup.id).stream("more"):
            pass
    gated.gate.set()  # the two model calls answer now, during the drain
    answered = await asyncio.wait_for(answering, WAIT)
    looked = await asyncio.wait_for(looking, WAIT)
    await asyncio.wait_for(closing, WAIT)
    with pytest.raises(asyncio.CancelledError):
        await charging

    # the answer was on its last step: it completed
    assert answered.status == SessionStatus.IDLE
    assert answered.error is None
    assert answered.output == "echo: answer me"
    # the lookup finished its step, then stopped at the boundary, committed
    assert looked.status == SessionStatus.RUNNING
    assert looked.error is not None
    assert "shut down" in looked.error
    assert ledger.lookups == 1
    assert ledger.charges == [42]
    assert ledger.finished == 0

    store = await open_store(url)
    async with Runtime(store=store) as fresh:
        rows = {r.id: r for r in await store.list_sessions()}
        assert {sid: r.status for sid, r in rows.items()} == {
            answer.id: SessionStatus.IDLE,
            lookup.id: SessionStatus.RUNNING,
            charge.id: SessionStatus.RUNNING,
        }
        assert {r.lease_owner for r in rows.values()} == {None}
        charge_events = await store.events(charge.id)
        assert [e.type for e in charge_events][-1] == EventType.TOOL_STARTED

        with pytest.raises(InvalidSessionState):
            await fresh.session(agent, answer.id).resume()
        resumed_lookup = await fresh.session(agent, lookup.id).resume()
        resumed_charge = await fresh.session(agent, charge.id).resume()
        rows = {r.id: r for r in await store.list_sessions()}
        alerts = [
            e.data for e in await store.events(charge.id) if e.type == EventType.OPERATOR_ALERT
        ]

    assert resumed_lookup.status == SessionStatus.IDLE
    assert resumed_lookup.output == "final: customer ada"
    assert ledger.lookups == 1  # its result was committed before the stop, not looked up again
    assert resumed_charge.status == SessionStatus.IDLE
    assert resumed_charge.output is not None
    assert "outcome unknown" in resumed_charge.output
    assert ledger.charges == [42]  # never run twice
    assert [a["tool"] for a in alerts] == ["charge"]
    assert {r.status for r in rows.values()} == {SessionStatus.IDLE}
    assert {r.lease_owner for r in rows.values()} == {None}


async def test_a_turn_stuck_in_its_model_call_is_cancelled_and_resumes(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 's.db'}"
    ledger = Ledger()
    gated = GatedModel(FunctionModel(script, name="scripted-payments"))
    agent = payments_agent(ledger, approvals=False, model=gated)
    rt = Runtime(store=await open_store(url))
    handle = rt.session(agent, principal=USER)
    task = asyncio.create_task(handle.send("lookup ada"))
    await asyncio.wait_for(gated.entered.wait(), WAIT)
    await asyncio.wait_for(rt.aclose(timeout=0.2), WAIT)  # the gate never opens
    with pytest.raises(asyncio.CancelledError):
        await task
    store = await open_store(url)
    async with Runtime(store=store) as fresh:
        row = await store.get(handle.id)
        assert row.status == SessionStatus.RUNNING
        assert row.lease_owner is None
        gated.gate.set()
        result = await fresh.session(agent, handle.id).resume()
    assert result.status == SessionStatus.IDLE
    assert result.output == "final: customer ada"
    assert ledger.lookups == 1


async def test_aclose_with_nothing_in_flight_is_prompt_and_idempotent() -> None:
    ledger = Ledger()
    rt = Runtime()
    await rt.session(payments_agent(ledger, approvals=False), principal=USER).send("hello")
    async with asyncio.timeout(1.0):
        await rt.aclose(timeout=30)
        await rt.aclose(timeout=30)
    with pytest.raises(ShuttingDown):
        await rt.session(payments_agent(ledger), principal=USER).send("hello")
