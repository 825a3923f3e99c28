"""Alerts: what a person must act on, sent to a log and (optionally) a signed webhook.

An :class:`Alert` says what happened (its :class:`AlertKind`), how bad it is
(:class:`Severity`), one sentence for a person, and where (agent, version,
session). An :class:`AlertSink` delivers one (a single method, ``send``):
:class:`LogSink` logs it on ``tether.alerts``; :class:`WebhookSink` POSTs it as
JSON, signed with a shared secret and retried. An :class:`Alerter` sends each
alert to all its sinks at once, skipping repeats of the same ``Alert.id``
within a window, and is an observer of the runtime
(``Runtime(observers=[alerter])``): it turns ``breaker.opened``,
``budget.exhausted``, ``operator.alert`` and ``tool.definition_changed``
events into alerts and sends them
in the background, never blocking or failing a turn.

The rest are raised by whoever sees them: :meth:`Alerter.check_waiting` for
approvals waiting longer than a limit (run it periodically with
:func:`waiting_approvals`), :meth:`Alert.readiness_failed` and
:meth:`Alert.canary_rolled_back` passed to :meth:`Alerter.notify` (waits) or
:meth:`Alerter.submit` (sends in the background).

**Webhook signature.** Each POST carries ``X-Tether-Alert-Id`` (the
de-duplication key: a receiver that sees an id twice may drop the second) and
``X-Tether-Signature: t=<unix seconds>,v1=<hex>``, where ``<hex>`` is the
HMAC-SHA256, keyed with the shared secret, of ``f"{t}.".encode() + body`` (the
raw request body bytes). Each attempt is signed afresh (a new ``t``, the same
body), so a receiver may refuse a timestamp more than a few minutes old
without refusing a late retry. A receiver checks it so::

    import hashlib, hmac, time

    def verified(secret: str, body: bytes, header: str, tolerance: float = 300) -> bool:
        fields = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        t = fields.get("t", "")
        if not t.isdigit() or abs(time.time() - int(t)) > tolerance:
            return False
        mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(mac, fields.get("v1", ""))

(:func:`verify` does the same.) Delivery is retried on connection errors,
timeouts, 408, 429 and 5xx, with exponential backoff and jitter, honouring
``Retry-After`` up to a cap; never on another 4xx. A delivery that fails for
good is logged (the URL without its path or query, which may hold a token)
and never raised to the caller.

Configuration from the environment (:func:`alerter_from_env`):
``TETHER_ALERT_WEBHOOK_URL`` and ``TETHER_ALERT_WEBHOOK_SECRET`` (both, or
neither), ``TETHER_ALERT_WEBHOOK_ATTEMPTS`` (5), ``TETHER_ALERT_WEBHOOK_TIMEOUT``
(5 s), ``TETHER_ALERT_DEDUPE_S`` (300), ``TETHER_ALERT_APPROVAL_WAIT`` (900 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from tether.exceptions import ConfigError
from tether.runtime.observe import SessionTag
from tether.runtime.ports import SessionStatus, SessionStore
from tether.runtime.state import SessionState
from tether.spec.events import Event, EventType
from tether.surfaces.ops.webhook import (
    ALERT_ID_HEADER,
    SIGNATURE_HEADER,
    WEBHOOK_RETRY,
    WebhookSink,
    checked_url,
    sign,
    verify,
)

__all__ = [
    "ALERT_ID_HEADER",
    "SIGNATURE_HEADER",
    "WEBHOOK_RETRY",
    "Alert",
    "AlertKind",
    "AlertSink",
    "Alerter",
    "LogSink",
    "Severity",
    "WaitingApproval",
    "WebhookSink",
    "alert_for_event",
    "alerter_from_env",
    "sign",
    "verify",
    "waiting_approvals",
]

log = logging.getLogger("tether.alerts")


Sleep = Callable[[float], Awaitable[None]]


class AlertKind(StrEnum):
    """What a person is alerted about."""

    BREAKER_OPENED = "breaker_opened"
    CANARY_ROLLED_BACK = "canary_rolled_back"
    APPROVAL_WAITING = "approval_waiting"
    READINESS_FAILED = "readiness_failed"
    BUDGET_EXHAUSTED = "budget_exhausted"
    #: an ``operator.alert`` event: a tool call a person must check
    OPERATOR = "operator"
    #: a ``tool.definition_changed`` event: a tool source's tool is quarantined
    TOOL_CHANGED = "tool_changed"


class Severity(StrEnum):
    """How soon a person should act: ``critical`` now, ``warning`` soon."""

    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """Something a person must act on.

    ``id`` is the de-duplication key (kind and subject: the breaker, the
    session, the approval); it defaults to kind, agent, version and session.
    ``time`` is a Unix timestamp; ``details`` holds JSON-ready facts.
    """

    kind: AlertKind
    severity: Severity
    summary: str
    time: float
    agent: str | None = None
    version: str | None = None
    session_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            subject = ":".join(x or "-" for x in (self.agent, self.version, self.session_id))
            object.__setattr__(self, "id", f"{self.kind}:{subject}")

    def to_dict(self) -> dict[str, Any]:
        """The alert as JSON-ready data (the webhook's body)."""
        return {
            "id": self.id,
            "kind": str(self.kind),
            "severity": str(self.severity),
            "summary": self.summary,
            "time": self.time,
            "agent": self.agent,
            "version": self.version,
            "session_id": self.session_id,
            "details": dict(self.details),
        }

    @classmethod
    def readiness_failed(cls, agent: str, version: str, reason: str, *, time: float) -> Alert:
        """``/readyz`` failed for ``agent``'s active ``version`` (one per agent and version)."""
        return cls(
            kind=AlertKind.READINESS_FAILED,
            severity=Severity.CRITICAL,
            summary=f"Readiness check failed for agent {agent} version {version}: {reason}.",
            time=time,
            agent=agent,
            version=version,
            details={"reason": reason},
            id=f"{AlertKind.READINESS_FAILED}:{agent}:{version}",
        )

    @classmethod
    def canary_rolled_back(
        cls, agent: str, version: str, *, to_version: str, reason: str, time: float
    ) -> Alert:
        """Canary ``version`` of ``agent`` was rolled back to ``to_version``."""
        return cls(
            kind=AlertKind.CANARY_ROLLED_BACK,
            severity=Severity.CRITICAL,
            summary=(
                f"Canary version {version} of agent {agent} was rolled back to "
                f"{to_version}: {reason}."
            ),
            time=time,
            agent=agent,
            version=version,
            details={"to_version": to_version, "reason": reason},
            id=f"{AlertKind.CANARY_ROLLED_BACK}:{agent}:{version}",
        )


def _who(tag: SessionTag) -> dict[str, Any]:
    return {k: v for k, v in (("user", tag.user), ("tenant", tag.tenant)) if v is not None}


def alert_for_event(ev: Event, tag: SessionTag) -> Alert | None:
    """The alert an event calls for, if any: a breaker opened, a budget ran out, an
    operator alert, a quarantined tool. Pure: nothing is sent."""
    where = f"session {ev.session_id} of agent {tag.agent} version {tag.version}"
    base: dict[str, Any] = {
        "time": ev.time,
        "agent": tag.agent,
        "version": tag.version,
        "session_id": ev.session_id,
    }
    data = ev.data
    if ev.type == EventType.BREAKER_OPENED:
        key = str(data.get("key", ""))
        cooldown = data.get("cooldown")
        model = key.startswith("model:")
        what = f"model {key[6:]}" if model else f"tool {key.rsplit(':', 1)[-1]}"
        wait = f" for {cooldown:g} s" if isinstance(cooldown, int | float) else ""
        return Alert(
            kind=AlertKind.BREAKER_OPENED,
            severity=Severity.CRITICAL if model else Severity.WARNING,
            summary=f"The circuit breaker for {what} opened: calls to it fail fast{wait} "
            f"(first seen in {where}).",
            details={"key": key, "cooldown": cooldown, **_who(tag)},
            id=f"{AlertKind.BREAKER_OPENED}:{key}",
            **base,
        )
    if ev.type == EventType.BUDGET_EXHAUSTED:
        used, cap = data.get("used"), data.get("max_tokens")
        spent = (
            f" ({used:,} of {cap:,} tokens)"
            if isinstance(used, int) and isinstance(cap, int)
            else ""
        )
        return Alert(
            kind=AlertKind.BUDGET_EXHAUSTED,
            severity=Severity.WARNING,
            summary=f"{where[0].upper()}{where[1:]} ended: its token budget ran out{spent}.",
            details={"used": used, "max_tokens": cap, **_who(tag)},
            id=f"{AlertKind.BUDGET_EXHAUSTED}:{ev.session_id}",
            **base,
        )
    if ev.type == EventType.OPERATOR_ALERT:
        tool, reason = data.get("tool"), data.get("reason")
        return Alert(
            kind=AlertKind.OPERATOR,
            severity=Severity.CRITICAL,
            summary=f"A person must check tool {tool} in {where}: {reason}.",
            details={"tool": tool, "call_id": data.get("call_id"), "reason": reason, **_who(tag)},
            id=f"{AlertKind.OPERATOR}:{ev.session_id}:{data.get('call_id')}",
            **base,
        )
    if ev.type == EventType.TOOL_DEFINITION_CHANGED:
        server, tool, reason = data.get("server"), data.get("tool"), data.get("reason")
        why = {
            "changed": "its definition changed",
            "new": "it is new",
            "injection": "its description reads as a prompt injection",
        }.get(str(reason), str(reason))
        return Alert(
            kind=AlertKind.TOOL_CHANGED,
            severity=Severity.WARNING,
            summary=f"Tool {tool} of server {server} is quarantined for agent {tag.agent} "
            f"version {tag.version} ({why}): hidden from the model until accepted with "
            f"`tether tools accept {tag.agent} --version {tag.version} --server {server} "
            f"--tool {tool}` (first seen in {where}).",
            details={
                "server": server,
                "tool": tool,
                "reason": reason,
                "old_hash": data.get("old_hash"),
                "new_hash": data.get("new_hash"),
                "diff": data.get("diff"),
                **_who(tag),
            },
            id=f"{AlertKind.TOOL_CHANGED}:{tag.agent}:{tag.version}:{server}:{tool}:"
            f"{data.get('new_hash')}",
            **base,
        )
    return None


@dataclass(frozen=True, slots=True)
class WaitingApproval:
    """An approval waiting for a decision, and since when (``requested_at``, Unix time)."""

    id: str
    session_id: str
    agent: str
    version: str
    tool: str
    requested_at: float
    summary: str = ""
    mode: str = "user"
    expires_at: float | None = None


async def waiting_approvals(store: SessionStore) -> list[WaitingApproval]:
    """Every approval waiting in ``store`` (sessions in ``awaiting_approval``), oldest first."""
    out: list[WaitingApproval] = []
    for rec in await store.list_sessions(limit=None, status=SessionStatus.AWAITING_APPROVAL):
        events = await store.events(rec.id)
        pending = SessionState.from_events(rec.id, events).pending_approval
        if pending is None:
            continue
        asked = next(
            (
                e.time
                for e in reversed(events)
                if e.type == EventType.APPROVAL_REQUESTED
                and e.data.get("approval_id") == pending["approval_id"]
            ),
            rec.updated_at,
        )
        expires = pending.get("expires_at")
        out.append(
            WaitingApproval(
                id=str(pending["approval_id"]),
                session_id=rec.id,
                agent=rec.agent,
                version=rec.agent_version,
                tool=str(pending.get("tool", "")),
                requested_at=asked,
                summary=str(pending.get("summary", "")),
                mode=str(pending.get("mode", "user")),
                expires_at=float(expires) if expires is not None else None,
            )
        )
    return sorted(out, key=lambda w: w.requested_at)


class AlertSink(Protocol):
    """Delivers alerts somewhere a person looks."""

    async def send(self, alert: Alert) -> None:
        """Deliver ``alert``; a sink should not raise (the :class:`Alerter` logs it if it does)."""
        ...


class LogSink:
    """Logs each alert on ``tether.alerts`` (WARNING or CRITICAL), its fields as extras."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or log

    async def send(self, alert: Alert) -> None:
        level = logging.CRITICAL if alert.severity == Severity.CRITICAL else logging.WARNING
        extra = {
            "alert_id": alert.id,
            "alert_kind": str(alert.kind),
            "severity": str(alert.severity),
            "agent": alert.agent,
            "version": alert.version,
            "session_id": alert.session_id,
            "details": dict(alert.details),
        }
        self._log.log(level, "alert %s: %s", alert.kind, alert.summary, extra=extra)


class Alerter:
    """Sends alerts to every sink at once, once per ``Alert.id`` within ``dedupe_window``.

    Also an observer (``Runtime(observers=[alerter])``): events that call for
    an alert (:func:`alert_for_event`) are sent in background tasks, so a
    turn never waits for, or fails because of, a delivery. ``aclose`` waits
    for those (up to a timeout), then closes the sinks.

    - ``approval_wait``: seconds an approval may wait before
      :meth:`check_waiting` raises an alert for it;
    - ``clock``: for the de-duplication window and ``check_waiting``.
    """

    def __init__(
        self,
        sinks: Sequence[AlertSink] = (),
        *,
        dedupe_window: float = 300.0,
        approval_wait: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not (0 <= dedupe_window < math.inf and 0 < approval_wait < math.inf):  # NaN fails
            raise ConfigError(
                "Alerter: dedupe_window must be >= 0 and approval_wait > 0 seconds (finite), "
                f"not {dedupe_window} and {approval_wait}"
            )
        self.sinks = tuple(sinks)
        self.dedupe_window = dedupe_window
        self.approval_wait = approval_wait
        self._clock = clock
        self._sent: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def __repr__(self) -> str:
        return f"Alerter({list(self.sinks)!r})"

    def _claim(self, alert: Alert) -> bool:
        """Whether ``alert`` is new (not sent within the window); marks it sent."""
        now = self._clock()
        horizon = now - self.dedupe_window
        for key in [k for k, at in self._sent.items() if at <= horizon]:
            del self._sent[key]
        if alert.id in self._sent:
            return False
        self._sent[alert.id] = now
        return True

    async def notify(self, alert: Alert) -> bool:
        """Send ``alert`` to every sink; ``False`` when it repeats one sent within the window."""
        if not self._claim(alert):
            log.debug(
                "alert %s repeats one sent within %g s; not sent", alert.id, self.dedupe_window
            )
            return False
        await self._deliver(alert)
        return True

    async def _deliver(self, alert: Alert) -> None:
        await asyncio.gather(*(self._send(sink, alert) for sink in self.sinks))

    async def _send(self, sink: AlertSink, alert: Alert) -> None:
        try:
            await sink.send(alert)
        except Exception:
            log.exception("alert sink %r failed to send alert %s", sink, alert.id)

    def submit(self, alert: Alert) -> bool:
        """Send ``alert`` in a background task and return at once (``False``: a repeat,
        the alerter is closed, or there is no running event loop). Never raises.

        For callers that must not wait for a slow receiver: a readiness probe, a
        turn. :meth:`flush` and :meth:`aclose` wait for what was submitted.
        """
        try:
            if self._closed:
                log.warning("alert %s raised after the alerter closed; not sent", alert.id)
                return False
            loop = asyncio.get_running_loop()  # before claiming: no loop, nothing is marked sent
            if not self._claim(alert):
                return False
            task = loop.create_task(self._deliver(alert), name=f"tether-alert-{alert.kind}")
        except Exception:
            log.exception("could not raise alert %s", alert.id)
            return False
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    def __call__(self, ev: Event, tag: SessionTag) -> None:
        """Observe an event: one that calls for an alert is :meth:`submit`-ted."""
        try:
            alert = alert_for_event(ev, tag)
        except Exception:
            log.exception("could not make an alert of a %s event", ev.type)
            return
        if alert is not None:
            self.submit(alert)

    async def check_waiting(
        self, pending: Iterable[WaitingApproval], now: float | None = None
    ) -> list[Alert]:
        """Raise ``approval_waiting`` for each approval older than ``approval_wait``.

        Returns the alerts sent (a repeat within the window is not). Run it
        periodically; an approval still waiting is raised again once per
        de-duplication window.
        """
        at = self._clock() if now is None else now
        fresh: list[Alert] = []
        for item in pending:
            waited = at - item.requested_at
            if waited < self.approval_wait:
                continue
            alert = Alert(
                kind=AlertKind.APPROVAL_WAITING,
                severity=Severity.WARNING,
                summary=(
                    f"Approval {item.id} ({item.tool}) in session {item.session_id} of agent "
                    f"{item.agent} has waited {waited / 60:.0f} min for a decision."
                ),
                time=at,
                agent=item.agent,
                version=item.version,
                session_id=item.session_id,
                details={
                    "approval_id": item.id,
                    "tool": item.tool,
                    "mode": item.mode,
                    "summary": item.summary,
                    "requested_at": item.requested_at,
                    "expires_at": item.expires_at,
                    "waited_s": round(waited, 1),
                },
                id=f"{AlertKind.APPROVAL_WAITING}:{item.id}",
            )
            if self._claim(alert):
                fresh.append(alert)
        await asyncio.gather(*(self._deliver(a) for a in fresh))
        return fresh

    async def flush(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - reason: it says whether time ran out; nothing is cancelled
        """Wait for the alerts sent in the background; ``False`` if some outlived ``timeout``."""
        if not self._tasks:
            return True
        _done, left = await asyncio.wait(set(self._tasks), timeout=timeout)
        return not left

    async def aclose(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - reason: a bound on the whole shutdown, not one await
        """Refuse new alerts, wait up to ``timeout`` for those in flight, cancel, close sinks."""
        self._closed = True
        if not await self.flush(timeout):
            left = [t for t in self._tasks if not t.done()]
            log.warning("%d alert(s) still being sent after %g s; cancelled", len(left), timeout)
            for task in left:
                task.cancel()
            await asyncio.gather(*left, return_exceptions=True)
        for sink in self.sinks:
            close = getattr(sink, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()

    async def __aenter__(self) -> Alerter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):  # nan, inf, not a number
        raise ConfigError(
            f"{name}={raw!r} is not a number of seconds: set a number, at least {minimum:g} "
            f"(or unset it for the default, {default:g})"
        )
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum:g}: set a larger number")
    return value


def _attempts(env: Mapping[str, str]) -> int:
    raw = env.get("TETHER_ALERT_WEBHOOK_ATTEMPTS", "").strip()
    if not raw:
        return WEBHOOK_RETRY.max_retries + 1
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(
            f"TETHER_ALERT_WEBHOOK_ATTEMPTS={raw!r} must be a whole number, 1 or more"
        )
    return int(raw)


def alerter_from_env(environ: Mapping[str, str] = os.environ) -> Alerter:
    """An :class:`Alerter` as the environment says: always a :class:`LogSink`, and a
    :class:`WebhookSink` when ``TETHER_ALERT_WEBHOOK_URL`` is set.

    Raises :class:`~tether.exceptions.ConfigError` (at start-up) for a webhook
    URL without ``TETHER_ALERT_WEBHOOK_SECRET``, a URL that is not http(s) or
    does not parse (no host, a port outside 1-65535...), or a number that is
    not a finite one (``nan``, ``inf``) or is below its minimum.
    """
    sinks: list[AlertSink] = [LogSink()]
    url = environ.get("TETHER_ALERT_WEBHOOK_URL", "").strip()
    secret = environ.get("TETHER_ALERT_WEBHOOK_SECRET", "")
    if url:
        checked_url(url, "TETHER_ALERT_WEBHOOK_URL")
        if len(secret) < 16:
            raise ConfigError(
                "TETHER_ALERT_WEBHOOK_URL is set but TETHER_ALERT_WEBHOOK_SECRET is "
                f"{'missing' if not secret else 'shorter than 16 characters'}: alerts are "
                "signed with it. Set it to a long random value shared with the receiver, e.g. "
                "python -c 'import secrets; print(secrets.token_hex(32))'"
            )
        attempts = _attempts(environ)
        timeout = _number(environ, "TETHER_ALERT_WEBHOOK_TIMEOUT", 5.0, minimum=0.1)
        retry = dataclasses.replace(WEBHOOK_RETRY, max_retries=attempts - 1)
        sinks.append(WebhookSink(url, secret, retry=retry, timeout=timeout))
    elif secret:
        log.warning(
            "TETHER_ALERT_WEBHOOK_SECRET is set without TETHER_ALERT_WEBHOOK_URL: no webhook"
        )
    return Alerter(
        sinks,
        dedupe_window=_number(environ, "TETHER_ALERT_DEDUPE_S", 300.0, minimum=0),
        approval_wait=_number(environ, "TETHER_ALERT_APPROVAL_WAIT", 900.0, minimum=1),
    )
