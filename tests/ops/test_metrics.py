"""Prometheus metrics: a real retail session read back from the exposition text.

The retail agent runs through the whole runtime on scripted models, with
faults injected (a 429, then a 503 storm that opens the breaker and falls
back), an approval asked and granted half a minute later on a fake clock,
so every duration is known exactly. What is asserted is what Prometheus
would scrape. Multi-process mode runs in child processes: prometheus_client
chooses where values live when it is imported.
"""

from __future__ import annotations

import dataclasses
import os
import random
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from examples.retail.agent import build_agent
from examples.retail.generate import HELP_ARTICLES, generate
from examples.retail.shop import Shop
from fastapi import FastAPI
from prometheus_client import values
from prometheus_client.parser import text_string_to_metric_families

from tether import Runtime
from tether.exceptions import ConfigError
from tether.runtime import SessionStatus
from tether.runtime.observe import TURN_ENDED, TURN_STARTED, Observer, SessionTag
from tether.spec.events import Event, EventType
from tether.spec.messages import Usage
from tether.spec.pricing import Price, PriceTable
from tether.surfaces.ops.metrics import MULTIPROC_ENV, Metrics
from tether.surfaces.server.metrics_route import TOKEN_ENV, metrics_router
from tether.testing import FakeClock, Fault, FaultyModel, ScriptedModel, call

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

RETAIL = {"agent": "retail", "version": "1"}
#: the only label names a metric may carry: nothing that names a user or a session
ALLOWED_LABELS = {
    "agent",
    "version",
    "model",
    "kind",
    "tool",
    "outcome",
    "call",
    "reason",
    "from_model",
    "to_model",
    "key",
    "source",
    "action",
    "verdict",
    "scope",
    "limit",
    "le",
}


