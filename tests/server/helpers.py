"""What the server's HTTP tests share: SSE parsing over raw httpx, problem checks, the shop.

The tests speak HTTP with plain ``httpx`` (not ``tether.client``), so what
they check is the wire: frame ids, event names, JSON bodies, headers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from examples.retail.agent import build_agent, open_shop

from tests.server.agents import reply
from tether import HealthCheck
from tether.spec.agent import Agent
from tether.spec.model import Model, ModelRequest, ModelStreamEvent
from tether.testing import FunctionModel

__all__ = [
    "CANCEL",
    "ORDER",
    "SSE",
    "STATUS",
    "Frame",
    "Gate",
    "answering",
    "assert_problem",
    "bearer",
    "frames",
    "order_row",
    "post_sse",
    "read_frames",
    "refunds",
    "retail_agent",
    "sqlite_url",
    "stored",
    "turn_calls",
]

ORDER = "#W1024001"
CANCEL = f"I'm Ava Moreno, zip 94107. Please cancel my order {ORDER}"
STATUS = f"I'm Ava Moreno, zip 94107. What is the status of order {ORDER}?"


@dataclass(frozen=True, slots=True)
class Frame:
    """One SSE frame: ``id`` (``None`` when the frame has no id line), ``event``, JSON ``data``."""

    id: int | None
    event: str
    data: Any


def _parse(block: str) -> Frame | None:
    fid: int | None = None
    event = "message"
    data: list[str] = []
    for line in block.split("\n"):
        if not line or line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            fid = int(value)
        elif name == "event":
            event = value
        elif name == "data":
            data.append(value)
    if not data and fid is None and event == "message":
        return None  # a comment (keep-alive) only
    return Frame(fid, event, json.loads("\n".join(data)) if data else None)


async def frames(response: httpx.Response) -> AsyncIterator[Frame]:
    """The frames of a streaming response, as they arrive."""
    assert response.status_code == 200, response.text if response.is_closed else response
    assert response.headers["content-type"].startswith("text/event-stream")
    buf = ""
    async for chunk in response.aiter_text():
        buf += chunk.replace("\r\n", "\n")
        while "\n\n" in buf:
            block, buf = buf.split("\n\n", 1)
            frame = _parse(block)
            if frame is not None:
                yield frame


async def read_frames(response: httpx.Response) -> list[Frame]:
    """Every frame of a streaming response, to its end."""
    return [f async for f in frames(response)]


def bearer(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


SSE = {"Accept": "text/event-stream"}


async def post_sse(
    client: httpx.AsyncClient, path: str, body: Any, headers: dict[str, str] | None = None
) -> list[Frame]:
    """POST ``body`` asking for a stream; every frame to the stream's end."""
    async with client.stream("POST", path, json=body, headers={**(headers or {}), **SSE}) as r:
        if r.status_code != 200:
            await r.aread()
            raise AssertionError(f"{path}: {r.status_code} {r.text}")
        return await read_frames(r)


def sqlite_url(tmp_path: Path) -> str:
    """The database :func:`~tests.server.conftest.inprocess` uses by default in ``tmp_path``."""
    return f"sqlite+aiosqlite:///{tmp_path / 'server.sqlite'}"


async def stored(
    client: httpx.AsyncClient, sid: str, headers: dict[str, str]
) -> list[dict[str, Any]]:
    """Every stored event of session ``sid`` (``GET /events``, all pages)."""
    items: list[dict[str, Any]] = []
    after = 0
    while True:
        r = await client.get(
            f"/v1/sessions/{sid}/events", params={"after": after, "limit": 1000}, headers=headers
        )
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        if not page["items"]:
            return items
        after = page["next_after"]


TRACEBACK_MARKS = ("Traceback", 'File "', "site-packages", '.py", line')


def assert_problem(r: httpx.Response, status: int, slug: str | None = None) -> dict[str, Any]:
    """``r`` is a problem document with ``status`` (and the type ``slug``), naming no internals."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert {"type", "title", "status", "detail"} <= body.keys(), body
    assert body["status"] == status
    assert body["type"].startswith("https://tether.dev/problems/")
    if slug is not None:
        assert body["type"] == f"https://tether.dev/problems/{slug}", body
    assert isinstance(body["detail"], str)
    assert body["detail"]
    for mark in TRACEBACK_MARKS:
        assert mark not in r.text, r.text
    return dict(body)


class Gate:
    """Wraps a model so that the calls ``when`` picks wait until the test calls :meth:`open`.

    Thread-safe (``tether.testing.GatedModel``'s asyncio event is not): the
    in-process server runs its own event loop in another thread.
    """

    def __init__(self, when: Callable[[ModelRequest], bool] = lambda _r: True) -> None:
        self.when = when
        self.inner: Model | None = None
        self.entered = threading.Event()
        self.opened = threading.Event()

    @property
    def name(self) -> str:
        assert self.inner is not None
        return self.inner.name

    def open(self) -> None:
        self.opened.set()

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        assert self.inner is not None
        if self.when(request):
            self.entered.set()
            while not self.opened.is_set():  # noqa: ASYNC110 - reason: a threading.Event, set from the test's thread
                await asyncio.sleep(0.01)
        async for event in self.inner.stream(request):
            yield event


def turn_calls(model: FunctionModel) -> list[ModelRequest]:
    """The model's calls made by turns (not the readiness probe's health question)."""
    probe = HealthCheck().message
    return [r for r in model.requests if not (r.messages and r.messages[0].text == probe)]


def answering(request: ModelRequest) -> bool:
    """The model call after a tool answered (the turn's last)."""
    return bool(request.messages and request.messages[-1].results)


def retail_agent(
    shop: Path,
    *,
    delay: float = 0.0,
    fn: Callable[[ModelRequest], Any] = reply,
    gate: Gate | None = None,
) -> tuple[Agent, FunctionModel]:
    """The served retail agent (operator approvals) on the shop file ``shop``, and its model.

    The shop is filled now (the agent would on its first tool call), so a test
    can read it before anything ran.
    """
    open_shop(shop).close()
    model = FunctionModel(fn, name="local-scripted", delay=delay, chunk=8)
    chain: Model = model
    if gate is not None:
        gate.inner = model
        chain = gate
    base = build_agent(shop_path=shop, models=[chain])
    agent = dataclasses.replace(
        base,
        approval=dataclasses.replace(base.approval, mode="operator"),
        health=HealthCheck(interval=1.0),
    )
    return agent, model


def order_row(shop: Path, order_id: str = ORDER) -> dict[str, Any]:
    """The order's row in the shop file (read with plain sqlite3)."""
    conn = sqlite3.connect(f"file:{shop}?mode=ro", uri=True)
    try:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM orders WHERE order_id = ?", (order_id,)).fetchone()
        assert row is not None, f"no order {order_id} in {shop}"
        return dict(row)
    finally:
        conn.close()


def refunds(shop: Path, order_id: str = ORDER) -> int:
    """How many refunds the order's payment history holds (a cancel adds one per payment)."""
    conn = sqlite3.connect(f"file:{shop}?mode=ro", uri=True)
    try:
        (n,) = conn.execute(
            "SELECT count(*) FROM payment_history WHERE order_id = ? AND transaction_type = ?",
            (order_id, "refund"),
        ).fetchone()
        return int(n)
    finally:
        conn.close()
