"""How events look in a terminal: one function per view, shared by every command."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from tether.runtime.ports import SessionRecord
from tether.spec.events import Event, EventType

__all__ = [
    "LiveTurnPrinter",
    "SafeConsole",
    "event_summary",
    "sessions_table",
    "timeline_table",
    "visible",
]

#: control characters but tab and newline: C0, DEL and C1 (ESC starts every
#: terminal escape sequence; C1's CSI and OSC are 8-bit forms of the same)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """``text`` with its control characters shown as escapes (``\\x1b``), not obeyed."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class SafeConsole(Console):
    """A rich console that shows control characters in what it prints instead of obeying them.

    Whatever a model, a tool or a user wrote (an answer, an argument, an
    error message quoting either) reaches the terminal through here, and an
    escape sequence in it could clear the screen, retitle the window or
    overwrite the line above with forged text. Rich passes ``ESC`` through,
    so every segment of text is escaped as it is rendered, at the one place
    all printing goes through (tables, ``Text`` and plain strings alike);
    rich's own styling and cursor control are added after, as control
    segments, and are left alone.
    """

    def render(
        self, renderable: RenderableType, options: ConsoleOptions | None = None
    ) -> Iterable[Segment]:
        for segment in super().render(renderable, options):
            if segment.control is None and _CONTROL.search(segment.text):
                yield Segment(visible(segment.text), segment.style)
            else:
                yield segment


def _short(value: Any, limit: int = 100) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _args(arguments: dict[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in arguments.items())


def event_summary(ev: Event, limit: int = 100) -> str:
    """One line saying what an event was."""
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
        return f"waits for {who}: {d.get('summary')} [{d.get('approval_id')}]"
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


def timeline_table(record: SessionRecord, events: list[Event]) -> Table:
    """The timeline of a stored session: what happened, when, and what it cost."""
    table = Table(
        title=f"session {record.id} · {record.agent} v{record.agent_version} · {record.status}",
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
            Text(ev.type, style=style or ""),
            event_summary(ev, 160),
            tokens,
            f"{ms:.0f}" if isinstance(ms, (int, float)) else "",
        )
    u = record.usage
    table.caption = (
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
            r.id,
            f"{r.agent} v{r.agent_version}",
            r.status,
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

    def __call__(self, ev: Event) -> None:
        t = ev.type
        if t == EventType.MODEL_DELTA:
            if not self._streaming:
                self.console.print(Text("agent> ", style="bold green"), end="")
                self._streaming = True
            self.console.print(ev.data["text"], end="", markup=False, highlight=False)
            self._buffer.append(ev.data["text"])
            return
        if t == EventType.MODEL_RESPONSE:
            self._end_stream()
            self.last_streamed, self._buffer = "".join(self._buffer), []
            if ev.data.get("degraded"):
                self.console.print(
                    Text(
                        f"  (answered by the backup model {ev.data.get('model')}: "
                        f"{ev.data.get('primary')} is unavailable)",
                        style="yellow",
                    )
                )
        elif t in (
            EventType.MODEL_RETRY,
            EventType.MODEL_FALLBACK,
            EventType.BREAKER_OPENED,
            EventType.LIMIT_REACHED,
            EventType.BUDGET_EXHAUSTED,
            EventType.RATE_LIMITED,
            EventType.COMPRESSION_FAILED,
        ):
            self._end_stream()
            self.console.print(Text(f"  ! {event_summary(ev, 200)}", style="yellow"))
        elif t == EventType.CONTEXT_COMPRESSED:
            self._end_stream()
            self.console.print(Text(f"  · {event_summary(ev, 200)}", style="dim"))
        elif t == EventType.TOOL_STARTED and self.show_tools:
            self._end_stream()
            self.console.print(Text(f"  → {event_summary(ev, 200)}", style="cyan"))
        elif t == EventType.TOOL_FINISHED and self.show_tools:
            style = "red" if ev.data.get("is_error") else "dim"
            self.console.print(Text(f"  ← {event_summary(ev, 200)}", style=style))
        elif t == EventType.SESSION_STATUS and ev.data.get("status") == "failed":
            self._end_stream()
            self.console.print(Text(f"turn failed: {ev.data.get('reason')}", style="bold red"))
        elif t == EventType.CLARIFY_ASKED:
            self._end_stream()
            self.console.print(Text("agent> ", style="bold green"), end="")
            self.console.print(ev.data.get("question", ""), markup=False, highlight=False)
        elif t == EventType.APPROVAL_REASKED:
            self._end_stream()
            self.console.print(Text("  ? please answer yes or no", style="bold yellow"))
        elif t == EventType.APPROVAL_REQUESTED:
            self._end_stream()
            d = ev.data
            if d.get("explanation"):  # the model's own words, beside the runtime's summary
                self.console.print(Text(f"  (the agent says: {d['explanation']})", style="dim"))
            if d.get("mode") == "operator":
                ask = f"  ? waiting for an operator to approve: {d.get('summary')}"
            else:
                ask = f"  ? approve: {d.get('summary')} (yes/no)"
            self.console.print(Text(ask, style="bold yellow"))
        elif t == EventType.TURN_COMPLETED:
            self._end_stream()


def approvals_table(pending: list[Any]) -> Table:
    """Pending approvals (:class:`~tether.runtime.approvals.PendingApproval`), one row each."""
    import datetime as _dt

    table = Table(title="waiting for approval", title_justify="left")
    for col in ("id", "tool", "summary", "mode", "expires"):
        table.add_column(col)
    for p in pending:
        when = _dt.datetime.fromtimestamp(p.expires_at).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(p.id, p.tool, p.summary, p.mode, when)
    return table
