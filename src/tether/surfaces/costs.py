"""Unit economics: what a session costs, and what a month of traffic would.

:func:`build_report` turns stored sessions (:class:`SessionRecord`) and their
cost-bearing events (``model.response`` and ``context.compressed``, the model
calls, and ``tool.finished``, the tool calls; from
``store.scan_events(COST_EVENTS)``) into a :class:`CostReport`. It is pure:
no store, no clock, no I/O; ``tether cost`` reads the store and renders it.

Rules:

- A *call* is one usage-bearing event. Its cost is the ``cost`` it recorded
  (dollars at the prices in force when it was made). A call that recorded no
  cost, or recorded ``priced: false`` (its model was unpriced then), is
  priced now from the table passed in (so a price file can fill a gap). A
  model that table does not know either is *unpriced*: its calls count $0
  and :attr:`CostReport.unpriced` lists them with their tokens, so a missing
  price is visible instead of silently cheap.
- A *priced tool call* is a ``tool.finished`` event that carries ``cost``
  (its tool declared a cost: see :class:`~tether.spec.tools.Tool`); its cost
  is what it recorded. It is *charged* when that cost is above 0 (a call
  refused, denied or otherwise not run records 0). A ``cost_error`` (the
  tool's cost function failed; the call counts $0) is counted per tool so
  it is visible. Tool calls without ``cost`` are free and not counted.
- A session's cost is the sum of its model calls' (its *model cost*, the
  tokens) and of its priced tool calls' (its *tool cost*); a session
  without calls costs $0 and still counts as a session.
- A session *succeeded* if its status is ``idle`` or ``completed`` and it
  recorded no error.
- A *user-day* is a distinct pair of ``user_id`` and the UTC calendar day of
  the session's ``created_at``; a session without a user id is one anonymous
  user-day of its own.
- Percentiles interpolate linearly between closest ranks (:func:`percentile`).
- Monthly projection = daily users x sessions per user-day x 30 x mean cost
  per session. Sessions per user-day defaults to the observed ratio
  (sessions / user-days), so with it the projection is daily users x 30 x
  cost per user-day.
- A *reprice* prices every observed call's tokens at one model's price, as if
  that model had answered everything with the same token counts (a first
  estimate: another model would not use exactly the same tokens); the tool
  costs stay as observed (the same calls, another model).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from tether.exceptions import ConfigError
from tether.runtime.ports import SessionRecord
from tether.spec.events import Event, EventType
from tether.spec.messages import Usage
from tether.spec.pricing import Price, PriceTable

__all__ = [
    "CALL_EVENTS",
    "COST_EVENTS",
    "DAILY_USERS",
    "DAYS_PER_MONTH",
    "SUCCESS_STATUSES",
    "CostReport",
    "ModelRow",
    "Projection",
    "Reprice",
    "Stats",
    "ToolRow",
    "VersionRow",
    "build_report",
    "cost_label",
    "money",
    "percentile",
    "reprice_price",
]

#: the event types that carry a model call's usage and cost
CALL_EVENTS: tuple[str, ...] = (EventType.MODEL_RESPONSE, EventType.CONTEXT_COMPRESSED)
#: every event type the report reads: the model calls and the tool calls (``tool.finished``)
COST_EVENTS: tuple[str, ...] = (*CALL_EVENTS, EventType.TOOL_FINISHED)
#: the daily-user counts the report projects a month for
DAILY_USERS: tuple[int, ...] = (100, 1_000, 10_000, 100_000)
DAYS_PER_MONTH = 30
#: statuses of a session that did what it was asked (with no recorded error)
SUCCESS_STATUSES = frozenset({"idle", "completed"})


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) of ``values``, by linear interpolation.

    Sort the ``n`` values; the quantile sits at rank ``h = (n - 1) * q``
    (0-based) and is ``x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] -
    x[floor(h)])``. This is ``statistics.quantiles(method="inclusive")``,
    numpy's default and a spreadsheet's ``PERCENTILE.INC``: p0 is the
    minimum, p100 the maximum, p50 the median. No values: 0.0.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"a quantile is between 0 and 1, not {q}")
    xs = sorted(values)
    if not xs:
        return 0.0
    h = (len(xs) - 1) * q
    lo = math.floor(h)
    if lo + 1 >= len(xs):
        return xs[-1]
    return xs[lo] + (h - lo) * (xs[lo + 1] - xs[lo])


def money(x: float | None) -> str:
    """Dollars for people: cents above $1, more digits below (a call costs fractions)."""
    if x is None:
        return "n/a"
    if x == 0:
        return "$0.00"
    if abs(x) >= 1_000:
        return f"${x:,.0f}"
    if abs(x) >= 1:
        return f"${x:,.2f}"
    if abs(x) >= 0.01:
        return f"${x:.4f}"
    return f"${x:.6f}"


def cost_label(row: ModelRow) -> str:
    """A model's cost for a table cell: ``unpriced`` when none of its calls had a price."""
    if row.priced:
        return money(row.cost)
    if row.unpriced_calls == row.calls:
        return "unpriced"
    return f"{money(row.cost)} + {row.unpriced_calls:,} unpriced calls"


