"""The HTTP client against scripted answers (httpx.MockTransport: the network edge).

Each scenario is a script of answers, in the order the client asks; every test
runs on both clients (``side``), so the sync one is held to the async one's
behaviour. The real server is exercised by the end-to-end tests.
"""

from __future__ import annotations

import inspect
import json
import random
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from tether.client import (
    AsyncClient,
    Client,
    ServerError,
    ServerUnreachable,
    StreamEvent,
    StreamKind,
)
from tether.exceptions import InputRejected, RunError, TetherError
from tether.spec.policy import RetryPolicy

BASE = "http://tether.test"
SID = "s1"

# --- building answers ---------------------------------------------------------------


def event(seq: int, type_: str = "tool.started", **data: Any) -> dict[str, Any]:
    return {"seq": seq, "type": type_, "session_id": SID, "step": 1, "time": 1.0, "data": data}


def turn(status: str = "idle", output: str | None = "done", **over: Any) -> dict[str, Any]:
    body = {
        "session_id": SID,
        "status": status,
        "output": output,
        "usage": {"input_tokens": 3, "output_tokens": 2},
        "cost": 0.0,
        "first_seq": 1,
        "last_seq": 4,
    }
    return body | over


def frame(name: str, data: Any, id_: int | None = None) -> bytes:
    head = f"id: {id_}\n" if id_ is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def stored(*seqs: int) -> list[bytes]:
    return [frame("tool.started", event(s), s) for s in seqs]


def delta(text: str) -> bytes:
    return frame("model.delta", event(0, "model.delta", text=text))


def end(status: str | None = "idle", last_seq: int = 0) -> bytes:
    return frame("end", {"status": status, "last_seq": last_seq})


