"""SIGTERM in the middle of a turn, then a restart on the same database: ``tether serve`` in
subprocesses (signals need a process of their own).

The turn stops at a step boundary with what it did committed, the process
exits within its grace period, and the next server resumes the session:
every tool runs exactly once and the shop changes only as the tools would.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from examples.retail.agent import open_shop

from tests.server.conftest import Spawned, spawn, wait_for
from tests.server.helpers import (
    CANCEL,
    ORDER,
    SSE,
    STATUS,
    Frame,
    frames,
    order_row,
    refunds,
    stored,
)
from tether.store import SQLStore

pytestmark = pytest.mark.slow

#: how uvicorn ends after a SIGTERM it handled: it re-raises the signal once it has shut down
#: (a process killed outright by the signal exits the same way: the tests prove the drain
#: from what was committed, not from the exit status)
STOPPED = (0, -signal.SIGTERM)


def dump(shop: Path) -> str:
    """Everything in the shop file, as SQL."""
    conn = sqlite3.connect(f"file:{shop}?mode=ro", uri=True)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Spawned]]:
    """Spawned servers to stop (killed if a test left them running)."""
    started: list[Spawned] = []
    yield started
    for s in started:
        s.stop()


def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'server.sqlite'}"


def serve(
    tmp_path: Path, shop: Path, started: list[Spawned], *, delay: float, grace: float
) -> Spawned:
    """``tether serve`` on the test's database; each model call takes ``delay`` seconds."""
    srv = spawn(
        tmp_path,
        db_url=db_url(tmp_path),
        shop=shop,
        model_delay=delay,
        extra_env={"TETHER_SHUTDOWN_GRACE": str(grace)},
    )
    started.append(srv)
    srv.wait_ready()
    return srv


async def sigterm_after(
    c: httpx.AsyncClient, srv: Spawned, r: httpx.Response, last: str
) -> list[Frame]:
    """Read the stream ``r`` to the first ``last`` event, SIGTERM the server, read to the end."""
    seen: list[Frame] = []
    sent = False
    async for f in frames(r):
        seen.append(f)
        if not sent and f.event == last:
            srv.proc.send_signal(signal.SIGTERM)
            sent = True
    assert sent, [f.event for f in seen]
    return seen


def exit_within(srv: Spawned, grace: float) -> int:
    bound = grace + 5  # the drain, then closing the store and the interpreter's exit
    try:
        return srv.proc.wait(bound)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {bound} s after SIGTERM:\n{srv.output()}") from None


async def left_behind(tmp_path: Path, sid: str) -> tuple[Any, list[Any]]:
    """The session's row and events as the stopped server left them in the database."""
    store = await SQLStore.open(db_url(tmp_path))
    try:
        return await store.get(sid), await store.events(sid)
    finally:
        await store.aclose()


async def idle_session(c: httpx.AsyncClient, sid: str) -> dict[str, Any]:
    async def idle() -> dict[str, Any] | None:
        body = (await c.get(f"/v1/sessions/{sid}")).json()
        return body if body["status"] == "idle" else None

    result: dict[str, Any] = await wait_for(idle, timeout=30)
    return result


async def test_sigterm_mid_turn_then_restart_runs_each_tool_once(
    tmp_path: Path, servers: list[Spawned]
) -> None:
    shop = tmp_path / "shop.sqlite"
    open_shop(shop).close()
    before = dump(shop)

    first = serve(tmp_path, shop, servers, delay=1.0, grace=5.0)
    async with httpx.AsyncClient(base_url=first.url, timeout=30) as c:
        sid = (await c.post("/v1/sessions", json={"agent": "retail"})).json()["id"]
        async with c.stream(
            "POST", f"/v1/sessions/{sid}/messages", json={"message": STATUS}, headers=SSE
        ) as r:
            # the first model call takes a second: the signal lands inside it
            seen = await sigterm_after(c, first, r, "message.user")
    assert exit_within(first, 5.0) in STOPPED, first.output()
    assert "turn.end" not in [f.event for f in seen]
    assert seen[-1].event == "error", seen
    assert seen[-1].data["type"] == "https://tether.dev/problems/shutting-down"
    # drained, not killed: the step in flight (the model's call, then check_order) finished
    # and was committed, and the lease was given back for another server to resume
    rec, events = await left_behind(tmp_path, sid)
    assert (rec.status, rec.lease_owner) == ("running", None)
    assert [e.type for e in events][-3:] == ["model.response", "tool.started", "tool.finished"]

    second = serve(tmp_path, shop, servers, delay=1.0, grace=5.0)
    async with httpx.AsyncClient(base_url=second.url, timeout=30) as c:
        session = await idle_session(c, sid)
        assert session["messages"][-1]["role"] == "assistant"
        assert session["messages"][-1]["text"] == f"Order {ORDER} is pending."
        events = await stored(c, sid, {})
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    types = Counter((e["type"], e["data"].get("name")) for e in events)
    assert types[("tool.started", "check_order")] == 1
    assert types[("tool.finished", "check_order")] == 1
    assert types[("message.user", None)] == 1
    assert types[("turn.completed", None)] == 1
    assert types[("session.resumed", None)] >= 1  # the second server took it over
    assert dump(shop) == before  # check_order only reads


async def test_sigterm_after_an_approved_cancel_cancels_exactly_once(
    tmp_path: Path, servers: list[Spawned]
) -> None:
    shop = tmp_path / "shop.sqlite"
    open_shop(shop).close()

    # the answer's model call (2 s) outlasts the grace (0.3 s): the shutdown cancels it
    first = serve(tmp_path, shop, servers, delay=2.0, grace=0.3)
    async with httpx.AsyncClient(base_url=first.url, timeout=30) as c:
        sid = (await c.post("/v1/sessions", json={"agent": "retail"})).json()["id"]
        r = await c.post(f"/v1/sessions/{sid}/messages", json={"message": CANCEL})
        assert r.json()["status"] == "awaiting_approval", r.text
        aid = r.json()["approval"]["id"]
        async with c.stream(
            "POST", f"/v1/approvals/{aid}/decision", json={"approve": True}, headers=SSE
        ) as r:
            # cancel_order has run; the model is writing the answer
            seen = await sigterm_after(c, first, r, "tool.finished")
    assert exit_within(first, 0.3) in STOPPED, first.output()
    assert "turn.end" not in [f.event for f in seen]
    rec, events = await left_behind(tmp_path, sid)
    assert rec.status == "running"
    assert "turn.completed" not in [e.type for e in events]
    assert order_row(shop)["status"] == "cancelled"
    assert refunds(shop) == 1

    second = serve(tmp_path, shop, servers, delay=0.2, grace=5.0)
    async with httpx.AsyncClient(base_url=second.url, timeout=30) as c:
        session = await idle_session(c, sid)
        answer = session["messages"][-1]
        assert answer["role"] == "assistant"
        assert "cancelled" in answer["text"]
        assert ORDER in answer["text"]
        events = await stored(c, sid, {})
    types = Counter((e["type"], e["data"].get("name")) for e in events)
    assert types[("tool.started", "cancel_order")] == 1
    assert types[("tool.finished", "cancel_order")] == 1
    assert types[("approval.decided", None)] == 1
    assert types[("turn.completed", None)] == 1
    assert order_row(shop)["status"] == "cancelled"
    assert refunds(shop) == 1