def _tokens(u: Usage) -> dict[str, int]:
    return {**u.to_dict(), "total_tokens": u.total_tokens}


@dataclass(frozen=True, slots=True)
class Stats:
    """Cost per session: mean, median and 95th percentile (dollars)."""

    mean: float = 0.0
    p50: float = 0.0
    p95: float = 0.0

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        if not values:
            return cls()
        return cls(sum(values) / len(values), percentile(values, 0.5), percentile(values, 0.95))

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "p50": self.p50, "p95": self.p95}


@dataclass(frozen=True, slots=True)
class Projection:
    """What a month would cost at ``daily_users`` users a day."""

    daily_users: int
    monthly_cost: float

    def to_dict(self) -> dict[str, Any]:
        return {"daily_users": self.daily_users, "monthly_cost": self.monthly_cost}


@dataclass(frozen=True, slots=True)
class VersionRow:
    """Sessions of one agent version and what they cost.

    ``calls``: model calls; ``cost``: everything (model and tools);
    ``tool_cost``: the priced tool calls' part of it.
    """

    agent: str
    version: str
    sessions: int
    successful_sessions: int
    calls: int
    usage: Usage
    cost: float
    tool_cost: float = 0.0

    @property
    def model_cost(self) -> float:
        return self.cost - self.tool_cost

    @property
    def per_session(self) -> float:
        return self.cost / self.sessions if self.sessions else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "version": self.version,
            "sessions": self.sessions,
            "successful_sessions": self.successful_sessions,
            "calls": self.calls,
            "tokens": _tokens(self.usage),
            "cost": self.cost,
            "model_cost": self.model_cost,
            "tool_cost": self.tool_cost,
            "per_session": self.per_session,
        }


@dataclass(frozen=True, slots=True)
class ToolRow:
    """Calls of one priced tool. ``charged_calls``: those that cost more than $0;
    ``cost_errors``: those whose cost function failed (counted at $0)."""

    tool: str
    calls: int
    charged_calls: int
    cost: float
    cost_errors: int = 0

    @property
    def per_call(self) -> float:
        """Mean cost of one call (charged or not)."""
        return self.cost / self.calls if self.calls else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "calls": self.calls,
            "charged_calls": self.charged_calls,
            "cost": self.cost,
            "per_call": self.per_call,
            "cost_errors": self.cost_errors,
        }


@dataclass(frozen=True, slots=True)
class ModelRow:
    """Calls answered by one model. ``unpriced_calls``: those counted at $0 for want of a price."""

    model: str
    calls: int
    usage: Usage
    cost: float
    unpriced_calls: int = 0

    @property
    def priced(self) -> bool:
        return self.unpriced_calls == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "calls": self.calls,
            "tokens": _tokens(self.usage),
            "cost": self.cost,
            "priced": self.priced,
        }


@dataclass(frozen=True, slots=True)
class Reprice:
    """The observed token usage priced at one model's :class:`Price`."""

    model: str
    price: Price
    total_cost: float
    per_session: Stats
    per_successful_session: float | None
    per_user_day: float
    projections: tuple[Projection, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "price": self.price.to_dict(),
            "total_cost": self.total_cost,
            "per_session": self.per_session.to_dict(),
            "per_successful_session": self.per_successful_session,
            "per_user_day": self.per_user_day,
            "projections": [p.to_dict() for p in self.projections],
        }


