"""Alerts: the signed, retried webhook against a real local receiver; the log sink; the
alerter's de-duplication, background sends and shutdown; events and waiting approvals
turned into alerts by a real runtime; configuration from the environment.

Waits run on a ``FakeClock`` (nothing sleeps for seconds); the receiver is a real
``http.server`` on a loopback port, so the requests, headers and bodies are the ones a
receiver would get.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

import tether
from tether import Agent, BreakerPolicy, Budget, Runtime, ToolContext
from tether.exceptions import ConfigError
from tether.runtime import InMemoryStore, SessionStatus
from tether.runtime.observe import SessionTag
from tether.spec.approval import ApprovalPolicy
from tether.spec.events import Event, EventType
from tether.spec.messages import Message, Usage
from tether.spec.model import ModelRequest, ModelResponse
from tether.spec.policy import RetryPolicy
from tether.surfaces.logs import configure_logging
from tether.surfaces.ops.alerts import (
    ALERT_ID_HEADER,
    SIGNATURE_HEADER,
    WEBHOOK_RETRY,
    Alert,
    Alerter,
    AlertKind,
    LogSink,
    Severity,
    WaitingApproval,
    WebhookSink,
    alert_for_event,
    alerter_from_env,
    sign,
    verify,
    waiting_approvals,
)
from tether.testing import FakeClock, FunctionModel, ScriptedModel, ScriptedResponse, call

SECRET = "whsec-0123456789abcdef-shared"


# --- a real webhook receiver ----------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    path: str


@dataclass
class Receiver:
    """Answers each POST with the next scripted ``(status, headers, delay)``, then 200."""

    url: str
    script: list[tuple[int, dict[str, str], float]] = field(default_factory=list)
    got: list[Received] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                rec.got.append(Received(dict(self.headers.items()), body, self.path))
                status, headers, delay = rec.script.pop(0) if rec.script else (200, {}, 0.0)
            if delay:
                time.sleep(delay)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client that gave up (a timeout test) is not a test failure

    server = Server(("127.0.0.1", 0), Handler)
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/alerts?token=q-s3cret-value"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def dead_url() -> str:
    """A loopback URL nothing listens on (a receiver that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks/alerts?token=q-s3cret-value"


def an_alert(**kw: Any) -> Alert:
    base: dict[str, Any] = {
        "kind": AlertKind.BREAKER_OPENED,
        "severity": Severity.CRITICAL,
        "summary": "The circuit breaker for model m opened.",
        "time": 1_700_000_000.0,
        "agent": "shop",
        "version": "7",
        "session_id": "s_1",
        "details": {"key": "model:m", "cooldown": 30.0},
        "id": "breaker_opened:model:m",
    }
    return Alert(**(base | kw))


def hmac_ok(secret: str, got: Received) -> bool:
    """The receiver's check, written out independently of ``verify``."""
    parts = dict(p.split("=", 1) for p in got.headers[SIGNATURE_HEADER].split(","))
    mac = hmac.new(
        secret.encode(), f"{parts['t']}.".encode() + got.body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(mac, parts["v1"])


@pytest.fixture
async def client() -> Any:
    async with httpx.AsyncClient() as c:
        yield c


# --- the webhook sink -----------------------------------------------------------------


async def test_webhook_is_signed_and_retried_until_the_receiver_accepts(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    receiver.script = [(503, {}, 0.0), (503, {}, 0.0)]
    clock = FakeClock()
    sink = WebhookSink(receiver.url, SECRET, client=client, clock=clock, sleep=clock.sleep)
    alert = an_alert()

    await sink.send(alert)

    assert len(receiver.got) == 3
    assert 0.8 <= clock.sleeps[0] <= 1.2  # 1 s, then 2 s, each with +-20% jitter
    assert 1.6 <= clock.sleeps[1] <= 2.4
    assert len(clock.sleeps) == 2
    for got in receiver.got:
        assert json.loads(got.body) == alert.to_dict()
        assert got.headers[ALERT_ID_HEADER] == "breaker_opened:model:m"
        assert got.headers["Content-Type"] == "application/json"
        assert hmac_ok(SECRET, got)
        assert not hmac_ok("another-secret-of-some-length", got)
    # each attempt is signed at its own time: the timestamps follow the (fake) clock
    stamps = [int(g.headers[SIGNATURE_HEADER].split(",")[0][2:]) for g in receiver.got]
    assert stamps == sorted(stamps)
    assert stamps[-1] > stamps[0]
    last = receiver.got[-1]
    assert verify(SECRET, last.body, last.headers[SIGNATURE_HEADER], now=clock())
    assert not verify("wrong-secret-0123456789", last.body, last.headers[SIGNATURE_HEADER])


async def test_the_signature_binds_body_time_and_secret() -> None:
    body = b'{"id":"x"}'
    header = sign(SECRET, body, 1_700_000_000)
    assert verify(SECRET, body, header, now=1_700_000_100)
    assert not verify(SECRET, body + b" ", header, now=1_700_000_100)  # body changed
    assert not verify(SECRET, body, header, now=1_700_000_301)  # too old: a replay
    assert not verify(SECRET, body, header.replace("t=1700000000", "t=1700000200"))
    assert not verify(SECRET, body, "v1=" + header.rpartition("v1=")[2])  # no time
    assert not verify(SECRET, body, "garbage", now=1_700_000_000)


async def test_retry_after_is_honoured_and_capped(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    receiver.script = [(429, {"Retry-After": "7"}, 0.0), (503, {"Retry-After": "3600"}, 0.0)]
    clock = FakeClock()
    sink = WebhookSink(receiver.url, SECRET, client=client, clock=clock, sleep=clock.sleep)
    await sink.send(an_alert())
    assert len(receiver.got) == 3
    assert clock.sleeps == [7.0, WEBHOOK_RETRY.retry_after_cap]


@pytest.mark.parametrize("status", [400, 401, 404, 409, 422])
async def test_a_4xx_is_not_retried_and_is_logged_not_raised(
    receiver: Receiver,
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    receiver.script = [(status, {}, 0.0)]
    clock = FakeClock()
    sink = WebhookSink(receiver.url, SECRET, client=client, clock=clock, sleep=clock.sleep)
    await sink.send(an_alert())
    assert len(receiver.got) == 1
    assert clock.sleeps == []
    (failed,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    text = failed.getMessage()
    assert f"HTTP {status}" in text
    assert "after 1 attempt:" in text
    assert "q-s3cret-value" not in text  # the URL's query (and path) are not logged
    assert "/hooks" not in text


@pytest.mark.parametrize("status", [408, 500, 502, 504, 529])
async def test_transient_statuses_are_retried(
    receiver: Receiver, client: httpx.AsyncClient, status: int
) -> None:
    receiver.script = [(status, {}, 0.0)]
    clock = FakeClock()
    sink = WebhookSink(receiver.url, SECRET, client=client, clock=clock, sleep=clock.sleep)
    await sink.send(an_alert())
    assert len(receiver.got) == 2


async def test_a_receiver_that_is_down_is_retried_then_given_up_and_logged(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tether.alerts")
    clock = FakeClock()
    url = dead_url()
    sink = WebhookSink(url, SECRET, client=client, clock=clock, sleep=clock.sleep)
    await sink.send(an_alert())  # does not raise
    assert len(clock.sleeps) == 4  # 5 attempts in all
    retries = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(retries) == 4
    (failed,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "not delivered" in failed
    assert "after 5 attempts" in failed
    assert "ConnectError" in failed
    assert "q-s3cret-value" not in "\n".join([failed, *retries])
    assert url.split("/hooks")[0] in failed  # the host and port are, to find it


async def test_a_timeout_is_retried(receiver: Receiver, client: httpx.AsyncClient) -> None:
    receiver.script = [(200, {}, 1.0)]  # the first answer comes too late
    clock = FakeClock()
    sink = WebhookSink(
        receiver.url, SECRET, client=client, clock=clock, sleep=clock.sleep, timeout=0.2
    )
    await sink.send(an_alert())
    assert len(receiver.got) == 2
    assert len(clock.sleeps) == 1


async def test_attempts_follow_the_policy(client: httpx.AsyncClient) -> None:
    clock = FakeClock()
    sink = WebhookSink(
        dead_url(),
        SECRET,
        client=client,
        clock=clock,
        sleep=clock.sleep,
        retry=RetryPolicy(max_retries=1, jitter=0.0),
    )
    await sink.send(an_alert())
    assert clock.sleeps == [1.0]


async def test_the_webhook_body_is_redacted(
    receiver: Receiver, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-abcdefghijklmnop123456")
    clock = FakeClock()
    sink = WebhookSink(receiver.url, SECRET, client=client, clock=clock, sleep=clock.sleep)
    await sink.send(an_alert(details={"error": "401 for key sk-live-abcdefghijklmnop123456"}))
    (got,) = receiver.got
    assert b"sk-live" not in got.body
    assert json.loads(got.body)["details"]["error"] == "401 for key [REDACTED]"
    assert hmac_ok(SECRET, got)


def test_a_webhook_needs_a_secret() -> None:
    with pytest.raises(ConfigError, match="secret"):
        WebhookSink("https://example.invalid/hook", "")


# --- the log sink ---------------------------------------------------------------------


async def test_the_log_sink_logs_the_alert_as_fields_at_its_severity(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="tether.alerts")
    sink = LogSink()
    await sink.send(an_alert())
    await sink.send(an_alert(severity=Severity.WARNING, id="w"))
    crit, warn = caplog.records
    assert crit.name == "tether.alerts"
    assert crit.levelno == logging.CRITICAL
    assert warn.levelno == logging.WARNING
    assert crit.getMessage() == "alert breaker_opened: The circuit breaker for model m opened."
    assert crit.alert_id == "breaker_opened:model:m"  # type: ignore[attr-defined]
    assert crit.alert_kind == "breaker_opened"  # type: ignore[attr-defined]
    assert crit.session_id == "s_1"  # type: ignore[attr-defined]
    assert crit.details == {"key": "model:m", "cooldown": 30.0}  # type: ignore[attr-defined]


# --- the alerter ----------------------------------------------------------------------


class Recording:
    def __init__(self) -> None:
        self.sent: list[Alert] = []

    async def send(self, alert: Alert) -> None:
        self.sent.append(alert)


class Broken:
    async def send(self, alert: Alert) -> None:
        raise RuntimeError("sink bug")


async def test_repeats_within_the_window_are_sent_once() -> None:
    clock = FakeClock()
    sink = Recording()
    alerter = Alerter([sink], dedupe_window=300, clock=clock)
    assert await alerter.notify(an_alert())
    assert not await alerter.notify(an_alert())
    assert await alerter.notify(an_alert(id="another"))
    clock.advance(299)
    assert not await alerter.notify(an_alert())
    clock.advance(2)
    assert await alerter.notify(an_alert())
    assert [a.id for a in sink.sent] == [
        "breaker_opened:model:m",
        "another",
        "breaker_opened:model:m",
    ]


async def test_every_sink_gets_it_at_once_and_a_broken_one_harms_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started = asyncio.Event()

    class Waits:
        async def send(self, alert: Alert) -> None:
            await asyncio.wait_for(started.wait(), 2)  # only if the other runs meanwhile

    class Starts:
        async def send(self, alert: Alert) -> None:
            started.set()

    recording = Recording()
    alerter = Alerter([Waits(), Broken(), Starts(), recording])
    assert await alerter.notify(an_alert())
    assert [a.id for a in recording.sent] == ["breaker_opened:model:m"]
    assert any("sink bug" in (r.exc_text or "") or r.exc_info for r in caplog.records)


def test_an_alert_id_defaults_to_its_kind_and_subject() -> None:
    a = Alert(
        kind=AlertKind.BUDGET_EXHAUSTED,
        severity=Severity.WARNING,
        summary="x",
        time=0.0,
        agent="shop",
        version="7",
        session_id="s1",
    )
    assert a.id == "budget_exhausted:shop:7:s1"
    ready = Alert.readiness_failed("shop", "7", "the model did not answer", time=1.0)
    assert ready.id == "readiness_failed:shop:7"
    assert ready.severity == Severity.CRITICAL
    assert "the model did not answer" in ready.summary
    canary = Alert.canary_rolled_back("shop", "8", to_version="7", reason="error rate", time=1.0)
    assert canary.id == "canary_rolled_back:shop:8"
    assert canary.details == {"to_version": "7", "reason": "error rate"}


# --- events into alerts, through a real runtime ---------------------------------------

shop_log = logging.getLogger("tests.shop")


@tether.tool(reads=True)
def get_order(ctx: ToolContext, order_id: str) -> dict[str, str]:
    """Look up an order.

    Args:
        order_id: The order id.
    """
    shop_log.warning("order database did not answer for %s", order_id)
    raise RuntimeError("order database down")


def looks_up(request: ModelRequest) -> ScriptedResponse:
    if request.messages[-1].role == "tool":
        return "Sorry, I could not look that up right now."
    return call("get_order", order_id="#W1")


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    out = io.StringIO()
    configure_logging("INFO", fmt="json", stream=out)
    try:
        yield out
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


async def test_a_breaker_that_opens_in_a_session_raises_one_alert(
    json_logs: io.StringIO,
) -> None:
    clock = FakeClock()
    sink = Recording()
    alerter = Alerter([sink, LogSink()], clock=clock)
    shop = Agent(
        name="shop",
        version="7",
        instructions="Help.",
        models=(FunctionModel(looks_up, name="m"),),
        tools=(get_order,),
        approval=ApprovalPolicy(enabled=False),
        breaker=BreakerPolicy(failure_threshold=2, window=60, cooldown=30),
    )
    async with Runtime(clock=clock, sleep=clock.sleep, observers=[alerter]) as rt:
        first = await rt.run(shop, "where is #W1?")
        second = await rt.run(shop, "and now?")
        third = await rt.run(shop, "and now?")  # the breaker is open: fails fast, no event
        await alerter.flush(5)
    assert third.status == SessionStatus.IDLE
    (alert,) = sink.sent
    assert alert.kind == AlertKind.BREAKER_OPENED
    assert alert.id == "breaker_opened:tool:shop:get_order"
    assert alert.severity == Severity.WARNING
    assert (alert.agent, alert.version, alert.session_id) == ("shop", "7", second.session_id)
    assert "get_order" in alert.summary
    assert alert.details["cooldown"] == 30

    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    tool_lines = [x for x in lines if x["logger"] == "tests.shop"]
    assert [x["session_id"] for x in tool_lines] == [first.session_id, second.session_id]
    assert all(x["agent"] == "shop" and x["version"] == "7" for x in tool_lines)
    assert all(isinstance(x["step"], int) for x in tool_lines)
    assert tool_lines[0]["message"] == "order database did not answer for #W1"
    (logged,) = [x for x in lines if x["logger"] == "tether.alerts"]
    assert logged["level"] == "WARNING"
    assert logged["alert_id"] == alert.id
    assert logged["session_id"] == second.session_id
    assert logged["details"]["key"] == "tool:shop:get_order"


async def test_a_session_ended_by_its_budget_raises_an_alert() -> None:
    answer = ModelResponse(
        message=Message(role="assistant", text="Let me check.", tool_calls=(), model="m"),
        usage=Usage(input_tokens=1_400, output_tokens=200),
        model="m",
        stop_reason="end",
    )
    sink = Recording()
    alerter = Alerter([sink])
    shop = Agent(
        name="shop",
        version="3",
        instructions="Help.",
        models=(ScriptedModel([answer, answer], name="m"),),
        budget=Budget(max_tokens=1_500),
        approval=ApprovalPolicy(enabled=False),
    )
    async with Runtime(observers=[alerter]) as rt:
        session = rt.session(shop, principal=tether.Principal(user="ava", tenant="t1"))
        first = await session.send("hi")  # 1,600 tokens: over, found when settling
        assert first.status == SessionStatus.IDLE
        result = await session.send("again")  # the next call cannot be paid for
        await alerter.aclose()
    assert result.status == SessionStatus.BUDGET_EXHAUSTED
    (alert,) = sink.sent
    assert alert.kind == AlertKind.BUDGET_EXHAUSTED
    assert alert.id == f"budget_exhausted:{result.session_id}"
    assert alert.details["max_tokens"] == 1_500
    assert alert.details["user"] == "ava"
    assert "token budget ran out" in alert.summary


def test_operator_alert_events_become_critical_alerts() -> None:
    tag = SessionTag("s1", "shop", "7", "ava", None)
    ev = Event(
        EventType.OPERATOR_ALERT,
        "s1",
        4,
        10.0,
        {"reason": "outcome unknown after a crash", "call_id": "c9", "tool": "refund"},
    )
    alert = alert_for_event(ev, tag)
    assert alert is not None
    assert alert.kind == AlertKind.OPERATOR
    assert alert.severity == Severity.CRITICAL
    assert alert.id == "operator:s1:c9"
    assert "refund" in alert.summary
    assert "outcome unknown after a crash" in alert.summary
    assert alert.time == 10.0
    model_breaker = Event(EventType.BREAKER_OPENED, "s1", 1, 1.0, {"key": "model:m", "cooldown": 5})
    opened = alert_for_event(model_breaker, tag)
    assert opened is not None
    assert opened.severity == Severity.CRITICAL  # a model chain failing is worse than a tool
    assert alert_for_event(Event(EventType.TURN_COMPLETED, "s1", 1, 1.0, {}), tag) is None


def test_the_observer_never_raises_into_the_turn(caplog: pytest.LogCaptureFixture) -> None:
    alerter = Alerter([Recording()])
    ev = Event(EventType.BREAKER_OPENED, "s1", 1, 1.0, {"key": "tool:a:b", "cooldown": 5})
    alerter(ev, SessionTag("s1", "a", "1"))  # no event loop here: logged, not raised
    assert any("could not raise alert" in r.getMessage() for r in caplog.records)
    # and it was not marked as sent: the same alert raised properly goes out
    alert = alert_for_event(ev, SessionTag("s1", "a", "1"))
    assert alert is not None
    assert asyncio.run(alerter.notify(alert))


async def test_aclose_waits_for_sends_then_cancels_and_closes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()
    closed: list[str] = []

    class Slow:
        async def send(self, alert: Alert) -> None:
            await release.wait()

        async def aclose(self) -> None:
            closed.append("slow")

    alerter = Alerter([Slow()])
    tag = SessionTag("s1", "a", "1")
    alerter(Event(EventType.BREAKER_OPENED, "s1", 1, 1.0, {"key": "tool:a:b"}), tag)
    assert not await alerter.flush(0.01)
    await alerter.aclose(timeout=0.05)
    assert closed == ["slow"]
    assert any("cancelled" in r.getMessage() for r in caplog.records)
    alerter(Event(EventType.BREAKER_OPENED, "s1", 1, 1.0, {"key": "tool:a:c"}), tag)
    assert any("after the alerter closed" in r.getMessage() for r in caplog.records)


# --- approvals waiting ----------------------------------------------------------------


@tether.tool(irreversible=True, summary="refund order {order_id}")
def refund(ctx: ToolContext, order_id: str) -> str:
    """Refund an order.

    Args:
        order_id: The order id.
    """
    return "refunded"


async def test_an_approval_waiting_past_the_limit_raises_an_alert() -> None:
    clock = FakeClock()
    store = InMemoryStore()
    sink = Recording()
    alerter = Alerter([sink], approval_wait=900, dedupe_window=300, clock=clock)
    shop = Agent(
        name="shop",
        version="7",
        instructions="Help.",
        models=(ScriptedModel([call("refund", order_id="#W1"), "done"], name="m"),),
        tools=(refund,),
    )
    async with Runtime(store=store, close_store=False, clock=clock, sleep=clock.sleep) as rt:
        r = await rt.run(shop, "refund #W1")
    assert r.status == SessionStatus.AWAITING_APPROVAL
    assert r.approval is not None
    asked = clock()

    (waiting,) = await waiting_approvals(store)
    assert waiting == WaitingApproval(
        id=r.approval.id,
        session_id=r.session_id,
        agent="shop",
        version="7",
        tool="refund",
        requested_at=asked,
        summary=waiting.summary,
        mode="user",
        expires_at=r.approval.expires_at,
    )
    assert "#W1" in waiting.summary

    assert await alerter.check_waiting([waiting], now=asked + 899) == []
    clock.advance(900)
    (alert,) = await alerter.check_waiting(await waiting_approvals(store))
    assert alert.kind == AlertKind.APPROVAL_WAITING
    assert alert.id == f"approval_waiting:{r.approval.id}"
    assert alert.session_id == r.session_id
    assert alert.details["waited_s"] == 900
    assert "15 min" in alert.summary
    assert sink.sent == [alert]
    clock.advance(60)  # checked again a minute later: not repeated within the window
    assert await alerter.check_waiting(await waiting_approvals(store)) == []
    clock.advance(300)  # a reminder once per window while it still waits
    assert len(await alerter.check_waiting(await waiting_approvals(store))) == 1


# --- configuration --------------------------------------------------------------------


def test_from_env_always_logs_and_adds_a_webhook_when_configured() -> None:
    plain = alerter_from_env({})
    assert [type(s) for s in plain.sinks] == [LogSink]
    assert plain.dedupe_window == 300
    assert plain.approval_wait == 900
    full = alerter_from_env(
        {
            "TETHER_ALERT_WEBHOOK_URL": "https://hooks.example.com/x",
            "TETHER_ALERT_WEBHOOK_SECRET": SECRET,
            "TETHER_ALERT_DEDUPE_S": "60",
            "TETHER_ALERT_APPROVAL_WAIT": "120",
        }
    )
    assert [type(s) for s in full.sinks] == [LogSink, WebhookSink]
    assert full.dedupe_window == 60
    assert full.approval_wait == 120
    assert SECRET not in repr(full)


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"TETHER_ALERT_WEBHOOK_URL": "https://h/x"}, "TETHER_ALERT_WEBHOOK_SECRET is missing"),
        (
            {"TETHER_ALERT_WEBHOOK_URL": "https://h/x", "TETHER_ALERT_WEBHOOK_SECRET": "short"},
            "shorter than 16",
        ),
        (
            {"TETHER_ALERT_WEBHOOK_URL": "ftp://h/x", "TETHER_ALERT_WEBHOOK_SECRET": SECRET},
            "not an http",
        ),
        ({"TETHER_ALERT_DEDUPE_S": "soon"}, "TETHER_ALERT_DEDUPE_S"),
        ({"TETHER_ALERT_DEDUPE_S": "inf"}, "TETHER_ALERT_DEDUPE_S='inf' is not a number"),
        ({"TETHER_ALERT_APPROVAL_WAIT": "NaN"}, "TETHER_ALERT_APPROVAL_WAIT='NaN' is not a"),
        ({"TETHER_ALERT_APPROVAL_WAIT": "0"}, "at least 1"),
        (
            {"TETHER_ALERT_WEBHOOK_URL": "https://h:0/x", "TETHER_ALERT_WEBHOOK_SECRET": SECRET},
            "port 0",
        ),
        (
            {
                "TETHER_ALERT_WEBHOOK_URL": "https://h:99999/x",
                "TETHER_ALERT_WEBHOOK_SECRET": SECRET,
            },
            r"TETHER_ALERT_WEBHOOK_URL \(https://h:\?/...\) does not parse",
        ),
        (
            {"TETHER_ALERT_WEBHOOK_URL": "https:///x", "TETHER_ALERT_WEBHOOK_SECRET": SECRET},
            "has no host",
        ),
        (
            {
                "TETHER_ALERT_WEBHOOK_URL": "https://h/x",
                "TETHER_ALERT_WEBHOOK_SECRET": SECRET,
                "TETHER_ALERT_WEBHOOK_TIMEOUT": "nan",
            },
            "TETHER_ALERT_WEBHOOK_TIMEOUT",
        ),
        (
            {
                "TETHER_ALERT_WEBHOOK_URL": "https://h/x",
                "TETHER_ALERT_WEBHOOK_SECRET": SECRET,
                "TETHER_ALERT_WEBHOOK_ATTEMPTS": "0",
            },
            "ATTEMPTS",
        ),
    ],
)
def test_from_env_refuses_bad_settings_with_the_fix(env: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        alerter_from_env(env)


def test_a_webhook_url_that_cannot_be_posted_to_is_refused_without_its_secrets() -> None:
    with pytest.raises(ConfigError, match="does not parse") as info:
        WebhookSink("https://bob:pw-Secret1@h:70000/services/T/B/PathSecret1", SECRET)
    for secret in ("pw-Secret1", "PathSecret1", "bob"):
        assert secret not in str(info.value)
    with pytest.raises(ConfigError, match="not an http"):
        WebhookSink("ftp://h/x", SECRET)
    with pytest.raises(ConfigError, match="timeout"):
        WebhookSink("https://h/x", SECRET, timeout=float("nan"))
    with pytest.raises(ConfigError, match="dedupe_window"):
        Alerter(dedupe_window=float("nan"))
    with pytest.raises(ConfigError, match="approval_wait"):
        Alerter(approval_wait=float("inf"))


async def test_an_alerter_from_env_delivers_signed_alerts_end_to_end(receiver: Receiver) -> None:
    alerter = alerter_from_env(
        {"TETHER_ALERT_WEBHOOK_URL": receiver.url, "TETHER_ALERT_WEBHOOK_SECRET": SECRET}
    )
    ready = Alert.readiness_failed("shop", "7", "the model did not answer", time=5.0)
    canary = Alert.canary_rolled_back("shop", "8", to_version="7", reason="errors", time=6.0)
    async with alerter:
        assert await alerter.notify(ready)
        assert not await alerter.notify(ready)
        assert alerter.submit(canary)  # returns at once; sent in the background
        assert not alerter.submit(canary)
    # leaving the block (aclose) waited for the background send
    got, sent_later = receiver.got
    assert sent_later.headers[ALERT_ID_HEADER] == "canary_rolled_back:shop:8"
    assert got.path == "/hooks/alerts?token=q-s3cret-value"
    assert got.headers[ALERT_ID_HEADER] == "readiness_failed:shop:7"
    assert json.loads(got.body) == ready.to_dict()
    assert verify(SECRET, got.body, got.headers[SIGNATURE_HEADER])


# --- the server's operations: alerts from a request's path ---------------------------


class _Sink:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []
        self.release = asyncio.Event()

    async def send(self, alert: Alert) -> None:
        await self.release.wait()  # a receiver that does not answer until told
        self.alerts.append(alert)


def _ops(sink: _Sink) -> Any:
    from tether.surfaces.ops.canary import CanaryPolicy
    from tether.surfaces.server.operations import Operations

    return Operations(metrics=None, tracing=None, alerter=Alerter([sink]), canary=CanaryPolicy())


async def test_operations_alerts_never_wait_for_the_receiver() -> None:
    sink = _Sink()
    ops = _ops(sink)
    failed = {"store": {"ok": True}, "agent:shop": {"ok": False, "detail": "no", "version": "4"}}
    async with asyncio.timeout(1):  # each returns at once though the receiver hangs
        await ops.version_missing("shop", "3", "shop version 3 (active) is not loaded here")
        await ops.readiness_failed(failed)
    sink.release.set()
    await ops.alerter.aclose()
    assert sorted(a.id for a in sink.alerts) == [
        "readiness_failed:shop:3",
        "readiness_failed:shop:4",
    ]


async def test_readiness_for_a_missing_version_is_the_same_alert_as_the_version_missing() -> None:
    sink = _Sink()
    sink.release.set()
    ops = _ops(sink)
    why = "shop version 3 (active) is not loaded here; new sessions start on version 1 instead"
    await ops.version_missing("shop", "3", why)
    await ops.readiness_failed(
        {
            "agent:shop": {"ok": False, "detail": why, "version": "1"},  # the missing one: 3
            "agent:cart@2": {"ok": False, "detail": "the model did not answer", "version": "2"},
            "agent:bare": {"ok": False, "detail": "down"},  # an older check: no version
        }
    )
    await ops.alerter.aclose()
    assert sorted(a.id for a in sink.alerts) == [
        "readiness_failed:bare:-",
        "readiness_failed:cart:2",
        "readiness_failed:shop:3",
    ]


@pytest.mark.parametrize("poll", ["nan", "inf", "0", "-5", "abc", " 1e400"])
def test_a_versions_poll_that_is_not_a_positive_number_is_refused(poll: str) -> None:
    from tether.surfaces.server.operations import Operations

    with pytest.raises(ConfigError, match=r"TETHER_VERSIONS_POLL=.* greater than 0"):
        Operations.from_env({"TETHER_VERSIONS_POLL": poll, "TETHER_METRICS": "0"})
    ops = Operations.from_env({"TETHER_VERSIONS_POLL": "0.5", "TETHER_METRICS": "0"})
    assert ops.versions_poll == 0.5
    assert Operations.from_env({"TETHER_METRICS": "0"}).versions_poll == 2.0


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"TETHER_CANARY_FAILED_TURNS": "nan"}, "TETHER_CANARY_FAILED_TURNS='nan' must be"),
        ({"TETHER_CANARY_COST": "0,inf"}, "TETHER_CANARY_COST"),
        ({"TETHER_CANARY_DENIALS": "-0.1,2"}, "TETHER_CANARY_DENIALS"),
        ({"TETHER_CANARY_DENIALS": "0.1,0.5"}, "TETHER_CANARY_DENIALS"),
        ({"TETHER_CANARY_INTERVAL": "nan"}, "TETHER_CANARY_INTERVAL"),
        ({"TETHER_CANARY_INTERVAL": "0"}, "TETHER_CANARY_INTERVAL"),
        ({"TETHER_CANARY_MIN_SESSIONS": "0"}, "TETHER_CANARY_MIN_SESSIONS"),
    ],
)
def test_canary_settings_that_are_not_sane_numbers_are_refused(
    env: dict[str, str], match: str
) -> None:
    from tether.surfaces.ops.canary import CanaryPolicy, Threshold

    with pytest.raises(ConfigError, match=match):
        CanaryPolicy.from_env(env)
    with pytest.raises(ConfigError):
        Threshold(float("nan"), 2.0)
    with pytest.raises(ConfigError):
        CanaryPolicy(interval=float("nan"))
    assert CanaryPolicy.from_env({"TETHER_CANARY_COST": "0.5"}).cost == Threshold(0.5, 1.0)