def samples(text: str) -> Samples:
    """Every sample of the exposition ``text``, by (name, labels)."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def scrape(metrics: Metrics) -> Samples:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    return samples(body.decode())


@pytest.fixture
def shop() -> Iterator[Shop]:
    shop = Shop.memory()
    shop.load_json(generate())
    shop.load_help_articles(HELP_ARTICLES)
    yield shop
    shop.close()


async def test_a_retail_session_with_faults_and_an_approval(shop: Shop) -> None:
    clock = FakeClock()
    primary = FaultyModel(
        ScriptedModel(
            [
                call("find_user_id_by_name_zip", first_name="Ava", last_name="Moreno", zip="94107"),
                call("get_order_details", order_id="#W0000000"),  # no such order: a tool error
                call("cancel_pending_order", order_id="#W1024001", reason="no longer needed"),
            ],
            name="primary",
        ),
        # a 429 on the first call (retried after 2 s); after the approval a 503 storm
        [Fault.rate_limited(2.0), None, None, None, "503", "503", "503", "503"],
        name="primary",
    )
    backup = ScriptedModel(
        ["Order #W1024001 is cancelled; #W0000000 was not found."], name="backup"
    )
    agent = dataclasses.replace(build_agent(models=[primary, backup]), deps=lambda: shop)
    prices = PriceTable({"primary": Price(1.0, 2.0), "backup": Price(10.0, 20.0)})
    metrics = Metrics()
    seen: list[Event] = []

    def record(ev: Event, tag: SessionTag) -> None:
        seen.append(ev)

    rt = Runtime(
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(7),
        prices=prices,
        observers=[metrics, record],
    )
    async with rt:
        session = rt.session(agent)
        first = await session.send("I'm Ava Moreno, zip 94107. Cancel #W1024001 please.")
        assert first.status == SessionStatus.AWAITING_APPROVAL
        assert first.approval is not None
        waiting = scrape(metrics)
        assert value(waiting, "tether_approvals_pending", agent="retail") == 1
        assert value(waiting, "tether_turns_in_flight") == 0
        clock.advance(30)  # the approver takes half a minute
        second = await session.decide(first.approval.id, True, by="op")
    assert second.status == SessionStatus.IDLE, second.error
    assert clock.sleeps[0] == 2.0
    assert len(clock.sleeps) == 4
    found = scrape(metrics)

    def v(name: str, **labels: str) -> float | None:
        return value(found, name, **labels)

    assert v("tether_sessions_created_total", **RETAIL) == 1
    assert v("tether_turns_total", **RETAIL, outcome="awaiting_approval") == 1
    assert v("tether_turns_total", **RETAIL, outcome="idle") == 1
    assert v("tether_turns_in_flight") == 0
    # durations on the fake clock: turn 1 waited 2 s for its first answer and ended
    # then; turn 2 waited out three backoffs before the backup's text streamed
    storm = sum(clock.sleeps[1:])
    assert v("tether_turn_duration_seconds_count", **RETAIL) == 2
    assert v("tether_turn_duration_seconds_sum", **RETAIL) == pytest.approx(2.0 + storm)
    assert v("tether_turn_duration_seconds_bucket", **RETAIL, le="2.0") == 1
    assert v("tether_turn_duration_seconds_bucket", **RETAIL, le="5.0") == 1
    assert v("tether_turn_duration_seconds_bucket", **RETAIL, le="10.0") == 2
    assert v("tether_time_to_first_token_seconds_sum", **RETAIL) == pytest.approx(2.0 + storm)

    # model calls, tokens and cost, by model: as the events say
    assert v("tether_model_calls_total", **RETAIL, model="primary") == 3
    assert v("tether_model_calls_total", **RETAIL, model="backup") == 1
    assert v("tether_model_latency_seconds_count", **RETAIL, model="primary") == 3
    responses = [e for e in seen if e.type == EventType.MODEL_RESPONSE]
    for model in ("primary", "backup"):
        mine = [e for e in responses if e.data["model"] == model]
        inputs = sum(e.usage.input_tokens for e in mine if e.usage)
        outputs = sum(e.usage.output_tokens for e in mine if e.usage)
        assert inputs > 0
        assert outputs > 0
        assert v("tether_tokens_total", **RETAIL, model=model, kind="input") == inputs
        assert v("tether_tokens_total", **RETAIL, model=model, kind="output") == outputs
        price = prices.lookup(model)
        assert price is not None
        cost = v("tether_cost_dollars_total", **RETAIL, model=model)
        assert cost == pytest.approx((inputs * price.input + outputs * price.output) / 1e6)
    assert v("tether_degraded_answers_total", **RETAIL, model="backup") == 1
    assert v("tether_degraded_answers_total", **RETAIL, model="primary") is None

    # tools, retries, fallback, breaker
    tool = "tether_tool_calls_total"
    assert v(tool, **RETAIL, tool="find_user_id_by_name_zip", outcome="ok") == 1
    assert v(tool, **RETAIL, tool="get_order_details", outcome="error") == 1
    assert v(tool, **RETAIL, tool="get_order_details", outcome="ok") is None
    assert v(tool, **RETAIL, tool="cancel_pending_order", outcome="ok") == 1
    assert v("tether_tool_duration_seconds_count", **RETAIL, tool="cancel_pending_order") == 1
    assert v("tether_retries_total", **RETAIL, call="model", reason="HTTP 429") == 1
    assert v("tether_retries_total", **RETAIL, call="model", reason="HTTP 503") == 3
    assert v("tether_fallbacks_total", **RETAIL, from_model="primary", to_model="backup") == 1
    assert v("tether_breaker_open", key="model:primary") == 1
    assert v("tether_breaker_openings_total", key="model:primary") == 1

    # the approval: asked for one tool, granted after exactly 30 s, none left pending
    assert v("tether_approvals_requested_total", **RETAIL, tool="cancel_pending_order") == 1
    assert v("tether_approvals_decided_total", **RETAIL, outcome="approved") == 1
    assert v("tether_approvals_pending", agent="retail") == 0
    assert v("tether_approval_wait_seconds_count", **RETAIL, outcome="approved") == 1
    assert v("tether_approval_wait_seconds_sum", **RETAIL, outcome="approved") == 30.0
    assert v("tether_approval_wait_seconds_bucket", **RETAIL, outcome="approved", le="10.0") == 0

    # no label names a session or a user
    for name, labels in found:
        assert {k for k, _ in labels} <= ALLOWED_LABELS, name
        assert session.id not in {val for _, val in labels}


def test_pending_approvals_never_go_negative_and_follow_the_store() -> None:
    m = Metrics()
    tag = SessionTag("s1", "retail", "1")
    # a decision whose request this process never saw (asked in another worker)
    m(
        Event(EventType.APPROVAL_DECIDED, "s1", 3, 50.0, {"approval_id": "a0", "approved": False}),
        tag,
    )
    found = scrape(m)
    assert value(found, "tether_approvals_pending", agent="retail") == 0
    assert value(found, "tether_approvals_decided_total", **RETAIL, outcome="denied") == 1
    assert value(found, "tether_approval_wait_seconds_count", **RETAIL, outcome="denied") is None

    m.set_pending("retail", 3)  # the store's count
    m(Event(EventType.APPROVAL_REQUESTED, "s1", 4, 60.0, {"approval_id": "a1", "tool": "t"}), tag)
    assert value(scrape(m), "tether_approvals_pending", agent="retail") == 4
    m(Event(EventType.APPROVAL_EXPIRED, "s1", 4, 960.0, {"approval_id": "a1", "by": "u"}), tag)
    found = scrape(m)
    assert value(found, "tether_approvals_pending", agent="retail") == 3
    assert value(found, "tether_approvals_decided_total", **RETAIL, outcome="expired") == 1
    assert value(found, "tether_approval_wait_seconds_sum", **RETAIL, outcome="expired") == 900


async def test_refresh_pending_counts_the_sessions_awaiting_approval(shop: Shop) -> None:
    model = ScriptedModel(
        [
            call("find_user_id_by_email", email="ava.moreno@example.com"),
            call("cancel_pending_order", order_id="#W1024001", reason="no longer needed"),
        ]
    )
    agent = dataclasses.replace(build_agent(models=[model]), deps=lambda: shop)
    clock = FakeClock()
    m = Metrics(clock=clock)  # not observing: it learns only from the store
    m.set_pending("other-agent", 2)
    async with Runtime(clock=clock) as rt:
        r = await rt.session(agent).send("cancel #W1024001")
        assert r.status == SessionStatus.AWAITING_APPROVAL
        clock.advance(600)
        await m.refresh_pending(rt.store)
    found = scrape(m)
    assert value(found, "tether_approvals_pending", agent="retail") == 1
    assert value(found, "tether_approvals_oldest_pending_seconds", agent="retail") == 600
    assert value(found, "tether_approvals_pending", agent="other-agent") == 0
    assert value(found, "tether_approvals_oldest_pending_seconds", agent="other-agent") == 0


def test_turn_timings_errors_and_a_closed_breaker() -> None:
    m = Metrics()
    tag = SessionTag("s1", "a", "2", user="u1")
    events = [
        Event(TURN_STARTED, "s1", 0, 100.0, {"need": "message"}),
        Event(EventType.MODEL_DELTA, "s1", 1, 101.0, {"text": ""}),  # no token yet
        Event(EventType.MODEL_DELTA, "s1", 1, 102.5, {"text": "He"}),
        Event(EventType.MODEL_DELTA, "s1", 1, 103.0, {"text": "llo"}),
        Event(EventType.BREAKER_OPENED, "s1", 1, 103.0, {"key": "tool:lookup", "cooldown": 30}),
        Event(EventType.BREAKER_CLOSED, "s1", 1, 104.0, {"key": "tool:lookup"}),
        Event(TURN_ENDED, "s1", 1, 110.0, {"status": "running", "error": "ProviderError"}),
    ]
    for ev in events:
        m(ev, tag)
    found = scrape(m)
    labels = {"agent": "a", "version": "2"}
    assert value(found, "tether_time_to_first_token_seconds_sum", **labels) == 2.5
    assert value(found, "tether_time_to_first_token_seconds_count", **labels) == 1
    assert value(found, "tether_turn_duration_seconds_sum", **labels) == 10.0
    assert value(found, "tether_turns_total", **labels, outcome="error") == 1
    assert value(found, "tether_turns_total", **labels, outcome="running") is None
    assert value(found, "tether_breaker_open", key="tool:lookup") == 0
    refused = {"status": "idle", "error": "RateLimited"}  # a quota said no before the turn ran
    m(Event(TURN_ENDED, "s2", 0, 111.0, refused), SessionTag("s2", "a", "2"))
    found = scrape(m)
    assert value(found, "tether_turns_total", **labels, outcome="rate_limited") == 1
    assert value(found, "tether_turns_total", **labels, outcome="error") == 1
    assert value(found, "tether_breaker_openings_total", key="tool:lookup") == 1


def test_what_it_remembers_is_bounded() -> None:
    m = Metrics(max_tracked=2)
    for sid in ("s1", "s2", "s3"):
        m(Event(TURN_STARTED, sid, 0, 10.0, {"need": "message"}), SessionTag(sid, "a", "1"))
        m(
            Event(EventType.APPROVAL_REQUESTED, sid, 1, 10.0, {"approval_id": sid}),
            SessionTag(sid, "a", "1"),
        )
    assert value(scrape(m), "tether_turns_in_flight") == 2
    end = {"status": "idle", "error": None}
    for sid in ("s1", "s2", "s3"):
        tag = SessionTag(sid, "a", "1")
        m(Event(TURN_ENDED, sid, 1, 20.0, end), tag)
        m(
            Event(EventType.APPROVAL_DECIDED, sid, 1, 25.0, {"approval_id": sid, "approved": True}),
            tag,
        )
    found = scrape(m)
    labels = {"agent": "a", "version": "1"}
    assert value(found, "tether_turns_total", **labels, outcome="idle") == 3
    assert value(found, "tether_turn_duration_seconds_count", **labels) == 2  # s1 was forgotten
    assert value(found, "tether_approval_wait_seconds_count", **labels, outcome="approved") == 2
    assert value(found, "tether_turns_in_flight") == 0
    assert not m._turns
    assert not m._asked
    with pytest.raises(ConfigError):
        Metrics(max_tracked=0)


def test_guards_judges_tool_costs_and_rate_limits() -> None:
    m = Metrics()
    tag = SessionTag("s1", "a", "1", user="alice", tenant="acme")
    judged = {"tool": "web", "verdict": "injection", "model": "judge", "cost": 0.002}
    for ev in [
        Event(
            EventType.GUARD_FLAGGED,
            "s1",
            1,
            1.0,
            {"source": "tool", "action": "tag", "tool": "web"},
        ),
        Event(EventType.GUARD_JUDGED, "s1", 1, 1.0, judged, Usage(100, 5)),
        Event(
            EventType.TOOL_FINISHED,
            "s1",
            1,
            1.0,
            {"name": "search", "is_error": False, "cost": 0.25},
        ),
        Event(EventType.TOOL_RETRY, "s1", 1, 1.0, {"name": "search", "reason": "timeout"}),
        Event(EventType.UNSUPPORTED_CLAIM, "s1", 1, 1.0, {"claims": ["refunded"]}),
        Event(EventType.UNACKNOWLEDGED_FAILURE, "s1", 1, 1.0, {"tools": ["search"]}),
        Event(EventType.RATE_LIMITED, "s1", 1, 1.0, {"scope": "user", "limit": "tokens_per_day"}),
        Event(EventType.BUDGET_EXHAUSTED, "s1", 1, 1.0, {}),
        Event(EventType.LIMIT_REACHED, "s1", 1, 1.0, {"limit": "loop"}),
    ]:
        m(ev, tag)
    m.refused("key")
    m.refused("key")
    found = scrape(m)
    a = {"agent": "a", "version": "1"}
    assert value(found, "tether_guard_flags_total", **a, source="tool", action="tag") == 1
    assert value(found, "tether_guard_judgements_total", **a, verdict="injection") == 1
    assert value(found, "tether_tokens_total", **a, model="judge", kind="input") == 100
    assert value(found, "tether_cost_dollars_total", **a, model="judge") == 0.002
    assert value(found, "tether_model_calls_total", **a, model="judge") is None  # not a step
    assert value(found, "tether_tool_cost_dollars_total", **a, tool="search") == 0.25
    assert value(found, "tether_tool_calls_total", **a, tool="search", outcome="ok") == 1
    assert value(found, "tether_retries_total", **a, call="tool", reason="timeout") == 1
    assert value(found, "tether_unsupported_claims_total", **a) == 1
    assert value(found, "tether_unacknowledged_failures_total", **a) == 1
    assert value(found, "tether_rate_limited_total", scope="user", limit="tokens_per_day") == 1
    assert value(found, "tether_rate_limited_total", scope="key", limit="requests") == 2
    assert value(found, "tether_budget_exhausted_total", **a) == 1
    assert value(found, "tether_limits_reached_total", **a, limit="loop") == 1
    assert not any("alice" in v or "acme" in v for _, labels in found for _, v in labels)


def test_metrics_is_an_observer_with_its_own_registry() -> None:
    one, two = Metrics(), Metrics()  # no global registry: two never collide
    observer: Observer = one
    observer(Event(TURN_ENDED, "s", 1, 1.0, {"status": "idle"}), SessionTag("s", "a", "1"))
    assert value(scrape(one), "tether_turns_total", agent="a", version="1", outcome="idle") == 1
    assert value(scrape(two), "tether_turns_total", agent="a", version="1", outcome="idle") is None


def _finished(name: str, *, error: bool, sid: str = "s1") -> Event:
    return Event(EventType.TOOL_FINISHED, sid, 1, 1.0, {"name": name, "is_error": error})


def test_a_tool_name_is_a_label_only_once_it_is_known_to_be_the_agents() -> None:
    m = Metrics()
    v1, v2 = SessionTag("s1", "a", "1"), SessionTag("s2", "a", "2")
    m(Event(EventType.TOOL_STARTED, "s1", 1, 1.0, {"call_id": "c1", "name": "lookup"}), v1)
    m(_finished("lookup", error=True), v1)  # started first: a real tool that failed
    for i in range(50):  # the model's inventions: errors with no tool.started
        m(_finished(f"exfil_{i}", error=True), v1)
    m(_finished("lookup", error=True, sid="s2"), v2)  # version 2 never started it
    m(_finished("clarify", error=False), v1)  # a result with no error: only real tools have one
    m(
        Event(EventType.APPROVAL_REQUESTED, "s1", 1, 1.0, {"approval_id": "a1", "tool": "refund"}),
        v1,
    )
    m(_finished("refund", error=True), v1)  # denied: never started, but approval was asked
    m.declare_tools("a", "2", ["cancel"])
    m(_finished("cancel", error=True, sid="s2"), v2)  # refused before it ever ran here
    found = scrape(m)
    one, two = {"agent": "a", "version": "1"}, {"agent": "a", "version": "2"}
    assert value(found, "tether_tool_calls_total", **one, tool="lookup", outcome="error") == 1
    assert value(found, "tether_tool_calls_total", **one, tool="_unknown", outcome="error") == 50
    assert value(found, "tether_tool_calls_total", **two, tool="_unknown", outcome="error") == 1
    assert value(found, "tether_tool_calls_total", **one, tool="clarify", outcome="ok") == 1
    assert value(found, "tether_tool_calls_total", **one, tool="refund", outcome="error") == 1
    assert value(found, "tether_tool_calls_total", **two, tool="cancel", outcome="error") == 1
    tools = {v for _, labels in found for k, v in labels if k == "tool"}
    assert tools == {"lookup", "_unknown", "clarify", "refund", "cancel"}


def test_a_label_value_utf8_cannot_write_is_escaped_not_fatal() -> None:
    m = Metrics()
    tag = SessionTag("s1", "shop", "v\udcff")  # a CLI argument decoded with surrogateescape
    m(Event(TURN_ENDED, "s1", 1, 1.0, {"status": "idle"}), tag)
    m(Event(EventType.TOOL_STARTED, "s1", 1, 1.0, {"name": "\ud800x"}), tag)
    m(_finished("\ud800x", error=False), tag)
    m(Event(EventType.MODEL_RESPONSE, "s1", 1, 1.0, {"model": "m\udfff", "latency_ms": 3}), tag)
    for _ in range(2):  # every scrape, not only the first
        found = scrape(m)
    assert value(found, "tether_turns_total", agent="shop", version="v\\udcff", outcome="idle")
    labels = {v for _, ls in found for _, v in ls}
    assert {"\\ud800x", "m\\udfff"} <= labels


# --- GET /metrics ---------------------------------------------------------------


async def _get(app: FastAPI, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/metrics", headers=headers)


def _app(metrics: Metrics) -> FastAPI:
    app = FastAPI()
    app.include_router(metrics_router(metrics))
    return app


async def test_the_route_requires_the_token_when_one_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "s3cret")
    m = Metrics()
    m.refused("key")
    app = _app(m)
    assert (await _get(app)).status_code == 401
    wrong = await _get(app, {"Authorization": "Bearer s3cre"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert "s3cret" not in wrong.text
    ok = await _get(app, {"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith("text/plain; version=")
    assert value(samples(ok.text), "tether_rate_limited_total", scope="key", limit="requests") == 1
    assert "/metrics" not in app.openapi()["paths"]


async def test_the_route_is_open_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    r = await _get(_app(Metrics()))
    assert r.status_code == 200
    assert "# TYPE tether_turns_total counter" in r.text


# --- several worker processes -------------------------------------------------------

_WORKER = textwrap.dedent(
    """
    import sys
    from tether.runtime.observe import SessionTag
    from tether.spec.events import Event
    from tether.spec.messages import Usage
    from tether.surfaces.ops.metrics import Metrics

    role = sys.argv[1]
    m = Metrics()
    tag = SessionTag("s-" + role, "retail", "1", user="u")
    sid = tag.session_id
    m(Event("turn.started", sid, 0, 100.0, {"need": "message"}), tag)
    m(Event("model.response", sid, 1, 101.0, {"model": "m", "cost": 0.5}, Usage(10, 2)), tag)
    m(Event("turn.ended", sid, 1, 104.0, {"status": "idle", "error": None}), tag)
    if role == "a":
        m(Event("breaker.opened", sid, 1, 104.0, {"key": "model:m"}), tag)
        m(Event("turn.started", "s-a2", 0, 105.0, {"need": "message"}), tag)  # still running
        print("ready", flush=True)
        sys.stdin.readline()  # stay alive (and keep its pid) until the test is done
    else:
        m(Event("breaker.closed", sid, 1, 106.0, {"key": "model:m"}), tag)
        sys.stdout.write(m.render()[0].decode())
    """
)


def test_multiprocess_mode_merges_every_worker(tmp_path: Path) -> None:
    env = {**os.environ, MULTIPROC_ENV: str(tmp_path)}
    a = subprocess.Popen(
        [sys.executable, "-c", _WORKER, "a"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert a.stdout is not None
        assert a.stdout.readline().strip() == "ready"
        b = subprocess.run(
            [sys.executable, "-c", _WORKER, "b"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    finally:
        a.communicate("done\n", timeout=30)
    assert len(list(tmp_path.glob("counter_*.db"))) == 2  # one file per worker
    found = samples(b.stdout)
    labels = {"agent": "retail", "version": "1"}
    assert value(found, "tether_turns_total", **labels, outcome="idle") == 2
    assert value(found, "tether_tokens_total", **labels, model="m", kind="input") == 20
    assert value(found, "tether_cost_dollars_total", **labels, model="m") == 1.0
    assert value(found, "tether_turn_duration_seconds_count", **labels) == 2
    assert value(found, "tether_turn_duration_seconds_sum", **labels) == 8.0
    # opened in worker a, closed later in worker b: the most recent state wins
    assert value(found, "tether_breaker_open", key="model:m") == 0
    assert value(found, "tether_breaker_openings_total", key="model:m") == 1
    assert value(found, "tether_turns_in_flight") == 1  # a's unfinished turn, summed


def test_multiprocess_dir_set_after_import_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if getattr(values.ValueClass, "_multiprocess", False):
        pytest.skip("this test process itself runs in multi-process mode")
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    with pytest.raises(ConfigError, match="imported before"):
        Metrics()
