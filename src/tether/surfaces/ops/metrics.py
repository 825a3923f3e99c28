"""Prometheus metrics: an observer of every turn (see :mod:`tether.runtime.observe`).

:class:`Metrics` is an :class:`~tether.runtime.observe.Observer`: install it
with ``Runtime(observers=[metrics])`` and serve :meth:`Metrics.render` (the
server's ``GET /metrics``, :mod:`tether.surfaces.server.metrics_route`).
It keeps its own :class:`~prometheus_client.CollectorRegistry` (no global
one). Every name starts with ``tether_``; labels are agent, version, model,
tool and small closed sets (outcome, kind, reason...), never a user or a
session id: each label value is a time series kept forever.

It runs inline on every event of every turn, so it does little: one dict
lookup picks the handler, and each metric's labelled children are cached
by label tuple. Durations come from the events' own ``time`` (the
runtime's clock): time to first token is ``turn.started`` to the first
streamed text (or the first model answer when nothing streamed), a turn's
duration is ``turn.started`` to ``turn.ended``, an approval's wait is its
request to its decision, when this process saw both. What it remembers
between events (turns in flight by session, approval request times) is
dropped as soon as it is used and bounded by ``max_tracked``.

**Label values** are cut at 80 characters and made encodable (a lone
surrogate is written as its ``\\udXXX`` escape), so no value can break a
scrape. The ``tool`` label is the model's choice of name, so a made-up name
would be a new series forever: a call is labelled with its tool's name only
when that name is known to be one of the agent version's tools, else
``_unknown`` (:data:`UNKNOWN_TOOL`). The observer is not given the agent's
tools; it learns them from what only a real tool gets: a ``tool.started``
event (a call of a name the agent does not have ends in an error result
without one), an approval request, or a call that finished without an error.
:meth:`Metrics.declare_tools` names them up front (the server does, for the
agents it was started with), so that a refused call of a real tool that never
ran in this process is not ``_unknown`` either. At most 500 names are kept per
agent version.

**Pending approvals** (``tether_approvals_pending``) follow the events
this process sees, clamped at zero: a request made in one process may be
decided in another, so they drift. The store is the authority: call
:meth:`Metrics.set_pending` (or :meth:`Metrics.refresh_pending` with the
store) every few seconds to bring the gauge back to the truth; the events
move it in between. ``tether_approvals_oldest_pending_seconds`` comes from
the store only (:meth:`Metrics.refresh_pending`).

**Several worker processes** (``PROMETHEUS_MULTIPROC_DIR``): set the
variable, to an empty folder, *before* the process starts (prometheus_client
chooses where values live when it is imported; :class:`Metrics` refuses to
start when it was imported first). Each worker writes its values to files
there and :meth:`Metrics.render` merges every worker's files. Counters and
histograms add up. Gauges: ``tether_breaker_open`` and the approval gauges
are ``livemostrecent`` (the latest value any live worker set wins: a
breaker opened in one worker and closed, through the shared Redis state, in
another reads closed; each worker's store sync gives the same pending
count); ``tether_turns_in_flight`` is ``livesum``.
"Live" means a dead worker's gauges are dropped once
``prometheus_client.multiprocess.mark_process_dead(pid)`` is called for it
(gunicorn's ``child_exit`` hook). Use one :class:`Metrics` per process in
this mode: two in one process share the same files and overwrite each other.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Generic, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector

from tether.exceptions import ConfigError
from tether.runtime.observe import TURN_ENDED, TURN_STARTED, SessionTag
from tether.spec.events import Event, EventType, SessionStatus

if TYPE_CHECKING:
    from tether.runtime.ports import SessionStore

__all__ = ["MULTIPROC_ENV", "UNKNOWN_TOOL", "Metrics"]

#: the environment variable naming the folder where each worker writes its values
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_M = TypeVar("_M", Counter, Gauge, Histogram)
_AV = ("agent", "version")
_MAX_LABEL = 80  # a longer label value is cut: labels name things, they do not quote them
#: the ``tool`` label of a call whose name is not known to be one of the agent's tools
UNKNOWN_TOOL = "_unknown"
#: the most tool names remembered as real per agent version (a guard: agents declare fewer)
_MAX_TOOLS = 500

_TURN_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
_TTFT_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)
_MODEL_BUCKETS = (0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)
_TOOL_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_WAIT_BUCKETS = (10, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600)


class _Children(Generic[_M]):
    """A labelled metric's children, cached by label tuple (``labels()`` costs a lock)."""

    __slots__ = ("_cache", "_metric")

    def __init__(self, metric: _M) -> None:
        self._metric: _M = metric
        self._cache: dict[tuple[str, ...], _M] = {}

    def __call__(self, *labels: str) -> _M:
        child = self._cache.get(labels)
        if child is None:  # a new label tuple: made encodable once, here, whatever its source
            child = self._cache[labels] = self._metric.labels(*map(_encodable, labels))
        return child


