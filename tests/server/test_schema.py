"""The published OpenAPI schema holds for whatever a client sends (schemathesis).

One in-process server serves the retail agent; schemathesis reads its
``/openapi.json`` and, for every operation, generates valid requests and
invalid ones (positive and negative modes), sent with an API key of every
role. Each response must:

- not be a server error (5xx);
- have a status code the operation documents;
- have a content type documented for that status;
- have a body that matches the documented schema.

Random ids rarely name anything, so some requests are pointed at sessions
and an approval that exist (an idle session with a finished turn, one
waiting on an approval), and the turn endpoints are asked for SSE as well
as JSON. ``until=never`` on an existing session streams forever by design
(no response ever completes), so there it is asked ``until=rest``.

Every failure is collected (operation, status, body, why) and reported
together rather than stopping at the first. What the fuzzing found once (a
body that is not UTF-8, SSE documented as one string, an ``after`` past
any event number) has a small test of its own at the end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from examples.retail.agent import open_shop
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.server.agents import DEMO, retail
from tests.server.conftest import inprocess, make_key

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 25  # per operation and mode: about 750 requests in all
SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # failures are collected, not shrunk
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

INT64_MAX = 2**63 - 1


@dataclasses.dataclass(frozen=True)
class Finding:
    operation: str
    mode: str
    status: int
    content_type: str
    kinds: tuple[str, ...]  # schemathesis failure classes, e.g. UndefinedStatusCode
    body: str
    why: str
    request: str

    def __str__(self) -> str:
        return (
            f"{self.operation} ({self.mode}): {self.status} {self.content_type} "
            f"{','.join(self.kinds)}\n    body: {self.body[:300]!r}\n"
            f"    {self.why[:700]}\n    {self.request[:400]}"
        )


@dataclasses.dataclass(frozen=True)
class Seeded:
    """What exists on the server before fuzzing: ids a request may be pointed at."""

    sessions: tuple[str, ...]
    approval: str


def seed(url: str, auth: dict[str, str]) -> Seeded:
    with httpx.Client(base_url=url, headers=auth, timeout=30) as client:
        for sid in ("fuzz-idle", "fuzz-waiting"):
            r = client.post("/v1/sessions", json={"agent": "retail", "session_id": sid})
            assert r.status_code == 201, r.text
        who = f"I'm {DEMO['first_name']} {DEMO['last_name']}, zip {DEMO['zip']}."
        r = client.post(
            "/v1/sessions/fuzz-idle/messages",
            json={"message": f"{who} What's the status of my order #W1024001?"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "idle"
        r = client.post(
            "/v1/sessions/fuzz-waiting/messages",
            json={"message": f"{who} Please cancel my order #W1024001."},
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "awaiting_approval", r.json()
        approval = r.json()["approval"]["id"]
    return Seeded(("fuzz-idle", "fuzz-waiting"), approval)


def operations(schema: Any) -> Iterator[Any]:
    for result in schema.get_all_operations():
        yield result.ok()  # a schema error raises here: the schema itself is broken


def _streams(op: Any) -> bool:
    ok = op.definition.raw.get("responses", {}).get("200", {})
    return "text/event-stream" in ok.get("content", {}) and op.method.upper() == "POST"


def fuzz_operation(
    op: Any, mode: GenerationMode, url: str, auth: dict[str, str], seeded: Seeded
) -> list[Finding]:
    """Send up to MAX_EXAMPLES generated requests to ``op``; what failed a check."""
    found: list[Finding] = []
    params = {p.name for p in op.path_parameters}
    targets: list[dict[str, str] | None] = [None]
    if "session_id" in params:
        targets += [{"session_id": s} for s in seeded.sessions]
    if "approval_id" in params:
        targets.append({"approval_id": seeded.approval})
    if "name" in params:
        targets.append({"name": "retail"})
    accepts: list[str | None] = [None, "text/event-stream"] if _streams(op) else [None]

    @SETTINGS
    @given(
        case=op.as_strategy(generation_mode=mode),
        target=st.sampled_from(targets),
        accept=st.sampled_from(accepts),
    )
    def run(case: Any, target: dict[str, str] | None, accept: str | None) -> None:
        if target is not None:
            case.path_parameters = {**(case.path_parameters or {}), **target}
            if op.path.endswith("/events/stream") and (case.query or {}).get("until") == "never":
                case.query = {**case.query, "until": "rest"}  # else it never ends
        headers = dict(auth) | ({"Accept": accept} if accept else {})
        try:
            response = case.call(base_url=url, headers=headers, timeout=30)
        except Exception as exc:  # a timeout or a dropped connection is a finding too
            found.append(
                Finding(
                    op.label,
                    mode.value,
                    0,
                    "",
                    (),
                    "",
                    repr(exc),
                    _curl(case, headers),
                )
            )
            return
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (AssertionError, FailureGroup) as exc:
            kinds = tuple(sorted({type(f).__name__ for f in getattr(exc, "exceptions", ())}))
            ctype = ";".join(response.headers.get("content-type") or [])  # a list of values
            body = response.text
            found.append(
                Finding(
                    op.label,
                    mode.value,
                    response.status_code,
                    ctype,
                    kinds,
                    body,
                    str(exc),
                    _curl(case, headers),
                )
            )

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        # an operation with nothing to make invalid (no parameters, no body) has no
        # negative requests; anything else unsatisfiable is a real problem
        if mode is not GenerationMode.NEGATIVE or params or op.body or op.query:
            raise
    return found


def _curl(case: Any, headers: dict[str, str]) -> str:
    shown = {k: ("Bearer <key>" if k == "Authorization" else v) for k, v in headers.items()}
    try:
        return str(case.as_curl_command(headers=shown))
    except Exception:  # only for the report
        return f"{case.method} {case.formatted_path} {json.dumps(case.query, default=str)}"


def _report(findings: list[Finding]) -> str:
    """One example of each (operation, mode, status, kind of failure)."""
    unique: dict[tuple[str, str, int, tuple[str, ...]], Finding] = {}
    for f in findings:
        unique.setdefault((f.operation, f.mode, f.status, f.kinds), f)
    return "\n".join(str(f) for f in unique.values())


@pytest.mark.slow
# schemathesis's negative mutations call random.random() inside its own strategies
# (schemathesis/specs/openapi/negative/__init__.py); Hypothesis seeds the global random
# for each example, so the runs stay deterministic
@pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)
def test_every_response_conforms_to_the_schema(tmp_path: Path) -> None:
    agent = dataclasses.replace(retail, deps=functools.partial(open_shop, tmp_path / "shop.sqlite"))
    # recover_interval=0: no sweeper in the server's thread (it would draw from the global
    # random that Hypothesis seeds, and the fuzzed sessions are never left running)
    with inprocess([agent], tmp_path, recover_interval=0) as srv:
        token = asyncio.run(
            make_key(srv.db_url, user="fuzz", roles=frozenset({"user", "approver", "admin"}))
        )
        auth = {"Authorization": f"Bearer {token}"}
        seeded = seed(srv.url, auth)
        schema = schemathesis.openapi.from_url(srv.url + "/openapi.json", timeout=30)
        findings: list[Finding] = []
        tried = 0
        for op in operations(schema):
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                findings += fuzz_operation(op, mode, srv.url, auth, seeded)
            tried += 1
    assert tried >= 14, f"the schema lists only {tried} operations"
    broken = _report(findings)
    assert not broken, "responses that break the schema:\n" + broken


# --- what the fuzzing once found, one request each -------------------------------


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int  # 0: the connection broke
    content_type: str
    text: str


def ask(tmp_path: Path, requests: list[tuple[str, str, dict[str, Any]]]) -> list[Answer]:
    """Send ``(method, path, httpx kwargs)`` requests to a fresh server (open local mode,
    one session ``s1``); the answers, read once the server has stopped.

    Asserting only after the server's thread has ended matters on CPython 3.11: a
    traceback the server logs while pytest formats a failure can crash pytest
    ("SystemError: AST constructor recursion depth mismatch": both threads parse source).
    """
    agent = dataclasses.replace(retail, deps=functools.partial(open_shop, tmp_path / "shop.sqlite"))
    answers: list[Answer] = []
    with (
        inprocess([agent], tmp_path, recover_interval=0) as srv,
        httpx.Client(base_url=srv.url, timeout=10) as client,
    ):
        r = client.post("/v1/sessions", json={"agent": "retail", "session_id": "s1"})
        answers.append(Answer(r.status_code, r.headers.get("content-type", ""), r.text))
        for method, path, kwargs in requests:
            try:
                r = client.request(method, path, **kwargs)
            except httpx.TransportError as exc:  # a stream cut after its headers
                answers.append(Answer(0, "", repr(exc)))
            else:
                answers.append(Answer(r.status_code, r.headers.get("content-type", ""), r.text))
    created, *rest = answers
    assert created.status == 201, created
    return rest


def test_a_json_body_that_is_not_utf8_gets_a_documented_problem(tmp_path: Path) -> None:
    spec, answer = ask(
        tmp_path,
        [
            ("GET", "/openapi.json", {}),
            (
                "POST",
                "/v1/sessions",
                {"content": b"\x19O\x1d\xff", "headers": {"Content-Type": "application/json"}},
            ),
        ],
    )
    documented = {
        int(c) for c in json.loads(spec.text)["paths"]["/v1/sessions"]["post"]["responses"]
    }
    assert answer.content_type.startswith("application/problem+json"), answer
    assert answer.status in documented - {201}, answer


def test_sse_responses_are_documented_as_events(tmp_path: Path) -> None:
    (spec,) = ask(tmp_path, [("GET", "/openapi.json", {})])
    docs = {
        f"{method.upper()} {path}": op["responses"]["200"]["content"]["text/event-stream"]
        for path, ops in json.loads(spec.text)["paths"].items()
        for method, op in ops.items()
        if "text/event-stream" in op["responses"].get("200", {}).get("content", {})
    }
    assert len(docs) >= 6, sorted(docs)  # turns, decisions, the event stream, AG-UI
    for name, doc in docs.items():
        event = doc.get("itemSchema", doc.get("schema", {}))
        assert event.get("type") == "object", f"{name}: {doc}"
        assert event.get("properties", {}).get("data", {}).get("type") == "string", name


def test_an_after_beyond_any_seq_is_refused(tmp_path: Path) -> None:
    beyond = str(INT64_MAX + 1)
    answers = ask(
        tmp_path,
        [
            ("GET", f"/v1/sessions/s1/events?after={beyond}", {}),
            ("GET", f"/v1/sessions/s1/events/stream?after={beyond}", {}),
            ("GET", "/v1/sessions/s1/events/stream", {"headers": {"Last-Event-ID": beyond}}),
        ],
    )
    for answer in answers:
        assert answer.status == 422, answers
        assert answer.content_type.startswith("application/problem+json"), answers