@dataclass(frozen=True, slots=True)
class CostReport:
    """Unit economics of a set of stored sessions (see the module docstring for the rules).

    ``per_successful_session`` is ``None`` when money was spent but no
    session succeeded (the cost of a success is then unbounded);
    ``sessions_per_user_day`` is the ratio the projections use (observed,
    unless overridden), ``observed_sessions_per_user_day`` the observed one.
    ``calls`` counts model calls; ``total_cost`` is ``model_cost`` (tokens)
    plus ``tool_cost`` (priced tool calls, ``tool_calls`` of them,
    ``charged_tool_calls`` above $0; by tool in ``by_tool``).
    """

    sessions: int
    successful_sessions: int
    calls: int
    total_cost: float
    per_session: Stats
    per_successful_session: float | None
    user_days: int
    per_user_day: float
    sessions_per_user_day: float
    observed_sessions_per_user_day: float
    usage: Usage
    by_version: tuple[VersionRow, ...]
    by_model: tuple[ModelRow, ...]
    unpriced: tuple[ModelRow, ...]
    projections: tuple[Projection, ...]
    prices_as_of: str
    prices_source: str
    reprice: Reprice | None = None
    filters: dict[str, Any] = field(default_factory=dict)
    tool_cost: float = 0.0
    tool_calls: int = 0
    charged_tool_calls: int = 0
    by_tool: tuple[ToolRow, ...] = ()

    @property
    def model_cost(self) -> float:
        """What the model calls cost (the tokens): the total less the tools."""
        return self.total_cost - self.tool_cost

    def to_dict(self) -> dict[str, Any]:
        """One JSON-serialisable object: every figure, in dollars and tokens."""
        return {
            "sessions": self.sessions,
            "successful_sessions": self.successful_sessions,
            "calls": self.calls,
            "total_cost": self.total_cost,
            "model_cost": self.model_cost,
            "tool_cost": self.tool_cost,
            "tool_calls": self.tool_calls,
            "charged_tool_calls": self.charged_tool_calls,
            "per_session": self.per_session.to_dict(),
            "per_successful_session": self.per_successful_session,
            "user_days": self.user_days,
            "per_user_day": self.per_user_day,
            "sessions_per_user_day": self.sessions_per_user_day,
            "observed_sessions_per_user_day": self.observed_sessions_per_user_day,
            "tokens": _tokens(self.usage),
            "by_version": [r.to_dict() for r in self.by_version],
            "by_model": [r.to_dict() for r in self.by_model],
            "by_tool": [r.to_dict() for r in self.by_tool],
            "unpriced_models": [
                {"model": r.model, "calls": r.unpriced_calls, "tokens": _tokens(r.usage)}
                for r in self.unpriced
            ],
            "days_per_month": DAYS_PER_MONTH,
            "projections": [p.to_dict() for p in self.projections],
            "reprice": None if self.reprice is None else self.reprice.to_dict(),
            "prices_as_of": self.prices_as_of,
            "prices_source": self.prices_source,
            "filters": dict(self.filters),
        }


@dataclass(slots=True)
class _Call:
    session_id: str
    model: str
    usage: Usage
    cost: float
    priced: bool


def _calls(events: Iterable[Event], sessions: set[str], prices: PriceTable) -> list[_Call]:
    out: list[_Call] = []
    for ev in events:
        if ev.type not in CALL_EVENTS or ev.session_id not in sessions:
            continue
        model = str(ev.data.get("model") or "unknown")
        usage = ev.usage or Usage()
        recorded = ev.data.get("cost")
        if isinstance(recorded, (int, float)) and ev.data.get("priced") is not False:
            out.append(_Call(ev.session_id, model, usage, float(recorded), True))
            continue
        price = prices.lookup(model)
        cost = 0.0 if price is None else price.cost(usage)
        out.append(_Call(ev.session_id, model, usage, cost, price is not None))
    return out


