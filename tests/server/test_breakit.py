"""Attacks on the server from outside: a real uvicorn server on loopback, raw httpx and sockets.

The first part holds the attacks that broke a promise of docs/deployment.md
when they were found: a scoped approver key acting with a user's scopes,
idempotent replays that sent later turns, lone surrogates that made a
session unreadable, a dropped keep-alive connection after a 500, bogus
tokens piling up in memory, an AG-UI existence probe, a namesake hiding a
user's sessions, an AG-UI run cut off by a lone surrogate, a failed turn's
retry replaying later turns. Each is fixed; the tests keep it so.

The second part holds attacks the server withstands that no other test in
``tests/server`` makes: racing and double-clicked decisions, one
idempotency key from two API keys, AG-UI across users and tenants,
reconnecting at every position of a live turn, a client that never reads or
leaves mid-frame, two replicas' sweeps racing a client's resumes, and odd
ids and bodies.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.agents import reply
from tests.server.conftest import inprocess, make_key, wait_for
from tests.server.helpers import (
    CANCEL,
    ORDER,
    STATUS,
    Frame,
    Gate,
    answering,
    assert_problem,
    bearer,
    order_row,
    post_sse,
    read_frames,
    refunds,
    retail_agent,
    sqlite_url,
    stored,
)
from tether import HealthCheck, tool
from tether.runtime import Runtime
from tether.spec.agent import Agent
from tether.spec.messages import Message, ToolCall
from tether.spec.model import ModelRequest
from tether.store import SQLStore
from tether.surfaces.server import routes
from tether.testing import FunctionModel

JSON_CT = {"Content-Type": "application/json"}


def ids(fs: list[Frame]) -> list[int]:
    return [f.id for f in fs if f.id is not None]


def agui_input(thread: str, run: str, text: str = "hi", resume: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "threadId": thread,
        "runId": run,
        "state": {},
        "messages": [{"id": f"{run}-m", "role": "user", "content": text}],
        "tools": [],
        "context": [],
        "forwardedProps": {},
    }
    if resume is not None:
        body["resume"] = resume
    return body


def agui_events(text: str) -> list[dict[str, Any]]:
    out = []
    for block in text.split("\n\n"):
        data = [line[6:] for line in block.splitlines() if line.startswith("data: ")]
        if data:
            out.append(json.loads("\n".join(data)))
    return out


def approve(interrupt_id: str, **payload: Any) -> list[dict[str, Any]]:
    return [
        {
            "interruptId": interrupt_id,
            "status": "resolved",
            "payload": {"approved": True, **payload},
        }
    ]


def interrupt_of(events: list[dict[str, Any]]) -> str:
    (end,) = [e for e in events if e["type"] == "RUN_FINISHED"]
    assert end["outcome"]["type"] == "interrupt", end
    return str(end["outcome"]["interrupts"][0]["id"])


# --- an agent with scoped tools -----------------------------------------------------


def vault_agent() -> tuple[Agent, list[str]]:
    """An agent whose ``balance`` needs the scope ``orders`` and ``wire`` needs ``payments``.

    Asked to "wire" it calls ``wire``; asked for the "balance" it calls
    ``balance``. What ran is appended to the returned list.
    """
    ran: list[str] = []

    @tool(reads=True, scopes=("orders",))
    def balance() -> str:
        """The account's balance."""
        ran.append("balance")
        return "42"

    @tool(scopes=("payments",), needs_approval=False)
    def wire(amount: int) -> str:
        """Wire ``amount`` to the account on file."""
        ran.append("wire")
        return f"wired {amount}"

    def answer(request: ModelRequest) -> str | ToolCall:
        last = request.messages[-1] if request.messages else None
        if last is None:
            return "Hello."
        if last.role == "user" and "single word OK" in last.text:
            return "OK"
        if last.results:
            return f"Done: {last.results[-1].content}"
        n = sum(1 for m in request.messages if m.role == "user")
        if last.role == "user" and "wire" in last.text:
            return ToolCall(id=f"wire_{n}", name="wire", arguments={"amount": 100})
        if last.role == "user" and "balance" in last.text:
            return ToolCall(id=f"balance_{n}", name="balance", arguments={})
        return "I can tell you the balance or wire money."

    model = FunctionModel(answer, name="vault-scripted")
    agent = Agent(
        name="vault",
        instructions="You move money for the account's owner.",
        models=(model,),
        tools=(balance, wire),
        health=HealthCheck(interval=1.0),
    )
    return agent, ran


# === findings: fixed in the tree while this file was written; kept as regressions ====

# --- 1. an approver's key acts in a user's session with the user's scopes -------------


