"""Who may do what, and what the server refuses: API keys, visibility, rate limits, bad requests.

Every refusal is a problem document (type, title, status, detail) that
names nothing internal; someone else's session is "not found", exactly
like one that does not exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.conftest import inprocess, make_key, wait_for
from tests.server.helpers import (
    CANCEL,
    SSE,
    assert_problem,
    bearer,
    order_row,
    read_frames,
    retail_agent,
    sqlite_url,
    stored,
    turn_calls,
)
from tether.spec.budget import Quota, RateLimits
from tether.store import SQLStore
from tether.store.server import KeyStore

# --- visibility -----------------------------------------------------------------------


async def test_other_peoples_sessions_and_approvals_are_not_found(tmp_path: Path) -> None:
    shop = tmp_path / "shop.sqlite"
    db = sqlite_url(tmp_path)
    alice = bearer(await make_key(db, user="alice", tenant="t1"))
    bob = bearer(await make_key(db, user="bob", tenant="t1"))
    outsider = bearer(await make_key(db, user="carol", tenant="t2", roles={"approver"}))
    admin = bearer(await make_key(db, user="root", roles={"admin"}))
    agent, _model = retail_agent(shop)
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            r = await c.post("/v1/sessions", json={"agent": "retail"}, headers=alice)
            sid = r.json()["id"]
            r = await c.post(
                f"/v1/sessions/{sid}/messages", json={"message": CANCEL}, headers=alice
            )
            assert r.json()["status"] == "awaiting_approval"
            aid = r.json()["approval"]["id"]
            mine = (await c.post("/v1/sessions", json={"agent": "retail"}, headers=bob)).json()

            # what a caller is told for an id that does not exist at all
            missing = assert_problem(await c.get("/v1/sessions/nosuch", headers=bob), 404)
            missing_approval = assert_problem(
                await c.get("/v1/approvals/nosuch.4", headers=bob), 404
            )

            def like_missing(path: str) -> dict[str, Any]:
                return missing_approval if "/approvals/" in path else missing

            async def refused(headers: dict[str, str]) -> None:
                reads = [
                    f"/v1/sessions/{sid}",
                    f"/v1/sessions/{sid}/events",
                    f"/v1/approvals/{aid}",
                ]
                for path in reads:
                    got = assert_problem(await c.get(path, headers=headers), 404)
                    assert got == like_missing(path)
                async with c.stream(
                    "GET", f"/v1/sessions/{sid}/events/stream", headers=headers
                ) as s:
                    await s.aread()
                    assert assert_problem(s, 404) == missing
                writes: list[tuple[str, Any]] = [
                    (f"/v1/sessions/{sid}/messages", {"message": "hello"}),
                    (f"/v1/sessions/{sid}/answer", {"text": "yes"}),
                    (f"/v1/sessions/{sid}/resume", None),
                    (f"/v1/approvals/{aid}/decision", {"approve": True}),
                ]
                for path, body in writes:
                    for extra in ({}, {"Idempotency-Key": f"k-{path}"}, SSE):
                        r = await c.post(path, json=body, headers={**headers, **extra})
                        assert assert_problem(r, 404) == like_missing(path)
                sessions = (await c.get("/v1/sessions", headers=headers)).json()["items"]
                assert sid not in [s["id"] for s in sessions]
                approvals = (await c.get("/v1/approvals", headers=headers)).json()["items"]
                assert aid not in [a["id"] for a in approvals]

            await refused(bob)  # same tenant, another user
            await refused(outsider)  # an approver, of another tenant
            # bob's own session is still his to see
            r = await c.get("/v1/sessions", headers=bob)
            assert [s["id"] for s in r.json()["items"]] == [mine["id"]]

            # nothing ran, nothing was decided
            r = await c.get(f"/v1/sessions/{sid}", headers=alice)
            assert r.json()["status"] == "awaiting_approval"
            assert r.json()["pending_approval"]["id"] == aid
            assert order_row(shop)["status"] == "pending"
            types = [e["type"] for e in await stored(c, sid, alice)]
            assert types.count("message.user") == 1
            assert "approval.decided" not in types

            # an admin sees everything
            assert (await c.get(f"/v1/sessions/{sid}", headers=admin)).status_code == 200
            assert (await c.get(f"/v1/approvals/{aid}", headers=admin)).json()["user"] == "alice"
            listed = {s["id"] for s in (await c.get("/v1/sessions", headers=admin)).json()["items"]}
            assert listed == {sid, mine["id"]}
            approvals = (await c.get("/v1/approvals", headers=admin)).json()["items"]
            assert [a["id"] for a in approvals] == [aid]
            # and the owner sees their own approval
            approvals = (await c.get("/v1/approvals", headers=alice)).json()["items"]
            assert [a["id"] for a in approvals] == [aid]


# --- rate limits ----------------------------------------------------------------------


async def test_sessions_per_hour_answers_429_with_retry_after(tmp_path: Path) -> None:
    db = sqlite_url(tmp_path)
    alice = bearer(await make_key(db, user="alice", tenant="t1"))
    bob = bearer(await make_key(db, user="bob", tenant="t1"))
    admin = bearer(await make_key(db, user="root", roles={"admin"}))
    agent, _model = retail_agent(tmp_path / "shop.sqlite")
    limits = RateLimits(per_user=Quota(sessions_per_hour=2))
    with inprocess([agent], tmp_path, rate_limits=limits) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            made = []
            for _ in range(2):
                r = await c.post("/v1/sessions", json={"agent": "retail"}, headers=alice)
                assert r.status_code == 201, r.text
                made.append(r.json()["id"])
            key = {"Idempotency-Key": "third"}
            for _ in range(2):  # a refused request gives its key back: the retry is refused too
                r = await c.post("/v1/sessions", json={"agent": "retail"}, headers={**alice, **key})
                problem = assert_problem(r, 429, "rate-limited")
                retry_after = r.headers["Retry-After"]
                assert retry_after.isdigit()
                assert int(retry_after) >= 1
                assert problem["extra"]["retry_after"] == int(retry_after)
            listed = (await c.get("/v1/sessions", headers=admin)).json()["items"]
            assert sorted(s["id"] for s in listed) == sorted(made)
            # the limit is per user
            assert (
                await c.post("/v1/sessions", json={"agent": "retail"}, headers=bob)
            ).status_code == 201
            # and the refusals are counted for the operators
            scraped = (await c.get("/metrics")).text
            assert (
                'tether_rate_limited_total{limit="sessions_per_hour",scope="user"} 2.0' in scraped
            )


# --- bad requests ---------------------------------------------------------------------


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 512):
        yield data[i : i + 512]


@pytest.mark.parametrize(
    "chunked",
    [
        pytest.param(False, id="content-length"),
        pytest.param(True, id="chunked"),
    ],
)
async def test_an_oversized_body_is_a_413_problem(tmp_path: Path, chunked: bool) -> None:
    agent, _model = retail_agent(tmp_path / "shop.sqlite")
    with inprocess([agent], tmp_path, max_body_bytes=2048) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = (await c.post("/v1/sessions", json={"agent": "retail"})).json()["id"]
            big = ('{"message": "' + "x" * 5000 + '"}').encode()
            r = await c.post(
                f"/v1/sessions/{sid}/messages",
                content=_chunks(big) if chunked else big,
                headers={"Content-Type": "application/json"},
            )
            assert ("content-length" in r.request.headers) is not chunked
            assert (await c.get(f"/v1/sessions/{sid}")).json()["last_seq"] == 1  # nothing ran
            assert_problem(r, 413, "too-large")
            # a body under the limit is taken
            ok = await c.post(f"/v1/sessions/{sid}/messages", json={"message": "x" * 1000})
            assert ok.status_code == 200, ok.text


async def test_bad_requests_are_problems_without_tracebacks(tmp_path: Path) -> None:
    agent, model = retail_agent(tmp_path / "shop.sqlite")
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = (await c.post("/v1/sessions", json={"agent": "retail"})).json()["id"]
            path = f"/v1/sessions/{sid}/messages"
            json_ct = {"Content-Type": "application/json"}

            assert_problem(
                await c.post(path, content=b'{"message": "hi', headers=json_ct),
                422,
                "invalid-request",
            )
            unknown = assert_problem(
                await c.post(path, json={"message": "hi", "mesage": "typo"}), 422, "invalid-request"
            )
            assert "mesage" in unknown["detail"]
            assert_problem(await c.post(path, json={}), 422, "invalid-request")
            assert_problem(await c.post(path, json={"message": ""}), 422, "invalid-request")
            assert_problem(await c.post(path, json=["message", "hi"]), 422, "invalid-request")
            r = await c.post(
                path, content=b'{"message": "hi"}', headers={"Content-Type": "text/plain"}
            )
            assert r.status_code in (415, 422), r.text
            assert_problem(r, r.status_code)
            assert_problem(
                await c.post("/v1/sessions", json={"agent": "retail", "session_id": "../x"}), 422
            )
            assert_problem(await c.post("/v1/sessions", json={"agent": "nobody"}), 404)
            assert_problem(await c.get("/v1/sessions", params={"limit": 0}), 422)
            assert_problem(await c.get("/v1/sessions", params={"cursor": "garbage"}), 422)
            async with c.stream(
                "GET", f"/v1/sessions/{sid}/events/stream", headers={"Last-Event-ID": "seven"}
            ) as s:
                await s.aread()
                assert_problem(s, 422)
            assert_problem(await c.delete(f"/v1/sessions/{sid}"), 405)
            assert_problem(await c.get("/v1/nothing-here"), 404)

            # none of it ran a turn
            assert [e["type"] for e in await stored(c, sid, {})] == ["session.created"]
            assert turn_calls(model) == []


def _broken(_request: Any) -> Any:
    raise RuntimeError("kaboom in the model adapter")


async def test_a_turn_that_crashes_is_a_500_problem_naming_nothing_internal(
    tmp_path: Path,
) -> None:
    agent, _model = retail_agent(tmp_path / "shop.sqlite", fn=_broken)
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = (await c.post("/v1/sessions", json={"agent": "retail"})).json()["id"]
            r = await c.post(f"/v1/sessions/{sid}/messages", json={"message": "hello"})
            assert_problem(r, 500, "internal")
            assert "kaboom" not in r.text
            assert "RuntimeError" not in r.text
            assert (await c.get(f"/v1/sessions/{sid}")).json()["status"] == "failed"

            sid = (await c.post("/v1/sessions", json={"agent": "retail"})).json()["id"]
            async with c.stream(
                "POST", f"/v1/sessions/{sid}/messages", json={"message": "hello"}, headers=SSE
            ) as s:
                fs = await read_frames(s)
            assert fs[-1].event == "error"
            assert fs[-1].id is None
            assert fs[-1].data["status"] == 500
            assert fs[-1].data["type"] == "https://tether.dev/problems/internal"
            assert "turn.end" not in [f.event for f in fs]
            assert "kaboom" not in str(fs[-1].data)


# --- API keys -------------------------------------------------------------------------


async def test_keys_are_required_once_one_exists(tmp_path: Path) -> None:
    db = sqlite_url(tmp_path)
    token = await make_key(db, user="alice", tenant="t1")
    agent, _model = retail_agent(tmp_path / "shop.sqlite")
    with inprocess([agent], tmp_path) as srv:
        srv.state.gate.recheck = 0.2  # a key is remembered this long (5 s by default)
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            for headers in (
                {},
                bearer("tk_nope"),
                bearer(token[:-2] + "xx"),
                {"Authorization": "Basic YWxpY2U6cHc="},
            ):
                r = await c.get("/v1/sessions", headers=headers)
                assert_problem(r, 401, "unauthenticated")
                assert r.headers["WWW-Authenticate"] == "Bearer"
                r = await c.post("/v1/sessions", json={"agent": "retail"}, headers=headers)
                assert_problem(r, 401, "unauthenticated")
            # the probes need no key
            assert (await c.get("/healthz")).status_code == 200
            assert (await c.get("/readyz")).status_code == 200

            r = await c.post("/v1/sessions", json={"agent": "retail"}, headers=bearer(token))
            assert r.status_code == 201
            assert r.json()["user"] == "alice"
            store = await SQLStore.open(db)
            try:
                assert await KeyStore(store).revoke(token)
            finally:
                await store.aclose()

            async def refused() -> bool:
                r = await c.get("/v1/sessions", headers=bearer(token))
                return r.status_code == 401

            await wait_for(refused, timeout=5)  # within the time a key is remembered
            r = await c.get("/v1/sessions", headers=bearer(token))
            assert_problem(r, 401, "unauthenticated")


async def test_open_local_mode_without_keys(tmp_path: Path) -> None:
    agent, _model = retail_agent(tmp_path / "shop.sqlite")
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            r = await c.post("/v1/sessions", json={"agent": "retail"})
            assert r.status_code == 201, r.text
            assert r.json()["user"] == "local"
            sid = r.json()["id"]
            r = await c.post(f"/v1/sessions/{sid}/messages", json={"message": CANCEL})
            aid = r.json()["approval"]["id"]
            # the local user has every role: it may decide an operator approval
            r = await c.post(f"/v1/approvals/{aid}/decision", json={"approve": True})
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "idle"
            assert order_row(tmp_path / "shop.sqlite")["status"] == "cancelled"


@pytest.mark.parametrize("settings", [{"host": "0.0.0.0"}, {"open_local": False}])
async def test_no_open_mode_off_loopback_or_when_disabled(
    tmp_path: Path, settings: dict[str, Any]
) -> None:
    agent, _model = retail_agent(tmp_path / "shop.sqlite")
    with inprocess([agent], tmp_path, **settings) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            assert_problem(await c.get("/v1/sessions"), 401, "unauthenticated")
            assert_problem(await c.post("/v1/sessions", json={"agent": "retail"}), 401)
