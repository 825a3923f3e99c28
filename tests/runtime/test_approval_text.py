"""What a person is asked to approve: every argument that matters, and nothing that can pose.

Each test fails if the question could hide an argument (a ``bcc``, a second
recipient, a long tail), if a value could read as part of the sentence, or
if a character the terminal obeys or does not draw reached the text raw.
"""

from __future__ import annotations

from typing import Any

import pytest

import tether
from tether import Agent, Runtime
from tether.runtime import SessionStatus
from tether.runtime.approvals import (
    ApprovalText,
    PendingApproval,
    describe,
    reveal,
    show_value,
    summarize,
)
from tether.spec.approval import ApprovalPolicy
from tether.spec.tools import Tool
from tether.testing import ScriptedModel, call

SENT: list[dict[str, Any]] = []


@tether.tool(external_comms=True, summary='send the email "{subject}" to {to}')
def send_email(
    to: str,
    subject: str,
    body: str = "",
    bcc: str | None = None,
    cc: list[str] | None = None,
    priority: int = 1,
) -> str:
    """Send an email.

    Args:
        to: The recipient.
        subject: The subject line.
        body: The text.
        bcc: A hidden recipient.
        cc: More recipients.
        priority: 1 (normal) to 3.
    """
    SENT.append({"to": to, "bcc": bcc})
    return "sent"


@tether.tool(high_stakes=True, summary="refund {amount:.2f} USD on order {order_id}")
def refund(order_id: str, amount: float) -> str:
    """Refund part of an order.

    Args:
        order_id: The order id.
        amount: USD.
    """
    return "refunded"


@tether.tool(writes=True, summary="cancel order {order_id}")
def cancel_order(order_id: str) -> str:
    """Cancel an order.

    Args:
        order_id: The order id.
    """
    return "cancelled"


@tether.tool(external_comms=True, summary="post to {url}")
def post(url: str, payload: dict[str, Any], recipients: list[str] | None = None) -> str:
    """Post a payload.

    Args:
        url: Where.
        payload: What.
        recipients: Who is told.
    """
    return "posted"


def with_template(tool: Tool, template: str) -> Tool:
    from dataclasses import replace

    return replace(tool, summary=template)


# --- every character class a terminal obeys or hides, shown as an escape -----------

ESCAPES = [
    ("\x1b[2K", "\\x1b[2K"),  # erase the line
    ("\x1b[8m", "\\x1b[8m"),  # concealed text
    ("\x1b[1A", "\\x1b[1A"),  # cursor up
    ("\x1b]8;;https://evil.example\x1b\\", "\\x1b]8;;https://evil.example\\x1b\\\\"),  # OSC 8
    ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),  # window title
    ("\x08\x7f", "\\x08\\x7f"),  # backspace, DEL
    ("\r", "\\r"),
    ("\n", "\\n"),
    ("\t", "\\t"),
    ("\x9b31m", "\\x9b31m"),  # C1 CSI
    ("\x85", "\\x85"),  # C1 next line
    ("\u202a", "\\u202a"),
    ("\u202b", "\\u202b"),
    ("\u202c", "\\u202c"),
    ("\u202d", "\\u202d"),
    ("\u202e", "\\u202e"),  # right-to-left override
    ("\u2066", "\\u2066"),
    ("\u2067", "\\u2067"),
    ("\u2068", "\\u2068"),
    ("\u2069", "\\u2069"),
    ("\u200b", "\\u200b"),  # zero-width space
    ("\u200c", "\\u200c"),
    ("\u200d", "\\u200d"),
    ("\u200e", "\\u200e"),
    ("\u200f", "\\u200f"),
    ("\u2060", "\\u2060"),
    ("\u2061", "\\u2061"),
    ("\u2062", "\\u2062"),
    ("\u2063", "\\u2063"),
    ("\u2064", "\\u2064"),
    ("\ufeff", "\\ufeff"),
    ("\u00ad", "\\xad"),  # soft hyphen
    ("\u180e", "\\u180e"),
    ("\u2028", "\\u2028"),  # line separator
    ("\u2029", "\\u2029"),  # paragraph separator
    ("\u3164", "\\u3164"),  # a letter that draws as a blank
    ("\U000e0041", "\\U000e0041"),  # a tag character
]


@pytest.mark.parametrize(("raw", "shown"), ESCAPES)
def test_a_hidden_character_in_a_value_is_shown_as_an_escape(raw: str, shown: str) -> None:
    text = summarize(cancel_order, call("cancel_order", order_id=f"#W1{raw}-ALL"))
    assert text == f"cancel order '#W1{shown}-ALL'"
    assert raw not in text


@pytest.mark.parametrize(("raw", "shown"), ESCAPES)
def test_reveal_shows_each_class_and_keeps_only_what_it_is_told(raw: str, shown: str) -> None:
    # a backslash is the text's own (only a quoted value doubles it)
    assert reveal(f"a{raw}b", keep="") == f"a{shown}b".replace("\\\\", "\\")
    if raw in "\t\n":
        assert reveal(f"a{raw}b") == f"a{raw}b"  # kept by default in long text


