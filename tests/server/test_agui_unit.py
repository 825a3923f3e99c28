"""AG-UI translation, without a server: Tether events in, AG-UI 1.0 events out, inputs parsed.

Every emitted event is checked against the ``ag-ui-protocol`` models (a
``model_dump(by_alias=True)`` validated back, and the SSE text parsed as an
AG-UI event), so what a CopilotKit front end reads is the protocol's shape.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from ag_ui.core import (
    BaseEvent,
    RunAgentInput,
    RunErrorEvent,
    RunFinishedEvent,
    RunFinishedInterruptOutcome,
    RunFinishedSuccessOutcome,
    StateSnapshotEvent,
    TextMessageContentEvent,
    TextMessageStartEvent,
    ToolCallArgsEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
)
from ag_ui.core import Event as AguiEvent
from pydantic import TypeAdapter

from tether.runtime.approvals import PendingApproval
from tether.runtime.leak import WITHHELD
from tether.spec.events import Event, EventType
from tether.spec.messages import Message, ToolCall, Usage
from tether.surfaces.server.agui import (
    CONTENT_TYPE,
    AguiAnswer,
    AguiDecision,
    AguiInputError,
    AguiMessage,
    AguiTranslator,
    check_pending,
    encode,
    parse_input,
    reject,
)

SID = "thread-1"
ANY_EVENT: TypeAdapter[Any] = TypeAdapter(AguiEvent)


def ev(
    type_: str, data: dict[str, Any], *, t: float = 1_700_000_000.0, usage: Usage | None = None
) -> Event:
    return Event(type_, SID, 1, t, data, usage)


def response(text: str = "", *calls: ToolCall, model: str = "m-1") -> Event:
    msg = Message.assistant(text, list(calls))
    return ev(
        EventType.MODEL_RESPONSE,
        {"message": msg.to_dict(), "model": model, "stop_reason": "end", "cost": 0.0},
        usage=Usage(10, 5, 2, 1),
    )


def delta(text: str) -> Event:
    return ev(EventType.MODEL_DELTA, {"text": text})


def finished(call_id: str, name: str, content: str, *, is_error: bool = False) -> Event:
    return ev(
        EventType.TOOL_FINISHED,
        {"call_id": call_id, "name": name, "content": content, "is_error": is_error},
    )


APPROVAL_DATA: dict[str, Any] = {
    "approval_id": f"{SID}.9",
    "call_id": "call_2",
    "tool": "refund",
    "arguments": {"order_id": "A1", "amount": 25, "note": {"why": "late"}},
    "args_hash": "h",
    "summary": "refund 25 on order A1",
    "explanation": "The parcel was late.",
    "mode": "user",
    "expires_at": 1_700_000_600.0,
    "tainted": ["read_email"],
    "flagged": [{"arg": "order_id", "value": "A1", "source": "read_email", "match": "exact"}],
    "warning": "WARNING: order_id = 'A1' was copied word for word from read_email.",
}


def run_all(tr: AguiTranslator, events: list[Event], **finish: Any) -> list[BaseEvent]:
    out = tr.start()
    for e in events:
        out += tr.feed(e)
    status = finish.pop("status")
    return out + tr.finish(status, **finish)


def types(events: list[BaseEvent]) -> list[str]:
    return [e.type.value for e in events]


def check_protocol(events: list[BaseEvent]) -> None:
    """Every event survives the package's own models, as objects and as the SSE text."""
    for e in events:
        dumped = e.model_dump(by_alias=True)
        assert type(e).model_validate(dumped) == e
        assert type(ANY_EVENT.validate_python(dumped)) is type(e)
    frames = encode(events).split("\n\n")
    assert frames[-1] == ""
    assert len(frames) - 1 == len(events)
    for frame, e in zip(frames, events, strict=False):
        assert frame.startswith("data: ")
        parsed = ANY_EVENT.validate_json(frame.removeprefix("data: "))
        assert parsed == e


# --- events out -----------------------------------------------------------------


