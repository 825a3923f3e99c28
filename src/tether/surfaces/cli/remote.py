"""The commands that work through a Tether server's API (``--server URL``).

``tether sessions list|show``, ``tether approvals list|approve|deny`` and
``tether chat`` call these when given ``--server`` (or ``$TETHER_SERVER``);
:mod:`tether.surfaces.cli.app` only parses the options and dispatches. They
print as the local commands do: the same tables and live turn printer, so
whatever the server relays from a model, a tool or a user is escaped
(:mod:`tether.surfaces.cli.render`), and ``--json`` gives the same keys as
the local command, those the server has. Options that only mean something
locally (``--db``, ``--model``, ``--by``...) are refused, not ignored.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from tether.client import Client, ServerError, StreamEvent, StreamKind
from tether.exceptions import InputRejected, RunError, TetherError
from tether.runtime.approvals import parse_reply
from tether.runtime.ports import SessionRecord
from tether.spec.events import Event, EventType, SessionStatus
from tether.spec.messages import Usage
from tether.surfaces.cli.errors import one_line, report
from tether.surfaces.cli.render import (
    LiveTurnPrinter,
    SafeConsole,
    approvals_table,
    timeline_table,
    visible,
)
from tether.surfaces.server.models import (
    ApprovalOut,
    EventOut,
    QuestionOut,
    SessionOut,
    SessionSummary,
)

__all__ = [
    "approvals_list",
    "chat",
    "connect",
    "decide",
    "refuse_local",
    "sessions_list",
    "sessions_show",
]

out = SafeConsole()
err = SafeConsole(stderr=True)

#: the session row's fields a server does not report (leases are its own business)
_NOT_SERVED = ("lease_owner", "lease_expires")


def _usage(message: str) -> typer.Exit:
    """Print ``message`` as one line on stderr; the exit to raise (status 2: a usage error)."""
    err.print(Text(f"error: {one_line(message)}", style="bold red"), soft_wrap=True)
    return typer.Exit(2)


@contextmanager
def _reported() -> Iterator[None]:
    """A Tether error (the server's problem, an unreachable server) as one line and its exit."""
    try:
        yield
    except TetherError as exc:
        raise typer.Exit(report(exc, err)) from None


def connect(server: str, api_key: str | None) -> Client:
    """A client for ``server`` (``--server`` or ``$TETHER_SERVER``), the key from
    ``--api-key`` or ``$TETHER_API_KEY``."""
    origin = "TETHER_SERVER" if os.environ.get("TETHER_SERVER") == server else "--server"
    try:
        return Client(server, api_key=api_key)
    except InputRejected as exc:
        raise _usage(f"{origin}: {exc}") from None


def refuse_local(options: Mapping[str, object]) -> None:
    """Refuse the local-only ``options`` that were given (a name to its value)."""
    given = [name for name, value in options.items() if value not in (None, [], (), False)]
    if given:
        raise _usage(
            f"{', '.join(given)} cannot be used with --server: the server runs its own store "
            "and models, and acts as the user of the API key"
        )


def _dump(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=True, default=str) + "\n")


def _record(s: SessionSummary) -> SessionRecord:
    """A session as the server reports it, in the shape the local views read."""
    return SessionRecord(
        id=s.id,
        agent=s.agent,
        agent_version=s.version,
        user_id=s.user,
        status=s.status,
        created_at=s.created_at,
        updated_at=s.updated_at,
        step=s.step,
        event_count=s.last_seq if isinstance(s, SessionOut) else 0,
        usage=Usage(**s.usage.model_dump()) if isinstance(s, SessionOut) else Usage(),
        last_error=s.last_error,
        cost=s.cost,
        tenant_id=s.tenant,
    )


def _row(s: SessionSummary) -> dict[str, Any]:
    """The local ``--json`` row of a session, without what the server does not say."""
    row = asdict(_record(s))
    unknown = _NOT_SERVED if isinstance(s, SessionOut) else (*_NOT_SERVED, "usage", "event_count")
    for key in unknown:
        del row[key]
    return row


def _event(ev: EventOut) -> Event:
    return Event.from_dict(ev.model_dump())


def _event_json(ev: EventOut) -> dict[str, Any]:
    """As ``Event.to_dict`` (``usage`` only when there is one)."""
    return _event(ev).to_dict()


def _when(t: float) -> str:
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def _cell(value: Any) -> Text:
    return Text(visible(str(value), one_line=True))


def _sessions_table(items: list[SessionSummary]) -> Table:
    """The local sessions table, but for the token count, which a session list does not carry."""
    table = Table(title="sessions", title_justify="left")
    for col in ("id", "agent", "status", "steps", "cost", "started", "updated"):
        table.add_column(col, justify="right" if col in {"steps", "cost"} else "left")
    for s in items:
        table.add_row(
            _cell(s.id),
            _cell(f"{s.agent} v{s.version}"),
            _cell(s.status),
            str(s.step),
            f"${s.cost:.4f}",
            _when(s.created_at),
            _when(s.updated_at),
        )
    return table


