"""What the CLI prints cannot be forged, hidden or restyled by the text it shows.

The real printers (the live turn printer, the approvals table, event lines,
the sessions tables, ``--json`` output, the cost page) are driven with
hostile values: escape sequences, C0 and C1 controls, bidi overrides and
isolates, zero-width and other format characters, line separators, rich
markup, a value posing as sentence text, a run of spaces. Most run on a
plain rich ``Console`` (markup and emoji on), so the escaping is the
printers' own and not only :class:`SafeConsole`'s.
"""

from __future__ import annotations

import datetime
import importlib
import io
import json
import re
from pathlib import Path
from typing import Any, Literal

import pytest
from rich.console import Console
from typer.testing import CliRunner

import tether
from tether import Agent
from tether.runtime.approvals import PendingApproval, summarize
from tether.runtime.ports import SessionRecord
from tether.spec.events import Event, EventType
from tether.spec.messages import Usage
from tether.spec.model import ModelRequest
from tether.surfaces.cli import app
from tether.surfaces.cli.render import (
    LiveTurnPrinter,
    SafeConsole,
    approvals_table,
    event_summary,
    sessions_table,
    timeline_table,
    visible,
)
from tether.testing import FunctionModel, ScriptedResponse, call

#: what must never reach a terminal raw: C0 (but tab and newline), DEL, C1, the
#: soft hyphen, zero-width and bidi format characters, separators, the BOM
FORBIDDEN = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u2069\u2028\u2029\ufeff]"
)

#: (raw, as shown in a quoted value, as shown in one line of text)
HOSTILE = [
    ("\x1b[2K", "\\x1b[2K", "\\x1b[2K"),
    ("\x1b[8m", "\\x1b[8m", "\\x1b[8m"),
    ("\x1b[1A", "\\x1b[1A", "\\x1b[1A"),
    (
        "\x1b]8;;https://x.example\x1b\\",
        "\\x1b]8;;https://x.example\\x1b\\\\",
        "\\x1b]8;;https://x.example\\x1b\\",
    ),
    ("\x1b]0;owned\x07", "\\x1b]0;owned\\x07", "\\x1b]0;owned\\x07"),
    ("\x00\x08\x7f", "\\x00\\x08\\x7f", "\\x00\\x08\\x7f"),
    ("\r", "\\r", "\\r"),
    ("\n", "\\n", "\\n"),
    ("\x9b2J", "\\x9b2J", "\\x9b2J"),
    ("\x85", "\\x85", "\\x85"),
    ("\u202a", "\\u202a", "\\u202a"),
    ("\u202b", "\\u202b", "\\u202b"),
    ("\u202c", "\\u202c", "\\u202c"),
    ("\u202d", "\\u202d", "\\u202d"),
    ("\u202e", "\\u202e", "\\u202e"),
    ("\u2066", "\\u2066", "\\u2066"),
    ("\u2067", "\\u2067", "\\u2067"),
    ("\u2068", "\\u2068", "\\u2068"),
    ("\u2069", "\\u2069", "\\u2069"),
    ("\u200b", "\\u200b", "\\u200b"),
    ("\u200c", "\\u200c", "\\u200c"),
    ("\u200d", "\\u200d", "\\u200d"),
    ("\u200e", "\\u200e", "\\u200e"),
    ("\u200f", "\\u200f", "\\u200f"),
    ("\u2060", "\\u2060", "\\u2060"),
    ("\u2064", "\\u2064", "\\u2064"),
    ("\ufeff", "\\ufeff", "\\ufeff"),
    ("\u00ad", "\\xad", "\\xad"),
    ("\u180e", "\\u180e", "\\u180e"),
    ("\u2028", "\\u2028", "\\u2028"),
    ("\u2029", "\\u2029", "\\u2029"),
]


@tether.tool(external_comms=True, summary='send the email "{subject}" to {to}')
def send_email(to: str, subject: str, body: str = "", bcc: str | None = None) -> str:
    """Send an email.

    Args:
        to: The recipient.
        subject: The subject line.
        body: The text.
        bcc: A hidden recipient.
    """
    return "sent"