def test_reveal_leaves_ordinary_text_alone() -> None:
    text = "Déjà vu — 用户 ☃ O'Brien \\ [bold] 10 € «ok»"
    assert reveal(text, keep="") == text


# --- the sentence, and every argument it leaves out ---------------------------------


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        # a value posing as sentence text stays one quoted value
        (
            send_email,
            {"to": "bob@x.com. Also approved: nothing", "subject": "Hi"},
            "send the email 'Hi' to 'bob@x.com. Also approved: nothing'",
        ),
        # the template's own quotes are not doubled
        (
            send_email,
            {"to": "a@x.com", "subject": 'say "hi"'},
            "send the email 'say \"hi\"' to 'a@x.com'",
        ),
        (
            send_email,
            {"to": "a@x.com", "subject": "O'Brien"},
            "send the email \"O'Brien\" to 'a@x.com'",
        ),
        # the hidden recipient is always shown
        (
            send_email,
            {"to": "a@x.com", "subject": "Hi", "bcc": "x@evil.example"},
            "send the email 'Hi' to 'a@x.com'; also: bcc='x@evil.example'",
        ),
        # arguments at their default (given or not) are not listed; all others are, by name
        (
            send_email,
            {"to": "a@x.com", "subject": "Hi", "body": "", "bcc": None, "priority": 1},
            "send the email 'Hi' to 'a@x.com'",
        ),
        (
            send_email,
            {"to": "a@x.com", "subject": "Hi", "priority": 3, "cc": ["b@x.com", "c@evil.example"]},
            "send the email 'Hi' to 'a@x.com'; also: cc=['b@x.com', 'c@evil.example'], priority=3",
        ),
        # True is not the default 1, though they compare equal in Python
        (
            send_email,
            {"to": "a@x.com", "subject": "Hi", "priority": True},
            "send the email 'Hi' to 'a@x.com'; also: priority=True",
        ),
        # nested arguments: written out whole, keys quoted
        (
            post,
            {
                "url": "https://shop.example/hook",
                "payload": {"amount": 5, "note": "[bold red]hi[/]"},
                "recipients": ["a", "b\u202e"],
            },
            "post to 'https://shop.example/hook'; also: "
            "payload={'amount': 5, 'note': '[bold red]hi[/]'}, recipients=['a', 'b\\u202e']",
        ),
        # numbers keep their format when it is exact, else show the exact value
        (refund, {"order_id": "#W1", "amount": 40.0}, "refund 40.00 USD on order '#W1'"),
        (refund, {"order_id": "#W1", "amount": 40.005}, "refund 40.005 USD on order '#W1'"),
        (refund, {"order_id": "#W1", "amount": 12}, "refund 12.00 USD on order '#W1'"),
        # a run of spaces cannot push the rest of a value out of sight
        (
            cancel_order,
            {"order_id": "#W1" + " " * 40 + "and every other order"},
            "cancel order '#W1\\[40 spaces]and every other order'",
        ),
        # three spaces are ordinary text
        (cancel_order, {"order_id": "#W1   x"}, "cancel order '#W1   x'"),
        # a backslash cannot forge an escape
        (cancel_order, {"order_id": "#W1\\u202e"}, "cancel order '#W1\\\\u202e'"),
    ],
)
def test_the_question_shows_every_argument_not_at_its_default(
    tool: Tool, arguments: dict[str, Any], expected: str
) -> None:
    assert summarize(tool, call(tool.name, **arguments)) == expected


@pytest.mark.parametrize(
    "template",
    [
        "send to {to.__class__}",  # attribute access
        "send to {to.__class__.__init__.__globals__}",
        "send to {to[0]}",  # index access
        "send to {cc[0]}",
        "send to {0}",  # positional
        "send to {}",
        "send to {missing}",  # a name the call left out
        "send {subject:.2f} to {to}",  # a spec the value does not take
        "send {subject:{to}} to {to}",  # a nested field
        "send {subject!x}",  # an unknown conversion
        "send to {to",  # a broken template
        "send to to}",
    ],
)
def test_a_template_that_cannot_be_filled_falls_back_to_the_whole_call(template: str) -> None:
    tool = with_template(send_email, template)
    text = describe(tool, call("send_email", to="a@x.com", subject="Hi", cc=["b@x.com"]))
    assert text == ApprovalText("run send_email(to='a@x.com', subject='Hi', cc=['b@x.com'])")
    assert str(text) == "run send_email(to='a@x.com', subject='Hi', cc=['b@x.com'])"
    assert "class" not in str(text)


def test_a_missing_amount_shows_the_whole_call_never_less() -> None:
    assert summarize(refund, call("refund", order_id="#W1")) == "run refund(order_id='#W1')"
    assert (
        summarize(refund, call("refund", order_id="#W1", amount="all"))
        == "run refund(order_id='#W1', amount='all')"
    )


def test_a_tool_without_a_template_shows_the_call_with_hostile_names_quoted() -> None:
    bare = with_template(cancel_order, "")
    text = summarize(bare, call("cancel_order", **{"order_id": "#W1", "x\u202e y": "[/]"}))
    assert text == "run cancel_order(order_id='#W1', 'x\\u202e y'='[/]')"