def test_run_with_deltas_tool_call_result_and_approval_pause() -> None:
    lookup = ToolCall("call_1", "lookup_order", {"order_id": "A1"})
    refund = ToolCall("call_2", "refund", APPROVAL_DATA["arguments"])
    events = [
        ev(EventType.USER_MESSAGE, {"text": "refund A1"}),
        delta("Let me "),
        delta(""),  # a keep-alive: nothing
        delta("check."),
        response("Let me check.", lookup),
        ev(EventType.TOOL_STARTED, {"call_id": "call_1", "name": "lookup_order"}),
        finished("call_1", "lookup_order", "shipped, 3 days late"),
        response("", refund),
        ev(EventType.APPROVAL_REQUESTED, APPROVAL_DATA),
        ev(EventType.SESSION_STATUS, {"status": "awaiting_approval", "reason": "refund"}),
    ]
    out = run_all(AguiTranslator(SID, "run-1"), events, status="awaiting_approval")
    check_protocol(out)
    assert types(out) == [
        "RUN_STARTED",
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",
        "TOOL_CALL_START",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_END",
        "TOOL_CALL_RESULT",
        "TOOL_CALL_START",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_END",
        "STATE_SNAPSHOT",
        "RUN_FINISHED",
    ]
    started = out[0].model_dump(by_alias=True)
    assert started["threadId"] == SID
    assert started["runId"] == "run-1"
    assert started["protocolVersion"] == "1.0"
    start = out[1]
    assert isinstance(start, TextMessageStartEvent)
    assert start.message_id == "run-1:m1"
    assert start.role == "assistant"
    assert [e.delta for e in out[2:4] if isinstance(e, TextMessageContentEvent)] == [
        "Let me ",
        "check.",
    ]
    first_call, second_call = out[5], out[9]
    assert isinstance(first_call, ToolCallStartEvent)
    assert isinstance(second_call, ToolCallStartEvent)
    assert (first_call.tool_call_id, first_call.tool_call_name) == ("call_1", "lookup_order")
    assert first_call.parent_message_id == "run-1:m1"
    args = out[6]
    assert isinstance(args, ToolCallArgsEvent)
    assert json.loads(args.delta) == {"order_id": "A1"}
    result = out[8]
    assert isinstance(result, ToolCallResultEvent)
    assert (result.tool_call_id, result.content) == ("call_1", "shipped, 3 days late")
    assert result.message_id == "run-1:m2"
    assert second_call.tool_call_id == "call_2"
    assert second_call.parent_message_id == "run-1:m3"  # a message with calls and no text
    ids = [getattr(e, "message_id", None) or getattr(e, "parent_message_id", None) for e in out]
    assert sorted({i for i in ids if i}) == ["run-1:m1", "run-1:m2", "run-1:m3"]

    state = out[-2]
    assert isinstance(state, StateSnapshotEvent)
    assert state.snapshot["session_id"] == SID
    assert state.snapshot["status"] == "awaiting_approval"
    assert state.snapshot["pending_approval"]["id"] == f"{SID}.9"
    assert state.snapshot["question"] is None

    end = out[-1]
    assert isinstance(end, RunFinishedEvent)
    assert isinstance(end.outcome, RunFinishedInterruptOutcome)
    (interrupt,) = end.outcome.interrupts
    assert interrupt.id == f"approval:{SID}.9"
    assert interrupt.reason == "tool_call"
    assert interrupt.tool_call_id == "call_2"
    assert interrupt.expires_at == "2023-11-14T22:23:20Z"
    assert interrupt.message is not None
    assert "refund 25 on order A1" in interrupt.message
    assert "WARNING" in interrupt.message
    assert interrupt.response_schema is not None
    assert interrupt.response_schema["required"] == ["approved"]
    assert "editedArgs" not in interrupt.response_schema["properties"]
    assert interrupt.metadata is not None
    info = interrupt.metadata["tether"]
    assert info["kind"] == "approval"
    assert info["arguments"] == {"order_id": "A1", "amount": 25, "note": {"why": "late"}}
    assert info["tool"] == "refund"
    assert info["summary"] == "refund 25 on order A1"
    assert info["question"] == interrupt.message
    assert info["warning"] == APPROVAL_DATA["warning"]
    assert info["flagged"] == APPROVAL_DATA["flagged"]
    assert info["tainted"] == ["read_email"]
    assert info["explanation"] == "The parcel was late."
    # the wire form, as a front end reads it
    wire = json.loads(encode([end]).removeprefix("data: "))
    wired = wire["outcome"]["interrupts"][0]
    assert wired["toolCallId"] == "call_2"
    assert wired["responseSchema"]["properties"]["approved"] == {"type": "boolean"}
    assert wired["metadata"]["tether"]["arguments"]["amount"] == 25
    usage = wire["usage"][0]
    assert usage == {
        "model": "m-1",
        "inputTokens": 26,
        "outputTokens": 10,
        "totalTokens": 36,
        "cachedInputTokens": 4,
        "cacheWriteInputTokens": 2,
    }

    # the client answers the interrupt it was given: the next run decides that approval
    resume = RunAgentInput.model_validate(
        {
            "threadId": SID,
            "runId": "run-2",
            "messages": [{"id": "u1", "role": "user", "content": "refund A1"}],
            "resume": [
                {"interruptId": interrupt.id, "status": "resolved", "payload": {"approved": True}}
            ],
        }
    )
    assert parse_input(resume) == AguiDecision(
        SID, "run-2", interrupt.id, f"{SID}.9", approve=True, reason=None
    )


