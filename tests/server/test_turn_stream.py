"""A turn's own stream: every delta and every stored event, however fast the turn.

The stream subscribes before the turn starts, so a turn that is over before
the response's first byte is written still streams its text deltas, and
every stored event arrives once, in order, without the stream reading the
store (the bus delivered them all).
"""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.server.conftest import inprocess
from tests.server.helpers import STATUS, post_sse, retail_agent, stored


async def test_a_fast_turn_streams_its_deltas_and_every_event(tmp_path: Path) -> None:
    agent, _model = retail_agent(tmp_path / "shop.sqlite")  # no model delay: the turn is instant
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = (await c.post("/v1/sessions", json={"agent": "retail"})).json()["id"]
            got = await post_sse(c, f"/v1/sessions/{sid}/messages", {"message": STATUS})
            end = got[-1]
            assert end.event == "turn.end"
            deltas = "".join(f.data["data"]["text"] for f in got if f.event == "model.delta")
            assert deltas == end.data["output"]
            assert all(f.id is None for f in got if f.event == "model.delta")
            ids = [f.id for f in got if f.id is not None]
            log = [e["seq"] for e in await stored(c, sid, {})]
            assert ids == log[log.index(ids[0]) :]  # the turn's events: all, once, in order
            assert ids == list(range(end.data["first_seq"], end.data["last_seq"] + 1))


async def test_a_turns_stream_reads_the_store_only_when_the_bus_misses_something(
    tmp_path: Path,
) -> None:
    agent, _model = retail_agent(tmp_path / "shop.sqlite")
    with inprocess([agent], tmp_path) as srv:
        store = srv.state.rt.store
        reads: list[int] = []
        real = store.events

        async def counted(session_id: str, *, after_seq: int = 0) -> object:
            reads.append(after_seq)
            return await real(session_id, after_seq=after_seq)

        store.events = counted
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            sid = (await c.post("/v1/sessions", json={"agent": "retail"})).json()["id"]
            reads.clear()
            got = await post_sse(c, f"/v1/sessions/{sid}/messages", {"message": STATUS})
            assert got[-1].event == "turn.end"
            # the runtime reads the session once to take it; the stream itself, never
            assert len(reads) <= 1, reads
