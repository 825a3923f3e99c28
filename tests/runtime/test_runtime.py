"""The step machine, driven end to end by scripted models on the in-memory store."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

import tether
from tests.runtime.conftest import TOOLS, Ledger
from tether import Agent, Limits, ProviderError, ToolContext
from tether.exceptions import ConfigError, InputRejected, InvalidSessionState, SessionConflict
from tether.runtime import InMemoryStore, Runtime, SessionStatus
from tether.spec.approval import ApprovalPolicy
from tether.spec.events import EventType
from tether.spec.policy import RetryPolicy
from tether.testing import FakeClock, ScriptedModel, call, capture_events


def make_agent(model: ScriptedModel, ledger: Ledger, **limits: int) -> Agent:
    return Agent(
        name="shop",
        instructions="Help with orders.",
        models=(model,),
        tools=TOOLS,
        deps=lambda: ledger,
        limits=Limits(**limits),
        # the step machine itself; approvals have their own tests (test_approvals.py)
        approval=ApprovalPolicy(enabled=False),
    )


async def test_multi_step_flow_answers_and_records_every_step(ledger: Ledger) -> None:
    model = ScriptedModel(
        [
            call("get_order", order_id="#W1"),
            call("send_email", to="a@example.com", body="your order is pending"),
            "Your order #W1 is pending; I emailed you.",
        ]
    )
    async with Runtime() as rt:
        with capture_events() as log:
            result = await rt.run(make_agent(model, ledger), "Where is #W1?", on_event=log)
    model.assert_all_used()
    assert result.ok
    assert result.status == SessionStatus.IDLE
    assert result.output == "Your order #W1 is pending; I emailed you."
    assert ledger.sent == ["a@example.com:your order is pending"]
    assert log.tool_calls() == [
        ("get_order", {"order_id": "#W1"}),
        ("send_email", {"to": "a@example.com", "body": "your order is pending"}),
    ]
    assert log.types() == [
        "session.created",
        "message.user",
        "model.response",
        "tool.started",
        "tool.finished",
        "model.response",
        "tool.started",
        "tool.finished",
        "model.response",
        "turn.completed",
    ]
    # The model saw the tool result of step 1 when it took step 2.
    second = model.requests[1]
    assert second.messages[-1].role == "tool"
    assert second.messages[-1].results[0].content == '{"order_id":"#W1","status":"pending"}'
    # The preamble is always first in the system prompt, then the instructions, then
    # the canary line (see runtime/leak.py).
    assert second.system.startswith("You are an assistant run by the Tether runtime")
    head, _, canary = second.system.rstrip().rpartition("\n")
    assert head.endswith("Help with orders.")
    assert canary.startswith("Configuration reference tc-")
    # the agent's tools, then the built-in clarify
    assert [t.name for t in second.tools] == [*[t.name for t in TOOLS], "clarify"]
    assert result.usage.input_tokens > 0


async def test_conversation_continues_in_the_same_session(ledger: Ledger) -> None:
    model = ScriptedModel(["Hello!", "Still here."])
    agent = make_agent(model, ledger)
    async with Runtime() as rt:
        first = await rt.run(agent, "hi")
        second = await rt.run(agent, "you there?", session_id=first.session_id)
        state = await rt.load(first.session_id)
    assert second.output == "Still here."
    assert [m.role for m in state.messages] == ["user", "assistant", "user", "assistant"]
    assert [m.text for m in model.requests[1].messages] == ["hi", "Hello!", "you there?"]


@pytest.mark.parametrize(
    ("script_call", "expected"),
    [
        (call("get_order", order_id="#missing"), "could not be done: no order #missing"),
        (call("broken", q="x"), "failed unexpectedly (RuntimeError: database cursor closed)"),
        (call("slow_lookup", q="x"), "did not finish within 0.05 s"),
        (call("no_such_tool"), "there is no tool named 'no_such_tool'"),
        (call("get_order", order_id=42), "invalid arguments for get_order: order_id"),
        (call("get_order"), "invalid arguments for get_order: order_id: Field required"),
    ],
)
async def test_tool_failures_become_error_results_not_exceptions(
    ledger: Ledger, script_call: object, expected: str
) -> None:
    model = ScriptedModel([script_call, "Sorry, I could not look that up."])  # type: ignore[list-item]
    clock = FakeClock()
    async with Runtime(sleep=clock.sleep) as rt:
        result = await rt.run(make_agent(model, ledger), "check")
    assert result.ok
    retries = [e for e in result.events if e.type == EventType.TOOL_RETRY]
    if "did not finish" in expected:  # a read that timed out is retried; nothing else is
        assert [e.data["attempt"] for e in retries] == [1, 2, 3]
        assert {e.data["reason"] for e in retries} == {"timeout"}
        assert len(clock.sleeps) == 3
    else:
        assert retries == []
    finished = [e for e in result.events if e.type == EventType.TOOL_FINISHED]
    assert len(finished) == 1
    assert finished[0].data["is_error"] is True
    assert expected in finished[0].data["content"]
    tool_msg = model.requests[1].messages[-1]
    assert tool_msg.results[0].is_error is True


async def test_provider_failure_fails_the_turn_and_resume_continues(ledger: Ledger) -> None:
    model = ScriptedModel(
        [
            call("get_order", order_id="#W1"),
            ProviderError("overloaded", provider="x", status=529, retryable=True),
            "Recovered: #W1 is pending.",
        ]
    )
    agent = replace(make_agent(model, ledger), retry=RetryPolicy(max_retries=0))
    async with Runtime() as rt:
        failed = await rt.run(agent, "Where is #W1?")
        assert failed.status == SessionStatus.FAILED
        assert failed.error is not None
        assert "overloaded" in failed.error
        state = await rt.load(failed.session_id)
        assert state.last_error == failed.error
        resumed = await rt.resume(agent, failed.session_id)
    assert resumed.output == "Recovered: #W1 is pending."
    assert resumed.status == SessionStatus.IDLE
    # The lookup ran once: the resumed step started from the stored tool result.
    assert ledger.lookups == 1
    assert model.requests[2].messages[-1].role == "tool"


async def test_input_is_checked_before_anything_is_stored(ledger: Ledger) -> None:
    store = InMemoryStore()
    async with Runtime(store=store, close_store=False) as rt:
        agent = make_agent(ScriptedModel([]), ledger, max_input_chars=10)
        with pytest.raises(InputRejected, match="empty"):
            await rt.run(agent, "   ")
        with pytest.raises(InputRejected, match="at most 10"):
            await rt.run(agent, "x" * 11)
    assert await store.list_sessions() == []


async def test_step_limit_ends_the_turn_cleanly(ledger: Ledger) -> None:
    # Distinct calls, so loop detection (same call again and again) does not stop it first.
    model = ScriptedModel([call("get_order", order_id=f"#W{i}") for i in range(3)])
    async with Runtime() as rt:
        result = await rt.run(make_agent(model, ledger, max_steps_per_turn=3), "loop")
    assert result.status == SessionStatus.FAILED
    assert result.error is not None
    assert "3 steps" in result.error


async def test_tool_call_cap_per_step(ledger: Ledger) -> None:
    calls = [call("get_order", order_id=f"#W{i}") for i in range(3)]
    model = ScriptedModel([calls, "done"])
    async with Runtime() as rt:
        await rt.run(make_agent(model, ledger, max_tool_calls_per_step=2), "many")
    results = model.requests[1].messages[-1].results
    assert [r.is_error for r in results] == [False, False, True]
    assert "at most 2 tool calls" in results[2].content
    assert ledger.lookups == 2


async def test_session_vars_set_by_tools_persist(ledger: Ledger) -> None:
    model = ScriptedModel([call("login", user="ada"), "Welcome, Ada."])
    async with Runtime() as rt:
        result = await rt.run(make_agent(model, ledger), "I'm Ada")
        state = await rt.load(result.session_id)
    assert state.vars == {"user": "ada"}


async def test_second_writer_gets_a_clear_conflict(ledger: Ledger) -> None:
    store = InMemoryStore()
    agent = make_agent(ScriptedModel(["one"]), ledger)
    async with Runtime(store=store, close_store=False) as a:
        result = await a.run(agent, "hi")
        # Process A takes the lease again (as if mid-turn) ...
        await store.acquire(result.session_id, owner=a.owner, now=a.clock(), lease_ttl=60)
        async with Runtime(store=store, close_store=False) as b:
            with pytest.raises(SessionConflict, match="another process") as info:
                await b.run(agent, "me too", session_id=result.session_id)
    assert info.value.holder == a.owner


async def test_new_message_on_interrupted_session_points_to_resume(ledger: Ledger) -> None:
    store = InMemoryStore()
    model = ScriptedModel([call("get_order", order_id="#W1"), "ok"])
    agent = make_agent(model, ledger)
    async with Runtime(store=store, close_store=False) as rt:
        result = await rt.run(agent, "hi")
        with pytest.raises(InvalidSessionState, match="only a running"):
            await rt.resume(agent, result.session_id)  # idle: nothing to resume
        # As if a process died mid-turn: the row says running, the lease is free.
        row, _ = await store.acquire(result.session_id, owner="x", now=rt.clock(), lease_ttl=9)
        row.status = SessionStatus.RUNNING
        await store.commit(row, [], owner="x", lease_ttl=9)
        await store.release(row.id, owner="x")
        with pytest.raises(InvalidSessionState, match="tether resume"):
            await rt.run(agent, "again", session_id=row.id)


async def test_stream_yields_deltas_then_stored_events(ledger: Ledger) -> None:
    model = ScriptedModel(["Hello there, friend."], chunk=5)
    async with Runtime() as rt:
        events = [e async for e in rt.stream(make_agent(model, ledger), "hi")]
    deltas = [e.data["text"] for e in events if e.type == EventType.MODEL_DELTA]
    assert deltas == ["Hello", " ther", "e, fr", "iend."]
    assert events[-1].type == EventType.TURN_COMPLETED


async def test_scripted_model_fails_loudly_on_an_extra_call(ledger: Ledger) -> None:
    model = ScriptedModel([call("get_order", order_id="#W1")])
    async with Runtime() as rt:
        with pytest.raises(Exception, match="only 1 scripted responses"):
            await rt.run(make_agent(model, ledger), "hi")


async def test_scripted_model_keeps_requests_unless_told_not_to(ledger: Ledger) -> None:
    kept = ScriptedModel([call("get_order", order_id="#W1"), "done"])
    dropped = ScriptedModel([call("get_order", order_id="#W1"), "done"], record=False)
    async with Runtime() as rt:
        for model in (kept, dropped):
            result = await rt.run(make_agent(model, ledger), "where is #W1?")
            assert result.ok, result.error
    assert [r.messages[-1].role for r in kept.requests] == ["user", "tool"]
    assert dropped.requests == []
    assert dropped.remaining == 0  # it still played its whole script


async def test_two_turns_of_one_session_in_one_runtime_conflict(ledger: Ledger) -> None:
    import asyncio

    from tether.testing import FunctionModel, GatedModel

    # the turn "one" waits inside its model call until the gate opens
    model = GatedModel(FunctionModel(lambda r: "done"), when=lambda r: r.messages[-1].text == "one")
    agent = make_agent(model, ledger)  # type: ignore[arg-type]
    async with Runtime() as rt:
        first = await rt.run(agent, "hi")
        running = asyncio.create_task(rt.run(agent, "one", session_id=first.session_id))
        await asyncio.wait_for(model.entered.wait(), timeout=30)
        with pytest.raises(SessionConflict, match="already has a turn in progress"):
            await rt.run(agent, "two", session_id=first.session_id)
        model.gate.set()
        result = await running
    assert result.ok
    assert result.output == "done"


class _CountingStore(InMemoryStore):
    """The in-memory store, recording which writes the runtime asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    async def create(self, *args: Any, **kw: Any) -> None:
        self.writes.append("create")
        await super().create(*args, **kw)

    async def commit(self, *args: Any, **kw: Any) -> None:
        self.writes.append("commit+release" if kw.get("release") else "commit")
        await super().commit(*args, **kw)

    async def append(self, *args: Any, **kw: Any) -> None:
        self.writes.append("append")
        await super().append(*args, **kw)

    async def release(self, *args: Any, **kw: Any) -> None:
        self.writes.append("release")
        await super().release(*args, **kw)


