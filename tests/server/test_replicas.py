"""Three ``tether serve`` replicas on one PostgreSQL database and one Redis.

Replicas A, B and C (subprocesses) serve the retail agent on a scripted
model that takes ``model_delay`` seconds per call (C is slower, so that
its turns are still running when it is killed). They share the store
(sessions, events, keys), Redis (events fan out, breakers) and the shop
file the agent's tools write to. The tests run in order on one cluster:

- sessions made and driven on different replicas all complete;
- a client streaming a session's events from A sees what an approval
  decided on B does, live (text deltas only travel through Redis);
- C is killed (SIGKILL) in the middle of six turns; A and B's recovery
  sweep resumes every one of them once its lease has expired, and nothing
  is recorded or done twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from examples.retail.generate import DEMO, HELP_ARTICLES, generate
from examples.retail.shop import Shop
from redis import asyncio as aioredis

from tests.server.conftest import Spawned, fresh_pg_database, make_key, spawn, wait_for
from tests.services import redis_url, require_redis

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
]

WHO = f"I'm {DEMO['first_name']} {DEMO['last_name']}, zip {DEMO['zip']}."
STATUS_ORDER = DEMO["delivered_order"]  # only ever looked up: its answer never changes
#: pending orders of the demo customer that the kill test cancels (copies of #W1024001)
EXTRA_ORDERS = ("#W1024901", "#W1024902", "#W1024903")
FAST, SLOW = 0.4, 2.0  # seconds per model call: A and B, and C


@dataclass
class Cluster:
    a: Spawned
    b: Spawned
    c: Spawned
    user: str  # API keys
    approver: str
    shop: Path

    @property
    def replicas(self) -> tuple[Spawned, Spawned, Spawned]:
        return (self.a, self.b, self.c)


def prepare_shop(path: Path) -> None:
    """The demo shop, plus EXTRA_ORDERS: more pending orders of the demo customer."""
    data = generate()
    base = data["orders"][DEMO["pending_order"]]
    for oid in EXTRA_ORDERS:
        order = copy.deepcopy(base)
        order["order_id"] = oid
        data["orders"][oid] = order
        data["users"][DEMO["user_id"]]["orders"].append(oid)
    with Shop.open(path) as shop:
        shop.load_json(data)
        shop.load_help_articles(HELP_ARTICLES)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    require_redis()
    tmp = tmp_path_factory.mktemp("replicas")
    shop = tmp / "shop.sqlite"
    prepare_shop(shop)
    async with fresh_pg_database() as db_url:
        procs: list[Spawned] = []
        try:
            # started together on an empty database: they migrate it at once (one waits)
            for delay in (FAST, FAST, SLOW):
                procs.append(
                    spawn(tmp, db_url=db_url, shop=shop, redis_url=redis_url(), model_delay=delay)
                )
            await asyncio.gather(*(asyncio.to_thread(p.wait_ready) for p in procs))
            user = await make_key(db_url, user="u1", roles=frozenset({"user"}))
            approver = await make_key(db_url, user="boss", roles=frozenset({"approver"}))
            a, b, c = procs
            yield Cluster(a, b, c, user, approver, shop)
        finally:
            for p in procs:
                p.stop()


@contextlib.asynccontextmanager
async def client(replica: Spawned, key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=replica.url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=httpx.Timeout(90.0, connect=10.0),
    ) as c:
        yield c


async def create_session(c: httpx.AsyncClient) -> str:
    r = await c.post("/v1/sessions", json={"agent": "retail"})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def send(c: httpx.AsyncClient, sid: str, message: str) -> dict[str, Any]:
    r = await c.post(f"/v1/sessions/{sid}/messages", json={"message": message})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def stored_events(c: httpx.AsyncClient, sid: str) -> list[dict[str, Any]]:
    """Every stored event of the session, in order (all pages)."""
    out: list[dict[str, Any]] = []
    while True:
        after = out[-1]["seq"] if out else 0
        r = await c.get(f"/v1/sessions/{sid}/events", params={"after": after, "limit": 1000})
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        if not items:
            return out
        out += items


def check_log(sid: str, events: list[dict[str, Any]]) -> None:
    """The invariants of one session's stored log."""
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(events) + 1)), f"{sid}: seqs {seqs}"
    types = Counter(e["type"] for e in events)
    assert types["turn.completed"] == types["message.user"], f"{sid}: {dict(types)}"
    started = Counter(e["data"]["call_id"] for e in events if e["type"] == "tool.started")
    assert all(n == 1 for n in started.values()), f"{sid}: tool calls started twice: {started}"
    finished = Counter(e["data"]["call_id"] for e in events if e["type"] == "tool.finished")
    assert all(n == 1 for n in finished.values()), f"{sid}: tool calls finished twice: {finished}"


def refunds(shop: Path, oid: str) -> tuple[str, int]:
    """The order's status and how many refunds it records."""
    with Shop.open(shop) as s:
        order = s.order(oid)
    assert order is not None
    n = sum(1 for p in order["payment_history"] if p["transaction_type"] == "refund")
    return order["status"], n


# --- SSE, read by hand -----------------------------------------------------------------