def test_describe_keeps_the_parts_apart() -> None:
    text = describe(send_email, call("send_email", to="a@x.com", subject="Hi", bcc="x@evil.com"))
    assert text.sentence == "send the email 'Hi' to 'a@x.com'"
    assert text.rest == (("bcc", "'x@evil.com'"),)
    assert text.from_template


# --- long values are cut visibly, never silently -------------------------------------


def test_a_long_value_shows_head_and_tail_and_how_much_is_left_out() -> None:
    value = "A" * 180 + "m" * 640 + "Z" * 80
    text = summarize(cancel_order, call("cancel_order", order_id=value))
    assert text == (f"cancel order '{'A' * 180}' [... 640 characters ...] '{'Z' * 80}'")
    # 300 characters is not long
    assert summarize(cancel_order, call("cancel_order", order_id="b" * 300)) == (
        f"cancel order '{'b' * 300}'"
    )


def test_a_long_list_is_cut_between_escapes_not_inside_one() -> None:
    value = ["\u202e"] * 400
    shown = show_value(value)
    assert "[... " in shown
    assert " characters ...]" in shown
    head, _, tail = shown.partition(" [... ")
    # the cut falls after a whole element, never inside "\u202e"
    assert head.endswith(("'", ",", " ", "["))
    assert tail.rstrip("]").endswith("'\\u202e'")
    assert "\u202e" not in shown


async def test_the_exact_arguments_stay_available_and_the_model_is_told_everything() -> None:
    SENT.clear()
    long_body = "x" * 1000
    model = ScriptedModel(
        [
            call(
                "send_email",
                to="bob@x.com",
                subject="Hi",
                bcc="spy@evil.example",
                body=long_body,
            ),
            "I did not send it.",
        ]
    )
    agent = Agent(
        name="mailer",
        instructions="Help.",
        models=(model,),
        tools=(send_email,),
        approval=ApprovalPolicy(),
    )
    async with Runtime() as rt:
        asked = await rt.run(agent, "email bob")
        assert asked.status == SessionStatus.AWAITING_APPROVAL
        pending = asked.approval
        assert pending is not None
        assert pending.arguments["body"] == long_body  # exact, not cut
        assert pending.summary == (
            "send the email 'Hi' to 'bob@x.com'; also: "
            f"bcc='spy@evil.example', body='{'x' * 180}' [... 740 characters ...] '{'x' * 80}'"
        )
        assert asked.output == f"Please confirm: {pending.summary}. Reply yes or no."
        await rt.decide(agent, asked.session_id, pending.id, approve=False, by="ada")
    told = model.requests[1].messages[-1].results[0].content
    assert "bcc='spy@evil.example'" in told
    assert SENT == []


# --- the pending approval: untrusted provenance and its warning ----------------------


def event_data(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "approval_id": "s.7",
        "call_id": "c1",
        "tool": "send_email",
        "arguments": {"to": "attacker@evil.example", "subject": "list"},
        "args_hash": "h",
        "summary": "send the email 'list' to 'attacker@evil.example'",
        "explanation": "",
        "mode": "user",
        "expires_at": 100.0,
    }
    data.update(extra)
    return data


def test_an_old_event_loads_with_nothing_flagged() -> None:
    pending = PendingApproval.from_event("s", event_data())
    assert (pending.flagged, pending.tainted, pending.warning) == ((), (), "")
    assert pending.question() == (
        "Please confirm: send the email 'list' to 'attacker@evil.example'. Reply yes or no."
    )


FLAG = {"arg": "to", "value": "attacker@evil.example", "source": "read_inbox", "match": "exact"}
WARNING = (
    "WARNING: 'attacker@evil.example' (to) was copied from read_inbox: check it was not planted"
)


def test_flagged_values_and_the_warning_are_read_and_asked() -> None:
    pending = PendingApproval.from_event(
        "s", event_data(flagged=[FLAG], tainted=["read_inbox"], warning=WARNING)
    )
    assert pending.flagged == (FLAG,)
    assert pending.tainted == ("read_inbox",)
    assert pending.warning == WARNING
    assert pending.question() == (
        "Please confirm: send the email 'list' to 'attacker@evil.example'. "
        f"{WARNING}. Reply yes or no."
    )
    operator = PendingApproval.from_event("s", event_data(mode="operator", warning=WARNING))
    assert operator.question() == (
        "This action is waiting for review by an operator: send the email 'list' to "
        f"'attacker@evil.example'. {WARNING}."
    )


def test_a_summary_repeating_the_warning_cannot_remove_it() -> None:
    # an argument (shown in the summary) may repeat the warning's words: the
    # runtime's own warning is still said, after the summary
    data = event_data(warning=WARNING)
    data["summary"] = f"{data['summary']}. {WARNING}"
    question = PendingApproval.from_event("s", data).question()
    assert question.count(WARNING) == 2
    assert question.removesuffix(" Reply yes or no.").endswith(f"{WARNING}.")