async def test_a_scoped_approver_key_cannot_trigger_a_tool_outside_its_scopes(
    tmp_path: Path,
) -> None:
    """An approver's key with scopes={'orders'} posts into a user's session (and its AG-UI
    thread): the 'payments' tool never runs (the turn would act with the user's scopes)."""
    db = sqlite_url(tmp_path)
    alice = bearer(await make_key(db, user="alice", tenant="t1"))  # every scope
    ops = bearer(await make_key(db, user="ops", tenant="t1", roles={"approver"}, scopes={"orders"}))
    agent, ran = vault_agent()
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = (await c.post("/v1/sessions", json={"agent": "vault"}, headers=alice)).json()[
                "id"
            ]
            await c.post(f"/v1/sessions/{sid}/messages", json={"message": "wire it"}, headers=ops)
            await c.post(
                "/v1/agents/vault/agui", json=agui_input(sid, "r1", "wire it now"), headers=ops
            )
    assert "wire" not in ran, ran


async def test_an_approver_cannot_speak_as_the_user_in_their_session(tmp_path: Path) -> None:
    """An approver sees the tenant's sessions and decides their approvals; a message in a
    user's session from them is refused, and nothing is stored as the user's words."""
    db = sqlite_url(tmp_path)
    alice = bearer(await make_key(db, user="alice", tenant="t1"))
    ops = bearer(await make_key(db, user="ops", tenant="t1", roles={"approver"}))
    agent, _model = retail_agent(tmp_path / "shop.sqlite")
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = (await c.post("/v1/sessions", json={"agent": "retail"}, headers=alice)).json()[
                "id"
            ]
            r = await c.post(f"/v1/sessions/{sid}/messages", json={"message": STATUS}, headers=ops)
            assert r.status_code in (403, 404), r.text
            assert_problem(r, r.status_code)
            types = [e["type"] for e in await stored(c, sid, alice)]
            assert "message.user" not in types


# --- 2. idempotent replays send more than the first request did ------------------------


async def test_a_streamed_retry_replays_only_its_own_turn(tmp_path: Path) -> None:
    """A streamed retry of a finished turn sends that turn's events, not later turns' too."""
    agent, _model = retail_agent(tmp_path / "shop.sqlite")
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = (await c.post("/v1/sessions", json={"agent": "retail"})).json()["id"]
            path = f"/v1/sessions/{sid}/messages"
            key = {"Idempotency-Key": "turn-one"}
            first = await post_sse(c, path, {"message": STATUS}, key)
            later = await c.post(path, json={"message": "anything else?"})  # no key
            assert later.status_code == 200, later.text
            again = await post_sse(c, path, {"message": STATUS}, key)
    assert again[-1].data == first[-1].data
    assert ids(again) == ids(first), (ids(first), ids(again))


async def test_an_agui_retry_replays_the_run_it_retries(tmp_path: Path) -> None:
    """Retrying a run that ended on an interrupt, after the interrupt was decided, replays
    that run (ending on the same interrupt), not the decision run that followed it."""
    db = sqlite_url(tmp_path)
    alice = bearer(await make_key(db, user="alice", tenant="t1"))
    ops = bearer(await make_key(db, user="ops", tenant="t1", roles={"approver"}))
    agent, _model = retail_agent(tmp_path / "shop.sqlite")
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            run = agui_input("thread-1", "r1", CANCEL)
            key = {**alice, "Idempotency-Key": "agui-run-1"}
            first = agui_events(
                (await c.post("/v1/agents/retail/agui", json=run, headers=key)).text
            )
            iid = interrupt_of(first)
            decided = await c.post(
                "/v1/agents/retail/agui",
                json=agui_input("thread-1", "r2", resume=approve(iid)),
                headers=ops,
            )
            assert decided.status_code == 200, decided.text
            again = agui_events(
                (await c.post("/v1/agents/retail/agui", json=run, headers=key)).text
            )
    assert [e["type"] for e in again] == [e["type"] for e in first]
    assert interrupt_of(again) == iid


async def test_an_agui_retry_keeps_the_run_id(tmp_path: Path) -> None:
    """A retried AG-UI run reports the runId the client sent, or the client drops it."""
    agent, _model = retail_agent(tmp_path / "shop.sqlite")
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            run = agui_input("thread-2", "run-42", STATUS)
            key = {"Idempotency-Key": "agui-run-42"}
            first = await c.post("/v1/agents/retail/agui", json=run, headers=key)
            again = await c.post("/v1/agents/retail/agui", json=run, headers=key)
    assert first.status_code == again.status_code == 200
    for events in (agui_events(first.text), agui_events(again.text)):
        starts = [e["runId"] for e in events if e["type"] in ("RUN_STARTED", "RUN_FINISHED")]
        assert starts == ["run-42", "run-42"], starts


