"""A stored session into an eval case: the events read, and the case file appended to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tether.exceptions import ConfigError
from tether.spec.events import Event, EventType
from tether.surfaces.evals import load_suite, parse_cases
from tether.surfaces.evals.capture import TODO, append_case, case_from_events, case_yaml

SID = "0123456789abcdef0123"


class Log:
    """Builds a session's events, one second apart."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, type_: str, **data: Any) -> Log:
        self.events.append(Event(type_, SID, 0, 1000.0 + len(self.events), data))
        return self

    def answer(self, text: str = "", *calls: tuple[str, dict[str, Any]]) -> Log:
        tool_calls = [{"id": f"c{i}", "name": n, "arguments": a} for i, (n, a) in enumerate(calls)]
        message = {"role": "assistant", "text": text, "tool_calls": tool_calls}
        return self.add(EventType.MODEL_RESPONSE, message=message, model="m", cost=0.0)


def test_turns_answers_approvals_and_the_observed_trajectory() -> None:
    log = (
        Log()
        .add(EventType.SESSION_CREATED, agent="shop", version="3", user_id="ava", tenant_id=None)
        .add(EventType.USER_MESSAGE, text="Cancel #W1")
        .add(EventType.MODEL_RETRY, model="m", attempt=1, reason="HTTP 429", delay=1.0, error="x")
        .add(EventType.MODEL_RETRY, model="m", attempt=2, reason="timeout", delay=1.0, error="x")
        .answer("", ("get_order", {"order_id": "#W1"}))
        .add(EventType.TOOL_STARTED, call_id="c0", name="get_order", arguments={"order_id": "#W1"})
        .answer("Cancelling.", ("cancel_order", {"order_id": "#W1"}))
        .add(
            EventType.APPROVAL_REQUESTED,
            approval_id="a1",
            tool="cancel_order",
            mode="user",
            expires_at=1900.0,
        )
        .add(EventType.APPROVAL_DECIDED, approval_id="a1", approved=True, by="user")
        .add(EventType.TOOL_STARTED, call_id="c0", name="cancel_order", arguments={})
        .answer("Done.")
        .add(EventType.USER_MESSAGE, text="And #W2 and #W3?")
        .answer("", ("get_order", {"order_id": "#W2"}), ("get_order", {"order_id": "#W3"}))
        .add(EventType.TOOL_STARTED, call_id="c0", name="get_order", arguments={})
        .add(EventType.TOOL_STARTED, call_id="c1", name="get_order", arguments={})
        .answer("Both are shipped.")
    )
    case = case_from_events(log.events)
    assert case["id"] == "captured-0123456789ab"
    assert case["tags"] == ["captured"]
    assert case["mode"] == "scripted"
    assert case["user_id"] == "ava"
    assert case["source"] == f"session {SID}"
    assert case["description"].startswith(f"Captured from session {SID} (shop v3, 1970-01-01")
    first, second = case["conversation"]
    assert first == {
        "user": "Cancel #W1",
        "model": [
            {"error": 429},  # the retried HTTP error is replayed; a timeout cannot be
            {"tool": "get_order", "args": {"order_id": "#W1"}},
            {"text": "Cancelling.", "tool": "cancel_order", "args": {"order_id": "#W1"}},
            {"text": "Done."},
        ],
        "approvals": ["yes"],
    }
    # two calls in one answer are played as two answers, in the same order
    assert second == {
        "user": "And #W2 and #W3?",
        "model": [
            {"tool": "get_order", "args": {"order_id": "#W2"}},
            {"tool": "get_order", "args": {"order_id": "#W3"}},
            {"text": "Both are shipped."},
        ],
    }
    assert case["expect"] == [
        {
            "tool-sequence": {
                "tools": ["get_order", "cancel_order", "get_order", "get_order"],
                "mode": "exact",
            }
        },
        {"asked-approval-before": "cancel_order"},
    ]
    (parsed,) = parse_cases(case, source="captured")  # it is a valid case as it stands
    assert parsed.conversation[0].approvals[0].approve is True


