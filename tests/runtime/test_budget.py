"""Session token budgets, context compression, tool-call caps, loop stops and call costs.

Scripted models answer with exact usage (``ModelResponse`` entries), so
every threshold is crossed on a known call, and function entries check what
the model is sent.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

import tether
from tests.runtime.conftest import TOOLS, Ledger
from tether import Agent, Budget, Limits, ToolContext
from tether.controls.budget import estimate_tokens
from tether.exceptions import InvalidSessionState, ProviderError
from tether.runtime import InMemoryStore, Runtime, SessionStatus
from tether.runtime.compress import SUMMARIZER_SYSTEM
from tether.spec.approval import ApprovalPolicy
from tether.spec.events import EventType
from tether.spec.messages import Message, ToolCall, Usage
from tether.spec.model import ModelRequest, ModelResponse
from tether.store import open_store
from tether.testing import ScriptedModel, call, capture_events

SONNET = "anthropic:claude-sonnet-4-5"
HAIKU = "anthropic:claude-haiku-4-5"


def resp(
    text: str = "",
    *calls: ToolCall,
    inp: int = 100,
    out: int = 10,
    model: str = SONNET,
) -> ModelResponse:
    """A model answer with exactly this usage."""
    return ModelResponse(
        message=Message(role="assistant", text=text, tool_calls=calls, model=model),
        usage=Usage(input_tokens=inp, output_tokens=out),
        model=model,
        stop_reason="tool_use" if calls else "end",
    )


def agent(
    *models: ScriptedModel,
    ledger: Ledger,
    budget: Budget | None = None,
    **limits: int,
) -> Agent:
    return Agent(
        name="shop",
        instructions="Help with orders.",
        models=models,
        tools=TOOLS,
        deps=lambda: ledger,
        limits=Limits(**limits),
        budget=budget or Budget(),
        approval=ApprovalPolicy(enabled=False),
        clarify=False,
    )


# --- compression -------------------------------------------------------------


async def test_compression_at_the_threshold_keeps_facts_and_the_conversation_goes_on(
    ledger: Ledger,
) -> None:
    seen: dict[str, ModelRequest] = {}

    def after_compression(request: ModelRequest) -> ModelResponse:
        seen["main"] = request
        return resp("Your order #W2 is pending too.", inp=300, out=10)

    def summarise(request: ModelRequest) -> ModelResponse:
        seen["summary"] = request
        return resp("Ava logged in; order #W1 is pending.", inp=400, out=20, model=HAIKU)

    primary = ScriptedModel(
        [
            resp("", call("login", user="ava"), inp=4_000, out=10),
            resp("Hello Ava.", inp=4_000, out=10),
            resp("", call("get_order", order_id="#W1"), inp=4_000, out=10),
            resp("#W1 is pending.", inp=4_000, out=10),
            after_compression,
        ],
        name=SONNET,
    )
    backup = ScriptedModel([summarise], name=HAIKU)
    # 4 calls x 4,010 tokens = 16,040 of 20,000: past 80% when turn 3 starts.
    a = agent(primary, backup, ledger=ledger, budget=Budget(max_tokens=20_000, keep_turns=1))
    store = InMemoryStore()
    async with Runtime(store=store, close_store=False) as rt:
        # a pasted document: the kind of context compression is for
        pasted = "Here is my whole order history, pasted: " + "a blue kettle, " * 300
        first = await rt.run(a, f"Hi, I am Ava. {pasted}")
        sid = first.session_id
        second = await rt.run(a, "Where is order #W1?", session_id=sid)
        assert second.output == "#W1 is pending."
        assert "summary" not in seen  # 12,030 of 20,000 used: below the threshold
        with capture_events() as log:
            third = await rt.run(a, "And order #W2?", session_id=sid, on_event=log)
        state = await rt.load(sid)
    assert third.output == "Your order #W2 is pending too."
    primary.assert_all_used()
    backup.assert_all_used()

    # The cheapest model of the chain summarised a plain transcript, without tools.
    summary_req = seen["summary"]
    assert summary_req.system == SUMMARIZER_SYSTEM
    assert summary_req.tools == ()
    transcript = summary_req.messages[0].text
    assert "User: Hi, I am Ava" in transcript
    assert 'get_order({"order_id": "#W1"})' in transcript

    # What the main model received next: one summary message, then the kept turn.
    main = seen["main"]
    assert [m.role for m in main.messages] == ["user", "user"]
    summary, kept = main.messages
    assert kept.text == "And order #W2?"
    assert summary.text.startswith("<conversation-summary>")
    assert "Ava logged in; order #W1 is pending." in summary.text
    assert '"user": "ava"' in summary.text  # the session vars (the authenticated user)
    assert 'get_order({"order_id": "#W1"}) -> ' in summary.text  # the facts tools returned
    assert "pending" in summary.text

    (event,) = log.of(EventType.CONTEXT_COMPRESSED)
    assert event.data["model"] == HAIKU
    assert event.data["upto"] == 8  # 2 turns: user, call, result, answer each
    assert event.data["tokens_after"] * 3 < event.data["tokens_before"]
    assert event.usage == Usage(400, 20)
    # The stored log folds to the same compressed conversation (resume sees it too).
    assert state.messages[0].metadata["summary"] is True
    assert [m.text for m in state.messages[1:]] == [
        "And order #W2?",
        "Your order #W2 is pending too.",
    ]
    assert state.usage.total_tokens == 4 * 4_010 + 420 + 310


async def test_a_failed_summary_does_not_fail_the_turn(ledger: Ledger) -> None:
    primary = ScriptedModel(
        [
            resp("One.", inp=8_000, out=10),
            resp("Two.", inp=8_000, out=10),
            resp("Three.", inp=100, out=10),
        ],
        name=SONNET,
    )
    backup = ScriptedModel([ProviderError("bad request", status=400)], name=HAIKU)
    a = agent(primary, backup, ledger=ledger, budget=Budget(max_tokens=20_000, keep_turns=1))
    async with Runtime() as rt:
        r1 = await rt.run(a, "first")
        await rt.run(a, "second", session_id=r1.session_id)
        with capture_events() as log:
            r3 = await rt.run(a, "third", session_id=r1.session_id, on_event=log)
    assert r3.output == "Three."
    (failed,) = log.of(EventType.COMPRESSION_FAILED)
    assert "400" in failed.data["reason"] or "bad request" in failed.data["reason"].lower()
    assert not log.of(EventType.CONTEXT_COMPRESSED)


# --- the hard limit ------------------------------------------------------------


async def test_the_hard_limit_ends_the_session_cleanly_with_the_partial_answer(
    ledger: Ledger,
) -> None:
    model = ScriptedModel(
        [resp("Let me look that order up.", call("get_order", order_id="#W1"), inp=1_400, out=80)],
        name=SONNET,
    )
    a = agent(model, ledger=ledger, budget=Budget(max_tokens=1_500))
    store = InMemoryStore()
    async with Runtime(store=store, close_store=False) as rt:
        with capture_events() as log:
            result = await rt.run(a, "Where is #W1?", on_event=log)
        assert result.status == SessionStatus.BUDGET_EXHAUSTED
        assert result.stop_reason == "budget_exhausted"
        assert result.error is None
        assert result.output is not None
        assert result.output.startswith("Let me look that order up.")
        assert "token budget (1,480 of 1,500 tokens)" in result.output
        assert ledger.lookups == 1  # the step that fitted ran in full
        model.assert_all_used()  # and no second call was made (it would not fit)
        (ended,) = log.of(EventType.BUDGET_EXHAUSTED)
        assert ended.data == {
            "max_tokens": 1_500,
            "used": 1_480,
            "partial": "Let me look that order up.",
        }
        record = await store.get(result.session_id)
        assert record.status == SessionStatus.BUDGET_EXHAUSTED
        with pytest.raises(InvalidSessionState, match="token budget"):
            await rt.run(a, "hello?", session_id=result.session_id)


async def test_a_call_gets_only_the_output_room_that_is_left(ledger: Ledger) -> None:
    seen: list[tuple[int, int]] = []

    def answer(request: ModelRequest) -> ModelResponse:
        seen.append((estimate_tokens(request), request.max_tokens))
        return resp("ok", inp=10, out=5)

    model = ScriptedModel([resp("first", inp=8_400, out=100), answer], name=SONNET)
    a = agent(
        model,
        ledger=ledger,
        budget=Budget(max_tokens=10_000, compress_at=1.0),
        max_output_tokens=1_000,
    )
    async with Runtime() as rt:
        r1 = await rt.run(a, "one")
        r2 = await rt.run(a, "two", session_id=r1.session_id)
    assert r2.output == "ok"
    # 8,500 used, 1,500 left: the input estimate takes its share, the output cap
    # (normally 1,000) gets exactly the rest, so the call fits in the budget.
    ((estimate, cap),) = seen
    assert cap < 1_000
    assert estimate + cap == 1_500


async def test_the_estimate_counts_the_tools_this_caller_is_offered(ledger: Ledger) -> None:
    # The system prompt and tool schemas are measured once per agent; a caller
    # whose scopes hide a tool is offered fewer schemas, and must neither set
    # nor use the agent-wide figure (an unrestricted caller would then be
    # under-estimated, and could overrun the budget).
    @tether.tool(writes=True, scopes=frozenset({"staff"}))
    async def refund_anything(ctx: ToolContext, order_id: str, reason: str) -> str:
        """Refund any order, for any reason (staff only).

        Args:
            order_id: The order to refund.
            reason: Why, for the audit log.
        """
        return "refunded"

    seen: list[tuple[int, int]] = []

    def answer(request: ModelRequest) -> ModelResponse:
        seen.append((estimate_tokens(request), request.max_tokens))
        return resp("ok", inp=10, out=5)

    model = ScriptedModel([answer, answer])
    budget = Budget(max_tokens=2_000, compress_at=1.0)
    base = agent(model, ledger=ledger, budget=budget, max_output_tokens=4_000)
    a = replace(base, tools=(*base.tools, refund_anything))
    async with Runtime() as rt:
        await rt.run(a, "hi", scopes=())  # the customer: no refund tool
        await rt.run(a, "hi")  # a trusted caller: every tool
    (small, cap_small), (full, cap_full) = seen
    assert full > small  # the refund tool's schema is in the second request only
    # each fresh session has the whole budget: input estimate + output cap fill it
    assert small + cap_small == 2_000
    assert full + cap_full == 2_000


# --- tool-call caps and loops ----------------------------------------------------


async def test_per_turn_cap_ends_the_turn_with_a_tool_less_summary(ledger: Ledger) -> None:
    seen: list[ModelRequest] = []

    def wrap_up(request: ModelRequest) -> ModelResponse:
        seen.append(request)
        return resp("#W1 and #W2 are pending; I could not check #W3.")

    model = ScriptedModel(
        [
            call("get_order", order_id="#W1"),
            call("get_order", order_id="#W2"),
            call("get_order", order_id="#W3"),
            wrap_up,
        ]
    )
    a = agent(model, ledger=ledger, max_tool_calls_per_turn=2)
    async with Runtime() as rt:
        with capture_events() as log:
            result = await rt.run(a, "check my three orders", on_event=log)
        state = await rt.load(result.session_id)
    assert result.status == SessionStatus.IDLE
    assert result.stop_reason == "max_tool_calls_per_turn"
    assert result.output == "#W1 and #W2 are pending; I could not check #W3."
    assert ledger.lookups == 2  # the third call did not run
    (req,) = seen
    assert req.tool_choice == "none"
    assert req.messages[-1].text.startswith("[Tether runtime] No more tools")
    assert "2 allowed tool calls" in req.messages[-1].text
    (hit,) = log.of(EventType.LIMIT_REACHED)
    assert hit.data == {
        "limit": "max_tool_calls_per_turn",
        "allowed": 2,
        "count": 3,
        "tool": "get_order",
    }
    assert log.of(EventType.TURN_COMPLETED)[-1].data["stopped"] == "max_tool_calls_per_turn"
    # the runtime's note is not part of the stored conversation
    assert not any("[Tether runtime]" in m.text for m in state.messages)


async def test_session_cap_counts_across_turns(ledger: Ledger) -> None:
    model = ScriptedModel(
        [
            call("get_order", order_id="#W1"),
            call("get_order", order_id="#W2"),
            "Both pending.",
            call("get_order", order_id="#W3"),
            call("get_order", order_id="#W4"),
            "I can only tell you about #W3.",
        ]
    )
    a = agent(model, ledger=ledger, max_tool_calls=3)
    async with Runtime() as rt:
        r1 = await rt.run(a, "two orders")
        r2 = await rt.run(a, "two more", session_id=r1.session_id)
    assert r1.stop_reason is None
    assert r2.stop_reason == "max_tool_calls"
    assert r2.output == "I can only tell you about #W3."
    assert ledger.lookups == 3
    model.assert_all_used()


async def test_the_same_call_again_and_again_is_a_loop(ledger: Ledger) -> None:
    model = ScriptedModel(
        [
            call("get_order", order_id="#W1"),
            call("get_order", order_id="#W1"),
            call("get_order", order_id="#W1"),
            # The model disobeys the wrap-up and asks for a tool again: dropped.
            resp("#W1 is pending.", call("get_order", order_id="#W1")),
            "Still here.",
        ]
    )
    a = agent(model, ledger=ledger)
    async with Runtime() as rt:
        with capture_events() as log:
            result = await rt.run(a, "where is #W1", on_event=log)
        assert result.stop_reason == "loop"
        assert result.output == "#W1 is pending."
        assert ledger.lookups == 2
        (hit,) = log.of(EventType.LIMIT_REACHED)
        assert hit.data["limit"] == "loop"
        state = await rt.load(result.session_id)
        assert state.open_calls == {}  # the dropped call is not left pending
        # and the next turn starts afresh (the loop count is per turn)
        again = await rt.run(a, "thanks", session_id=result.session_id)
    assert again.output == "Still here."


async def test_the_loop_note_tells_the_model_the_facts_and_the_user_no_internals(
    ledger: Ledger,
) -> None:
    # Small models copy a note's words into their answer: the note to the model
    # states what happened, addressed to it, and carries no verdict to repeat.
    seen: list[ModelRequest] = []

    def wrap_up(request: ModelRequest) -> ModelResponse:
        seen.append(request)
        return resp("#W1 is pending.")

    looping = [call("get_order", order_id="#W1") for _ in range(3)]
    async with Runtime() as rt:
        result = await rt.run(agent(ScriptedModel([*looping, wrap_up]), ledger=ledger), "#W1?")
        note = seen[0].messages[-1].text
        assert "you asked for get_order with the same arguments 3 times" in note
        assert "circles" not in note
        assert "the agent" not in note
        (refused,) = seen[0].messages[-2].results  # the third call, not run
        assert refused.content.startswith("not executed: you asked for get_order")
        assert "circles" not in refused.content
        # the wrap-up call fails: the user reads a plain sentence, not the log line
        failing = ScriptedModel([*looping, ProviderError("down", retryable=False)])
        stopped = await rt.run(agent(failing, ledger=ledger), "#W1?")
    assert result.output == "#W1 is pending."
    assert stopped.stop_reason == "loop"
    assert stopped.output is not None
    assert stopped.output.startswith("I had to stop here: I kept repeating the same lookup")
    assert "get_order" not in stopped.output
    assert "circles" not in stopped.output


async def test_distinct_calls_are_not_a_loop(ledger: Ledger) -> None:
    model = ScriptedModel(
        [call("get_order", order_id=f"#W{i}") for i in range(5)] + ["All pending."]
    )
    async with Runtime() as rt:
        result = await rt.run(agent(model, ledger=ledger), "five orders")
    assert result.stop_reason is None
    assert ledger.lookups == 5


# --- cost --------------------------------------------------------------------------


async def test_every_call_is_priced_and_the_session_row_keeps_the_total(
    ledger: Ledger, tmp_path: Path
) -> None:
    model = ScriptedModel(
        [
            resp("", call("get_order", order_id="#W1"), inp=1_000, out=100),
            resp("Pending.", inp=2_000, out=50),
        ],
        name=SONNET,
    )
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 's.db'}")
    async with Runtime(store=store) as rt:
        result = await rt.run(agent(model, ledger=ledger), "#W1?", user_id="u1")
        record = await store.get(result.session_id)
        events = await store.events(result.session_id)
    # $3 per million input tokens, $15 per million output (claude-sonnet-4-5)
    first = (1_000 * 3 + 100 * 15) / 1e6
    second = (2_000 * 3 + 50 * 15) / 1e6
    costs = [e.data["cost"] for e in events if e.type == EventType.MODEL_RESPONSE]
    assert costs == pytest.approx([first, second])
    assert result.cost == pytest.approx(first + second)
    assert record.cost == pytest.approx(first + second)


async def test_an_unpriced_model_costs_zero_and_says_so(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    model = ScriptedModel([resp("Hi.", model="openai:my-finetune")], name="openai:my-finetune")
    caplog.set_level(logging.WARNING, "tether.runtime")
    async with Runtime() as rt:
        with capture_events() as log:
            result = await rt.run(agent(model, ledger=ledger), "hi", on_event=log)
    (ev,) = log.of(EventType.MODEL_RESPONSE)
    assert ev.data["cost"] == 0.0
    assert ev.data["priced"] is False
    assert result.cost == 0.0
    assert "no price for model openai:my-finetune" in caplog.text