@dataclass
class Frame:
    event: str
    data: Any
    id: int | None = None


@dataclass
class Stream:
    frames: list[Frame] = field(default_factory=list)
    status: int | None = None

    def stored(self) -> list[Frame]:
        return [f for f in self.frames if f.id is not None]


async def read_sse(c: httpx.AsyncClient, path: str, params: dict[str, Any], into: Stream) -> None:
    """Read the text/event-stream at ``path`` into ``into`` until it ends (or is cancelled)."""
    timeout = httpx.Timeout(10.0, read=None)
    async with c.stream("GET", path, params=params, timeout=timeout) as r:
        into.status = r.status_code
        assert r.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        data: list[str] = []
        async for line in r.aiter_lines():
            if not line:
                if data:
                    seq = fields.get("id")
                    event = fields.get("event", "message")
                    body = json.loads("\n".join(data))
                    into.frames.append(Frame(event, body, None if seq is None else int(seq)))
                fields, data = {}, []
                continue
            if line.startswith(":"):
                continue  # a keep-alive comment
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            else:
                fields[name] = value


async def redis_subscribers(sid: str) -> int:
    """How many replicas listen to the session's events in Redis (RedisBus's channel)."""
    r = aioredis.Redis.from_url(redis_url())
    try:
        ((_, n),) = await r.pubsub_numsub(f"tether:events:{sid}")
        return int(n)
    finally:
        await r.aclose()


# --- the tests ------------------------------------------------------------------------


async def test_sessions_spread_across_replicas_all_complete(cluster: Cluster) -> None:
    reps = cluster.replicas
    async with contextlib.AsyncExitStack() as stack:
        users = [await stack.enter_async_context(client(r, cluster.user)) for r in reps]
        # made on replica i % 3, its turn run on the next one, read back on the third
        sids = [await create_session(users[i % 3]) for i in range(6)]
        question = f"{WHO} What's the status of my order {STATUS_ORDER}?"
        turns = await asyncio.gather(
            *(send(users[(i + 1) % 3], sid, question) for i, sid in enumerate(sids))
        )
        for sid, turn in zip(sids, turns, strict=True):
            assert turn["session_id"] == sid
            assert turn["status"] == "idle", turn
            assert turn["output"] == f"Order {STATUS_ORDER} is delivered.", turn
            assert [c["name"] for c in turn["tool_calls"]] == ["check_order"]
        for i, sid in enumerate(sids):
            reader = users[(i + 2) % 3]
            r = await reader.get(f"/v1/sessions/{sid}")
            assert r.status_code == 200, r.text
            session = r.json()
            assert session["status"] == "idle"
            assert session["user"] == "u1"
            assert session["messages"][0]["role"] == "user"
            assert session["messages"][-1]["text"] == f"Order {STATUS_ORDER} is delivered."
            events = await stored_events(reader, sid)
            check_log(sid, events)
            assert session["last_seq"] == len(events)
        listed = (await users[0].get("/v1/sessions", params={"limit": 200})).json()["items"]
        assert set(sids) <= {s["id"] for s in listed}


async def test_an_approval_on_b_streams_live_to_a_client_on_a(cluster: Cluster) -> None:
    pending = DEMO["pending_order"]
    async with (
        client(cluster.a, cluster.user) as user_a,
        client(cluster.b, cluster.approver) as boss_b,
    ):
        sid = await create_session(user_a)
        paused = await send(user_a, sid, f"{WHO} Please cancel my order {pending}.")
        assert paused["status"] == "awaiting_approval", paused
        approval = paused["approval"]
        assert approval["tool"] == "cancel_order"
        assert approval["arguments"]["order_id"] == pending
        assert refunds(cluster.shop, pending) == ("pending", 0)

        # follow from the last event before the pause: the first frame shows it is live
        after = paused["last_seq"] - 1
        stream = Stream()
        reader = asyncio.create_task(
            read_sse(
                user_a,
                f"/v1/sessions/{sid}/events/stream",
                {"after": after, "until": "never"},
                stream,
            )
        )
        try:
            await wait_for(lambda: stream.frames or reader.done(), timeout=30)
            assert not reader.done(), reader.exception() or stream.status
            # A listens in Redis before B acts (pub/sub drops what comes earlier)
            await wait_for(lambda: redis_subscribers(sid), timeout=30)

            r = await boss_b.post(
                f"/v1/approvals/{approval['id']}/decision",
                json={"approve": True, "reason": "customer asked"},
            )
            assert r.status_code == 200, r.text
            turn = r.json()
            assert turn["status"] == "idle", turn
            assert turn["output"].startswith(f"Order {pending} is cancelled"), turn

            def done() -> bool:
                return reader.done() or any(f.event == "turn.completed" for f in stream.frames)

            await wait_for(done, timeout=60)
            assert not reader.done(), f"the stream ended early: {reader}"
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

        assert stream.status == 200
        ids = [f.id for f in stream.stored()]
        assert ids == list(range(after + 1, after + 1 + len(ids))), ids
        kinds = [f.event for f in stream.stored()]
        assert "approval.decided" in kinds
        decided = next(f for f in stream.stored() if f.event == "approval.decided")
        assert decided.data["data"]["approved"] is True
        tools = [(f.event, f.data["data"]["name"]) for f in stream.stored() if "tool." in f.event]
        assert tools == [("tool.started", "cancel_order"), ("tool.finished", "cancel_order")]
        assert kinds[-1] == "turn.completed"
        # text deltas are never stored: these came from B through Redis
        deltas = [f for f in stream.frames if f.event == "model.delta"]
        assert deltas, [f.event for f in stream.frames]
        assert all(f.id is None and f.data["seq"] == 0 for f in deltas)
        assert "".join(f.data["data"]["text"] for f in deltas) == turn["output"]

        # what A streamed is what the store holds
        events = await stored_events(user_a, sid)
        check_log(sid, events)
        assert [(e["seq"], e["type"]) for e in events if e["seq"] > after] == [
            (f.id, f.event) for f in stream.stored()
        ]
        assert refunds(cluster.shop, pending) == ("cancelled", 1)