def _crashes_once() -> Any:
    """The scripted agent, whose first turn's model call raises (an adapter bug)."""
    calls = [0]

    def fn(request: ModelRequest) -> str | ToolCall | Message:
        last = request.messages[-1] if request.messages else None
        if last is not None and last.role == "user" and "single word OK" in last.text:
            return "OK"  # the readiness probe
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("a bug in the model adapter, once")
        return reply(request)

    return fn


async def test_a_streamed_retry_of_a_failed_turn_replays_only_that_turn(tmp_path: Path) -> None:
    agent, _model = retail_agent(tmp_path / "shop.sqlite", fn=_crashes_once())
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = (await c.post("/v1/sessions", json={"agent": "retail"})).json()["id"]
            path = f"/v1/sessions/{sid}/messages"
            key = {"Idempotency-Key": "fails-once"}
            first = await post_sse(c, path, {"message": STATUS}, key)
            assert (first[-1].event, first[-1].data["status"]) == ("error", 500)
            resumed = await c.post(f"/v1/sessions/{sid}/resume")  # no key: another request
            assert resumed.json()["status"] == "idle", resumed.text
            again = await post_sse(c, path, {"message": STATUS}, key)
    assert again[-1].data == first[-1].data
    assert ids(again) == ids(first), (ids(first), ids(again))


# --- 3. lone surrogates in free-form JSON make a session unreadable ------------------


async def test_a_lone_surrogate_in_context_leaves_every_session_readable(tmp_path: Path) -> None:
    """Context is free-form JSON (pydantic does not check it for lone surrogates, which UTF-8
    cannot encode): the session stays readable and usable, and its creator gets an answer."""
    agent, _model = retail_agent(tmp_path / "shop.sqlite")
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            created = await c.post(
                "/v1/sessions",
                content=b'{"agent":"retail","context":{"k":"\\udfff"}}',
                headers=JSON_CT,
            )
            assert created.status_code < 500, created.text
            sid = (await c.post("/v1/sessions", json={"agent": "retail"})).json()["id"]
            sent = await c.post(
                f"/v1/sessions/{sid}/messages",
                content=b'{"message":"hello","context":{"plan":"\\ud800"}}',
                headers=JSON_CT,
            )
            assert sent.status_code < 500, sent.text
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            listed = (await c.get("/v1/sessions")).json()["items"]
        assert sid in [s["id"] for s in listed]  # the create above may be refused (422)
        for s in listed:  # a new connection each: a 500 today closes the one it came on
            async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
                for path in (f"/v1/sessions/{s['id']}", f"/v1/sessions/{s['id']}/events"):
                    r = await c.get(path)
                    assert r.status_code == 200, (path, r.text)
            # and the session still takes a turn
            async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
                r = await c.post(f"/v1/sessions/{s['id']}/messages", json={"message": STATUS})
                assert r.status_code == 200, r.text


async def test_an_agui_decision_reason_cannot_make_the_event_log_unreadable(
    tmp_path: Path,
) -> None:
    """A lone surrogate in an AG-UI resume's reason (free-form JSON) cannot make the session's
    event log unreadable for its owner or an admin auditing it."""
    db = sqlite_url(tmp_path)
    alice = bearer(await make_key(db, user="alice", tenant="t1"))
    ops = bearer(await make_key(db, user="ops", tenant="t1", roles={"approver"}))
    admin = bearer(await make_key(db, user="root", roles={"admin"}))
    shop = tmp_path / "shop.sqlite"
    agent, _model = retail_agent(shop)
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            first = await c.post(
                "/v1/agents/retail/agui", json=agui_input("t-9", "r1", CANCEL), headers=alice
            )
            iid = interrupt_of(agui_events(first.text))
            body = json.dumps(agui_input("t-9", "r2", resume=approve(iid, reason="@@")))
            r = await c.post(
                "/v1/agents/retail/agui",
                content=body.replace("@@", "\\ud800").encode(),
                headers={**ops, **JSON_CT},
            )
            assert r.status_code < 500, r.text
        for who in (alice, admin):
            async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
                r = await c.get("/v1/sessions/t-9/events", headers=who)
                assert r.status_code == 200, r.text


