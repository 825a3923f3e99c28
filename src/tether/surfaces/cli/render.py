"""How events look in a terminal: one function per view, shared by every command.

Everything printed here that a model, a tool, a user or an argument wrote
goes through :func:`visible` and into a :class:`~rich.text.Text` (never a
markup string), so whatever the console: escape sequences, C0 and C1
controls, bidi overrides, zero-width and other invisible characters show as
escapes (``\\x1b``, ``\\u202e``), and ``[bold red]`` prints as itself.
:class:`SafeConsole` does the same again at the one place all printing goes
through, for text that reaches the terminal some other way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from tether.runtime.approvals import HIDDEN, reveal, show_value
from tether.runtime.ports import SessionRecord
from tether.spec.events import Event, EventType

__all__ = [
    "LiveTurnPrinter",
    "SafeConsole",
    "approval_notes",
    "approvals_table",
    "event_summary",
    "flag_note",
    "sessions_table",
    "timeline_table",
    "visible",
]


def visible(text: str, *, one_line: bool = False) -> str:
    """``text`` with what a terminal would obey or not draw shown as escapes, not obeyed.

    C0 and C1 controls and DEL (``\\x1b``), bidi embeddings, overrides and
    isolates, zero-width and other format characters (``\\u202e``,
    ``\\u200b``), line and paragraph separators, blank-drawing letters.
    Tab and newline are kept, unless ``one_line`` (``\\t``, ``\\n``).
    """
    return reveal(text, keep="" if one_line else "\t\n")


class SafeConsole(Console):
    """A rich console that shows control characters in what it prints instead of obeying them.

    Whatever a model, a tool or a user wrote (an answer, an argument, an
    error message quoting either) reaches the terminal through here, and an
    escape sequence in it could clear the screen, retitle the window or
    overwrite the line above with forged text; a bidi override could make
    ``#W9-ALL-ORDERS`` read as something else. Rich passes them through, so
    every segment of text is escaped (:func:`visible`) as it is rendered, at
    the one place all printing goes through (tables, ``Text`` and plain
    strings alike); rich's own styling and cursor control are added after,
    as control segments, and are left alone. Strings are not read as rich
    markup or emoji codes (``[red]``, ``:warning:`` print as themselves):
    style with ``Text``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("markup", False)
        kwargs.setdefault("emoji", False)
        super().__init__(*args, **kwargs)

    def render(
        self, renderable: RenderableType, options: ConsoleOptions | None = None
    ) -> Iterable[Segment]:
        for segment in super().render(renderable, options):
            if segment.control is None and HIDDEN.search(segment.text):
                shown = visible(segment.text)
                if shown != segment.text:
                    yield Segment(shown, segment.style)
                    continue
            yield segment


def _text(value: Any, style: str = "") -> Text:
    """A table cell or line: ``value`` shown on one line, escaped, never read as markup."""
    return Text(visible(str(value), one_line=True), style=style)


#: how a flagged value was found in untrusted content
_MATCH = {"exact": "exact copy", "normalised": "copy in another form"}


def flag_note(flag: Mapping[str, Any]) -> str:
    """One flagged argument: ``⚠ to='x@evil.example' from read_inbox (exact copy)``."""
    how = _MATCH.get(str(flag.get("match")), "copy")
    arg = visible(str(flag.get("arg", "?")), one_line=True)
    source = visible(str(flag.get("source", "?")), one_line=True)
    return f"⚠ {arg}={show_value(flag.get('value'))} from {source} ({how})"


