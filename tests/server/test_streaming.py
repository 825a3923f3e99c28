"""SSE over a real server: a dropped stream resumed with ``Last-Event-ID`` loses and repeats
nothing, and a client that goes away does not stop its turn.

The model is held at a :class:`~tests.server.helpers.Gate` so that "the
middle of a turn" is a fact the test controls, not a race against a timer.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.conftest import inprocess, wait_for
from tests.server.helpers import (
    ORDER,
    SSE,
    STATUS,
    Frame,
    Gate,
    answering,
    frames,
    order_row,
    read_frames,
    retail_agent,
    stored,
    turn_calls,
)
from tether.surfaces.server import routes


def ids(fs: list[Frame]) -> list[int]:
    return [f.id for f in fs if f.id is not None]


async def test_dropped_stream_resumes_with_last_event_id(tmp_path: Path) -> None:
    shop = tmp_path / "shop.sqlite"
    gate = Gate(answering)  # the answer after check_order waits
    agent, model = retail_agent(shop, gate=gate)
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = (await c.post("/v1/sessions", json={"agent": "retail"})).json()["id"]
            before: list[Frame] = []
            async with c.stream(
                "POST", f"/v1/sessions/{sid}/messages", json={"message": STATUS}, headers=SSE
            ) as r:
                async for f in frames(r):
                    before.append(f)
                    if f.event == "tool.finished":
                        break  # drop the connection in the middle of the turn
            await wait_for(lambda: srv.state.bus.listeners(sid) == 0)
            await wait_for(gate.entered.is_set)
            assert not any(f.event in ("turn.completed", "turn.end") for f in before)
            last = ids(before)[-1]

            async with c.stream(
                "GET",
                f"/v1/sessions/{sid}/events/stream",
                params={"after": 0},  # the header wins over the query
                headers={"Last-Event-ID": str(last)},
            ) as r:
                gate.open()
                after = await read_frames(r)

            end = after[-1]
            assert (end.event, end.id) == ("end", None)
            assert end.data["status"] == "idle"
            n = end.data["last_seq"]
            seen = ids(before) + ids(after)
            assert len(seen) == len(set(seen)), f"repeated: {seen}"
            assert seen == list(range(seen[0], n + 1)), f"gap: {seen}"
            assert ids(after)[0] == last + 1
            assert "turn.completed" in [f.event for f in after]

            events = await stored(c, sid, {})
            assert [e["seq"] for e in events] == list(range(1, n + 1))
            assert seen == [e["seq"] for e in events if e["seq"] >= seen[0]]
            sent = {f.id: f.data for f in before + after if f.id is not None}
            for e in events:
                if e["seq"] in sent:
                    assert (sent[e["seq"]]["type"], sent[e["seq"]]["data"]) == (
                        e["type"],
                        e["data"],
                    )
            assert len(turn_calls(model)) == 2


async def test_stream_of_a_session_at_rest_sends_the_log_then_ends(tmp_path: Path) -> None:
    agent, _model = retail_agent(tmp_path / "shop.sqlite")
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = (await c.post("/v1/sessions", json={"agent": "retail"})).json()["id"]
            turn = (await c.post(f"/v1/sessions/{sid}/messages", json={"message": STATUS})).json()
            assert turn["status"] == "idle"
            n = turn["last_seq"]

            async with c.stream("GET", f"/v1/sessions/{sid}/events/stream") as r:
                everything = await read_frames(r)
            assert ids(everything) == list(range(1, n + 1))
            assert (everything[-1].event, everything[-1].id) == ("end", None)
            assert everything[-1].data["status"] == "idle"
            assert everything[-1].data["last_seq"] == n

            async with c.stream(
                "GET", f"/v1/sessions/{sid}/events/stream", headers={"Last-Event-ID": str(n)}
            ) as r:
                nothing = await read_frames(r)
            assert [(f.event, f.data["status"], f.data["last_seq"]) for f in nothing] == [
                ("end", "idle", n)
            ]


async def test_client_disconnect_does_not_cancel_the_turn(tmp_path: Path) -> None:
    shop = tmp_path / "shop.sqlite"
    gate = Gate()  # every model call waits until the client is gone
    agent, model = retail_agent(shop, gate=gate)
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = (await c.post("/v1/sessions", json={"agent": "retail"})).json()["id"]
            async with c.stream(
                "POST", f"/v1/sessions/{sid}/messages", json={"message": STATUS}, headers=SSE
            ) as r:
                async for f in frames(r):
                    if f.event == "message.user":
                        break
            await wait_for(gate.entered.is_set)
            await wait_for(lambda: srv.state.bus.listeners(sid) == 0)  # the server saw it go
            assert (await c.get(f"/v1/sessions/{sid}")).json()["status"] == "running"
            gate.open()

            async def idle() -> bool:
                return bool((await c.get(f"/v1/sessions/{sid}")).json()["status"] == "idle")

            await wait_for(idle)
            session = (await c.get(f"/v1/sessions/{sid}")).json()
            assert session["messages"][-1]["role"] == "assistant"
            assert session["messages"][-1]["text"] == f"Order {ORDER} is pending."
            events = await stored(c, sid, {})
            kinds = Counter((e["type"], e["data"].get("name")) for e in events)
            assert kinds[("tool.started", "check_order")] == 1
            assert kinds[("turn.completed", None)] == 1
            assert len(turn_calls(model)) == 2
    assert order_row(shop)["status"] == "pending"


class _LateFirstRead:
    """A store whose first ``events`` read answers only after the turn has ended.

    It reads, lets the held turn go on, and returns what it read once the
    turn is over: a store round trip that was slower than the turn's last
    steps (a loaded database, a distant one).
    """

    def __init__(self, store: Any, gate: Gate, runs: Any) -> None:
        self._store = store
        self._gate = gate
        self._runs = runs
        self.late = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def events(self, session_id: str, *, after_seq: int = 0) -> Any:
        got = await self._store.events(session_id, after_seq=after_seq)
        if not self.late:
            self.late = True
            self._gate.open()
            await wait_for(lambda: self._runs.active == 0, interval=0.01)
        return got


async def test_a_turns_stream_sends_every_event_when_a_store_read_is_slow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate(answering)
    agent, _model = retail_agent(tmp_path / "shop.sqlite", gate=gate)
    with inprocess([agent], tmp_path) as srv:
        real_follow = routes.follow

        def follow(store: Any, *args: Any, **kwargs: Any) -> Any:
            return real_follow(_LateFirstRead(store, gate, srv.state.runs), *args, **kwargs)

        monkeypatch.setattr(routes, "follow", follow)
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = (await c.post("/v1/sessions", json={"agent": "retail"})).json()["id"]
            async with c.stream(
                "POST", f"/v1/sessions/{sid}/messages", json={"message": STATUS}, headers=SSE
            ) as r:
                fs = await read_frames(r)
            end = fs[-1]
            assert end.event == "turn.end"
            assert end.data["status"] == "idle"
            assert ids(fs) == list(range(end.data["first_seq"], end.data["last_seq"] + 1))