async def test_a_turn_writes_once_per_step_and_frees_the_lease_with_its_last_commit(
    ledger: Ledger,
) -> None:
    model = ScriptedModel(
        [
            call("get_order", order_id="#W1"),
            call("send_email", to="a@example.com", body="pending"),
            "Your order #W1 is pending; I emailed you.",
        ]
    )
    store = _CountingStore()
    async with Runtime(store=store) as rt:
        result = await rt.run(make_agent(model, ledger), "Where is #W1?")
        assert store.writes == [
            "create",  # the session with its first message, before the model runs
            "append",  # step 1: the lookup and its result (events only: status unchanged)
            "append",  # step 2: the email's intent, before it is sent
            "append",  # step 2: its result
            "commit+release",  # step 3: the answer, the row brought up to date, the lease back
        ]
        record = await store.get(result.session_id)
        assert (record.status, record.lease_owner) == (SessionStatus.IDLE, None)
        # a failed turn frees its lease the same way
        store.writes.clear()
        failing = ScriptedModel([ProviderError("down", status=503, retryable=True)])
        no_retry = replace(make_agent(failing, ledger), retry=RetryPolicy(max_retries=0))
        failed = await rt.run(no_retry, "again", session_id=result.session_id)
        assert failed.status == SessionStatus.FAILED
        assert store.writes == ["commit", "commit+release"]
        assert (await store.get(result.session_id)).lease_owner is None