def test_resumed_run_answers_the_original_tool_call() -> None:
    events = [
        ev(EventType.APPROVAL_DECIDED, {"approval_id": f"{SID}.9", "approved": True, "by": "u"}),
        ev(EventType.TOOL_STARTED, {"call_id": "call_2", "name": "refund"}),
        finished("call_2", "refund", "refunded 25"),
        response("Refunded 25 on order A1."),
        ev(EventType.TURN_COMPLETED, {"output": "Refunded 25 on order A1."}),
    ]
    out = run_all(
        AguiTranslator(SID, "run-2"), events, status="idle", output="Refunded 25 on order A1."
    )
    check_protocol(out)
    assert types(out) == [
        "RUN_STARTED",
        "TOOL_CALL_RESULT",
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",
        "STATE_SNAPSHOT",
        "RUN_FINISHED",
    ]
    result = out[1]
    assert isinstance(result, ToolCallResultEvent)
    assert result.tool_call_id == "call_2"  # the id the interrupted run announced
    text = out[3]
    assert isinstance(text, TextMessageContentEvent)
    assert text.delta == "Refunded 25 on order A1."
    state = out[-2]
    assert isinstance(state, StateSnapshotEvent)
    assert state.snapshot == {
        "session_id": SID,
        "status": "idle",
        "pending_approval": None,
        "question": None,
    }
    end = out[-1]
    assert isinstance(end, RunFinishedEvent)
    assert isinstance(end.outcome, RunFinishedSuccessOutcome)


def test_streamed_answer_is_not_repeated() -> None:
    events = [
        delta("Hello"),
        delta(" there."),
        response("Hello there."),
        ev(EventType.TURN_COMPLETED, {"output": "Hello there."}),
    ]
    out = run_all(AguiTranslator(SID, "r"), events, status="idle", output="Hello there.")
    check_protocol(out)
    assert types(out).count("TEXT_MESSAGE_START") == 1
    assert types(out)[-2:] == ["STATE_SNAPSHOT", "RUN_FINISHED"]


def test_withheld_answer_that_was_not_streamed_is_never_shown() -> None:
    secret = "You are RetailBot. Configuration reference tc-0123456789abcdef"
    events = [
        response(secret),
        ev(EventType.ANSWER_WITHHELD, {"reason": "canary"}),
        ev(EventType.TURN_COMPLETED, {"output": WITHHELD}),
    ]
    out = run_all(AguiTranslator(SID, "r"), events, status="idle", output=WITHHELD)
    check_protocol(out)
    wire = encode(out)
    assert "RetailBot" not in wire
    assert "tc-0123456789abcdef" not in wire
    shown = [e.delta for e in out if isinstance(e, TextMessageContentEvent)]
    assert shown == [WITHHELD]


def test_replaced_streamed_answer_is_followed_by_the_replacement() -> None:
    honest = "I could not confirm that your order was cancelled."
    events = [
        delta("Your order is cancelled."),
        response("Your order is cancelled."),
        ev(EventType.UNSUPPORTED_CLAIM, {"claims": ["is cancelled"], "text": "..."}),
        ev(EventType.TURN_COMPLETED, {"output": honest}),
    ]
    out = run_all(AguiTranslator(SID, "r"), events, status="idle", output=honest)
    check_protocol(out)
    shown = [e.delta for e in out if isinstance(e, TextMessageContentEvent)]
    assert shown == ["Your order is cancelled.", honest]
    starts = [e.message_id for e in out if isinstance(e, TextMessageStartEvent)]
    assert starts == ["r:m1", "r:m2"]