async def test_the_connection_survives_an_internal_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an unexpected error (a 500 problem), the keep-alive connection still answers,
    unless the 500 said it would close (Starlette's last-resort handler re-raises, and
    uvicorn then drops the connection)."""

    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a bug in a route")

    agent, _model = retail_agent(tmp_path / "shop.sqlite")
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = (await c.post("/v1/sessions", json={"agent": "retail"})).json()["id"]
        monkeypatch.setattr(routes, "_session_out", broken)
        s = _raw_request(srv.url, f"GET /v1/sessions/{sid} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        try:
            head, body = _read_response(s)
            assert head.startswith(b"HTTP/1.1 500"), head
            assert json.loads(body)["type"] == "https://tether.dev/problems/internal"
            if b"\r\nconnection: close" in head.lower():
                return  # the server said it would close: a client opens a new connection
            # keep-alive was not refused: the next request on this connection is answered
            await asyncio.sleep(0.3)  # a client's next request, a moment later
            try:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                head, _body = _read_response(s)
            except OSError:
                head = b""
            assert head.startswith(b"HTTP/1.1 200"), head
        finally:
            s.close()


def _read_response(s: socket.socket) -> tuple[bytes, bytes]:
    """One HTTP/1.1 response with a Content-Length from ``s`` (``b""`` parts at EOF)."""
    s.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return data, b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return head, body


def _says_a_lone_surrogate(request: ModelRequest) -> str | ToolCall | Message:
    """The scripted agent, but text with a lone surrogate (what a tool decoding bytes with
    ``errors="surrogateescape"`` hands a model to repeat) is its answer to "repeat"."""
    last = request.messages[-1] if request.messages else None
    if last is not None and last.role == "user" and "repeat" in last.text:
        return "Your plan is gold \udc80 tier."
    return reply(request)


async def test_an_agui_run_ends_properly_when_the_answer_holds_a_lone_surrogate(
    tmp_path: Path,
) -> None:
    agent, _model = retail_agent(tmp_path / "shop.sqlite", fn=_says_a_lone_surrogate)
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            body = agui_input("t-s", "r1", "please repeat my plan")
            try:
                async with c.stream("POST", "/v1/agents/retail/agui", json=body) as r:
                    raw = b"".join([chunk async for chunk in r.aiter_bytes()])
            except httpx.HTTPError as exc:
                raise AssertionError(f"the AG-UI stream broke: {exc!r}") from None
            events = agui_events(raw.decode())
            assert events[-1]["type"] in ("RUN_FINISHED", "RUN_ERROR"), events
            # the session itself is fine, and says the same over /v1
            fs = await post_sse(c, "/v1/sessions/t-s/messages", {"message": "repeat it"})
            assert fs[-1].data["output"] == "Your plan is gold \udc80 tier."


# --- 4. unauthenticated clients can fill the server's memory -------------------------


def _held_bytes(obj: object) -> int:
    """Bytes of the strings ``obj`` holds in its own containers (dicts, lists, tuples, sets)."""
    total = 0
    todo: list[Any] = list(vars(obj).values()) if hasattr(obj, "__dict__") else []
    todo += [getattr(obj, s) for s in getattr(type(obj), "__slots__", ()) if hasattr(obj, s)]
    seen: set[int] = set()
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, (str, bytes)):
            total += len(item)
        elif isinstance(item, dict):
            todo += [*item.keys(), *item.values()]
        elif isinstance(item, (list, tuple, set, frozenset)):
            todo += list(item)
    return total


async def test_bogus_tokens_do_not_pile_up_in_memory(tmp_path: Path) -> None:
    """Unauthenticated requests with huge bearer tokens (no request-header size limit in front)
    cannot make the key cache hold what they sent."""
    await make_key(sqlite_url(tmp_path), user="alice")  # keys are required
    agent, _model = retail_agent(tmp_path / "shop.sqlite")
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            for i in range(60):  # 12 MB of tokens no key could ever have
                token = f"tk_{i:04d}_" + "x" * 200_000
                assert_problem(await c.get("/v1/sessions", headers=bearer(token)), 401)
        held = _held_bytes(srv.state.gate)
    assert held < 2**20, f"the gatekeeper holds {held:,} bytes of refused tokens"


# --- 5. what a caller may not see: probes and pages -----------------------------------


async def test_an_agui_resume_does_not_reveal_whether_a_thread_exists(tmp_path: Path) -> None:
    """A resume on another user's thread is refused exactly as one on a thread that does not
    exist: nothing tells a caller which thread ids are taken."""
    db = sqlite_url(tmp_path)
    alice = bearer(await make_key(db, user="alice", tenant="t1"))
    bob = bearer(await make_key(db, user="bob", tenant="t1"))
    agent, _model = retail_agent(tmp_path / "shop.sqlite")
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = (await c.post("/v1/sessions", json={"agent": "retail"}, headers=alice)).json()[
                "id"
            ]
            resume = approve("approval:x.1")
            theirs = await c.post(
                "/v1/agents/retail/agui", json=agui_input(sid, "r", resume=resume), headers=bob
            )
            missing = await c.post(
                "/v1/agents/retail/agui",
                json=agui_input("no-such-thread", "r", resume=resume),
                headers=bob,
            )
    assert assert_problem(theirs, 404) == assert_problem(missing, 404)


async def test_the_same_user_id_in_another_tenant_does_not_hide_my_sessions(
    tmp_path: Path,
) -> None:
    """The same user id in another tenant, with newer sessions, does not fill the caller's page
    (the store filters by user id; the tenant is checked after)."""
    db = sqlite_url(tmp_path)
    mine = bearer(await make_key(db, user="alice", tenant="t2"))
    namesake = bearer(await make_key(db, user="alice", tenant="t1"))
    agent, _model = retail_agent(tmp_path / "shop.sqlite")
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = (await c.post("/v1/sessions", json={"agent": "retail"}, headers=mine)).json()[
                "id"
            ]
            for _ in range(3):
                await c.post("/v1/sessions", json={"agent": "retail"}, headers=namesake)
            listed: list[str] = []
            params: dict[str, Any] = {"limit": 2}
            for _ in range(5):  # follow the cursor
                page = (await c.get("/v1/sessions", params=params, headers=mine)).json()
                listed += [s["id"] for s in page["items"]]
                if not page["next_cursor"]:
                    break
                params["cursor"] = page["next_cursor"]
    assert listed == [sid]


# === attacks the server withstands ===================================================

# --- decisions ------------------------------------------------------------------------


async def test_racing_decisions_run_the_tool_once(tmp_path: Path) -> None:
    """Twelve decisions at once from two approvers, some with keys, approve and deny mixed:
    one is taken, the others are refused as problems, the tool runs at most once."""
    shop = tmp_path / "shop.sqlite"
    db = sqlite_url(tmp_path)
    alice = bearer(await make_key(db, user="alice", tenant="t1"))
    ops = [
        bearer(await make_key(db, user=f"ops{i}", tenant="t1", roles={"approver"}))
        for i in range(2)
    ]
    agent, _model = retail_agent(shop)
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = (await c.post("/v1/sessions", json={"agent": "retail"}, headers=alice)).json()[
                "id"
            ]
            r = await c.post(
                f"/v1/sessions/{sid}/messages", json={"message": CANCEL}, headers=alice
            )
            aid = r.json()["approval"]["id"]
            path = f"/v1/approvals/{aid}/decision"

            # the body cannot carry other arguments
            forged = {"approve": True, "arguments": {"order_id": "#W0000000"}}
            assert_problem(await c.post(path, json=forged, headers=ops[0]), 422)

            async def decide(i: int) -> httpx.Response:
                headers = {**ops[i % 2], **({"Idempotency-Key": f"d{i}"} if i % 3 else {})}
                return await c.post(path, json={"approve": i % 4 != 1}, headers=headers)

            rs = await asyncio.gather(*(decide(i) for i in range(12)))
            ok = [r for r in rs if r.status_code == 200]
            assert len(ok) == 1, [(r.status_code, r.text) for r in rs]
            for r in rs:
                if r.status_code != 200:
                    assert_problem(r, r.status_code)
                    assert r.status_code in (404, 409)
            events = await stored(c, sid, alice)
    kinds = Counter((e["type"], e["data"].get("name")) for e in events)
    assert kinds[("approval.decided", None)] == 1
    approved = ok[0].json()["status"] == "idle" and "cancelled" in (ok[0].json()["output"] or "")
    assert kinds[("tool.started", "cancel_order")] == (1 if approved else 0)
    assert refunds(shop) == (1 if approved else 0)
    assert order_row(shop)["status"] == ("cancelled" if approved else "pending")


async def test_a_double_clicked_decision_runs_once_and_answers_the_same(tmp_path: Path) -> None:
    shop = tmp_path / "shop.sqlite"
    agent, _model = retail_agent(shop)
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = (await c.post("/v1/sessions", json={"agent": "retail"})).json()["id"]
            r = await c.post(f"/v1/sessions/{sid}/messages", json={"message": CANCEL})
            path = f"/v1/approvals/{r.json()['approval']['id']}/decision"
            click = {"Idempotency-Key": "click"}
            rs = await asyncio.gather(
                *(c.post(path, json={"approve": True}, headers=click) for _ in range(4))
            )
            assert [r.status_code for r in rs] == [200] * 4, [r.text for r in rs]
            assert all(r.json() == rs[0].json() for r in rs)
            assert sum("Idempotent-Replayed" not in r.headers for r in rs) == 1
            assert rs[0].json()["status"] == "idle"
            events = await stored(c, sid, {})
    kinds = Counter((e["type"], e["data"].get("name")) for e in events)
    assert kinds[("approval.decided", None)] == 1
    assert kinds[("tool.started", "cancel_order")] == 1
    assert refunds(shop) == 1


async def test_an_idempotency_key_is_per_api_key(tmp_path: Path) -> None:
    """The same key from two API keys (even of one user) is two requests, not a replay."""
    db = sqlite_url(tmp_path)
    one = bearer(await make_key(db, user="alice", tenant="t1"))
    two = bearer(await make_key(db, user="alice", tenant="t1"))
    agent, _model = retail_agent(tmp_path / "shop.sqlite")
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            key = {"Idempotency-Key": "shared"}
            a, b = await asyncio.gather(
                c.post(
                    "/v1/agents/retail/messages", json={"message": STATUS}, headers={**one, **key}
                ),
                c.post(
                    "/v1/agents/retail/messages", json={"message": STATUS}, headers={**two, **key}
                ),
            )
            assert a.status_code == b.status_code == 200, (a.text, b.text)
            assert "Idempotent-Replayed" not in a.headers
            assert "Idempotent-Replayed" not in b.headers
            assert a.json()["session_id"] != b.json()["session_id"]
            # and each key's retry gets its own first outcome
            again = await c.post(
                "/v1/agents/retail/messages", json={"message": STATUS}, headers={**two, **key}
            )
            assert again.headers["Idempotent-Replayed"] == "true"
            assert again.json() == b.json()


# --- AG-UI across users and tenants ----------------------------------------------------


async def test_agui_threads_of_others_cannot_be_read_run_or_decided(tmp_path: Path) -> None:
    shop = tmp_path / "shop.sqlite"
    db = sqlite_url(tmp_path)
    alice = bearer(await make_key(db, user="alice", tenant="t1"))
    bob = bearer(await make_key(db, user="bob", tenant="t1"))
    outsider = bearer(await make_key(db, user="carol", tenant="t2", roles={"approver"}))
    agent, _model = retail_agent(shop)
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            first = await c.post(
                "/v1/agents/retail/agui", json=agui_input("t-a", "r1", CANCEL), headers=alice
            )
            iid = interrupt_of(agui_events(first.text))
            # the owner cannot approve an operator approval; others get 404, nothing runs
            own = await c.post(
                "/v1/agents/retail/agui",
                json=agui_input("t-a", "r2", resume=approve(iid)),
                headers=alice,
            )
            assert_problem(own, 403, "forbidden")
            for who in (bob, outsider):
                for body in (
                    agui_input("t-a", "r3", resume=approve(iid)),
                    agui_input("t-a", "r4", "yes, do it"),
                ):
                    r = await c.post("/v1/agents/retail/agui", json=body, headers=who)
                    assert_problem(r, 404, "not-found")
            # the resume of another approval (one the owner's own session never asked) is refused
            other = await c.post(
                "/v1/agents/retail/agui",
                json=agui_input("t-a", "r5", resume=approve("approval:t-a.1")),
                headers=alice,
            )
            assert_problem(other, 409, "invalid-state")
            session = (await c.get("/v1/sessions/t-a", headers=alice)).json()
    assert session["status"] == "awaiting_approval"
    assert f"approval:{session['pending_approval']['id']}" == iid
    assert order_row(shop)["status"] == "pending"
    assert refunds(shop) == 0


# --- streams ----------------------------------------------------------------------------


async def test_reconnecting_at_every_position_of_a_live_turn(tmp_path: Path) -> None:
    """With the turn paused mid-way, three streams per position (``Last-Event-ID`` 0..n, so
    dozens at once) each get exactly the events after their position, then the end."""
    gate = Gate(answering)
    agent, _model = retail_agent(tmp_path / "shop.sqlite", gate=gate)
    with inprocess([agent], tmp_path, stream_poll=0.2) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = (await c.post("/v1/sessions", json={"agent": "retail"})).json()["id"]
            turn = asyncio.create_task(
                c.post(f"/v1/sessions/{sid}/messages", json={"message": STATUS})
            )
            await wait_for(gate.entered.is_set)
            paused_at = (await c.get(f"/v1/sessions/{sid}")).json()["last_seq"]

            async def reconnect(k: int) -> list[Frame]:
                headers = {"Last-Event-ID": str(k)} if k else {}
                async with c.stream(
                    "GET", f"/v1/sessions/{sid}/events/stream", headers=headers
                ) as r:
                    return await read_frames(r)

            positions = [k for k in range(paused_at + 1) for _ in range(3)]
            readers = [asyncio.create_task(reconnect(k)) for k in positions]
            await wait_for(lambda: srv.state.bus.listeners(sid) >= len(positions))
            gate.open()
            got = await asyncio.gather(*readers)
            n = (await turn).json()["last_seq"]
    assert n > paused_at
    for k, fs in zip(positions, got, strict=True):
        assert ids(fs) == list(range(k + 1, n + 1)), (k, ids(fs))
        assert (fs[-1].event, fs[-1].data["status"], fs[-1].data["last_seq"]) == ("end", "idle", n)


class _LateRead:
    """A store whose first ``events`` read is answered only once the turn has ended (a slow
    round trip): it then reads the store, so it sees everything the turn committed."""

    def __init__(self, store: Any, runs: Any) -> None:
        self._store = store
        self._runs = runs
        self.late = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def events(self, session_id: str, *, after_seq: int = 0) -> Any:
        if not self.late:
            self.late = True
            await wait_for(lambda: self._runs.active == 0, interval=0.01)
        return await self._store.events(session_id, after_seq=after_seq)


async def test_a_turns_stream_sends_each_delta_before_the_response_it_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fast model, and a store read slower than the whole turn: the turn's own stream still
    sends every delta, in order, before the model.response they add up to (its subscription
    predates the turn, so it must not wait for, nor be reordered by, a store read)."""
    agent, _model = retail_agent(tmp_path / "shop.sqlite")
    with inprocess([agent], tmp_path) as srv:
        real_follow = routes.follow

        def follow(store: Any, *args: Any, **kwargs: Any) -> Any:
            return real_follow(_LateRead(store, srv.state.runs), *args, **kwargs)

        monkeypatch.setattr(routes, "follow", follow)
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = (await c.post("/v1/sessions", json={"agent": "retail"})).json()["id"]
            fs = await post_sse(c, f"/v1/sessions/{sid}/messages", {"message": STATUS})
    events = [f.event for f in fs]
    assert fs[-1].event == "turn.end"
    final = max(i for i, e in enumerate(events) if e == "model.response")
    deltas = [i for i, e in enumerate(events) if e == "model.delta"]
    assert deltas, events
    assert max(deltas) < final, events
    assert "".join(fs[i].data["data"]["text"] for i in deltas) == fs[-1].data["output"]


