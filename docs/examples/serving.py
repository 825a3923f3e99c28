"""Serving: an agent behind `tether serve`'s HTTP API, driven with `tether.client`.

Run it from the repository root::

    .venv/bin/python docs/examples/serving.py

The example starts the server in this process (uvicorn on a free loopback
port, the store a SQLite file in a temporary folder), the way `tether serve`
runs it, with a scripted model so every run prints the same lines. Then, as
two people with their own API keys:

1. Ava streams a turn: the model asks to refund an order, an irreversible
   call, so the turn ends waiting for an approver (``awaiting_approval``).
2. Bo, who has no business with Ava's session, gets "not found".
3. Ops, an approver of the same tenant, lists what waits, approves it
   (twice: a double click), and the refund runs once.
4. Ava reads the session's stored events: every one, in order.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import threading
from pathlib import Path

import uvicorn

import tether
from tether import Agent, ApprovalPolicy, HealthCheck, ModelRequest, ToolCall, ToolContext
from tether.client import AsyncClient, ServerError, StreamKind
from tether.store import KeyStore, open_store
from tether.surfaces.server import ServerConfig, create_app
from tether.testing import FunctionModel

REFUNDS: list[str] = []


@tether.tool(writes=True, irreversible=True, summary="refund order {order_id}")
def refund(ctx: ToolContext, order_id: str) -> str:
    """Refund an order to its original payment method.

    Args:
        order_id: The order id, like '#W1'.
    """
    REFUNDS.append(order_id)
    return f"refunded {order_id}"


def model(request: ModelRequest) -> str | ToolCall:
    last = request.messages[-1]
    if last.results:
        return f"Done: {last.results[0].content}."
    if "OK" in last.text:
        return "OK"
    return ToolCall(id="c1", name="refund", arguments={"order_id": "#W1"})


agent = Agent(
    name="support",
    instructions="Help customers with refunds.",
    models=(FunctionModel(model, name="scripted", chunk=5),),
    tools=(refund,),
    approval=ApprovalPolicy(mode="operator"),
    health=HealthCheck(),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def keys(db: str) -> dict[str, str]:
    store = await open_store(db)
    made = KeyStore(store)
    out = {}
    for user, roles in (("ava", {"user"}), ("bo", {"user"}), ("ops", {"approver"})):
        _key, token = await made.create(user=user, tenant="acme", roles=roles)
        out[user] = token
    await store.aclose()
    return out


async def main(url: str, token: dict[str, str]) -> None:
    async with (
        AsyncClient(url, api_key=token["ava"]) as ava,
        AsyncClient(url, api_key=token["bo"]) as bo,
        AsyncClient(url, api_key=token["ops"]) as ops,
    ):
        session = await ava.create_session("support")
        text = ""
        async for item in ava.stream(session.id, "Please refund order #W1."):
            if item.kind == StreamKind.DELTA:
                text += item.event.data["text"]
            elif item.kind == StreamKind.EVENT and item.event.type == "approval.requested":
                print(f"ava: approval requested for {item.event.data['tool']}")
            elif item.kind == StreamKind.TURN:
                print(f"ava: turn ended {item.turn.status}: {item.turn.output}")
        try:
            await bo.get_session(session.id)
        except ServerError as exc:
            print(f"bo: {exc.status} {exc.problem.detail}")
        (pending,) = (await ops.approvals()).items
        print(f"ops: {pending.summary} (arguments {pending.arguments})")
        first = await ops.decide(pending.id, approve=True, reason="checked", idempotency_key="k1")
        again = await ops.decide(pending.id, approve=True, reason="checked", idempotency_key="k1")
        print(f"ops: {first.status}: {first.output} / the retry: {again.output}")
        print(f"refunds run: {REFUNDS}")
        events = (await ava.events(session.id)).items
        print(f"ava: {len(events)} stored events, seq {events[0].seq}..{events[-1].seq}")
        print(f"ready: {(await ava.ready()).status}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite+aiosqlite:///{Path(tmp) / 'tether.sqlite'}"
        port = free_port()
        token = asyncio.run(keys(db))
        app = create_app([agent], ServerConfig(database_url=db, port=port))
        server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="error"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            threading.Event().wait(0.02)
        try:
            asyncio.run(main(f"http://127.0.0.1:{port}", token))
        finally:
            server.should_exit = True
            thread.join(10)