# --- sessions -------------------------------------------------------------------------------


def sessions_list(
    client: Client, *, limit: int, status: str | None, agent: str | None, as_json: bool
) -> None:
    """``tether sessions list --server``: the caller's sessions (an admin's: all), newest first."""
    with _reported(), client:
        page = client.list_sessions(status=status, agent=agent, limit=limit)
    if as_json:
        _dump([_row(s) for s in page.items])
        return
    out.print(_sessions_table(list(page.items)))
    if page.next_cursor is not None:
        err.print(Text(f"(the first {len(page.items)}; --limit shows more)", style="dim"))


def sessions_show(client: Client, session_id: str, *, as_json: bool) -> None:
    """``tether sessions show ID --server``: the session and every stored event."""
    with _reported(), client:
        session = client.get_session(session_id)
        events: list[EventOut] = []
        after = 0
        while True:
            page = client.events(session_id, after=after)
            events.extend(page.items)
            if not page.items or page.next_after is None or page.next_after <= after:
                break
            after = page.next_after
    if as_json:
        _dump({"session": _row(session), "events": [_event_json(e) for e in events]})
        return
    out.print(timeline_table(_record(session), [_event(e) for e in events]))


# --- approvals ------------------------------------------------------------------------------

_APPROVAL_KEYS = ("id", "session_id", "tool", "arguments", "summary", "explanation", "mode",
                  "expires_at", "tainted", "flagged", "warning")  # fmt: skip


#: the server's default page; a larger one may be refused
_APPROVALS_PAGE = 50


def approvals_list(client: Client, *, as_json: bool) -> None:
    """``tether approvals list --server``: what waits for this key's user (an approver's
    tenant, for approvers)."""
    with _reported(), client:
        pending = client.approvals(limit=_APPROVALS_PAGE).items
    if len(pending) == _APPROVALS_PAGE:  # the API has no next page to ask for
        err.print(Text(f"(the first {_APPROVALS_PAGE} the server lists)", style="dim"))
    if as_json:
        _dump([{k: getattr(p, k) for k in _APPROVAL_KEYS} for p in pending])
        return
    if not pending:
        out.print("nothing is waiting for approval")
        return
    out.print(approvals_table(pending))


@dataclass(slots=True)
class _Outcome:
    """How a streamed turn ended, whichever way the stream ended."""

    session_id: str | None = None
    status: str | None = None
    output: str | None = None
    error: str | None = None
    approval: ApprovalOut | None = None
    question: QuestionOut | None = None


def _run_turn(client: Client, items: Iterator[StreamEvent], printer: LiveTurnPrinter) -> _Outcome:
    """Show a turn's events as they come; what it ended with.

    A stream picked up again after a break ends with the session's status
    instead of the turn's summary: the rest is read from the session.
    """
    got = _Outcome()
    for item in items:
        if item.event is not None:
            printer(_event(item.event))
            got.session_id = item.event.session_id
            if item.event.type == EventType.TURN_COMPLETED:
                got.output = item.event.data.get("output")
        elif item.turn is not None:
            t = item.turn
            got = _Outcome(t.session_id, t.status, t.output, t.error, t.approval, t.question)
        elif item.problem is not None:
            raise ServerError(item.problem)
        elif item.kind == StreamKind.END and item.end is not None:
            got.status = item.end.status
            if got.session_id is not None:
                session = client.get_session(got.session_id)
                got.approval, got.question = session.pending_approval, session.question
                if got.status == SessionStatus.FAILED:
                    got.error = session.last_error
    return got


def _print_answer(got: _Outcome, printer: LiveTurnPrinter) -> None:
    """The answer on stdout, unless the live printer showed that very text on the terminal."""
    if got.output is None:
        return
    shown = printer.last_streamed.strip() == got.output.strip()
    if shown and printer.console.is_terminal and out.is_terminal:
        return
    out.print(got.output, markup=False, highlight=False)


def decide(client: Client, approval_id: str, approve: bool, reason: str | None) -> None:
    """``tether approvals approve|deny ID --server``: decide, then show the turn it continues."""
    printer = LiveTurnPrinter(err)
    with _reported(), client:
        got = _run_turn(client, client.stream_decide(approval_id, approve, reason), printer)
    _print_answer(got, printer)
    err.print(Text(f"session {got.session_id or '?'} · {got.status or '?'}", style="dim"))
    if got.error:
        err.print(Text(f"error: {got.error}", style="bold red"))
        raise typer.Exit(1)


# --- chat ------------------------------------------------------------------------------------