def _raw_request(url: str, request: bytes, *, rcvbuf: int | None = None) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    s = socket.socket()
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect((host, int(port)))
    s.sendall(request)
    return s


def _long_answer(request: ModelRequest) -> str | ToolCall | Message:
    last = request.messages[-1] if request.messages else None
    if last is not None and last.role == "user" and "at length" in last.text:
        return "word " * 4000
    return reply(request)


async def test_a_client_that_never_reads_or_leaves_mid_frame_blocks_nothing(
    tmp_path: Path,
) -> None:
    agent, _model = retail_agent(tmp_path / "shop.sqlite", fn=_long_answer)
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = (await c.post("/v1/sessions", json={"agent": "retail"})).json()["id"]
            stuck = _raw_request(
                srv.url,
                f"GET /v1/sessions/{sid}/events/stream?until=never HTTP/1.1\r\n"
                "Host: t\r\n\r\n".encode(),
                rcvbuf=2048,
            )
            try:
                await wait_for(lambda: srv.state.bus.listeners(sid) == 1)
                # turns with long streamed answers finish while that client reads nothing
                for _ in range(4):
                    r = await asyncio.wait_for(
                        c.post(f"/v1/sessions/{sid}/messages", json={"message": "at length"}),
                        5,
                    )
                    assert r.json()["status"] == "idle", r.text
                # and another client still streams the whole log
                async with c.stream("GET", f"/v1/sessions/{sid}/events/stream") as s:
                    everything = await read_frames(s)
                n = (await c.get(f"/v1/sessions/{sid}")).json()["last_seq"]
                assert ids(everything) == list(range(1, n + 1))
            finally:
                stuck.close()
            await wait_for(lambda: srv.state.bus.listeners(sid) == 0)

            # a client that leaves in the middle of a frame: the turn goes on, nothing leaks
            body = json.dumps({"message": STATUS}).encode()
            leaver = _raw_request(
                srv.url,
                f"POST /v1/sessions/{sid}/messages HTTP/1.1\r\nHost: t\r\n"
                "Accept: text/event-stream\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body,
            )
            try:
                head = leaver.recv(300)  # the headers and part of the first frame
                assert head.startswith(b"HTTP/1.1 200"), head
            finally:
                leaver.close()

            async def idle() -> bool:
                return bool((await c.get(f"/v1/sessions/{sid}")).json()["status"] == "idle")

            await wait_for(idle)
            await wait_for(lambda: srv.state.bus.listeners(sid) == 0 and srv.state.runs.active == 0)
            events = await stored(c, sid, {})
    assert Counter(e["type"] for e in events)["turn.completed"] == 5
    assert f"Order {ORDER} is pending." in [
        e["data"].get("output") for e in events if e["type"] == "turn.completed"
    ]