@dataclass(slots=True)
class _ToolCall:
    session_id: str
    tool: str
    cost: float
    cost_error: bool


def _tool_calls(events: Iterable[Event], sessions: set[str]) -> list[_ToolCall]:
    out: list[_ToolCall] = []
    for ev in events:
        if ev.type != EventType.TOOL_FINISHED or ev.session_id not in sessions:
            continue
        recorded = ev.data.get("cost")
        if recorded is None:  # a tool without a declared cost: free
            continue
        cost = float(recorded) if isinstance(recorded, int | float) else 0.0
        if not math.isfinite(cost) or cost < 0:  # the runtime records none: a foreign writer's
            cost = 0.0
        name = str(ev.data.get("name") or "unknown")
        out.append(_ToolCall(ev.session_id, name, cost, "cost_error" in ev.data))
    return out


def _user_day(r: SessionRecord) -> tuple[str, str]:
    if r.user_id is None:
        return ("session", r.id)  # an anonymous user-day of its own
    day = datetime.fromtimestamp(r.created_at, tz=UTC).date().isoformat()
    return (f"user:{r.user_id}", day)


def _succeeded(r: SessionRecord) -> bool:
    return r.status in SUCCESS_STATUSES and r.last_error is None


def _per_success(total: float, successes: int) -> float | None:
    if successes:
        return total / successes
    return 0.0 if total == 0 else None


def reprice_price(prices: PriceTable, model: str) -> Price:
    """The price a reprice on ``model`` uses; a :class:`ConfigError` if the table has none."""
    price = prices.lookup(model)
    if price is None:
        raise ConfigError(
            f"no price for {model!r} in the price table ({prices.source}, as of "
            f"{prices.as_of or 'undated'}): pass --prices FILE with an entry for it, "
            "or name a priced model such as anthropic:claude-haiku-4-5"
        )
    return price


def _project(mean: float, ratio: float, daily_users: Sequence[int]) -> tuple[Projection, ...]:
    """Daily users x sessions per user-day (``ratio``) x 30 days x mean cost per session."""
    return tuple(Projection(n, n * ratio * DAYS_PER_MONTH * mean) for n in daily_users)


def build_report(
    sessions: Sequence[SessionRecord],
    events: Iterable[Event],
    *,
    prices: PriceTable,
    reprice_model: str | None = None,
    sessions_per_user_day: float | None = None,
    daily_users: Sequence[int] = DAILY_USERS,
    filters: dict[str, Any] | None = None,
) -> CostReport:
    """The cost report of ``sessions``; ``events`` of other sessions are ignored.

    ``reprice_model`` adds a :class:`Reprice` at that model's price (a
    :class:`ConfigError` if ``prices`` has none); ``sessions_per_user_day``
    overrides the observed ratio in the projections; ``filters`` is echoed
    in the report (what was selected, for the reader).
    """
    if sessions_per_user_day is not None and not sessions_per_user_day > 0:
        raise ConfigError(f"sessions per user per day must be > 0, not {sessions_per_user_day}")
    target = None if reprice_model is None else reprice_price(prices, reprice_model)
    ids = {r.id for r in sessions}
    events = list(events)
    calls = _calls(events, ids, prices)
    tool_calls = _tool_calls(events, ids)

    per_session = dict.fromkeys(ids, 0.0)
    for c in calls:
        per_session[c.session_id] += c.cost
    tools = dict.fromkeys(ids, 0.0)
    for tc in tool_calls:
        tools[tc.session_id] += tc.cost
    for sid, spent in tools.items():
        per_session[sid] += spent
    total = sum(per_session.values())
    n = len(sessions)
    successes = sum(_succeeded(r) for r in sessions)
    user_days = len({_user_day(r) for r in sessions})
    observed = n / user_days if user_days else 0.0
    ratio = sessions_per_user_day if sessions_per_user_day is not None else observed
    stats = Stats.of(list(per_session.values()))

    usage = sum((c.usage for c in calls), Usage())
    return CostReport(
        sessions=n,
        successful_sessions=successes,
        calls=len(calls),
        total_cost=total,
        per_session=stats,
        per_successful_session=_per_success(total, successes),
        user_days=user_days,
        per_user_day=total / user_days if user_days else 0.0,
        sessions_per_user_day=ratio,
        observed_sessions_per_user_day=observed,
        usage=usage,
        by_version=_by_version(sessions, calls, tool_calls),
        by_model=_by_model(calls),
        unpriced=_by_model(c for c in calls if not c.priced),
        projections=_project(stats.mean, ratio, daily_users),
        prices_as_of=prices.as_of,
        prices_source=prices.source,
        reprice=None
        if target is None or reprice_model is None
        else _reprice(reprice_model, target, sessions, calls, tools, ratio, user_days, daily_users),
        filters=dict(filters or {}),
        tool_cost=sum(tools.values()),
        tool_calls=len(tool_calls),
        charged_tool_calls=sum(tc.cost > 0 for tc in tool_calls),
        by_tool=_by_tool(tool_calls),
    )