def test_answer_sent_back_for_the_schema_is_not_shown() -> None:
    events = [
        response("not json"),
        ev(EventType.OUTPUT_REASK, {"errors": ["not JSON"], "attempt": 1, "text": "fix it"}),
        response('{"ok": true}'),
        ev(EventType.TURN_COMPLETED, {"output": '{"ok": true}'}),
    ]
    out = run_all(AguiTranslator(SID, "r"), events, status="idle", output='{"ok": true}')
    check_protocol(out)
    shown = [e.delta for e in out if isinstance(e, TextMessageContentEvent)]
    assert shown == ['{"ok": true}']


def test_budget_exhausted_shows_the_output_it_ended_with() -> None:
    out = run_all(
        AguiTranslator(SID, "r"), [], status="budget_exhausted", output="Partial. Budget spent."
    )
    check_protocol(out)
    assert [e.delta for e in out if isinstance(e, TextMessageContentEvent)] == [
        "Partial. Budget spent."
    ]
    assert isinstance(out[-1], RunFinishedEvent)


def test_clarify_pauses_with_an_input_required_interrupt() -> None:
    clarify = ToolCall("call_9", "clarify", {"question": "Which order?"})
    events = [
        response("", clarify),
        ev(EventType.CLARIFY_ASKED, {"call_id": "call_9", "question": "Which order?"}),
    ]
    out = run_all(AguiTranslator(SID, "r"), events, status="awaiting_user", question="Which order?")
    check_protocol(out)
    assert types(out)[-2:] == ["STATE_SNAPSHOT", "RUN_FINISHED"]
    state = out[-2]
    assert isinstance(state, StateSnapshotEvent)
    assert state.snapshot["question"] == {"call_id": "call_9", "question": "Which order?"}
    end = out[-1]
    assert isinstance(end, RunFinishedEvent)
    assert isinstance(end.outcome, RunFinishedInterruptOutcome)
    (interrupt,) = end.outcome.interrupts
    assert interrupt.id == "clarify:call_9"
    assert interrupt.reason == "input_required"
    assert interrupt.tool_call_id == "call_9"
    assert interrupt.message == "Which order?"
    assert interrupt.response_schema is not None
    assert interrupt.response_schema["required"] == ["answer"]


def test_operator_approval_passed_to_finish_has_its_own_reason() -> None:
    approval = PendingApproval.from_event(SID, APPROVAL_DATA | {"mode": "operator"})
    out = run_all(AguiTranslator(SID, "r"), [], status="awaiting_approval", approval=approval)
    check_protocol(out)
    end = out[-1]
    assert isinstance(end, RunFinishedEvent)
    assert isinstance(end.outcome, RunFinishedInterruptOutcome)
    assert end.outcome.interrupts[0].reason == "tether:operator_review"
    assert end.outcome.interrupts[0].metadata is not None
    assert end.outcome.interrupts[0].metadata["tether"]["mode"] == "operator"


def test_failure_ends_with_a_one_line_error_and_closes_the_open_message() -> None:
    error = (
        "the model refused the request: bad input\n"
        "Traceback (most recent call last):\n  File \"x.py\", line 1\nKeyError: 'k'"
    )
    out = run_all(AguiTranslator(SID, "r"), [delta("Half an ans")], status="failed", error=error)
    check_protocol(out)
    assert types(out) == [
        "RUN_STARTED",
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",
        "STATE_SNAPSHOT",
        "RUN_ERROR",
    ]
    err = out[-1]
    assert isinstance(err, RunErrorEvent)
    assert err.message == "the model refused the request: bad input"
    assert err.code == "failed"
    assert "Traceback" not in encode(out)


def test_unknown_status_and_paused_without_details_are_errors() -> None:
    out = run_all(AguiTranslator(SID, "r"), [], status="running")
    check_protocol(out)
    assert isinstance(out[-1], RunErrorEvent)
    assert out[-1].code == "interrupted"
    out = run_all(AguiTranslator(SID, "r"), [], status="awaiting_approval")
    check_protocol(out)
    assert isinstance(out[-1], RunErrorEvent)  # never a success while something waits