def terminal(color_system: Literal["standard"] | None = None, *, safe: bool = False) -> Console:
    """A wide terminal; without colours, any escape in its output came from the text."""
    cls = SafeConsole if safe else Console
    return cls(file=io.StringIO(), force_terminal=True, width=240, color_system=color_system)


def printed(console: Console) -> str:
    out = console.file
    assert isinstance(out, io.StringIO)
    return out.getvalue()


def ev(type_: str, **data: Any) -> Event:
    return Event(type=type_, session_id="s", step=1, time=0.0, data=data, seq=1)


def requested(arguments: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """``approval.requested`` data as the runtime builds it, summary from the real tool."""
    data: dict[str, Any] = {
        "approval_id": "s.7",
        "call_id": "c1",
        "tool": "send_email",
        "arguments": arguments,
        "args_hash": "h",
        "summary": summarize(send_email, call("send_email", **arguments)),
        "explanation": "",
        "mode": "user",
        "expires_at": 0.0,
    }
    data.update(extra)
    return data


def record(**kw: Any) -> SessionRecord:
    base: dict[str, Any] = {
        "id": "s1",
        "agent": "shop",
        "agent_version": "1",
        "user_id": None,
        "status": "awaiting_approval",
        "step": 2,
        "created_at": 0.0,
        "updated_at": 0.0,
        "usage": Usage(10, 5),
        "cost": 0.0,
    }
    base.update(kw)
    return SessionRecord(**base)


# --- every class of hidden character, in every place the CLI prints ----------------


@pytest.mark.parametrize(("raw", "in_value", "in_line"), HOSTILE)
def test_the_approval_question_shows_hidden_characters_escaped(
    raw: str, in_value: str, in_line: str
) -> None:
    console = terminal()
    data = requested(
        {"to": f"bob{raw}@x.com", "subject": "Hi", "bcc": f"spy{raw}@evil.example"},
        explanation=f"Sending it{raw} now.",
        flagged=[
            {
                "arg": "bcc",
                "value": f"spy{raw}@evil.example",
                "source": "read_inbox",
                "match": "exact",
            }
        ],
        warning=f"check{raw} it",
        tainted=["read_inbox"],
    )
    LiveTurnPrinter(console)(ev(EventType.APPROVAL_REQUESTED, **data))
    shown = printed(console)
    assert FORBIDDEN.search(shown) is None, repr(shown)
    said = "Sending it now." if raw.isspace() else f"Sending it{in_line} now."  # one line
    assert shown.splitlines() == [
        f"  (the agent says: {said})",
        f"  ? approve: send the email 'Hi' to 'bob{in_value}@x.com'; "
        f"also: bcc='spy{in_value}@evil.example' (yes/no)",
        f"      ⚠ bcc='spy{in_value}@evil.example' from read_inbox (exact copy)",
        f"      ⚠ check{in_line} it",
        "      the session has read untrusted content from read_inbox",
    ]


@pytest.mark.parametrize(("raw", "in_value", "in_line"), HOSTILE)
def test_the_approvals_table_and_event_line_show_hidden_characters_escaped(
    raw: str, in_value: str, in_line: str
) -> None:
    data = requested(
        {"to": f"bob{raw}@x.com", "subject": "Hi", "bcc": "spy@evil.example"},
        flagged=[
            {"arg": "to", "value": f"bob{raw}@x.com", "source": "read_inbox", "match": "exact"}
        ],
    )
    console = terminal()
    console.print(approvals_table([PendingApproval.from_event(f"s{raw}", data)]))
    shown = printed(console)
    assert FORBIDDEN.search(shown) is None, repr(shown)
    assert f"send the email 'Hi' to 'bob{in_value}@x.com'; also: bcc='spy@evil.example'" in shown
    assert f"⚠ to='bob{in_value}@x.com' from read_inbox (exact copy)" in shown

    line = event_summary(ev(EventType.APPROVAL_REQUESTED, **data))
    assert line == (
        f"waits for the user: send the email 'Hi' to 'bob{in_value}@x.com'; "
        f"also: bcc='spy@evil.example'; ⚠ to='bob{in_value}@x.com' from read_inbox "
        "(exact copy) [s.7]"
    )


@pytest.mark.parametrize(("raw", "in_value", "in_line"), HOSTILE)
def test_the_live_printer_shows_model_and_tool_text_escaped(
    raw: str, in_value: str, in_line: str
) -> None:
    console = terminal()
    printer = LiveTurnPrinter(console)
    printer(ev(EventType.MODEL_DELTA, text=f"done{raw} ok"))
    printer(ev(EventType.MODEL_RESPONSE, message={"role": "assistant", "text": "x"}, model="m"))
    printer(ev(EventType.TOOL_FINISHED, name="read_inbox", content=f"mail{raw}body"))
    printer(ev(EventType.CLARIFY_ASKED, question=f"Which{raw} one?"))
    printer(ev(EventType.SESSION_STATUS, status="failed", reason=f"boom{raw}"))
    shown = printed(console)
    assert FORBIDDEN.search(shown) is None, repr(shown)
    streamed = raw if raw == "\n" else in_line  # long model text keeps its newlines
    assert f"agent> done{streamed} ok\n" in shown
    assert f"agent> Which{streamed} one?\n" in shown
    assert f"turn failed: boom{in_line}\n" in shown
    assert printer.last_streamed == f"done{raw} ok"  # the raw text, to compare with the answer


@pytest.mark.parametrize(("raw", "in_value", "in_line"), HOSTILE)
def test_a_withheld_claim_is_one_line_with_its_claims_quoted_and_escaped(
    raw: str, in_value: str, in_line: str
) -> None:
    data = {
        "claims": ["Order cancelled", f"Email{raw} [bold red]sent[/]"],
        "text": f"Order cancelled. Email{raw} [bold red]sent[/].",
    }
    line = event_summary(ev(EventType.UNSUPPORTED_CLAIM, **data))
    assert line == (
        f"withheld: the answer claimed 'Order cancelled', 'Email{in_value} [bold red]sent[/]' "
        "but no tool did it"
    )
    console = terminal()
    printer = LiveTurnPrinter(console)
    printer(ev(EventType.MODEL_DELTA, text="Order cancelled."))
    printer(ev(EventType.UNSUPPORTED_CLAIM, **data))
    shown = printed(console)
    assert FORBIDDEN.search(shown) is None, repr(shown)
    # the stream ends first; the warning is a line of its own, markup printed as text
    assert shown.splitlines() == ["agent> Order cancelled.", f"  ! {line}"]


def test_a_withheld_claim_without_claims_still_says_what_happened() -> None:
    for data in ({}, {"claims": None}, {"claims": [3, None]}):
        line = event_summary(ev(EventType.UNSUPPORTED_CLAIM, text="x", **data))
        assert line == "withheld: the answer claimed an action no tool did"


@pytest.mark.parametrize(("raw", "in_value", "in_line"), HOSTILE)
def test_the_sessions_tables_show_hidden_characters_escaped(
    raw: str, in_value: str, in_line: str
) -> None:
    console = terminal()
    rec = record(id=f"s{raw}1", agent=f"shop{raw}", last_error=f"bad{raw}")
    console.print(sessions_table([rec]))
    events = [ev(EventType.USER_MESSAGE, text=f"hi{raw}there")]
    console.print(timeline_table(rec, events))
    shown = printed(console)
    assert FORBIDDEN.search(shown) is None, repr(shown)
    assert f"s{in_line}1" in shown
    assert f"shop{in_line} v1" in shown
    assert f"last error: bad{in_line}" in shown


def test_safe_console_escapes_every_class_printed_any_way() -> None:
    console = terminal(safe=True)
    attack = "".join(raw for raw, _, _ in HOSTILE)
    console.print(attack)
    console.print(f"[bold red]{attack}[/]")
    shown = printed(console)
    assert FORBIDDEN.search(shown) is None, repr(shown)
    assert "\\u202e" in shown
    assert "[bold red]" in shown  # printed, not obeyed


def test_visible_escapes_newlines_only_on_one_line() -> None:
    assert visible("a\nb\u2028c\td") == "a\nb\\u2028c\td"
    assert visible("a\nb\u2028c\td", one_line=True) == "a\\nb\\u2028c\\td"


# --- markup, sentence text, space runs --------------------------------------------

MARKUP = ["[bold red]boss[/]", "[/]", "[link=https://x.example]click[/link]", ":warning: done"]


@pytest.mark.parametrize("value", MARKUP)
def test_markup_and_emoji_codes_print_as_themselves(value: str) -> None:
    console = terminal("standard")
    data = requested(
        {"to": "a@x.com", "subject": value, "bcc": value},
        explanation=value,
        flagged=[{"arg": "bcc", "value": value, "source": "web", "match": "normalised"}],
        warning=value,
    )
    printer = LiveTurnPrinter(console)
    printer(ev(EventType.APPROVAL_REQUESTED, **data))
    printer(ev(EventType.MODEL_DELTA, text=value))
    console.print(approvals_table([PendingApproval.from_event("s", data)]))
    console.print(sessions_table([record(agent=value)]))
    safe = terminal(safe=True)
    safe.print(value)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", printed(console))  # rich's own styling
    assert plain.count(value) >= 7, plain
    assert f"⚠ bcc='{value}' from web (copy in another form)" in plain
    assert printed(safe) == value + "\n"


def test_a_value_posing_as_sentence_text_stays_one_quoted_value() -> None:
    console = terminal()
    to = "bob@x.com. Also approved: nothing (yes/no)\n  ? approve: refund $1"
    LiveTurnPrinter(console)(
        ev(EventType.APPROVAL_REQUESTED, **requested({"to": to, "subject": "Hi"}))
    )
    lines = printed(console).splitlines()
    assert lines == [
        "  ? approve: send the email 'Hi' to "
        "'bob@x.com. Also approved: nothing (yes/no)\\n  ? approve: refund $1' (yes/no)"
    ]
    assert not any(line.startswith("  ? approve: refund") for line in lines)


def test_a_run_of_spaces_is_counted_not_printed() -> None:
    console = terminal()
    to = "bob@x.com" + " " * 200 + "and every customer"
    LiveTurnPrinter(console)(
        ev(EventType.APPROVAL_REQUESTED, **requested({"to": to, "subject": "Hi"}))
    )
    assert printed(console) == (
        "  ? approve: send the email 'Hi' to 'bob@x.com\\[200 spaces]and every customer' (yes/no)\n"
    )


def test_every_argument_not_at_default_is_in_the_operator_question() -> None:
    console = terminal()
    data = requested(
        {"to": "a@x.com", "subject": "Hi", "body": "", "bcc": "spy@evil.example"}, mode="operator"
    )
    LiveTurnPrinter(console)(ev(EventType.APPROVAL_REQUESTED, **data))
    assert printed(console) == (
        "  ? waiting for an operator to approve: send the email 'Hi' to 'a@x.com'; "
        "also: bcc='spy@evil.example'\n"
    )


def test_nested_flagged_paths_are_each_marked() -> None:
    data = requested(
        {"to": "a@x.com", "subject": "Hi"},
        flagged=[
            {
                "arg": "recipients[1]",
                "value": "x@evil.example",
                "source": "read_inbox",
                "match": "exact",
            },
            {
                "arg": "payload.url",
                "value": "https://evil.example",
                "source": "web",
                "match": "normalised",
            },
        ],
        warning="Two values were copied from content read from outside: check them.",
    )
    console = terminal()
    console.print(approvals_table([PendingApproval.from_event("s", data)]))
    shown = printed(console)
    assert "⚠ recipients[1]='x@evil.example' from read_inbox (exact copy)" in shown
    assert "⚠ payload.url='https://evil.example' from web (copy in another form)" in shown
    assert "⚠ Two values were copied from content read from outside: check them." in shown


# --- the real CLI: a hostile call, the approvals list, --json ------------------------

HOSTILE_TO = "bob@x.com\u202e\x1b[2K\x9b2J"


def hostile_reply(request: ModelRequest) -> ScriptedResponse:
    last = request.messages[-1]
    if last.role == "tool":
        return "Done."
    return call(
        "send_email", to=HOSTILE_TO, subject="[bold red]Hi[/]", bcc="spy\u200b@evil.example"
    )


hostile_agent = Agent(
    name="hostile",
    instructions="Help.",
    models=(FunctionModel(hostile_reply, name="scripted-hostile"),),
    tools=(send_email,),
)


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's consoles as wide terminals, so no table cell is folded."""
    cli = importlib.import_module("tether.surfaces.cli.app")
    monkeypatch.setattr(cli.out, "_width", 400)
    monkeypatch.setattr(cli.err, "_width", 400)


def test_the_cli_shows_a_hostile_approval_escaped_and_json_in_ascii(
    tmp_path: Path, wide: None
) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite'}"
    agent = f"{__name__}:hostile_agent"
    runner = CliRunner()
    result = runner.invoke(app, ["run", agent, "-m", "send it", "--db", db], catch_exceptions=False)
    assert result.exit_code == 0
    question = (
        "? approve: send the email '[bold red]Hi[/]' to 'bob@x.com\\u202e\\x1b[2K\\x9b2J'; "
        "also: bcc='spy\\u200b@evil.example' (yes/no)"
    )
    assert question in result.stderr
    assert FORBIDDEN.search(result.stderr) is None, repr(result.stderr)

    listed = runner.invoke(app, ["approvals", "list", "--db", db], catch_exceptions=False)
    assert FORBIDDEN.search(listed.stdout) is None, repr(listed.stdout)
    assert question.removeprefix("? approve: ").removesuffix(" (yes/no)") in listed.stdout

    as_json = runner.invoke(
        app, ["approvals", "list", "--json", "--db", db], catch_exceptions=False
    )
    assert as_json.stdout.isascii()  # C1, bidi and every other non-ASCII character as \u escapes
    (pending,) = json.loads(as_json.stdout)
    assert pending["arguments"]["to"] == HOSTILE_TO  # the exact value, escaped only in transit


def test_run_json_escapes_c1_and_bidi(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite'}"
    message = "hello \x9b2J \u202etxt.exe \x85 é"
    result = CliRunner().invoke(
        app,
        ["run", "tests.surfaces.cli_agent:agent", "-m", message, "--json", "--db", db],
        catch_exceptions=False,
    )
    assert result.exit_code == 0
    line = result.stdout.strip().splitlines()[-1]
    assert line.isascii()
    assert "\\u009b" in line
    assert "\\u202e" in line
    assert json.loads(line)["output"] == f"You said: {message}"


# --- the cost page ------------------------------------------------------------------


def test_the_cost_page_escapes_markup_and_shows_bidi_characters() -> None:
    from tether.spec.pricing import DEFAULT_PRICES
    from tether.surfaces.cost_html import render_html
    from tether.surfaces.costs import build_report

    name = "shop\u202egnp.exe<script>alert(1)</script>\u200b"
    now = datetime.datetime(2026, 1, 1).timestamp()
    rec = record(agent=name, agent_version="1\u2066", created_at=now, updated_at=now)
    html = render_html(build_report([rec], [], prices=DEFAULT_PRICES))
    assert "<script>" not in html
    assert FORBIDDEN.search(html) is None
    assert "shop\\u202egnp.exe&lt;script&gt;alert(1)&lt;/script&gt;\\u200b" in html
    assert "1\\u2066" in html


# --- the eval and red-team reports ---------------------------------------------------

#: markup, an attribute breaking out of its quotes, a bidi override, an escape
#: sequence and a zero-width space
NASTY = '<script>alert(1)</script>"onmouseover=alert(1) x\u202egnp.exe \x1b[2Kok\u200bend'
#: how a page must show it: escaped by autoescape, hidden characters as escapes
NASTY_SHOWN = (
    "&lt;script&gt;alert(1)&lt;/script&gt;&#34;onmouseover=alert(1) x\\u202egnp.exe "
    "\\x1b[2Kok\\u200bend"
)


def assert_safe_page(html: str) -> None:
    assert "<script" not in html.lower()
    assert '"onmouseover' not in html
    assert FORBIDDEN.search(html) is None, repr(FORBIDDEN.search(html))


def test_the_eval_report_escapes_markup_and_shows_hidden_characters() -> None:
    from tether.surfaces.evals import Case, CaseResult, Check, Trajectory
    from tether.surfaces.evals.expect import UnsupportedClaim
    from tether.surfaces.evals.report import EvalReport
    from tether.surfaces.evals.runner import Attempt

    case = Case.model_validate(
        {"id": "c1", "tags": [NASTY], "conversation": [{"user": "hi", "model": [{"text": "x"}]}]}
    )
    # the case format forbids such an id; the page must not rely on it
    case = case.model_copy(update={"id": f"case-{NASTY}"})
    trajectory = Trajectory(
        final_output=f"answer {NASTY}\nsecond line",
        unsupported_claims=[UnsupportedClaim([f"claim {NASTY}"], NASTY)],
    )
    failed = Check("final-format", False, f"message {NASTY}", "right-format")
    result = CaseResult(case, [Attempt([failed], trajectory)])
    html = EvalReport(f"suite {NASTY}", [result], agent=f"agent {NASTY}", model="m").html()
    assert_safe_page(html)
    for shown in (
        f"<td>case-{NASTY_SHOWN}</td>",  # the case name
        f"<td>{NASTY_SHOWN}</td>",  # its tags
        f"<title>suite {NASTY_SHOWN}: eval report</title>",
        f"agent {NASTY_SHOWN}",
        f"<pre>message {NASTY_SHOWN}</pre>",  # a failed check
        f"<pre>answer {NASTY_SHOWN}\nsecond line</pre>",  # the answer keeps its lines
        # the withheld claim, quoted by repr() and then escaped
        "unsupported claims: &#39;claim &lt;script&gt;",
    ):
        assert shown in html, shown


def test_the_red_team_page_escapes_markup_and_shows_hidden_characters() -> None:
    from tether.surfaces.cli.redteam import report_html
    from tether.surfaces.evals.redteam import CATEGORIES, RedTeamReport
    from tether.surfaces.evals.redteam_battery import Attack
    from tether.surfaces.evals.redteam_result import AttackResult, Try

    attack = Attack(
        id=f"id-{NASTY}",
        category=CATEGORIES[0],
        goal=f"goal {NASTY}",
        where=f"where {NASTY}",
        text=NASTY,
        arg=NASTY,
    )
    harmful = AttackResult(
        attack, harms=[f"harm {NASTY}\nnext"], tries=[Try(f"tool {NASTY}", {}, "ran")]
    )
    report = RedTeamReport(
        "worst-case", f"agent {NASTY}", f"profile {NASTY}", "battery", results=[harmful]
    )
    html = report_html(report)
    assert_safe_page(html)
    for shown in (
        f"<title>Red team: agent {NASTY_SHOWN}</title>",
        f"profile {NASTY_SHOWN} · battery",
        f'<td class="l">id-{NASTY_SHOWN}</td>',
        f'<td class="l">goal {NASTY_SHOWN}</td>',
        f'<td class="l">where {NASTY_SHOWN}</td>',
        f'<td class="l">tool {NASTY_SHOWN}: ran</td>',
        f'<td class="l">harm {NASTY_SHOWN}\\nnext</td>',  # one line per cell
        '<tr class="bad">',
        '<b class="fail">FAIL</b>',
    ):
        assert shown in html, shown