def test_replies_that_are_turns_of_their_own_and_late_or_operator_decisions() -> None:
    log = (
        Log()
        .add(EventType.USER_MESSAGE, text="Cancel #W1")
        .answer("", ("clarify", {"question": "Cancel or return?"}))
        .add(EventType.CLARIFY_ASKED, call_id="c0", question="Cancel or return?")
        # the answer to a clarify question arrives as the call's result
        .add(
            EventType.TOOL_FINISHED,
            call_id="c0",
            name="clarify",
            content="The user answered: cancel it",
            is_error=False,
        )
        .answer("", ("cancel_order", {"order_id": "#W1"}))
        .add(
            EventType.APPROVAL_REQUESTED,
            approval_id="a1",
            tool="cancel_order",
            mode="user",
            expires_at=1005.0 + 900,  # requested at 1005 s, for 15 minutes
        )
        .add(EventType.APPROVAL_REASKED, text="hmm, is it refunded?")
        .add(EventType.APPROVAL_EXPIRED, approval_id="a1", by="user")
        .answer("The request expired.")
        .add(EventType.USER_MESSAGE, text="Return #W2")
        .add(EventType.MODEL_RETRY, model="m", attempt=1, reason="HTTP 503", delay=1.0, error="x")
        .add(EventType.MODEL_FALLBACK, **{"from": "m", "to": "backup", "reason": "HTTP 503"})
        .answer("", ("return_order", {"order_id": "#W2"}))
        .add(
            EventType.APPROVAL_REQUESTED,
            approval_id="a2",
            tool="return_order",
            mode="operator",
            expires_at=5000.0,
        )
        .add(EventType.APPROVAL_DECIDED, approval_id="a2", approved=False, by="olga")
        .answer("Not done.")
    )
    turns = case_from_events(log.events)["conversation"]
    assert [t["user"] for t in turns] == [
        "Cancel #W1",
        "cancel it",
        "hmm, is it refunded?",
        "Return #W2",
    ]
    assert turns[0]["model"] == [{"tool": "clarify", "args": {"question": "Cancel or return?"}}]
    # decided past its expiry: replayed just as late (at least a second past the expiry)
    assert turns[2]["approvals"] == [{"approve": True, "after_s": 901.0}]
    # the fallback's answer came straight away: the 503 is not replayed to the one script
    assert turns[3]["model"][0] == {"tool": "return_order", "args": {"order_id": "#W2"}}
    assert turns[3]["approvals"] == [{"approve": False, "roles": ["approver"]}]
    parse_cases(case_from_events(log.events), source="captured")


def test_a_session_without_a_user_message_cannot_be_captured() -> None:
    log = Log().add(EventType.SESSION_CREATED, agent="a", version="1")
    with pytest.raises(ConfigError, match="no user message"):
        case_from_events(log.events)


def captured(cid: str = "captured-1") -> dict[str, Any]:
    return {
        "id": cid,
        "tags": ["captured"],
        "conversation": [{"user": "hi", "model": [{"text": "hello"}]}],
        "expect": [{"tool-sequence": {"tools": [], "mode": "exact"}}],
    }


def test_the_yaml_says_what_is_left_to_do() -> None:
    text = case_yaml(captured())
    assert f"{TODO}\nexpect:\n" in text
    assert yaml.safe_load(text) == captured()


EXISTING = """\
# Our golden set: keep this comment.
defaults:
  state: {shop: demo}
cases:
  - id: old-one  # and this one
    conversation:
      - user: hello
        model: [{text: hi}]
"""


def test_appending_keeps_the_cases_and_comments_already_there(tmp_path: Path) -> None:
    path = tmp_path / "cases.yaml"
    path.write_text(EXISTING, encoding="utf-8")
    first = append_case(path, captured())
    again = append_case(path, captured())  # the same session twice: the id gets a suffix
    assert (first["id"], again["id"]) == ("captured-1", "captured-1-2")
    text = path.read_text(encoding="utf-8")
    assert text.startswith(EXISTING)
    assert text.count(TODO) == 2
    cases = load_suite(path).cases
    assert [c.id for c in cases] == ["old-one", "captured-1", "captured-1-2"]
    assert cases[-1].state == {"shop": "demo"}  # the file's defaults apply to it too


ONE = "conversation: [{user: x, model: [{text: y}]}]"


@pytest.mark.parametrize(
    ("name", "existing", "ids"),
    [
        ("new.yaml", None, []),
        ("commented.yaml", "# only a comment\n", []),
        ("empty-list.yaml", "cases: []\n", []),
        ("empty-block.yaml", "cases:\n", []),
        ("list.yaml", f"- id: a\n  {ONE}\n", ["a"]),
        ("one-case.yaml", f"id: a\n{ONE}\n", ["a"]),
        ("flow.yaml", f"cases: [{{id: a, {ONE}}}]\n", ["a"]),
        ("cases-not-last.yaml", f"cases:\n  - id: a\n    {ONE}\ndefaults: {{}}\n", ["a"]),
        (
            "a.jsonl",
            '{"id": "a", "conversation": [{"user": "x", "model": [{"text": "y"}]}]}',
            ["a"],
        ),
    ],
)
def test_appending_to_every_shape_of_case_file(
    tmp_path: Path, name: str, existing: str | None, ids: list[str]
) -> None:
    path = tmp_path / name
    if existing is not None:
        path.write_text(existing, encoding="utf-8")
    append_case(path, captured())
    assert [c.id for c in load_suite(path).cases] == [*ids, "captured-1"]


def test_a_file_that_would_not_load_is_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "cases.yaml"
    path.write_text(EXISTING, encoding="utf-8")
    broken = {**captured(), "expect": [{"tool-usd": "x"}]}
    with pytest.raises(ConfigError, match="captured-1"):
        append_case(path, broken)
    assert path.read_text(encoding="utf-8") == EXISTING
    with pytest.raises(ConfigError, match=r"\.yaml, \.yml or \.jsonl"):
        append_case(tmp_path / "cases.txt", captured())