class _Turn:
    __slots__ = ("start", "waiting")

    def __init__(self, start: float) -> None:
        self.start = start
        self.waiting = True  # for its first token


def _encodable(text: str) -> str:
    """``text`` as UTF-8 can write it: a lone surrogate (``json.loads`` makes one of a
    model's ``"\\ud800"``) becomes its ``\\ud800`` escape instead of failing every scrape."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _label(value: object) -> str:
    text = "unknown" if value is None or value == "" else str(value)
    return _encodable(text)[:_MAX_LABEL]


def _multiprocess_dir() -> str | None:
    path = os.environ.get(MULTIPROC_ENV) or None
    if path is None:
        return None
    if not getattr(values.ValueClass, "_multiprocess", False):
        raise ConfigError(
            f"{MULTIPROC_ENV} is set, but prometheus_client was imported before it was, so "
            "this process keeps its metrics in memory and no worker would see them: set it "
            "in the environment the server starts with (the service unit, the container)"
        )
    if not os.path.isdir(path):
        raise ConfigError(
            f"{MULTIPROC_ENV}={path!r} is not a folder: create it (empty) before the workers start"
        )
    return path


class Metrics:
    """Prometheus metrics of every observed turn; see the module docstring.

    ``registry``: where the metrics are registered (default: a new one of
    their own). ``max_tracked``: how many turns in flight and approval
    requests it remembers at most (the oldest is forgotten first).
    ``clock``: what :meth:`refresh_pending` measures waits against.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        max_tracked: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_tracked < 1:
            raise ConfigError(f"max_tracked must be at least 1, got {max_tracked}")
        self.registry = registry if registry is not None else CollectorRegistry()
        #: the folder the workers write to, when several processes are merged
        self.multiprocess_dir = _multiprocess_dir()
        self._max = max_tracked
        self._clock = clock
        self._turns: dict[str, _Turn] = {}
        self._asked: dict[str, float] = {}
        self._pending_n: dict[str, float] = {}
        #: by (agent, version): the tool names shown to be the agent's own (see _tool)
        self._tools: dict[tuple[str, str], set[str]] = {}

        def counter(name: str, doc: str, labels: tuple[str, ...]) -> _Children[Counter]:
            return _Children(Counter(name, doc, labels, registry=self.registry))

        def histogram(
            name: str, doc: str, labels: tuple[str, ...], buckets: tuple[float, ...]
        ) -> _Children[Histogram]:
            return _Children(Histogram(name, doc, labels, registry=self.registry, buckets=buckets))

        av = _AV
        self._sessions = counter("tether_sessions_created", "Sessions created.", av)
        self._turns_total = counter(
            "tether_turns",
            "Turns run, by outcome: the session's status after the turn, error, or rate_limited.",
            (*av, "outcome"),
        )
        self._in_flight = Gauge(
            "tether_turns_in_flight",
            "Turns in progress in this process.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self._turn_seconds = histogram(
            "tether_turn_duration_seconds", "Turn start to end.", av, _TURN_BUCKETS
        )
        self._ttft = histogram(
            "tether_time_to_first_token_seconds",
            "Turn start to the first streamed text, or the first model answer.",
            av,
            _TTFT_BUCKETS,
        )
        avm = (*av, "model")
        self._model_calls = counter("tether_model_calls", "Model calls answered (steps).", avm)
        self._model_seconds = histogram(
            "tether_model_latency_seconds", "One model call's latency.", avm, _MODEL_BUCKETS
        )
        self._tokens = counter(
            "tether_tokens",
            "Tokens used by model calls (answers, summaries, judges), by kind.",
            (*avm, "kind"),
        )
        self._cost = counter(
            "tether_cost_dollars", "Dollars spent on model calls (priced ones).", avm
        )
        self._degraded = counter(
            "tether_degraded_answers", "Answers given by a fallback model.", avm
        )
        avt = (*av, "tool")
        self._tool_calls = counter("tether_tool_calls", "Tool calls finished.", (*avt, "outcome"))
        self._tool_seconds = histogram(
            "tether_tool_duration_seconds", "One tool call's duration.", avt, _TOOL_BUCKETS
        )
        self._tool_cost = counter(
            "tether_tool_cost_dollars", "Dollars tools reported spending.", avt
        )
        self._retries = counter(
            "tether_retries", "Retries of model and tool calls.", (*av, "call", "reason")
        )
        self._fallbacks = counter(
            "tether_fallbacks", "Fallbacks to the next model.", (*av, "from_model", "to_model")
        )
        self._breaker = _Children(
            Gauge(
                "tether_breaker_open",
                "Circuit breaker state: 1 open, 0 closed.",
                ("key",),
                registry=self.registry,
                multiprocess_mode="livemostrecent",
            )
        )
        self._openings = counter("tether_breaker_openings", "Circuit breakers opened.", ("key",))
        self._asked_total = counter("tether_approvals_requested", "Approvals requested.", avt)
        self._decided = counter(
            "tether_approvals_decided",
            "Approvals decided: approved, denied or expired.",
            (*av, "outcome"),
        )
        self._pending = _Children(
            Gauge(
                "tether_approvals_pending",
                "Approvals waiting for a decision (synced from the store; see the docs).",
                ("agent",),
                registry=self.registry,
                multiprocess_mode="livemostrecent",
            )
        )
        self._oldest = _Children(
            Gauge(
                "tether_approvals_oldest_pending_seconds",
                "How long the oldest session awaiting approval has waited (from the store).",
                ("agent",),
                registry=self.registry,
                multiprocess_mode="livemostrecent",
            )
        )
        self._wait = histogram(
            "tether_approval_wait_seconds",
            "Approval request to decision (both seen by this process).",
            (*av, "outcome"),
            _WAIT_BUCKETS,
        )
        self._flags = counter(
            "tether_guard_flags", "Guard flags on input or tool output.", (*av, "source", "action")
        )
        self._judged = counter(
            "tether_guard_judgements", "Model judge verdicts on tool output.", (*av, "verdict")
        )
        self._claims = counter(
            "tether_unsupported_claims", "Answers claiming an action no tool did.", av
        )
        self._unacked = counter(
            "tether_unacknowledged_failures",
            "Answers that did not mention a failed tool.",
            av,
        )
        self._withheld = counter(
            "tether_answers_withheld", "Answers withheld (system prompt leaks).", (*av, "reason")
        )
        self._limited = counter(
            "tether_rate_limited", "Requests and turns refused by a rate limit.", ("scope", "limit")
        )
        self._budget = counter(
            "tether_budget_exhausted", "Sessions ended by their token budget.", av
        )
        self._limits = counter(
            "tether_limits_reached", "Turns stopped by a tool-call or loop limit.", (*av, "limit")
        )
        self._alerts = counter(
            "tether_operator_alerts", "Operator alerts (a person must check).", av
        )
        self._on: dict[str, Callable[[Event, SessionTag], None]] = {
            EventType.MODEL_DELTA: self._delta,
            EventType.MODEL_RESPONSE: self._model_response,
            EventType.TOOL_STARTED: self._tool_started,
            EventType.TOOL_FINISHED: self._tool_finished,
            TURN_STARTED: self._turn_started,
            TURN_ENDED: self._turn_ended,
            EventType.SESSION_CREATED: self._count(self._sessions),
            EventType.MODEL_RETRY: self._model_retry,
            EventType.TOOL_RETRY: self._tool_retry,
            EventType.MODEL_FALLBACK: self._fallback,
            EventType.BREAKER_OPENED: self._breaker_opened,
            EventType.BREAKER_CLOSED: self._breaker_closed,
            EventType.APPROVAL_REQUESTED: self._approval_requested,
            EventType.APPROVAL_DECIDED: self._approval_decided,
            EventType.APPROVAL_EXPIRED: self._approval_decided,
            EventType.GUARD_FLAGGED: self._guard_flagged,
            EventType.GUARD_JUDGED: self._guard_judged,
            EventType.CONTEXT_COMPRESSED: self._spend,
            EventType.UNSUPPORTED_CLAIM: self._count(self._claims),
            EventType.UNACKNOWLEDGED_FAILURE: self._count(self._unacked),
            EventType.ANSWER_WITHHELD: self._count(self._withheld, "reason"),
            EventType.RATE_LIMITED: self._rate_limited,
            EventType.BUDGET_EXHAUSTED: self._count(self._budget),
            EventType.LIMIT_REACHED: self._count(self._limits, "limit"),
            EventType.OPERATOR_ALERT: self._count(self._alerts),
        }

    # --- the observer ----------------------------------------------------------

    def __call__(self, ev: Event, tag: SessionTag) -> None:
        """Count one event (an :class:`~tether.runtime.observe.Observer`)."""
        handler = self._on.get(ev.type)
        if handler is not None:
            handler(ev, tag)

    # --- called by the server ----------------------------------------------------

    def declare_tools(self, agent: str, version: str, tools: Iterable[str]) -> None:
        """Name ``agent`` ``version``'s tools, so that a call of one refused before any
        of its calls ran in this process is labelled with its name (see the module
        docstring); optional: the events teach the rest."""
        for name in tools:
            self._learn(agent, version, name)

    def refused(self, scope: str, limit: str = "requests") -> None:
        """Count a request the server refused with 429 (``scope``: whose limit, e.g. ``key``)."""
        self._limited(_label(scope), _label(limit)).inc()

    def set_pending(self, agent: str, n: float) -> None:
        """Set ``agent``'s pending approvals to ``n``, counted in the store (the authority)."""
        n = max(0.0, float(n))
        self._pending_n[agent] = n
        self._pending(_label(agent)).set(n)

    async def refresh_pending(self, store: SessionStore) -> None:
        """Set every agent's pending approvals from ``store`` (sessions awaiting approval).

        Also sets how long the oldest has waited (since its session last
        changed). An agent seen before with none left is set to 0. Lists
        every waiting session: call it every few seconds at most, from one
        task.
        """
        waiting = await store.list_sessions(limit=None, status=SessionStatus.AWAITING_APPROVAL)
        now = self._clock()
        counts = dict.fromkeys(self._pending_n, 0)
        oldest = dict.fromkeys(self._pending_n, now)
        for record in waiting:
            agent = record.agent
            counts[agent] = counts.get(agent, 0) + 1
            oldest[agent] = min(oldest.get(agent, now), record.updated_at)
        for agent, n in counts.items():
            self.set_pending(agent, n)
            self._oldest(_label(agent)).set(max(0.0, now - oldest[agent]))

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type; every worker's, in multi-process mode."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        merged = CollectorRegistry()
        # reason: prometheus_client's multiprocess module has no annotations
        MultiProcessCollector(merged, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(merged), CONTENT_TYPE_LATEST

    # --- handlers ----------------------------------------------------------------

    def _count(
        self, children: _Children[Counter], key: str | None = None
    ) -> Callable[[Event, SessionTag], None]:
        if key is None:
            return lambda ev, tag: children(tag.agent, tag.version).inc()
        return lambda ev, tag: children(tag.agent, tag.version, _label(ev.data.get(key))).inc()

    def _turn_started(self, ev: Event, tag: SessionTag) -> None:
        turns = self._turns
        turns.pop(tag.session_id, None)
        if len(turns) >= self._max:
            del turns[next(iter(turns))]  # the oldest: its end was never seen
        turns[tag.session_id] = _Turn(ev.time)
        self._in_flight.set(len(turns))

    def _turn_ended(self, ev: Event, tag: SessionTag) -> None:
        d = ev.data
        error = d.get("error")
        if error:  # a refusal by a quota is not a failure (the error-rate alerts read this)
            outcome = "rate_limited" if error == "RateLimited" else "error"
        else:
            outcome = _label(d.get("status"))
        self._turns_total(tag.agent, tag.version, outcome).inc()
        turn = self._turns.pop(tag.session_id, None)
        if turn is not None:
            self._turn_seconds(tag.agent, tag.version).observe(max(0.0, ev.time - turn.start))
            self._in_flight.set(len(self._turns))

    def _first_token(self, ev: Event, tag: SessionTag) -> None:
        turn = self._turns.get(tag.session_id)
        if turn is not None and turn.waiting:
            turn.waiting = False
            self._ttft(tag.agent, tag.version).observe(max(0.0, ev.time - turn.start))

    def _delta(self, ev: Event, tag: SessionTag) -> None:
        if ev.data.get("text"):
            self._first_token(ev, tag)

    def _spend(self, ev: Event, tag: SessionTag) -> None:
        """Count a model call's tokens and cost (answers, summaries, judges)."""
        self._spend_on(ev, tag, _label(ev.data.get("model")))

    def _spend_on(self, ev: Event, tag: SessionTag, model: str) -> None:
        d = ev.data
        u = ev.usage
        if u is not None:
            for kind, n in (
                ("input", u.input_tokens),
                ("output", u.output_tokens),
                ("cache_read", u.cache_read_tokens),
                ("cache_write", u.cache_write_tokens),
            ):
                if n:
                    self._tokens(tag.agent, tag.version, model, kind).inc(n)
        cost = d.get("cost")
        if isinstance(cost, int | float) and cost > 0:
            self._cost(tag.agent, tag.version, model).inc(cost)

    def _model_response(self, ev: Event, tag: SessionTag) -> None:
        self._first_token(ev, tag)
        d = ev.data
        model = _label(d.get("model"))
        self._spend_on(ev, tag, model)
        self._model_calls(tag.agent, tag.version, model).inc()
        latency = d.get("latency_ms")
        if isinstance(latency, int | float):
            self._model_seconds(tag.agent, tag.version, model).observe(latency / 1000)
        if d.get("degraded"):
            self._degraded(tag.agent, tag.version, model).inc()

    def _learn(self, agent: str, version: str, name: object) -> None:
        if name is None:
            return
        known = self._tools.setdefault((agent, version), set())
        if len(known) < _MAX_TOOLS:
            known.add(str(name))

    def _tool(self, tag: SessionTag, name: object, *, proven: bool) -> str:
        """The ``tool`` label of a call of ``name``: the name when it is one of the agent's
        tools, else :data:`UNKNOWN_TOOL`. The model chooses the name; a call of a name
        the agent does not have ends as an error without a ``tool.started`` event, so a
        name is the agent's once this process saw it started, asked approval for, or
        finish without an error (``proven``), or :meth:`declare_tools` named it."""
        key = str(name)
        known = self._tools.get((tag.agent, tag.version))
        if known is None or key not in known:
            if not proven:
                return UNKNOWN_TOOL
            self._learn(tag.agent, tag.version, key)
            if key not in self._tools[(tag.agent, tag.version)]:  # over the guard's bound
                return UNKNOWN_TOOL
        return _label(name)

    def _tool_started(self, ev: Event, tag: SessionTag) -> None:
        self._learn(tag.agent, tag.version, ev.data.get("name"))

    def _tool_finished(self, ev: Event, tag: SessionTag) -> None:
        d = ev.data
        tool = self._tool(tag, d.get("name"), proven=not d.get("is_error"))
        outcome = "error" if d.get("is_error") else "ok"
        self._tool_calls(tag.agent, tag.version, tool, outcome).inc()
        duration = d.get("duration_ms")
        if isinstance(duration, int | float):
            self._tool_seconds(tag.agent, tag.version, tool).observe(duration / 1000)
        cost = d.get("cost")
        if isinstance(cost, int | float) and cost > 0:
            self._tool_cost(tag.agent, tag.version, tool).inc(cost)

    def _model_retry(self, ev: Event, tag: SessionTag) -> None:
        self._retries(tag.agent, tag.version, "model", _label(ev.data.get("reason"))).inc()

    def _tool_retry(self, ev: Event, tag: SessionTag) -> None:
        self._retries(tag.agent, tag.version, "tool", _label(ev.data.get("reason"))).inc()

    def _fallback(self, ev: Event, tag: SessionTag) -> None:
        d = ev.data
        self._fallbacks(tag.agent, tag.version, _label(d.get("from")), _label(d.get("to"))).inc()

    def _breaker_opened(self, ev: Event, tag: SessionTag) -> None:
        key = _label(ev.data.get("key"))
        self._breaker(key).set(1)
        self._openings(key).inc()

    def _breaker_closed(self, ev: Event, tag: SessionTag) -> None:
        self._breaker(_label(ev.data.get("key"))).set(0)

    def _approval_requested(self, ev: Event, tag: SessionTag) -> None:
        d = ev.data
        # approval is asked only for a call of one of the agent's tools
        self._asked_total(tag.agent, tag.version, self._tool(tag, d.get("tool"), proven=True)).inc()
        asked = self._asked
        if len(asked) >= self._max:
            del asked[next(iter(asked))]
        asked[str(d.get("approval_id"))] = ev.time
        self._move_pending(tag.agent, +1)

    def _approval_decided(self, ev: Event, tag: SessionTag) -> None:
        d = ev.data
        if ev.type == EventType.APPROVAL_EXPIRED:
            outcome = "expired"
        else:
            outcome = "approved" if d.get("approved") else "denied"
        self._decided(tag.agent, tag.version, outcome).inc()
        asked = self._asked.pop(str(d.get("approval_id")), None)
        if asked is not None:
            self._wait(tag.agent, tag.version, outcome).observe(max(0.0, ev.time - asked))
        self._move_pending(tag.agent, -1)

    def _move_pending(self, agent: str, by: int) -> None:
        n = max(0.0, self._pending_n.get(agent, 0.0) + by)
        self._pending_n[agent] = n
        self._pending(_label(agent)).set(n)

    def _guard_flagged(self, ev: Event, tag: SessionTag) -> None:
        d = ev.data
        source, action = _label(d.get("source")), _label(d.get("action"))
        self._flags(tag.agent, tag.version, source, action).inc()

    def _guard_judged(self, ev: Event, tag: SessionTag) -> None:
        self._spend(ev, tag)
        self._judged(tag.agent, tag.version, _label(ev.data.get("verdict"))).inc()

    def _rate_limited(self, ev: Event, tag: SessionTag) -> None:
        d = ev.data
        self._limited(_label(d.get("scope")), _label(d.get("limit"))).inc()

    def __repr__(self) -> str:
        mode = f"multiprocess {self.multiprocess_dir!r}" if self.multiprocess_dir else "in memory"
        return f"Metrics({mode}, {len(self._turns)} turns in flight)"
