"""How `tether sessions show` words each reliability event."""

from __future__ import annotations

import pytest

from tether.spec.events import Event, EventType
from tether.surfaces.cli.render import event_summary


def ev(type_: str, **data: object) -> Event:
    return Event(type=type_, session_id="s", step=1, time=0.0, data=data, seq=1)


@pytest.mark.parametrize(
    ("event", "line"),
    [
        (
            ev(EventType.MODEL_RETRY, model="anthropic:x", attempt=1, reason="HTTP 429", delay=2.0),
            "anthropic:x: attempt 1 failed (HTTP 429); retry in 2.0 s",
        ),
        (
            ev(EventType.TOOL_RETRY, name="get_order", attempt=2, reason="timeout", delay=1.9),
            "get_order: attempt 2 failed (timeout); retry in 1.9 s",
        ),
        (
            ev(EventType.MODEL_FALLBACK, **{"from": "a", "to": "b", "reason": "a: HTTP 503"}),
            "a → b: a: HTTP 503",
        ),
        (
            ev(EventType.BREAKER_OPENED, key="tool:shop:get_order", cooldown=30.0),
            "ALERT breaker tool:shop:get_order opened for 30.0 s",
        ),
        (ev(EventType.BREAKER_CLOSED, key="model:a"), "breaker model:a closed"),
        (
            ev(
                EventType.APPROVAL_REQUESTED,
                approval_id="s.7",
                summary="cancel order #W1",
                mode="user",
            ),
            "waits for the user: cancel order #W1 [s.7]",
        ),
        (
            ev(
                EventType.APPROVAL_DECIDED, approval_id="s.7", approved=False, by="ada", reason="no"
            ),
            "denied by ada (no) [s.7]",
        ),
        (ev(EventType.APPROVAL_EXPIRED, approval_id="s.7"), "expired before anyone decided [s.7]"),
        (
            ev(EventType.OPERATOR_ALERT, tool="charge", reason="outcome unknown"),
            "ALERT charge: outcome unknown",
        ),
        (ev(EventType.CLARIFY_ASKED, question="Which order?"), "asks the user: Which order?"),
        (
            ev(EventType.UNACKNOWLEDGED_FAILURE, tools=["cancel_order"]),
            "WARNING the answer does not mention the failure of cancel_order",
        ),
        (
            ev(
                EventType.MODEL_RESPONSE,
                message={"role": "assistant", "text": "hi"},
                model="backup",
                degraded=True,
                primary="anthropic:x",
            ),
            "backup (fallback for anthropic:x): hi",
        ),
        (
            ev(
                EventType.MODEL_RESPONSE,
                message={"role": "assistant", "text": "So far: #W1 is pending."},
                model="anthropic:claude-sonnet-4-5",
                cost=0.0045,
                wrap_up="loop",
            ),
            "anthropic:claude-sonnet-4-5 (last call, no tools) $0.0045: So far: #W1 is pending.",
        ),
        (
            ev(
                EventType.CONTEXT_COMPRESSED,
                upto=8,
                model="anthropic:claude-haiku-4-5",
                tokens_before=2400,
                tokens_after=300,
            ),
            "8 older messages summarised by anthropic:claude-haiku-4-5: ~2400 → ~300 tokens",
        ),
        (
            ev(EventType.COMPRESSION_FAILED, reason="HTTP 503"),
            "context not compressed: HTTP 503",
        ),
        (
            ev(EventType.LIMIT_REACHED, limit="loop", allowed=3, count=3, tool="search"),
            "loop reached at search (call 3, allowed 3)",
        ),
        (
            ev(EventType.BUDGET_EXHAUSTED, max_tokens=1500, used=1480, partial=""),
            "token budget spent: 1480 of 1500; the session ends",
        ),
        (
            ev(EventType.RATE_LIMITED, limit="tokens_per_day", scope="user", key="ava"),
            "user ava: tokens_per_day reached",
        ),
    ],
)
def test_reliability_events_read_as_sentences(event: Event, line: str) -> None:
    assert event_summary(event) == line


def test_the_live_printer_shows_retries_and_a_degraded_answer() -> None:
    from rich.console import Console

    from tether.surfaces.cli.render import LiveTurnPrinter

    console = Console(record=True, width=200)
    printer = LiveTurnPrinter(console)
    printer(ev(EventType.MODEL_RETRY, model="anthropic:x", attempt=1, reason="HTTP 529", delay=1.0))
    printer(ev(EventType.MODEL_DELTA, text="From the backup."))
    printer(
        ev(
            EventType.MODEL_RESPONSE,
            message={"role": "assistant", "text": "From the backup."},
            model="backup",
            degraded=True,
            primary="anthropic:x",
        )
    )
    out = console.export_text()
    assert "! anthropic:x: attempt 1 failed (HTTP 529); retry in 1.0 s" in out
    assert "agent> From the backup." in out
    assert "(answered by the backup model backup: anthropic:x is unavailable)" in out


def test_the_live_printer_shows_what_the_user_must_answer() -> None:
    from rich.console import Console

    from tether.surfaces.cli.render import LiveTurnPrinter

    console = Console(record=True, width=200)
    printer = LiveTurnPrinter(console)
    printer(ev(EventType.CLARIFY_ASKED, call_id="c1", question="Which order do you mean?"))
    printer(ev(EventType.APPROVAL_REQUESTED, summary="cancel order #W1", mode="user"))
    printer(ev(EventType.APPROVAL_REASKED, text="hmm"))
    out = console.export_text()
    assert "agent> Which order do you mean?" in out
    assert "? approve: cancel order #W1 (yes/no)" in out
    assert "? please answer yes or no" in out