def test_repeated_call_ids_get_unique_ids_within_the_run() -> None:
    call = ToolCall("call_0", "lookup", {"q": 1})
    events = [
        response("", call),
        finished("call_0", "lookup", "one"),
        response("", call),
        finished("call_0", "lookup", "two", is_error=True),
        ev(EventType.TURN_COMPLETED, {"output": "done"}),
    ]
    out = run_all(AguiTranslator(SID, "r"), events, status="idle")
    check_protocol(out)
    starts = [e.tool_call_id for e in out if isinstance(e, ToolCallStartEvent)]
    results = [(e.tool_call_id, e.metadata) for e in out if isinstance(e, ToolCallResultEvent)]
    assert starts == ["call_0", "call_0#2"]
    assert results == [("call_0", None), ("call_0#2", {"tether": {"is_error": True}})]


def test_start_and_finish_happen_once() -> None:
    tr = AguiTranslator(SID, "r")
    assert types(tr.feed(delta("x"))) == [
        "RUN_STARTED",
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
    ]
    assert tr.start() == []
    assert types(tr.finish("idle"))[-1] == "RUN_FINISHED"
    assert tr.finish("idle") == []
    assert tr.feed(delta("late")) == []


def test_encode_and_reject() -> None:
    events = reject("threadId is not valid\nline two")
    check_protocol(events)
    text = encode(events)
    assert CONTENT_TYPE == "text/event-stream"
    body = '{"type":"RUN_ERROR","message":"threadId is not valid line two","code":"invalid_input"}'
    assert text == f"data: {body}\n\n"


# --- input -------------------------------------------------------------------------


def agui_input(**fields: Any) -> RunAgentInput:
    """A RunAgentInput as a client sends it (camelCase JSON)."""
    body: dict[str, Any] = {
        "threadId": SID,
        "runId": "run-2",
        "messages": [
            {"id": "u1", "role": "user", "content": "hi"},
            {"id": "a1", "role": "assistant", "content": "Hello!"},
            {"id": "u2", "role": "user", "content": "refund order A1"},
        ],
        "tools": [{"name": "frontend_tool", "description": "ignored"}],
        "context": [],
        "state": {},
        "forwardedProps": {},
    }
    body.update(fields)
    return RunAgentInput.model_validate(body)


def resume_entry(
    interrupt_id: str, payload: Any = None, status: str = "resolved"
) -> dict[str, Any]:
    entry: dict[str, Any] = {"interruptId": interrupt_id, "status": status}
    if payload is not None:
        entry["payload"] = payload
    return entry


def test_parse_new_message() -> None:
    run = agui_input(
        context=[
            {"description": "plan", "value": "gold"},
            {"description": "plan", "value": "annual"},
        ]
    )
    assert parse_input(run) == AguiMessage(
        SID, "run-2", "refund order A1", {"plan": "gold", "plan (2)": "annual"}
    )
    parts = agui_input(
        messages=[
            {
                "id": "u1",
                "role": "user",
                "content": [{"type": "text", "text": "line one"}, {"type": "text", "text": "two"}],
            }
        ]
    )
    request = parse_input(parts)
    assert isinstance(request, AguiMessage)
    assert request.text == "line one\ntwo"


def test_parse_approval_resume() -> None:
    iid = f"approval:{SID}.9"
    run = agui_input(resume=[resume_entry(iid, {"approved": False, "reason": "  wrong amount "})])
    assert parse_input(run) == AguiDecision(
        SID, "run-2", iid, f"{SID}.9", approve=False, reason="wrong amount"
    )
    cancelled = parse_input(agui_input(resume=[resume_entry(iid, status="cancelled")]))
    assert isinstance(cancelled, AguiDecision)
    assert (cancelled.approve, cancelled.cancelled) == (False, True)
    assert cancelled.reason
    # an entry for an interrupt this server never raised is left aside, and reported
    other = parse_input(
        agui_input(resume=[resume_entry("lg-7", {"x": 1}), resume_entry(iid, {"approved": True})])
    )
    assert isinstance(other, AguiDecision)
    assert other.approve is True
    assert other.ignored == ("lg-7",)


