"""The HTTP API through a real uvicorn server on loopback, spoken with raw httpx.

The retail flow end to end over SSE (a user asks, an approver decides, the
shop changes once), idempotent retries of every POST, and the readiness probe.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.conftest import inprocess, make_key, wait_for
from tests.server.helpers import (
    CANCEL,
    ORDER,
    SSE,
    STATUS,
    Frame,
    Gate,
    answering,
    assert_problem,
    bearer,
    frames,
    order_row,
    post_sse,
    read_frames,
    refunds,
    retail_agent,
    sqlite_url,
    stored,
    turn_calls,
)
from tether.exceptions import ProviderError
from tether.spec.model import ModelRequest

CANCEL_ARGS = {
    "first_name": "Ava",
    "last_name": "Moreno",
    "zip": "94107",
    "order_id": ORDER,
    "reason": "no longer needed",
}


def ids(frames: list[Frame]) -> list[int]:
    return [f.id for f in frames if f.id is not None]


def by_event(frames: list[Frame], event: str) -> list[Frame]:
    return [f for f in frames if f.event == event]


def assert_well_formed(frames: list[Frame], first: int) -> None:
    """Stored frames carry consecutive ids from ``first``, named by their type; deltas have none."""
    assert ids(frames) == list(range(first, first + len(ids(frames))))
    for f in frames:
        if f.event in ("turn.end", "error", "end"):
            continue
        assert f.data["type"] == f.event
        if f.event == "model.delta":
            assert f.id is None
            assert f.data["seq"] == 0
        else:
            assert f.id == f.data["seq"]


async def new_session(c: httpx.AsyncClient, headers: dict[str, str], **extra: Any) -> str:
    r = await c.post("/v1/sessions", json={"agent": "retail"}, headers={**headers, **extra})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


# --- the retail flow ------------------------------------------------------------------


async def test_retail_flow_over_sse(tmp_path: Path) -> None:
    shop = tmp_path / "shop.sqlite"
    db = sqlite_url(tmp_path)
    user = bearer(await make_key(db, user="u1", tenant="t1", roles={"user"}))
    approver = bearer(await make_key(db, user="boss", tenant="t1", roles={"approver"}))
    agent, _model = retail_agent(shop)
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            r = await c.post("/v1/sessions", json={"agent": "retail"}, headers=user)
            assert r.status_code == 201, r.text
            created = r.json()
            assert (created["status"], created["user"], created["tenant"]) == ("idle", "u1", "t1")
            sid = created["id"]

            first = await post_sse(c, f"/v1/sessions/{sid}/messages", {"message": CANCEL}, user)
            assert_well_formed(first, created["last_seq"] + 1)
            (asked,) = by_event(first, "approval.requested")
            assert asked.data["data"]["tool"] == "cancel_order"
            assert first[-1].event == "turn.end"
            assert first[-1].id is None
            end = first[-1].data
            assert end["status"] == "awaiting_approval"
            aid = asked.data["data"]["approval_id"]
            assert end["approval"]["id"] == aid
            assert end["last_seq"] == ids(first)[-1]
            assert order_row(shop)["status"] == "pending"

            # the user may not decide an operator approval; nothing runs
            r = await c.post(f"/v1/approvals/{aid}/decision", json={"approve": True}, headers=user)
            assert_problem(r, 403, "forbidden")
            assert (await c.get(f"/v1/sessions/{sid}", headers=user)).json()[
                "status"
            ] == "awaiting_approval"

            r = await c.get("/v1/approvals", headers=approver)
            assert r.status_code == 200
            assert [a["id"] for a in r.json()["items"]] == [aid]
            r = await c.get(f"/v1/approvals/{aid}", headers=approver)
            assert r.status_code == 200
            approval = r.json()
            assert approval["tool"] == "cancel_order"
            assert approval["arguments"] == CANCEL_ARGS
            assert approval["mode"] == "operator"
            assert (approval["session_id"], approval["user"], approval["tenant"]) == (
                sid,
                "u1",
                "t1",
            )
            assert ORDER in approval["summary"]
            assert "no longer needed" in approval["summary"]
            assert order_row(shop)["status"] == "pending"
            assert refunds(shop) == 0

            then = await post_sse(
                c, f"/v1/approvals/{aid}/decision", {"approve": True, "reason": "ok"}, approver
            )
            assert_well_formed(then, ids(first)[-1] + 1)
            (decided,) = by_event(then, "approval.decided")
            assert decided.data["data"]["approved"] is True
            (started,) = by_event(then, "tool.started")
            (finished,) = by_event(then, "tool.finished")
            assert started.data["data"]["name"] == finished.data["data"]["name"] == "cancel_order"
            assert started.data["data"]["arguments"] == CANCEL_ARGS
            assert finished.data["data"]["is_error"] is False
            assert by_event(then, "model.delta"), "the final answer streamed as deltas"
            assert then[-1].event == "turn.end"
            answer = then[-1].data
            assert answer["status"] == "idle"
            assert "cancelled" in answer["output"]
            assert ORDER in answer["output"]
            streamed = "".join(f.data["data"]["text"] for f in by_event(then, "model.delta"))
            assert streamed == answer["output"]

        row = order_row(shop)
        assert row["status"] == "cancelled"
        assert refunds(shop) == 1  # one payment, refunded once

        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            r = await c.get(f"/v1/sessions/{sid}", headers=user)
            assert r.status_code == 200
            session = r.json()
            assert session["status"] == "idle"
            assert session["pending_approval"] is None
            assert [m["role"] for m in session["messages"]] == [
                "user",
                "assistant",
                "tool",
                "assistant",
            ]
            assert session["messages"][0]["text"] == CANCEL
            assert session["messages"][1]["tool_calls"][0]["arguments"] == CANCEL_ARGS
            assert session["messages"][-1]["text"] == answer["output"]
            assert session["last_seq"] == ids(then)[-1]

            events = await stored(c, sid, user)
            assert [e["seq"] for e in events] == list(range(1, session["last_seq"] + 1))
            sent = {f.id: f.data for f in first + then if f.id is not None}
            assert set(sent) == {e["seq"] for e in events} - {1}
            for e in events[1:]:
                assert (sent[e["seq"]]["type"], sent[e["seq"]]["data"]) == (e["type"], e["data"])
            kinds = Counter((e["type"], e["data"].get("name")) for e in events)
            assert kinds[("tool.started", "cancel_order")] == 1


async def test_user_cannot_decide_operator_approval(tmp_path: Path) -> None:
    shop = tmp_path / "shop.sqlite"
    user = bearer(await make_key(sqlite_url(tmp_path), user="u1", tenant="t1"))
    agent, _model = retail_agent(shop)
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = await new_session(c, user)
            r = await c.post(f"/v1/sessions/{sid}/messages", json={"message": CANCEL}, headers=user)
            aid = r.json()["approval"]["id"]
            for sse in (False, True):  # refused before anything runs, streamed or not
                r = await c.post(
                    f"/v1/approvals/{aid}/decision",
                    json={"approve": True},
                    headers={**user, **(SSE if sse else {})},
                )
                assert_problem(r, 403, "forbidden")
            assert order_row(shop)["status"] == "pending"
            session = (await c.get(f"/v1/sessions/{sid}", headers=user)).json()
            assert session["status"] == "awaiting_approval"
            assert session["pending_approval"]["id"] == aid


async def test_session_messages_show_tool_results(tmp_path: Path) -> None:
    agent, _model = retail_agent(tmp_path / "shop.sqlite")
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = await new_session(c, {})
            r = await c.post(f"/v1/sessions/{sid}/messages", json={"message": STATUS})
            assert r.json()["status"] == "idle"
            messages = (await c.get(f"/v1/sessions/{sid}")).json()["messages"]
            assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
            tool = messages[2]
            assert tool["tool"] == "check_order"
            assert ORDER in tool["text"]
            assert "pending" in tool["text"]


# --- idempotency ------------------------------------------------------------------------


async def test_message_retried_with_the_same_key_runs_once(tmp_path: Path) -> None:
    shop = tmp_path / "shop.sqlite"
    agent, model = retail_agent(shop)
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = await new_session(c, {})
            key = {"Idempotency-Key": f"msg-{uuid.uuid4().hex}"}
            path = f"/v1/sessions/{sid}/messages"
            first = await c.post(path, json={"message": STATUS}, headers=key)
            assert first.status_code == 200, first.text
            assert "Idempotent-Replayed" not in first.headers
            assert first.json()["status"] == "idle"
            assert "pending" in first.json()["output"]
            again = await c.post(path, json={"message": STATUS}, headers=key)
            assert again.status_code == 200
            assert again.headers["Idempotent-Replayed"] == "true"
            assert again.json() == first.json()

            other = await c.post(path, json={"message": STATUS + " please"}, headers=key)
            assert_problem(other, 422, "idempotency-key-reused")
            elsewhere = await c.post("/v1/sessions", json={"agent": "retail"}, headers=key)
            assert_problem(elsewhere, 422, "idempotency-key-reused")

            events = await stored(c, sid, {})
            types = Counter(e["type"] for e in events)
            assert types["message.user"] == 1
            assert types["turn.completed"] == 1
            assert len(turn_calls(model)) == 2  # check_order, then the answer


async def test_concurrent_duplicates_run_one_turn(tmp_path: Path) -> None:
    shop = tmp_path / "shop.sqlite"
    agent, model = retail_agent(shop, delay=0.3)
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = await new_session(c, {})
            key = {"Idempotency-Key": "same-key-for-all-four"}
            rs = await asyncio.gather(
                *(
                    c.post(f"/v1/sessions/{sid}/messages", json={"message": STATUS}, headers=key)
                    for _ in range(4)
                )
            )
            assert [r.status_code for r in rs] == [200] * 4, [r.text for r in rs]
            assert all(r.json() == rs[0].json() for r in rs)
            assert sum("Idempotent-Replayed" not in r.headers for r in rs) == 1
            events = await stored(c, sid, {})
            assert Counter(e["type"] for e in events)["message.user"] == 1
            assert len(turn_calls(model)) == 2


async def test_streamed_retry_of_a_running_turn_follows_that_turn(tmp_path: Path) -> None:
    gate = Gate(answering)  # the turn waits before its answer, so the retry finds it running
    agent, model = retail_agent(tmp_path / "shop.sqlite", gate=gate)
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = await new_session(c, {})
            path = f"/v1/sessions/{sid}/messages"
            headers = {"Idempotency-Key": "stream-retry", **SSE}
            async with c.stream("POST", path, json={"message": STATUS}, headers=headers) as r1:
                first: list[Frame] = []
                stream = frames(r1)
                async for f in stream:
                    first.append(f)
                    if f.event == "tool.finished":
                        break
                await wait_for(gate.entered.is_set)
                async with c.stream("POST", path, json={"message": STATUS}, headers=headers) as r2:
                    gate.open()
                    second = await read_frames(r2)
                first += [f async for f in stream]
            assert first[-1].event == second[-1].event == "turn.end"
            assert second[-1].data == first[-1].data
            assert first[-1].data["status"] == "idle"
            assert ids(second) == ids(first)
            assert ids(first) == list(
                range(first[-1].data["first_seq"], first[-1].data["last_seq"] + 1)
            )
            events = await stored(c, sid, {})
            assert Counter(e["type"] for e in events)["message.user"] == 1
            assert len(turn_calls(model)) == 2


async def test_decision_retried_after_success_returns_the_first_outcome(tmp_path: Path) -> None:
    shop = tmp_path / "shop.sqlite"
    agent, _model = retail_agent(shop)
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = await new_session(c, {})
            r = await c.post(f"/v1/sessions/{sid}/messages", json={"message": CANCEL})
            aid = r.json()["approval"]["id"]
            key = {"Idempotency-Key": f"decide-{aid}"}
            path = f"/v1/approvals/{aid}/decision"
            first = await c.post(path, json={"approve": True}, headers=key)
            assert first.status_code == 200, first.text
            assert first.json()["status"] == "idle"
            again = await c.post(path, json={"approve": True}, headers=key)
            assert again.status_code == 200, again.text
            assert again.headers["Idempotent-Replayed"] == "true"
            assert again.json() == first.json()
            # a streamed retry replays the continuation's stored events, then the same outcome
            replay = await post_sse(c, path, {"approve": True}, key)
            assert replay[-1].event == "turn.end"
            assert replay[-1].data == first.json()
            assert [f.data["data"]["name"] for f in replay if f.event == "tool.started"] == [
                "cancel_order"
            ]
            assert ids(replay) == list(
                range(first.json()["first_seq"], first.json()["last_seq"] + 1)
            )
            # without the key the decision is gone: nothing pending
            assert_problem(await c.post(path, json={"approve": True}), 404)
            events = await stored(c, sid, {})
            assert Counter(e["type"] for e in events)["tool.started"] == 1
        assert refunds(shop) == 1


async def test_create_session_retried_returns_the_same_session(tmp_path: Path) -> None:
    agent, _model = retail_agent(tmp_path / "shop.sqlite")
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            key = {"Idempotency-Key": "create-1"}
            a = await c.post("/v1/sessions", json={"agent": "retail"}, headers=key)
            b = await c.post("/v1/sessions", json={"agent": "retail"}, headers=key)
            assert (a.status_code, b.status_code) == (201, 201), b.text
            assert b.json()["id"] == a.json()["id"]
            assert b.headers["Idempotent-Replayed"] == "true"
            c3 = await c.post(
                "/v1/sessions", json={"agent": "retail"}, headers={"Idempotency-Key": "create-2"}
            )
            assert c3.json()["id"] != a.json()["id"]
            listed = (await c.get("/v1/sessions")).json()["items"]
            assert sorted(s["id"] for s in listed) == sorted([a.json()["id"], c3.json()["id"]])


@pytest.mark.parametrize("bad", ["", "x" * 256, "has space", "caf\u00e9"])
async def test_malformed_idempotency_key_is_refused(tmp_path: Path, bad: str) -> None:
    agent, _model = retail_agent(tmp_path / "shop.sqlite")
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            r = await c.post(
                "/v1/sessions",
                json={"agent": "retail"},
                headers={"Idempotency-Key": bad.encode("utf-8")},  # type: ignore[dict-item]
            )
            assert_problem(r, 422)
            assert (await c.get("/v1/sessions")).json()["items"] == []


# --- readiness ----------------------------------------------------------------------


def _down(_request: ModelRequest) -> Any:
    raise ProviderError(
        "503 Service Unavailable",
        provider="test",
        model="local-scripted",
        status=503,
        retryable=True,
    )


async def test_readyz_ready_with_a_working_chain(tmp_path: Path) -> None:
    agent, model = retail_agent(tmp_path / "shop.sqlite")
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            r = await c.get("/readyz")
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["status"] == "ready"
            assert body["checks"]["store"]["ok"] is True
            assert body["checks"]["agent:retail"]["ok"] is True
            assert body["checks"]["agent:retail"]["model"] == "local-scripted"
            asked = [r for r in model.requests if r not in turn_calls(model)]
            assert asked
            assert asked[0].messages[0].text == "Reply with the single word OK."
            assert (await c.get("/healthz")).json() == {"status": "ok"}


async def test_readyz_names_the_agent_whose_chain_is_down(tmp_path: Path) -> None:
    agent, _model = retail_agent(tmp_path / "shop.sqlite", fn=_down)
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            r = await c.get("/readyz")
            assert r.status_code == 503, r.text
            body = r.json()
            assert body["status"] == "not_ready"
            assert body["checks"]["store"]["ok"] is True
            check = body["checks"]["agent:retail"]
            assert check["ok"] is False
            assert check["detail"]
            assert "Traceback" not in r.text
            h = await c.get("/healthz")
            assert (h.status_code, h.json()) == (200, {"status": "ok"})