# --- recovery ---------------------------------------------------------------------------


async def test_two_replicas_sweeping_race_the_clients_resumes_and_finish_the_turn_once(
    tmp_path: Path,
) -> None:
    """A turn drained mid-way (what SIGTERM does: cancelled at the grace, lease given back,
    left ``running``); then two servers on its database sweep every 0.1 s while the client
    sends eight resumes to both: one resume wins, the rest are refused, nothing runs twice."""
    shop = tmp_path / "shop.sqlite"
    gate = Gate(answering)  # the answer after check_order never comes: the drain cancels it
    first, _model = retail_agent(shop, gate=gate)
    store = await SQLStore.open(sqlite_url(tmp_path))
    rt = Runtime(store=store)
    handle = rt.session(first)
    turn = asyncio.create_task(handle.send(STATUS))
    await wait_for(gate.entered.is_set, interval=0.01)
    await rt.aclose(0.1)
    with pytest.raises(asyncio.CancelledError):
        await turn
    rec = await store.get(handle.id)
    await store.aclose()
    assert (rec.status, rec.lease_owner) == ("running", None)

    sid = handle.id
    agents = [retail_agent(shop)[0] for _ in range(2)]
    fast = {"recover_interval": 0.1, "lease_ttl": 1.0}
    with (
        inprocess([agents[0]], tmp_path, **fast) as b,
        inprocess([agents[1]], tmp_path, **fast) as c2,
    ):
        async with httpx.AsyncClient(timeout=30) as c:
            # both apps share routes.router, whose routes FastAPI builds on first match: build
            # them one server at a time (two threads building at once trip a pydantic warning)
            for srv in (b, c2):
                assert_problem(await c.get(f"{srv.url}/v1/no-such-route"), 404)
            rs = await asyncio.gather(
                *(c.post(f"{srv.url}/v1/sessions/{sid}/resume") for srv in (b, c2, b, c2) * 2)
            )
            for r in rs:
                if r.status_code != 200:
                    assert_problem(r, 409)

            async def idle() -> bool:
                return bool((await c.get(f"{b.url}/v1/sessions/{sid}")).json()["status"] == "idle")

            await wait_for(idle, timeout=8)
            await asyncio.sleep(0.3)  # a few more sweeps on both
        async with httpx.AsyncClient(base_url=c2.url, timeout=30) as c:
            events = await stored(c, sid, {})
    kinds = Counter((e["type"], e["data"].get("name")) for e in events)
    assert sum(r.status_code == 200 for r in rs) <= 1
    assert kinds[("session.resumed", None)] == 1
    assert kinds[("tool.started", "check_order")] == 1
    assert kinds[("turn.completed", None)] == 1
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