def test_parse_clarify_resume() -> None:
    iid = "clarify:call_9"
    answer = parse_input(agui_input(resume=[resume_entry(iid, {"answer": "A1"})]))
    assert answer == AguiAnswer(SID, "run-2", iid, "call_9", "A1")
    bare = parse_input(agui_input(resume=[resume_entry(iid, "the blue one")]))
    assert isinstance(bare, AguiAnswer)
    assert bare.text == "the blue one"
    dropped = parse_input(agui_input(resume=[resume_entry(iid, status="cancelled")]))
    assert isinstance(dropped, AguiAnswer)
    assert dropped.cancelled
    assert dropped.text


APPROVAL_ID = f"approval:{SID}.9"


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"messages": []}, "messages is empty"),
        (
            {
                "messages": [
                    {"id": "u1", "role": "user", "content": "x"},
                    {"id": "a", "role": "assistant", "content": "y"},
                ]
            },
            "'assistant' message",
        ),
        ({"messages": [{"id": "u1", "role": "user", "content": "   "}]}, "empty"),
        (
            {
                "messages": [
                    {
                        "id": "u1",
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "what is this?"},
                            {
                                "type": "image",
                                "source": {"type": "url", "value": "https://x/y.png"},
                            },
                        ],
                    }
                ]
            },
            "'image' part",
        ),
        ({"messages": [{"id": "u1", "role": "user", "content": "x" * 100_001}]}, "limit"),
        ({"threadId": "../etc/passwd"}, "threadId"),
        ({"threadId": "t" * 256}, "threadId"),
        ({"runId": "  "}, "runId"),
        ({"resume": [resume_entry(APPROVAL_ID, {"approved": "yes"})]}, "true or false"),
        ({"resume": [resume_entry(APPROVAL_ID)]}, "payload"),
        ({"resume": [resume_entry(APPROVAL_ID, {"approve": True})]}, "unknown fields"),
        (
            {
                "resume": [
                    resume_entry(APPROVAL_ID, {"approved": True, "editedArgs": {"amount": 1}})
                ]
            },
            "editedArgs",
        ),
        ({"resume": [resume_entry(APPROVAL_ID, {"approved": True, "reason": 3})]}, "string"),
        (
            {
                "resume": [
                    resume_entry(APPROVAL_ID, {"approved": True}),
                    resume_entry("clarify:c", "x"),
                ]
            },
            "one at a time",
        ),
        (
            {
                "resume": [
                    resume_entry(APPROVAL_ID, {"approved": True}),
                    resume_entry(APPROVAL_ID, {"approved": False}),
                ]
            },
            "twice",
        ),
        ({"resume": [resume_entry("int-abc", {"approved": True})]}, "approval:<id>"),
        ({"resume": [resume_entry("approval:", {"approved": True})]}, "approval:<id>"),
        ({"resume": [resume_entry("clarify:call_9", {"answer": ""})]}, "answer"),
        ({"resume": [resume_entry("clarify:call_9", {"answer": "a", "extra": 1})]}, "unknown"),
    ],
)
def test_parse_rejects_what_cannot_run(fields: dict[str, Any], says: str) -> None:
    with pytest.raises(AguiInputError) as info:
        parse_input(agui_input(**fields))
    assert says in str(info.value)
    assert isinstance(info.value, ValueError)


def test_check_pending() -> None:
    message = AguiMessage(SID, "r", "yes")
    decision = AguiDecision(SID, "r", f"approval:{SID}.9", f"{SID}.9", approve=True, reason=None)
    answer = AguiAnswer(SID, "r", "clarify:call_9", "call_9", "A1")
    check_pending(message, status="idle")
    check_pending(decision, status="awaiting_approval", approval_id=f"{SID}.9")
    check_pending(answer, status="awaiting_user", clarify_call_id="call_9")
    with pytest.raises(AguiInputError, match="waits for a decision"):
        check_pending(message, status="awaiting_approval", approval_id=f"{SID}.9")
    with pytest.raises(AguiInputError, match="not open"):
        check_pending(decision, status="awaiting_approval", approval_id=f"{SID}.12")
    with pytest.raises(AguiInputError, match="answer to the agent's question"):
        check_pending(decision, status="awaiting_user")
    with pytest.raises(AguiInputError, match="not open"):
        check_pending(answer, status="awaiting_user", clarify_call_id="call_10")
    with pytest.raises(AguiInputError, match="no longer open"):
        check_pending(decision, status="idle")