def _by_version(
    sessions: Sequence[SessionRecord], calls: Sequence[_Call], tool_calls: Sequence[_ToolCall]
) -> tuple[VersionRow, ...]:
    key_of = {r.id: (r.agent, r.agent_version) for r in sessions}
    rows: dict[tuple[str, str], VersionRow] = {}
    for r in sessions:
        was = rows.get(key_of[r.id]) or VersionRow(r.agent, r.agent_version, 0, 0, 0, Usage(), 0.0)
        rows[key_of[r.id]] = replace(
            was,
            sessions=was.sessions + 1,
            successful_sessions=was.successful_sessions + _succeeded(r),
        )
    for c in calls:
        was = rows[key_of[c.session_id]]
        rows[key_of[c.session_id]] = replace(
            was, calls=was.calls + 1, usage=was.usage + c.usage, cost=was.cost + c.cost
        )
    for tc in tool_calls:
        was = rows[key_of[tc.session_id]]
        rows[key_of[tc.session_id]] = replace(
            was, cost=was.cost + tc.cost, tool_cost=was.tool_cost + tc.cost
        )
    return tuple(rows[k] for k in sorted(rows))


def _by_tool(tool_calls: Iterable[_ToolCall]) -> tuple[ToolRow, ...]:
    rows: dict[str, ToolRow] = {}
    for tc in tool_calls:
        was = rows.get(tc.tool) or ToolRow(tc.tool, 0, 0, 0.0)
        rows[tc.tool] = ToolRow(
            tc.tool,
            was.calls + 1,
            was.charged_calls + (tc.cost > 0),
            was.cost + tc.cost,
            was.cost_errors + tc.cost_error,
        )
    # the most expensive first; equal costs by tool name
    return tuple(sorted(rows.values(), key=lambda r: (-r.cost, r.tool)))


def _by_model(calls: Iterable[_Call]) -> tuple[ModelRow, ...]:
    rows: dict[str, ModelRow] = {}
    for c in calls:
        was = rows.get(c.model) or ModelRow(c.model, 0, Usage(), 0.0)
        rows[c.model] = ModelRow(
            c.model,
            was.calls + 1,
            was.usage + c.usage,
            was.cost + c.cost,
            was.unpriced_calls + (not c.priced),
        )
    # the most expensive first; equal costs (unpriced ones) by model name
    return tuple(sorted(rows.values(), key=lambda r: (-r.cost, r.model)))


def _reprice(
    model: str,
    price: Price,
    sessions: Sequence[SessionRecord],
    calls: Sequence[_Call],
    tools: dict[str, float],
    ratio: float,
    user_days: int,
    daily_users: Sequence[int],
) -> Reprice:
    per_session = {r.id: tools.get(r.id, 0.0) for r in sessions}  # the tools cost the same
    for c in calls:
        per_session[c.session_id] += price.cost(c.usage)
    total = sum(per_session.values())
    stats = Stats.of(list(per_session.values()))
    return Reprice(
        model=model,
        price=price,
        total_cost=total,
        per_session=stats,
        per_successful_session=_per_success(total, sum(_succeeded(r) for r in sessions)),
        per_user_day=total / user_days if user_days else 0.0,
        projections=_project(stats.mean, ratio, daily_users),
    )