async def test_required_tool_choice_holds_until_a_tool_answers(ledger: Ledger) -> None:
    model = ScriptedModel(
        [
            call("get_order", order_id="#W1"),
            "It is pending.",
            "You're welcome.",  # next turn: asked with tool_choice required again
        ]
    )
    base = make_agent(model, ledger)
    agent = Agent(
        name=base.name,
        instructions=base.instructions,
        models=base.models,
        tools=base.tools,
        deps=base.deps,
        tool_choice="required",
    )
    assert agent.with_models(base.models).tool_choice == "required"
    async with Runtime() as rt:
        first = await rt.run(agent, "Where is #W1?")
        await rt.run(agent, "Thanks!", session_id=first.session_id)
    assert [r.tool_choice for r in model.requests] == ["required", "auto", "required"]
    # an agent without tools is never asked for a call it cannot make
    bare = Agent(name="bare", instructions="Chat.", models=(ScriptedModel(["hi"]),))
    plain = Agent(
        name="bare2",
        instructions="Chat.",
        models=(only := ScriptedModel(["hi"]),),
        tool_choice="required",
    )
    async with Runtime() as rt:
        await rt.run(bare, "hello")
        await rt.run(plain, "hello")
    assert only.requests[0].tool_choice == "auto"


async def test_once_tool_choice_looks_up_then_must_answer(ledger: Ledger) -> None:
    model = ScriptedModel(
        [
            call("get_order", order_id="#W1"),
            "It is pending.",
            call("get_order", order_id="#W1"),  # next turn: a lookup is demanded again
            "Still pending.",
        ]
    )
    agent = replace(make_agent(model, ledger), tool_choice="once")
    async with Runtime() as rt:
        first = await rt.run(agent, "Where is #W1?")
        second = await rt.run(agent, "And now?", session_id=first.session_id)
    assert (first.output, second.output) == ("It is pending.", "Still pending.")
    assert [r.tool_choice for r in model.requests] == ["required", "none", "required", "none"]
    assert ledger.lookups == 2