async def test_sessions_of_a_killed_replica_complete_on_the_others(cluster: Cluster) -> None:
    a, b, c = cluster.replicas
    live_pids = {str(a.proc.pid), str(b.proc.pid)}
    async with (
        client(a, cluster.user) as user_a,
        client(c, cluster.user) as user_c,
        client(c, cluster.approver) as boss_c,
    ):
        cancels = [await create_session(user_c) for _ in EXTRA_ORDERS]
        lookups = [await create_session(user_c) for _ in range(3)]
        paused = await asyncio.gather(
            *(
                send(user_c, sid, f"{WHO} Please cancel my order {oid}.")
                for sid, oid in zip(cancels, EXTRA_ORDERS, strict=True)
            )
        )
        assert [p["status"] for p in paused] == ["awaiting_approval"] * 3, paused

        async def past_their_tool(sids: list[str], began: str) -> bool:
            # each turn has run its tool: it is in its last model call (SLOW seconds on C)
            for sid in sids:
                kinds = [e["type"] for e in await stored_events(user_a, sid)]
                if began not in kinds:
                    return False
                tail = kinds[len(kinds) - kinds[::-1].index(began) :]
                if "tool.finished" not in tail and "turn.completed" not in tail:
                    return False
            return True

        # six turns on C: three order look-ups (two model calls each), then, once those
        # are in their second call, three approved cancellations (one call after the tool)
        question = f"{WHO} What's the status of my order {STATUS_ORDER}?"
        inflight = [
            asyncio.create_task(
                user_c.post(f"/v1/sessions/{sid}/messages", json={"message": question})
            )
            for sid in lookups
        ]
        await wait_for(lambda: past_their_tool(lookups, "message.user"), timeout=60, interval=0.05)
        inflight += [
            asyncio.create_task(
                boss_c.post(f"/v1/approvals/{p['approval']['id']}/decision", json={"approve": True})
            )
            for p in paused
        ]
        await wait_for(
            lambda: past_their_tool(cancels, "approval.decided"), timeout=60, interval=0.05
        )
        c.kill()  # SIGKILL: no shutdown, no lease given back
        for answer in await asyncio.gather(*inflight, return_exceptions=True):
            if not isinstance(answer, httpx.TransportError):  # that turn ended before the kill
                assert isinstance(answer, httpx.Response), answer
                assert answer.status_code == 200, answer.text

        at_kill = {
            sid: (await user_a.get(f"/v1/sessions/{sid}")).json() for sid in (*cancels, *lookups)
        }
        running = {sid for sid, s in at_kill.items() if s["status"] == "running"}
        assert running, {sid: s["status"] for sid, s in at_kill.items()}

        async def all_idle() -> bool:
            for sid in (*cancels, *lookups):
                r = await user_a.get(f"/v1/sessions/{sid}")
                if r.json()["status"] != "idle":
                    return False
            return True

        try:
            await wait_for(all_idle, timeout=60, interval=0.5)
        except AssertionError:
            raise AssertionError(
                f"not every session recovered:\nA:\n{a.output()[-3000:]}\nB:\n{b.output()[-3000:]}"
            ) from None

        for sid in (*cancels, *lookups):
            events = await stored_events(user_a, sid)
            check_log(sid, events)
            resumed = [e for e in events if e["type"] == "session.resumed"]
            if sid in running:
                # resumed once, by A or B (a lease owner is host:pid:...)
                assert len(resumed) == 1, resumed
                assert resumed[0]["seq"] > at_kill[sid]["last_seq"]
                assert resumed[0]["data"]["owner"].split(":")[1] in live_pids, resumed
            assert events[-1]["type"] == "turn.completed"
        for sid, oid in zip(cancels, EXTRA_ORDERS, strict=True):
            session = (await user_a.get(f"/v1/sessions/{sid}")).json()
            assert session["messages"][-1]["text"].startswith(f"Order {oid} is cancelled"), sid
            assert refunds(cluster.shop, oid) == ("cancelled", 1)
        for sid in lookups:
            session = (await user_a.get(f"/v1/sessions/{sid}")).json()
            assert session["messages"][-1]["text"] == f"Order {STATUS_ORDER} is delivered."