class Chunks(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body sent chunk by chunk, optionally cut by ``fail`` (a broken connection)."""

    def __init__(self, chunks: list[bytes], fail: Exception | None = None) -> None:
        self.chunks = chunks
        self.fail = fail

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        if self.fail is not None:
            raise self.fail

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.fail is not None:
            raise self.fail


def sse(*chunks: bytes, cut: bool = False) -> httpx.Response:
    fail = httpx.RemoteProtocolError("incomplete chunked read") if cut else None
    headers = {"content-type": "text/event-stream; charset=utf-8"}
    return httpx.Response(200, headers=headers, stream=Chunks(list(chunks), fail))


def problem(status: int, slug: str, detail: str, **headers: str) -> httpx.Response:
    body = {"type": f"https://tether.dev/problems/{slug}", "title": "Nope", "status": status,
            "detail": detail}  # fmt: skip
    return httpx.Response(
        status, json=body, headers={"content-type": "application/problem+json", **headers}
    )


Answer = httpx.Response | Exception


class Script:
    """A transport answering each request with the next scripted answer, and keeping them."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.answers:
            raise AssertionError(f"unscripted request {request.method} {request.url}")
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def header(self, name: str) -> list[str | None]:
        return [r.headers.get(name) for r in self.requests]

    def lines(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]


# --- running a scenario on either client ----------------------------------------------------

RETRY = RetryPolicy(max_retries=3, initial_delay=0.5, max_delay=8.0, jitter=0.0)


class Side:
    """One client kind: calls ``fn(client)`` and gives back what it returned or streamed."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.sleeps: list[float] = []

    async def run(self, script: Script, fn: Callable[[Any], Any], **kw: Any) -> Any:
        kw = {"retry": RETRY, "api_key": "tk_a_b"} | kw
        if self.kind == "async":

            async def sleep(s: float) -> None:
                self.sleeps.append(s)

            async with AsyncClient(BASE, transport=script.transport, sleep=sleep, **kw) as c:
                got = fn(c)
                if inspect.isawaitable(got):
                    return await got
                return [item async for item in got]
        with Client(BASE, transport=script.transport, sleep=self.sleeps.append, **kw) as c:
            got = fn(c)
            return got if not isinstance(got, Iterator) else list(got)


@pytest.fixture(params=["async", "sync"])
def side(request: pytest.FixtureRequest) -> Side:
    return Side(request.param)


def ids(items: list[StreamEvent]) -> list[int]:
    return [i.id for i in items if i.kind == StreamKind.EVENT and i.id is not None]


# --- SSE into typed events ---------------------------------------------------------------


async def test_a_turn_stream_becomes_typed_events(side: Side) -> None:
    script = Script(
        sse(
            frame("message.user", event(1, "message.user", text="hi"), 1),
            delta("Hel"),
            b": keepalive\n\n",
            delta("lo"),
            frame("model.response", event(2, "model.response", message={"text": "Hello"}), 2),
            frame("turn.end", turn(output="Hello")),
        )
    )
    items = await side.run(script, lambda c: c.stream(SID, "hi", context={"plan": "pro"}))

    assert [i.kind for i in items] == ["event", "delta", "delta", "event", "turn"]
    # a delta after an ``id:`` frame has no id of its own (the SSE last-event-id carries over)
    assert [i.id for i in items] == [1, None, None, 2, None]
    assert [i.event.type for i in items[:4]] == [
        "message.user", "model.delta", "model.delta", "model.response",
    ]  # fmt: skip
    assert "".join(i.event.data["text"] for i in items if i.kind == StreamKind.DELTA) == "Hello"
    assert items[-1].turn.output == "Hello"
    assert items[-1].turn.usage.input_tokens == 3

    (req,) = script.requests
    assert (req.method, req.url.path) == ("POST", f"/v1/sessions/{SID}/messages")
    assert req.headers["accept"] == "text/event-stream"
    assert req.headers["authorization"] == "Bearer tk_a_b"
    assert json.loads(req.content) == {"message": "hi", "context": {"plan": "pro"}}
    assert req.headers["idempotency-key"]


async def test_an_error_frame_ends_the_stream_with_its_problem(side: Side) -> None:
    body = {"type": "https://tether.dev/problems/run-failed", "title": "Internal error",
            "status": 500, "detail": "the model provider failed"}  # fmt: skip
    script = Script(sse(*stored(1), frame("error", body), *stored(2)))
    items = await side.run(script, lambda c: c.stream(SID, "hi"))
    assert [i.kind for i in items] == ["event", "error"]
    assert items[-1].problem.detail == "the model provider failed"


async def test_a_json_answer_to_a_stream_request_is_the_turn(side: Side) -> None:
    script = Script(httpx.Response(200, json=turn(output="replayed")))
    items = await side.run(script, lambda c: c.stream_resume(SID))
    assert [(i.kind, i.turn.output) for i in items] == [("turn", "replayed")]


async def test_an_events_stream_ends_at_rest(side: Side) -> None:
    script = Script(sse(*stored(4, 5), end("awaiting_approval", 5)))
    items = await side.run(script, lambda c: c.stream_events(SID, after=3))
    assert ids(items) == [4, 5]
    assert items[-1].kind == StreamKind.END
    assert (items[-1].end.status, items[-1].end.last_seq) == ("awaiting_approval", 5)
    assert dict(script.requests[0].url.params) == {"after": "3", "until": "rest"}


# --- reconnecting -------------------------------------------------------------------------


async def test_a_broken_turn_stream_is_picked_up_with_last_event_id(side: Side) -> None:
    script = Script(
        sse(*stored(1, 2), delta("par"), *stored(3), cut=True),
        # the server may resend what was delivered: nothing comes twice
        sse(*stored(2, 3, 4), delta("tial"), *stored(5)),  # ends without an end frame
        httpx.ConnectError("connection refused"),  # the replica restarts
        sse(*stored(6), end("idle", 6)),
    )
    items = await side.run(script, lambda c: c.stream(SID, "hi"))

    assert ids(items) == [1, 2, 3, 4, 5, 6]
    assert items[-1].kind == StreamKind.END
    assert items[-1].end.status == "idle"
    assert script.lines() == [f"POST /v1/sessions/{SID}/messages"] + 3 * [
        f"GET /v1/sessions/{SID}/events/stream"
    ]
    assert script.header("last-event-id") == [None, "3", "5", "5"]
    assert [r.url.params.get("until") for r in script.requests[1:]] == ["rest"] * 3
    assert script.header("accept")[1:] == ["text/event-stream"] * 3
    # progress resets the count: 0.5 after the first break, then 0.5, 1.0 in a row
    assert side.sleeps == [0.5, 0.5, 1.0]


async def test_a_gap_in_seq_is_filled_from_the_events_stream(side: Side) -> None:
    script = Script(
        sse(*stored(1, 3)),
        sse(*stored(2, 3), end("idle", 3)),
    )
    items = await side.run(script, lambda c: c.stream_events(SID))
    assert ids(items) == [1, 2, 3]
    assert script.header("last-event-id") == [None, "1"]


async def test_an_end_frame_before_rest_is_a_server_going_away(side: Side) -> None:
    script = Script(
        sse(*stored(1), end(None, 1)),  # shutting down: the session still runs
        sse(*stored(2), end("completed", 2)),
    )
    items = await side.run(script, lambda c: c.stream_events(SID))
    assert ids(items) == [1, 2]
    assert items[-1].end.status == "completed"


async def test_a_turn_stream_broken_before_any_event_posts_again_with_the_same_key(
    side: Side,
) -> None:
    script = Script(
        httpx.ReadTimeout("no answer"),
        sse(cut=True),  # headers came, then nothing
        sse(*stored(7, 8), frame("turn.end", turn())),
    )
    items = await side.run(script, lambda c: c.stream_decide("s1.a1", True, "fine"))
    assert ids(items) == [7, 8]
    assert items[-1].kind == StreamKind.TURN
    assert script.lines() == 3 * ["POST /v1/approvals/s1.a1/decision"]
    keys = script.header("idempotency-key")
    assert keys[0]
    assert keys == [keys[0]] * 3
    assert {r.content for r in script.requests} == {b'{"approve":true,"reason":"fine"}'}


async def test_a_decision_stream_learns_its_session_from_the_events(side: Side) -> None:
    script = Script(
        sse(*stored(7), cut=True),
        sse(*stored(8), end("idle", 8)),
    )
    items = await side.run(script, lambda c: c.stream_decide("s1.a1", False))
    assert ids(items) == [7, 8]
    assert script.lines()[1] == f"GET /v1/sessions/{SID}/events/stream"
    assert script.header("last-event-id")[1] == "7"


async def test_a_stream_that_keeps_breaking_gives_up(side: Side) -> None:
    script = Script(sse(*stored(1), cut=True), *[sse(cut=True) for _ in range(3)])
    with pytest.raises(ServerUnreachable, match="after 4 tries") as caught:
        await side.run(script, lambda c: c.stream(SID, "hi"))
    assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)
    assert len(script.requests) == 4  # the break, then max_retries=3 tries without progress
    assert side.sleeps == [0.5, 1.0, 2.0]


async def test_a_reconnect_refused_for_good_raises_the_servers_error(side: Side) -> None:
    script = Script(sse(*stored(1), cut=True), problem(404, "not-found", "no such session"))
    with pytest.raises(ServerError, match="no such session"):
        await side.run(script, lambda c: c.stream(SID, "hi"))


# --- idempotency ----------------------------------------------------------------------------


async def test_a_post_retried_after_a_connection_error_reuses_its_key(side: Side) -> None:
    script = Script(
        httpx.ConnectError("refused"),
        httpx.ReadError("reset by peer"),
        httpx.Response(200, json=turn()),
        httpx.Response(200, json=turn()),
        httpx.Response(200, json=turn()),
    )

    async def three(c: Any) -> None:
        for kw in ({}, {}, {"idempotency_key": "order-42"}):
            got = c.send(SID, "hi", **kw)
            assert (await got if inspect.isawaitable(got) else got).status == "idle"

    if side.kind == "async":
        await side.run(script, three)
    else:
        await side.run(script, lambda c: _sync(three, c))
    keys = script.header("idempotency-key")
    assert keys[0] == keys[1] == keys[2]  # the first send, tried three times
    assert keys[3] not in (keys[0], None)  # the next send: a key of its own
    assert keys[4] == "order-42"
    assert side.sleeps == [0.5, 1.0]


def _sync(fn: Callable[[Any], Any], c: Any) -> None:
    coro = fn(c)
    try:
        coro.send(None)
    except StopIteration:
        return
    raise AssertionError("the sync client awaited something")


async def test_a_post_gives_up_naming_the_key_to_retry_with(side: Side) -> None:
    script = Script(*[httpx.ConnectError("refused") for _ in range(4)])
    with pytest.raises(ServerUnreachable) as caught:
        await side.run(script, lambda c: c.create_session("support", idempotency_key="k-1"))
    assert "idempotency_key='k-1'" in str(caught.value)
    assert "tether.test" in str(caught.value)
    assert script.header("idempotency-key") == ["k-1"] * 4
    assert isinstance(caught.value, RunError)
    assert isinstance(caught.value, ConnectionError)


async def test_a_post_answered_with_an_error_is_not_retried(side: Side) -> None:
    script = Script(problem(503, "shutting-down", "the server is stopping", **{"Retry-After": "1"}))
    with pytest.raises(ServerError) as caught:
        await side.run(script, lambda c: c.answer(SID, "blue"))
    assert caught.value.status == 503
    assert len(script.requests) == 1


# --- problems -------------------------------------------------------------------------------


async def test_a_problem_becomes_a_server_error_with_retry_after(side: Side) -> None:
    script = Script(
        problem(
            429, "rate-limited", "sessions_per_hour reached for user u1", **{"Retry-After": "7"}
        )
    )
    with pytest.raises(ServerError) as caught:
        await side.run(script, lambda c: c.create_session("support"))
    err = caught.value
    assert isinstance(err, TetherError)
    assert (err.status, err.retry_after, err.slug) == (429, 7.0, "rate-limited")
    assert err.problem.detail == "sessions_per_hour reached for user u1"
    assert str(err) == "Nope: sessions_per_hour reached for user u1 (retry after 7 s)"


async def test_retry_after_also_comes_from_the_problems_extra(side: Side) -> None:
    body = {"type": "https://tether.dev/problems/rate-limited", "title": "Too many requests",
            "status": 429, "detail": "slow down", "extra": {"retry_after": 12}}  # fmt: skip
    script = Script(httpx.Response(429, json=body))
    with pytest.raises(ServerError) as caught:
        await side.run(script, lambda c: c.send(SID, "hi"))
    assert caught.value.retry_after == 12.0


async def test_an_answer_without_a_problem_document_still_says_what_happened(side: Side) -> None:
    script = Script(httpx.Response(404, text="<html>no</html>"))
    with pytest.raises(ServerError, match="HTTP 404 without a problem document") as caught:
        await side.run(script, lambda c: c.get_approval("s1.a1"))
    assert caught.value.status == 404


async def test_a_get_answered_503_is_retried_honouring_retry_after(side: Side) -> None:
    agents = {"items": [{"name": "support", "version": "1", "description": "", "tools": []}]}
    script = Script(
        problem(503, "store-unavailable", "the store is busy", **{"Retry-After": "2"}),
        httpx.Response(200, json=agents),
    )
    got = await side.run(script, lambda c: c.agents())
    assert [a.name for a in got.items] == ["support"]
    assert side.sleeps == [2.0]


async def test_ready_reads_a_503_as_not_ready(side: Side) -> None:
    body = {"status": "not_ready", "checks": {"store": {"ok": False}}}
    script = Script(httpx.Response(503, json=body))
    got = await side.run(script, lambda c: c.ready())
    assert got.status == "not_ready"
    assert len(script.requests) == 1


async def test_an_answer_of_another_shape_is_a_clear_error(side: Side) -> None:
    script = Script(httpx.Response(200, json={"hello": "world"}))
    with pytest.raises(ServerError, match="HealthOut does not parse"):
        await side.run(script, lambda c: c.health())


# --- requests -------------------------------------------------------------------------------


async def test_requests_follow_the_contract(side: Side) -> None:
    page = {"items": [], "next_cursor": None}
    script = Script(
        httpx.Response(200, json=page),
        httpx.Response(200, json={"items": [], "next_after": None}),
        httpx.Response(200, json={"items": []}),
    )

    async def calls(c: Any) -> None:
        for got in (
            c.list_sessions(status="idle", limit=5, cursor="abc"),
            c.events("a/b.c", after=7, limit=10),
            c.approvals(limit=3),
        ):
            if inspect.isawaitable(got):
                await got

    if side.kind == "async":
        await side.run(script, calls)
    else:
        await side.run(script, lambda c: _sync(calls, c))
    a, b, c = script.requests
    assert dict(a.url.params) == {"status": "idle", "limit": "5", "cursor": "abc"}
    assert b.url.raw_path == b"/v1/sessions/a%2Fb.c/events?after=7&limit=10"
    assert (c.url.path, dict(c.url.params)) == ("/v1/approvals", {"limit": "3"})


async def test_bad_input_is_refused_before_anything_is_sent(side: Side) -> None:
    for call in (
        lambda c: c.send(SID, ""),
        lambda c: c.send("", "hi"),
        lambda c: c.create_session("support", session_id="has space"),
        lambda c: c.decide("s1.a1", True, idempotency_key="not ok"),
    ):
        script = Script()
        with pytest.raises(InputRejected, match=r"nothing was sent|empty|Idempotency-Key"):
            await side.run(script, call)
        assert script.requests == []


def test_the_api_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_API_KEY", "tk_env_secret")
    script = Script(*[httpx.Response(200, json={"status": "ok"}) for _ in range(2)])
    with Client(BASE, transport=script.transport) as c:
        c.health()
        assert "tk_env" not in repr(c)
    with Client(BASE, api_key="", transport=script.transport) as c:
        c.health()
    assert script.header("authorization") == ["Bearer tk_env_secret", None]


def test_the_sync_client_has_the_async_clients_methods() -> None:
    def public(cls: type) -> dict[str, inspect.Signature]:
        return {
            name: inspect.signature(fn)
            for name, fn in vars(cls).items()
            if callable(fn) and not name.startswith("_") and name not in {"aclose", "close"}
        }

    a, s = public(AsyncClient), public(Client)
    assert a.keys() == s.keys()
    for name in a:
        assert list(a[name].parameters.values()) == list(s[name].parameters.values()), name
    init_a = inspect.signature(AsyncClient.__init__).parameters
    init_s = inspect.signature(Client.__init__).parameters
    assert init_a.keys() == init_s.keys()


def test_jitter_comes_from_the_injected_rng() -> None:
    script = Script(httpx.ConnectError("x"), httpx.Response(200, json={"status": "ok"}))
    sleeps: list[float] = []
    policy = RetryPolicy(initial_delay=1.0, jitter=0.5)
    with Client(BASE, transport=script.transport, sleep=sleeps.append, retry=policy,
                rng=random.Random(3)) as c:  # fmt: skip
        c.health()
    assert sleeps == [random.Random(3).uniform(0.5, 1.5)]