def approval_notes(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What goes beneath an approval's summary, as ``(line, style)``: flagged values, the
    warning, and which untrusted sources the session had read."""
    notes = [(flag_note(f), "bold red") for f in data.get("flagged") or () if isinstance(f, dict)]
    warning = str(data.get("warning") or "")
    if warning:
        notes.append((f"⚠ {visible(warning, one_line=True)}", "bold red"))
    tainted = [visible(str(t), one_line=True) for t in data.get("tainted") or ()]
    if tainted:
        notes.append(
            (f"the session has read untrusted content from {', '.join(tainted)}", "yellow")
        )
    return notes


def _short(value: Any, limit: int = 100) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _args(arguments: dict[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in arguments.items())


def event_summary(ev: Event, limit: int = 100) -> str:
    """One line saying what an event was (escaped: see :func:`visible`)."""
    return visible(_summary(ev, limit), one_line=True)


def _summary(ev: Event, limit: int) -> str:
    d = ev.data
    t = ev.type
    if t == EventType.SESSION_CREATED:
        return f"agent {d.get('agent')} v{d.get('version')} ({', '.join(d.get('models', []))})"
    if t == EventType.USER_MESSAGE:
        return _short(d.get("text", ""), limit)
    if t == EventType.MODEL_RESPONSE:
        msg = d.get("message", {})
        calls = msg.get("tool_calls") or []
        parts = [f"{c['name']}({_args(c.get('arguments', {}))})" for c in calls]
        text = msg.get("text") or ""
        body = "; ".join(([_short(text, limit)] if text else []) + parts)
        who = str(d.get("model"))
        if d.get("degraded"):
            who += f" (fallback for {d.get('primary')})"
        if d.get("wrap_up"):
            who += " (last call, no tools)"
        if d.get("cost"):
            who += f" ${d['cost']:.4f}"
        return f"{who}: {body}" if body else who
    if t == EventType.TOOL_STARTED:
        return f"{d.get('name')}({_args(d.get('arguments', {}))})"
    if t == EventType.TOOL_FINISHED:
        mark = "ERROR " if d.get("is_error") else ""
        return f"{d.get('name')} → {mark}{_short(d.get('content', ''), limit)}"
    if t == EventType.TURN_COMPLETED:
        return _short(d.get("output") or "", limit)
    if t == EventType.SESSION_STATUS:
        return f"{d.get('status')}: {d.get('reason') or ''}".rstrip(": ")
    if t == EventType.SESSION_RESUMED:
        return f"resumed at step {d.get('from_step')} by {d.get('owner')}"
    if t == EventType.MODEL_RETRY:
        return (
            f"{d.get('model')}: attempt {d.get('attempt')} failed ({d.get('reason')}); "
            f"retry in {d.get('delay')} s"
        )
    if t == EventType.TOOL_RETRY:
        return (
            f"{d.get('name')}: attempt {d.get('attempt')} failed ({d.get('reason')}); "
            f"retry in {d.get('delay')} s"
        )
    if t == EventType.MODEL_FALLBACK:
        return f"{d.get('from')} → {d.get('to')}: {_short(d.get('reason') or '', limit)}"
    if t == EventType.BREAKER_OPENED:
        return f"ALERT breaker {d.get('key')} opened for {d.get('cooldown')} s"
    if t == EventType.BREAKER_CLOSED:
        return f"breaker {d.get('key')} closed"
    if t == EventType.APPROVAL_REQUESTED:
        who = "an operator" if d.get("mode") == "operator" else "the user"
        marks = "".join(f"; {line}" for line, _ in approval_notes(d))
        return f"waits for {who}: {d.get('summary')}{marks} [{d.get('approval_id')}]"
    if t == EventType.APPROVAL_DECIDED:
        verdict = "approved" if d.get("approved") else "denied"
        why = f" ({d.get('reason')})" if d.get("reason") else ""
        return f"{verdict} by {d.get('by')}{why} [{d.get('approval_id')}]"
    if t == EventType.APPROVAL_EXPIRED:
        return f"expired before anyone decided [{d.get('approval_id')}]"
    if t == EventType.APPROVAL_REASKED:
        return f"asked again: {_short(d.get('text') or '', limit)!r} is not a yes or a no"
    if t == EventType.OPERATOR_ALERT:
        return f"ALERT {d.get('tool')}: {d.get('reason')}"
    if t == EventType.CLARIFY_ASKED:
        return f"asks the user: {_short(d.get('question') or '', limit)}"
    if t == EventType.UNACKNOWLEDGED_FAILURE:
        return "WARNING the answer does not mention the failure of " + ", ".join(d.get("tools", []))
    if t == EventType.UNSUPPORTED_CLAIM:
        return _withheld_claims(d.get("claims"))
    if t == EventType.CONTEXT_COMPRESSED:
        return (
            f"{d.get('upto')} older messages summarised by {d.get('model')}: "
            f"~{d.get('tokens_before')} → ~{d.get('tokens_after')} tokens"
        )
    if t == EventType.COMPRESSION_FAILED:
        return f"context not compressed: {_short(d.get('reason') or '', limit)}"
    if t == EventType.LIMIT_REACHED:
        n, allowed = d.get("count"), d.get("allowed")
        return f"{d.get('limit')} reached at {d.get('tool')} (call {n}, allowed {allowed})"
    if t == EventType.BUDGET_EXHAUSTED:
        return f"token budget spent: {d.get('used')} of {d.get('max_tokens')}; the session ends"
    if t == EventType.RATE_LIMITED:
        return f"{d.get('scope')} {d.get('key')}: {d.get('limit')} reached"
    return _short(d, limit)


def _withheld_claims(claims: Any) -> str:
    """``answer.unsupported_claim``: each claim quoted, its hidden characters escaped."""
    listed = [c for c in claims if isinstance(c, str)] if isinstance(claims, list) else []
    if not listed:
        return "withheld: the answer claimed an action no tool did"
    return f"withheld: the answer claimed {', '.join(map(show_value, listed))} but no tool did it"


def timeline_table(record: SessionRecord, events: list[Event]) -> Table:
    """The timeline of a stored session: what happened, when, and what it cost."""
    table = Table(
        title=_text(
            f"session {record.id} · {record.agent} v{record.agent_version} · {record.status}"
        ),
        title_justify="left",
        expand=False,
    )
    table.add_column("#", justify="right", style="dim")
    table.add_column("+time", justify="right")
    table.add_column("step", justify="right")
    table.add_column("event")
    table.add_column("detail", overflow="fold")
    table.add_column("tokens in/out", justify="right")
    table.add_column("ms", justify="right")
    t0 = events[0].time if events else record.created_at
    for ev in events:
        tokens = ""
        if ev.usage is not None:
            tokens = f"{ev.usage.input_tokens}/{ev.usage.output_tokens}"
        ms = ev.data.get("latency_ms", ev.data.get("duration_ms", ""))
        style = "red" if ev.data.get("is_error") or ev.data.get("status") == "failed" else None
        table.add_row(
            str(ev.seq),
            f"{(ev.time - t0):.3f}s",
            str(ev.step),
            _text(ev.type, style=style or ""),
            Text(event_summary(ev, 160)),
            tokens,
            f"{ms:.0f}" if isinstance(ms, (int, float)) else "",
        )
    u = record.usage
    table.caption = _text(
        f"{record.step} steps · {u.input_tokens} input + {u.output_tokens} output tokens"
        + (f" · ${record.cost:.4f}" if record.cost else "")
        + (f" · last error: {record.last_error}" if record.last_error else "")
    )
    return table


def sessions_table(records: list[SessionRecord]) -> Table:
    """A table of sessions, newest first."""
    import datetime as _dt

    table = Table(title="sessions", title_justify="left")

    def when(t: float) -> str:
        return _dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")

    for col in ("id", "agent", "status", "steps", "tokens", "cost", "started", "updated"):
        table.add_column(col, justify="right" if col in {"steps", "tokens", "cost"} else "left")
    for r in records:
        table.add_row(
            _text(r.id),
            _text(f"{r.agent} v{r.agent_version}"),
            _text(r.status),
            str(r.step),
            str(r.usage.total_tokens),
            f"${r.cost:.4f}",
            when(r.created_at),
            when(r.updated_at),
        )
    return table


class LiveTurnPrinter:
    """Prints a turn as it happens: streamed text, tool calls and their results."""

    def __init__(self, console: Console, *, show_tools: bool = True) -> None:
        self.console = console
        self.show_tools = show_tools
        self._streaming = False
        self._buffer: list[str] = []
        #: the text streamed for the last model response (its deltas, joined)
        self.last_streamed = ""

    def _end_stream(self) -> None:
        if self._streaming:
            self.console.print()
            self._streaming = False

    def _line(self, text: str, style: str = "") -> None:
        self.console.print(_text(text, style))

    def __call__(self, ev: Event) -> None:
        t = ev.type
        if t == EventType.MODEL_DELTA:
            if not self._streaming:
                self.console.print(Text("agent> ", style="bold green"), end="")
                self._streaming = True
            self.console.print(Text(visible(ev.data["text"])), end="")
            self._buffer.append(ev.data["text"])
            return
        if t == EventType.MODEL_RESPONSE:
            self._end_stream()
            self.last_streamed, self._buffer = "".join(self._buffer), []
            if ev.data.get("degraded"):
                self._line(
                    f"  (answered by the backup model {ev.data.get('model')}: "
                    f"{ev.data.get('primary')} is unavailable)",
                    "yellow",
                )
        elif t in (
            EventType.MODEL_RETRY,
            EventType.MODEL_FALLBACK,
            EventType.BREAKER_OPENED,
            EventType.LIMIT_REACHED,
            EventType.BUDGET_EXHAUSTED,
            EventType.RATE_LIMITED,
            EventType.COMPRESSION_FAILED,
            EventType.UNSUPPORTED_CLAIM,
        ):
            self._end_stream()
            self._line(f"  ! {event_summary(ev, 200)}", "yellow")
        elif t == EventType.CONTEXT_COMPRESSED:
            self._end_stream()
            self._line(f"  · {event_summary(ev, 200)}", "dim")
        elif t == EventType.TOOL_STARTED and self.show_tools:
            self._end_stream()
            self._line(f"  → {event_summary(ev, 200)}", "cyan")
        elif t == EventType.TOOL_FINISHED and self.show_tools:
            style = "red" if ev.data.get("is_error") else "dim"
            self._line(f"  ← {event_summary(ev, 200)}", style)
        elif t == EventType.SESSION_STATUS and ev.data.get("status") == "failed":
            self._end_stream()
            self._line(f"turn failed: {ev.data.get('reason')}", "bold red")
        elif t == EventType.CLARIFY_ASKED:
            self._end_stream()
            self.console.print(Text("agent> ", style="bold green"), end="")
            self.console.print(Text(visible(str(ev.data.get("question", "")))))
        elif t == EventType.APPROVAL_REASKED:
            self._end_stream()
            self.console.print(Text("  ? please answer yes or no", style="bold yellow"))
        elif t == EventType.APPROVAL_REQUESTED:
            self._end_stream()
            self._approval(ev.data)
        elif t == EventType.TURN_COMPLETED:
            self._end_stream()

    def _approval(self, d: Mapping[str, Any]) -> None:
        """The question on one line (its values quoted by the runtime), then beneath it
        each value copied from untrusted content, the warning, and the sources read."""
        if d.get("explanation"):  # the model's own words, beside the runtime's summary
            # on one line, so that they cannot draw a question of their own
            said = " ".join(str(d["explanation"]).split())
            self._line(f"  (the agent says: {said})", "dim")
        if d.get("mode") == "operator":
            self._line(f"  ? waiting for an operator to approve: {d.get('summary')}", "bold yellow")
        else:
            self._line(f"  ? approve: {d.get('summary')} (yes/no)", "bold yellow")
        for line, style in approval_notes(d):
            self._line(f"      {line}", style)


def approvals_table(pending: list[Any]) -> Table:
    """Pending approvals (:class:`~tether.runtime.approvals.PendingApproval`), one row each.

    The summary cell holds the whole question: the sentence with every argument
    not at its default, then each value copied from untrusted content, marked,
    the warning, and the untrusted sources the session had read.
    """
    import datetime as _dt

    table = Table(title="waiting for approval", title_justify="left")
    for col in ("id", "tool", "summary", "mode", "expires"):
        table.add_column(col, overflow="fold")
    for p in pending:
        when = _dt.datetime.fromtimestamp(p.expires_at).strftime("%Y-%m-%d %H:%M:%S")
        summary = _text(p.summary)
        notes = {
            "flagged": getattr(p, "flagged", ()),
            "warning": getattr(p, "warning", ""),
            "tainted": getattr(p, "tainted", ()),
        }
        for line, style in approval_notes(notes):
            summary.append("\n" + line, style=style)
        table.add_row(_text(p.id), _text(p.tool), summary, _text(p.mode), when)
    return table