def test_unknown_tool_choice_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="tool_choice"):
        Agent(name="a", instructions="x", tool_choice="always")


async def test_each_agent_object_gets_its_own_model_and_deps() -> None:
    # Agents built one after another reuse freed memory, so a cache keyed on
    # id() alone handed a new agent the previous one's model and deps.
    @tether.tool(reads=True)
    def whoami(ctx: ToolContext) -> str:
        """Say which deps this agent got."""
        return str(ctx.deps)

    async with Runtime() as rt:
        for i in range(20):
            model = ScriptedModel([call("whoami"), f"answer {i}"])
            agent = Agent(
                name="same",
                instructions="x",
                models=(model,),
                tools=(whoami,),
                deps=lambda i=i: f"deps {i}",
            )
            result = await rt.run(agent, "hi")
            assert result.output == f"answer {i}"
            assert model.requests[1].messages[-1].results[0].content == f"deps {i}"
            del agent, model


async def test_a_caller_can_name_a_new_session(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    model = ScriptedModel(["Hello.", "Again."])
    agent = make_agent(model, ledger)
    async with Runtime() as rt:
        first = await rt.run(agent, "hi", new_session_id="ticket-4711")
        assert first.session_id == "ticket-4711"
        with pytest.raises(SessionConflict):
            await rt.run(agent, "hi", new_session_id="ticket-4711")  # exists: nothing runs
        assert len(model.requests) == 1
        stored = await rt.store.events("ticket-4711")
        assert [e.type for e in stored].count("session.created") == 1
        again = await rt.run(agent, "again", session_id="ticket-4711")
        assert again.output == "Again."
        with pytest.raises(ConfigError):
            await rt.run(agent, "x", session_id="ticket-4711", new_session_id="other")
    assert "final commit failed" not in caplog.text
