"""Structured logs: JSON lines with the turn's ids, and no secret in any line, by any route.

Each test configures the root logger with :func:`configure_logging` writing to a
``StringIO`` (the handler's stream), so what is asserted is exactly what an
operator's log pipeline would read.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest

import tether
from tether import Agent, Runtime, ToolContext
from tether.exceptions import ConfigError
from tether.spec.approval import ApprovalPolicy
from tether.surfaces.logs import configure_logging, redact, redact_value
from tether.testing import ScriptedModel, call

PROVIDER_KEY = "sk-proj-AbCdEf0123456789xyzQWERTY"
OPAQUE_TOKEN = "opaque-service-token-4242"  # no known shape: found as an env value
TETHER_KEY = "tk_3f9a1b2c4d5e_Zq8x-Y7w_V6u5T4s3R2q1P0oNm"
BEARER = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhdmEifQ.c2lnbmF0dXJl"
ACCOUNT = "acct-12345678"  # caught by the operator's pattern
PIN = "48213907"  # caught by a look-behind pattern: pin=<digits>
FIELD_PASSWORD = "hunter2-but-longer"  # no shape, not in env: caught by its field name
SECRETS = [PROVIDER_KEY, OPAQUE_TOKEN, TETHER_KEY, BEARER, ACCOUNT, PIN, FIELD_PASSWORD]
# the parts most likely to survive a partial redaction
FRAGMENTS = ["AbCdEf0123456789", "Zq8x-Y7w", "V6u5T4s3", "c2lnbmF0dXJl", "12345678", "hunter2"]

Configure = Callable[..., io.StringIO]


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Configure]:
    """``configure(fmt=...)``: logging set up as a process would, into a StringIO."""
    monkeypatch.delenv("TETHER_LOG_FORMAT", raising=False)
    monkeypatch.delenv("TETHER_LOG_LEVEL", raising=False)
    root = logging.getLogger()
    saved = root.handlers[:], root.level

    def setup(fmt: str | None = None, level: str = "DEBUG") -> io.StringIO:
        out = io.StringIO()
        configure_logging(level, fmt=fmt, stream=out)
        return out

    try:
        yield setup
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", PROVIDER_KEY)
    monkeypatch.setenv("BILLING_SERVICE_TOKEN", OPAQUE_TOKEN)
    monkeypatch.setenv("TETHER_REDACT_PATTERNS", r"acct-[0-9]{8} ;; (?<=pin=)[0-9]{4,}")


class Opaque:
    """Not JSON-serialisable; its str() holds a secret."""

    def __str__(self) -> str:
        return f"Opaque(key={TETHER_KEY})"


def lookup(order: str) -> None:
    try:
        raise ConnectionError(f"upstream refused Authorization: Bearer {BEARER}")
    except ConnectionError as exc:
        raise RuntimeError(f"lookup of {order} failed with key {PROVIDER_KEY}") from exc


def log_every_route(log: logging.Logger) -> None:
    """One record per route a secret can take into a log line, each with a marker."""
    log.warning(f"route-message key={PROVIDER_KEY} token={OPAQUE_TOKEN} api={TETHER_KEY}")
    log.warning("route-args %s %s pin=%s", ACCOUNT, f"Bearer {BEARER}", PIN)
    log.warning("route-args-dict %(h)s", {"h": {"Authorization": f"Bearer {BEARER}"}})
    log.warning(
        "route-extra",
        extra={
            "api_key_used": TETHER_KEY,
            "note": f"customer {ACCOUNT}",
            "password": FIELD_PASSWORD,
        },
    )
    log.warning(
        "route-nested-extra",
        extra={
            "request": {
                "headers": {"authorization": f"Bearer {BEARER}", "x-trace": "t1"},
                "body": [{"card": ACCOUNT}, f"pin={PIN}", (PROVIDER_KEY, 3)],
                "auth": {"password": FIELD_PASSWORD, "user": "ava"},
            }
        },
    )
    log.warning("route-opaque", extra={"thing": Opaque(), "things": [Opaque()]})
    try:
        lookup(ACCOUNT)
    except RuntimeError:
        log.exception("route-exception")
    log.warning("route-stack %s", OPAQUE_TOKEN, stack_info=True)
    log.warning("route-bad-args %d", TETHER_KEY)  # does not fit its format


ROUTES = [
    "route-message",
    "route-args",
    "route-args-dict",
    "route-extra",
    "route-nested-extra",
    "route-opaque",
    "route-exception",
    "route-stack",
]


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.usefixtures("secret_env")
def test_no_secret_reaches_a_log_line_by_any_route(configure: Configure, fmt: str) -> None:
    out = configure(fmt=fmt)
    log_every_route(logging.getLogger("tests.routes"))
    text = out.getvalue()
    for route in ROUTES:
        assert route in text  # each route did write its line
    for value in SECRETS + FRAGMENTS:
        assert value not in text, f"{value!r} leaked into the {fmt} log"
    assert "[REDACTED]" in text
    assert "Traceback" in text  # the traceback is there, only cleaned
    assert "ConnectionError" in text  # ... with its chained cause
    assert "could not be formatted" in text  # the bad call logged a note, did not raise


@pytest.mark.usefixtures("secret_env")
def test_json_fields_are_redacted_in_place(configure: Configure) -> None:
    out = configure(fmt="json")
    log_every_route(logging.getLogger("tests.routes"))
    lines = {x["message"].split()[0]: x for x in map(json.loads, out.getvalue().splitlines())}
    extra = lines["route-extra"]
    assert extra["api_key_used"] == "[REDACTED]"
    assert extra["note"] == "customer [REDACTED]"
    assert extra["password"] == "[REDACTED]"
    request = lines["route-nested-extra"]["request"]
    assert request["headers"] == {"authorization": "[REDACTED]", "x-trace": "t1"}
    assert request["body"] == [{"card": "[REDACTED]"}, "pin=[REDACTED]", ["[REDACTED]", 3]]
    assert request["auth"] == {"password": "[REDACTED]", "user": "ava"}
    assert lines["route-opaque"]["thing"] == "Opaque(key=[REDACTED])"
    assert lines["route-opaque"]["things"] == ["Opaque(key=[REDACTED])"]
    exc = lines["route-exception"]["exc"]
    assert exc.startswith("Traceback")
    assert "RuntimeError: lookup of [REDACTED] failed with key [REDACTED]" in exc
    assert "Authorization: Bearer [REDACTED]" in exc
    assert "route-stack" in lines
    assert "Stack (most recent call last)" in lines["route-stack"]["stack"]


def test_a_json_line_has_time_level_logger_message_and_extras(configure: Configure) -> None:
    out = configure(fmt="json")
    logging.getLogger("tests.shape").info(
        "order %s shipped", "#W1", extra={"order": {"id": "#W1", "items": 2}, "late": False}
    )
    (line,) = out.getvalue().splitlines()
    record = json.loads(line)
    assert list(record)[:4] == ["time", "level", "logger", "message"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"])
    assert datetime.fromisoformat(record["time"]).utcoffset() is not None
    assert record["level"] == "INFO"
    assert record["logger"] == "tests.shape"
    assert record["message"] == "order #W1 shipped"
    assert record["order"] == {"id": "#W1", "items": 2}
    assert record["late"] is False
    assert "session_id" not in record  # not in a turn: no turn ids
    assert "exc" not in record


@tether.tool(reads=True)
async def get_order(ctx: ToolContext, order_id: str) -> str:
    """Look up an order.

    Args:
        order_id: The order id.
    """
    logging.getLogger("tests.shop").info("looking up %s", order_id)
    logging.getLogger("tests.shop").info("given ids win", extra={"session_id": "mine"})
    return "pending"


async def test_lines_logged_during_a_turn_carry_its_ids(configure: Configure) -> None:
    out = configure(fmt="json")
    shop = Agent(
        name="shop",
        version="9",
        instructions="Help.",
        models=(ScriptedModel([call("get_order", order_id="#W1"), "It is pending."]),),
        tools=(get_order,),
        approval=ApprovalPolicy(enabled=False),
    )
    async with Runtime(observers=[lambda ev, tag: None]) as rt:  # ids need an observer
        result = await rt.run(shop, "where is #W1?")
    logging.getLogger("tests.shop").info("after the turn")
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    looked, given, after = [x for x in lines if x["logger"] == "tests.shop"]
    assert looked["message"] == "looking up #W1"
    assert looked["session_id"] == result.session_id
    assert (looked["agent"], looked["version"]) == ("shop", "9")
    assert looked["step"] >= 1
    assert given["session_id"] == "mine"  # an explicit extra is kept
    assert given["agent"] == "shop"
    assert "session_id" not in after


def test_the_environment_chooses_the_format(
    configure: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TETHER_LOG_FORMAT", "JSON")
    out = configure(fmt="text")
    logging.getLogger("tests.env").warning("hello")
    assert json.loads(out.getvalue())["message"] == "hello"


@pytest.mark.usefixtures("secret_env")
def test_text_lines_keep_their_format_and_are_redacted(configure: Configure) -> None:
    out = configure()
    logging.getLogger("tests.text").warning("calling with %s", PROVIDER_KEY)
    line = out.getvalue().strip()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING tests\.text: calling with \[REDACTED\]",
        line,
    )


@pytest.mark.parametrize(
    ("patterns", "match"),
    [
        ("acct-[0-9", r"pattern 1 \('acct-\[0-9'\) is not a valid regular expression"),
        (r"ok-\d+;;(unclosed", "pattern 2"),
        ("x*", "matches the empty string"),
    ],
)
def test_a_bad_redaction_pattern_fails_at_start_up(
    configure: Configure, monkeypatch: pytest.MonkeyPatch, patterns: str, match: str
) -> None:
    root = logging.getLogger()
    before = root.handlers[:]
    monkeypatch.setenv("TETHER_REDACT_PATTERNS", patterns)
    with pytest.raises(ConfigError, match=match):
        configure(fmt="json")
    assert root.handlers == before  # nothing was changed


def test_redact_outside_a_configured_process_takes_a_bad_pattern_as_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TETHER_REDACT_PATTERNS", "acct-[0-9;;x*;;ok-[0-9]+")
    assert redact("see acct-[0-9 and ok-42, x") == "see [REDACTED] and [REDACTED], x"


def test_an_unknown_format_or_level_is_refused(configure: Configure) -> None:
    with pytest.raises(ConfigError, match="text or json"):
        configure(fmt="yaml")
    with pytest.raises(ValueError, match="level"):
        configure(level="LOUD")


def test_redaction_of_values_and_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_REDACT_PATTERNS", "")
    assert redact(f"k {TETHER_KEY}.") == "k [REDACTED]."
    assert redact("postgresql://app:pa55word@db:5432/x") == "postgresql://app:[REDACTED]@db:5432/x"
    assert redact("GET /hook?token=abc123&page=2") == "GET /hook?token=[REDACTED]&page=2"
    assert redact("Authorization: Basic dXNlcjpwYXNz") == "Authorization: Basic [REDACTED]"
    assert redact("100% fine, tk_ is a prefix") == "100% fine, tk_ is a prefix"
    assert redact_value({"max_tokens": 500, "tokens": "12", "token": "abc"}) == {
        "max_tokens": 500,
        "tokens": "12",
        "token": "[REDACTED]",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "GET /t?client_id=a&client_secret=S1&refresh_token=S2&X-Amz-Signature=S3&n=1",
            "GET /t?client_id=a&client_secret=[REDACTED]&refresh_token=[REDACTED]"
            "&X-Amz-Signature=[REDACTED]&n=1",
        ),
        ("GET /x?access-token=S1#top", "GET /x?access-token=[REDACTED]#top"),
        (
            "connection failed: host=db user=app password=S1 dbname=x",
            "connection failed: host=db user=app password=[REDACTED] dbname=x",
        ),
        ("headers {'x-api-key': 'S1', 'n': 1}", "headers {'x-api-key': '[REDACTED]', 'n': 1}"),
        ('{"password": "a \\"b\\" c", "u": 1}', '{"password": "[REDACTED]", "u": 1}'),
        ("PGPASSWORD=S1 psql", "PGPASSWORD=[REDACTED] psql"),
        ("postgresql://app:ab/S1@db:5432/x", "postgresql://app:[REDACTED]@db:5432/x"),
        ("redis://:p@ssS1@cache:6379/0", "redis://:[REDACTED]@cache:6379/0"),
        ("https://host:8443/users/ava@example.com", "https://host:8443/users/ava@example.com"),
        ("max_tokens=500 tokens: 12 token_count=3", "max_tokens=500 tokens: 12 token_count=3"),
        (
            "posted to https://hooks.slack.com/services/T0/B0/S1",
            "posted to https://hooks.slack.com/services/[REDACTED]",
        ),
        ("push failed: ghp_" + "a1" * 12, "push failed: [REDACTED]"),
    ],
)
def test_credentials_are_found_by_the_end_of_their_name_and_their_shape(
    monkeypatch: pytest.MonkeyPatch, text: str, expected: str
) -> None:
    monkeypatch.setenv("TETHER_REDACT_PATTERNS", "")
    assert redact(text) == expected


def test_configured_urls_and_headers_are_secret_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_REDACT_PATTERNS", "")
    monkeypatch.setenv("TETHER_ALERT_WEBHOOK_URL", "https://hooks.example.com/T0/B0/PathSecret")
    monkeypatch.setenv("TETHER_DATABASE_URL", "postgresql://app:DbPassw0rd@db/x")
    monkeypatch.setenv("ORDERS_API_URL", "https://api.example.com/v1/Ab12Cd34Ef56Gh78Ij90/orders")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-honeycomb-team=HoneyKey123,a=b")
    line = (
        "POST https://HOOKS.example.com:443/T0/B0/PathSecret; db said: DbPassw0rd rejected; "
        "GET https://api.example.com/v1/Ab12Cd34Ef56Gh78Ij90/orders; team HoneyKey123; a=b"
    )
    out = redact(line)
    for secret in ("PathSecret", "DbPassw0rd", "Ab12Cd34Ef56Gh78Ij90", "HoneyKey123"):
        assert secret not in out
    assert out.endswith("a=b")  # a short header value is not looked for everywhere
    assert "https://HOOKS.example.com:443[REDACTED]" in out


@pytest.fixture
def server_loggers() -> Iterator[None]:
    names = ("uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "httpcore")
    saved = {n: logging.getLogger(n) for n in names}
    state = {n: (lg.handlers[:], lg.propagate, lg.level) for n, lg in saved.items()}
    try:
        yield
    finally:
        for n, (handlers, propagate, level) in state.items():
            saved[n].handlers[:] = handlers
            saved[n].propagate = propagate
            saved[n].setLevel(level)


@pytest.mark.usefixtures("server_loggers")
def test_uvicorns_own_handlers_are_replaced_and_a_silenced_one_stays_silent(
    configure: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    access, error = logging.getLogger("uvicorn.access"), logging.getLogger("uvicorn.error")
    for lg in (access, logging.getLogger("uvicorn")):  # what uvicorn's LOGGING_CONFIG does
        lg.handlers[:] = [logging.StreamHandler()]
        lg.propagate = False
    for lg in (access, error, logging.getLogger("uvicorn")):  # uvicorn --log-level info
        lg.setLevel(logging.INFO)
    out = configure(fmt="json", level="INFO")
    access.info('%s - "%s %s HTTP/1.1" %d', "1.2.3.4:5", "GET", f"/x?api_key={OPAQUE_TOKEN}", 200)
    error.info("Started server process")
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [x["logger"] for x in lines] == ["uvicorn.access", "uvicorn.error"]
    assert OPAQUE_TOKEN not in out.getvalue() + "".join(capsys.readouterr())
    assert logging.getLogger("httpx").level == logging.WARNING
    assert logging.getLogger("httpcore").getEffectiveLevel() == logging.WARNING

    access.handlers.clear()  # uvicorn --no-access-log: no handler, no propagation
    access.propagate = False
    out = configure(fmt="json", level="INFO")
    access.info("GET /x 200")
    assert out.getvalue() == ""
