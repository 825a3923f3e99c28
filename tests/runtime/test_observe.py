"""Observers hear every turn, bracketed, tagged with its session; they never change one."""

from __future__ import annotations

from typing import Any

import tether
from tether import Agent, Runtime, ToolContext
from tether.runtime import SessionStatus
from tether.runtime.observe import TURN_ENDED, TURN_STARTED, SessionTag, current_turn
from tether.spec.events import Event, EventType
from tether.testing import ScriptedModel, call


@tether.tool(irreversible=True, summary="wipe {what}")
def wipe(ctx: ToolContext, what: str) -> str:
    """Wipe something.

    Args:
        what: What to wipe.
    """
    return f"wiped {what}"


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, SessionTag, int | None]] = []

    def __call__(self, ev: Event, tag: SessionTag) -> None:
        info = current_turn.get()
        self.seen.append((ev.type, tag, None if info is None else info.step))

    def types(self) -> list[str]:
        return [t for t, _, _ in self.seen]


def _agent(*replies: Any) -> Agent:
    return Agent(
        name="obs",
        version="7",
        instructions="Help.",
        models=(ScriptedModel(list(replies)),),
        tools=(wipe,),
    )


async def test_a_turn_is_bracketed_and_tagged_with_its_session() -> None:
    rec = Recorder()
    agent = _agent("hello")
    async with Runtime(observers=[rec]) as rt:
        s = rt.session(agent, principal=tether.Principal(user="u1", tenant="t1"))
        await s.send("hi")
    types = rec.types()
    assert types[0] == EventType.SESSION_CREATED
    assert types[1] == TURN_STARTED
    assert types[-1] == TURN_ENDED
    assert EventType.MODEL_RESPONSE in types
    assert EventType.MODEL_DELTA in types
    tags = {tag for _, tag, _ in rec.seen}
    assert tags == {SessionTag(s.id, "obs", "7", "u1", "t1")}
    # inside the turn the task knows its turn; the end event is told after it is cleared
    inside = [step for t, _, step in rec.seen if t == EventType.MODEL_RESPONSE]
    assert inside
    assert all(step is not None for step in inside)
    ended = [ev for ev in rec.seen if ev[0] == TURN_ENDED]
    assert ended[0][2] is None
    assert current_turn.get() is None


async def test_the_end_of_a_turn_carries_the_status_and_each_decision_is_a_turn() -> None:
    ends: list[dict[str, Any]] = []

    def on(ev: Event, tag: SessionTag) -> None:
        if ev.type in (TURN_STARTED, TURN_ENDED):
            ends.append({"type": ev.type, **ev.data})

    agent = _agent(call("wipe", what="disk"), "done")
    async with Runtime(observers=[on]) as rt:
        s = rt.session(agent)
        r = await s.send("wipe the disk")
        assert r.status == SessionStatus.AWAITING_APPROVAL
        assert r.approval is not None
        await s.decide(r.approval.id, True, by="op")
    assert ends == [
        {"type": TURN_STARTED, "need": "message"},
        {"type": TURN_ENDED, "status": "awaiting_approval", "error": None},
        {"type": TURN_STARTED, "need": "decision"},
        {"type": TURN_ENDED, "status": "idle", "error": None},
    ]


async def test_an_observer_that_raises_changes_nothing() -> None:
    calls = 0

    def broken(ev: Event, tag: SessionTag) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("observer bug")

    rec = Recorder()
    agent = _agent("hello")
    async with Runtime(observers=[broken, rec]) as rt:
        r = await rt.session(agent).send("hi")
    assert r.output == "hello"
    assert r.status == SessionStatus.IDLE
    assert calls == len(rec.seen) > 3  # it kept being called, and the next observer heard all


async def test_no_observers_means_no_turn_marker() -> None:
    seen: list[object] = []
    agent = _agent("hello")

    async with Runtime() as rt:
        r = await rt.session(agent).send("hi", on_event=lambda ev: seen.append(current_turn.get()))
    assert r.output == "hello"
    assert seen
    assert all(v is None for v in seen)