# --- input ------------------------------------------------------------------------------


async def test_odd_ids_and_bodies_are_problems_and_leave_the_session_whole(
    tmp_path: Path,
) -> None:
    agent, _model = retail_agent(tmp_path / "shop.sqlite")
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = (await c.post("/v1/sessions", json={"agent": "retail"})).json()["id"]
            for path in (
                "/v1/sessions/%2e%2e",
                "/v1/sessions/..%2f..%2fetc%2fpasswd",
                "/v1/sessions/a%00b",
                "/v1/sessions/%ED%A0%80",
                "/v1/sessions/%FF%FE",
                "/v1/sessions/" + "x" * 5000,
                "/v1/approvals/%2e.1",
                "/v1/approvals/a%2Fb.3",
                "/v1/approvals/..1",
                f"/v1/approvals/{sid}.-1",
                f"/v1/approvals/{sid}.2",  # an event that is not an approval
            ):
                assert_problem(await c.get(path), 404)
                assert_problem(await c.post(f"{path}/decision", json={"approve": True}), 404)
            # JSON nested past what is stored, or past what the parser takes
            msg = f"/v1/sessions/{sid}/messages"
            for depth in (150, 5000, 200_000):
                nested = b"[" * depth + b"]" * depth
                for path, body in (
                    (msg, b'{"message":"hi","context":{"a":' + nested + b"}}"),
                    ("/v1/sessions", b'{"agent":"retail","context":{"a":' + nested + b"}}"),
                ):
                    assert_problem(await c.post(path, content=body, headers=JSON_CT), 422)
            # a bidi override and a NUL are text like any other
            r = await c.post(msg, json={"message": f"\u202e{STATUS}\u0000"})
            assert r.status_code == 200, r.text
            session = (await c.get(f"/v1/sessions/{sid}")).json()
            assert session["status"] == "idle"
            assert session["messages"][0]["text"] == f"\u202e{STATUS}\u0000"
            # and the session goes on
            r = await c.post(msg, json={"message": STATUS})
            assert r.json()["status"] == "idle", r.text
            types = [e["type"] for e in await stored(c, sid, {})]
    assert types.count("message.user") == 2
    assert types.count("turn.completed") == 2