class _Chat:
    """A conversation with an agent the server serves: the session once it exists, and
    what it waits for (a yes or no to an approval, an answer to a question)."""

    def __init__(self, client: Client, agent: str, server: str) -> None:
        self.client = client
        self.agent = agent
        self.server = server
        self.printer = LiveTurnPrinter(out)
        self.session_id: str | None = None
        self.approval: ApprovalOut | None = None
        self.question: QuestionOut | None = None

    def open(self, session_id: str | None) -> None:
        """Check the agent (and the session to continue), and say what to type."""
        session = None if session_id is None else self.client.get_session(session_id)
        if session is None:
            served = {a.name: a for a in self.client.agents().items}
            if self.agent not in served:
                names = ", ".join(sorted(served)) or "none"
                raise _usage(
                    f"the server at {self.server} serves no agent {self.agent!r} (it serves: "
                    f"{names}); with --server, AGENT is the name of a served agent"
                )
            version = served[self.agent].version
        elif session.agent != self.agent:
            raise _usage(f"session {session.id} talks to {session.agent!r}, not {self.agent!r}")
        else:
            self.session_id, version = session.id, session.version
        out.print(_cell(f"{self.agent} v{version} · type /exit or Ctrl-D to leave"), style="dim")
        if session is not None:
            self._show_waiting(session)

    def _show_waiting(self, session: SessionOut) -> None:
        """What a continued session waits for, as the live printer shows it when asked."""
        self.approval, self.question = session.pending_approval, session.question
        if self.approval is not None:
            a = self.approval
            data = {"approval_id": a.id, "call_id": a.call_id, "tool": a.tool,
                    "arguments": a.arguments, "summary": a.summary,
                    "explanation": a.explanation, "mode": a.mode, "flagged": a.flagged,
                    "warning": a.warning, "tainted": a.tainted}  # fmt: skip
            self.printer(Event(EventType.APPROVAL_REQUESTED, session.id, session.step, 0.0, data))
        elif self.question is not None:
            data = {"call_id": self.question.call_id, "question": self.question.question}
            self.printer(Event(EventType.CLARIFY_ASKED, session.id, session.step, 0.0, data))
        self._hint_operator()

    def _hint_operator(self) -> None:
        if self.approval is not None and self.approval.mode == "operator":
            hint = f"tether approvals approve {self.approval.id} --server {self.server}"
            out.print(_cell(f"  (an approver decides it: {hint})"), style="dim")
            self.approval = None  # not the user's to answer here

    def say(self, line: str) -> None:
        """Send ``line`` as what the session waits for: a decision, an answer, or a message."""
        if self.approval is not None:
            verdict = parse_reply(line)
            if verdict is None:
                out.print(Text("  ? please answer yes or no", style="bold yellow"))
                return
            items = self.client.stream_decide(self.approval.id, verdict)
        elif self.question is not None and self.session_id is not None:
            items = self.client.stream_answer(self.session_id, line)
        else:
            if self.session_id is None:
                self.session_id = self.client.create_session(self.agent).id
            items = self.client.stream(self.session_id, line)
        got = _run_turn(self.client, items, self.printer)
        self.session_id = got.session_id or self.session_id
        if got.output is not None and self.printer.last_streamed.strip() != got.output.strip():
            out.print(Text("agent> ", style="bold green"), end="")
            out.print(Text(visible(got.output)))
        self.approval, self.question = got.approval, got.question
        self._hint_operator()

    def resync(self) -> None:
        """After an error, read what the session waits for from the server."""
        if self.session_id is None:
            return
        try:
            session = self.client.get_session(self.session_id)
        except RunError:
            return
        self.approval, self.question = session.pending_approval, session.question
        self._hint_operator()


def chat(client: Client, agent: str, session_id: str | None, server: str) -> None:
    """``tether chat NAME --server``: talk to a served agent; approvals and questions are
    answered here and sent through the API."""
    talk = _Chat(client, agent, server)
    with client:
        with _reported():
            talk.open(session_id)
        while True:
            try:
                line = input("you> ")
            except (EOFError, KeyboardInterrupt):
                out.print()
                break
            if line.strip() in {"/exit", "/quit"}:
                break
            if not line.strip():
                continue
            try:
                talk.say(line)
            except RunError as exc:
                err.print(Text(f"error: {one_line(str(exc))}", style="bold red"))
                talk.resync()
            except KeyboardInterrupt:
                sid = talk.session_id
                where = f"session {sid}" if sid else "the session"
                err.print(
                    Text(
                        f"interrupted: {where} goes on on the server; see it with `tether "
                        f"sessions show {sid or 'ID'} --server {server}`, go on with `tether chat "
                        f"{agent} --session {sid or 'ID'} --server {server}`",
                        style="yellow",
                    )
                )
                raise typer.Exit(130) from None
    if talk.session_id:
        out.print(Text(f"session {talk.session_id}", style="dim"))
