"""The AG-UI endpoint through a real uvicorn server, read with the ag-ui-protocol package's models.

The retail flow as a front end would run it: a run whose message asks to
cancel an order ends with the protocol's interrupt outcome carrying the
approval; the next run resumes that interrupt with the decision, and the
order is cancelled exactly once. Every frame must validate as the package's
``Event`` union, so an off-the-shelf AG-UI client can read it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from ag_ui.core import EventType, RunAgentInput
from ag_ui.core.events import Event as AguiEvent
from examples.retail.agent import open_shop
from pydantic import TypeAdapter

from tests.server.agents import retail
from tests.server.conftest import inprocess, make_key

_EVENTS: TypeAdapter[Any] = TypeAdapter(AguiEvent)


def _run_input(thread: str, run: str, text: str = "", resume: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "threadId": thread,
        "runId": run,
        "state": {},
        "messages": [{"id": f"{run}-m", "role": "user", "content": text or "hi"}],
        "tools": [],
        "context": [],
        "forwardedProps": {},
    }
    if resume is not None:
        body["resume"] = resume
    RunAgentInput.model_validate(body)  # what we send is the protocol's own input
    return body


def _events(text: str) -> list[Any]:
    out = []
    for block in text.split("\n\n"):
        data = [line[6:] for line in block.splitlines() if line.startswith("data: ")]
        if data:
            out.append(_EVENTS.validate_python(json.loads("\n".join(data))))
    return out


def _order_status(path: Path, order_id: str) -> str:
    shop = open_shop(path)  # fills a new file with the demo shop, as the agent would
    try:
        order = shop.order(order_id)
        assert order is not None
        return str(order["status"])
    finally:
        shop.close()


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TETHER_RETAIL_DB", str(tmp_path / "shop.sqlite"))
    with inprocess([retail], tmp_path, open_local=False) as srv:
        yield srv


async def test_retail_cancel_over_agui_pauses_with_an_interrupt_and_resumes_with_the_decision(
    served: Any, tmp_path: Path
) -> None:
    user = await make_key(served.db_url, user="ava", roles={"user"})
    approver = await make_key(served.db_url, user="ops", roles={"approver"})
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as c:
        asked = "I'm Ava Moreno, zip 94107. Please cancel my order #W1024001"
        r = await c.post(
            "/v1/agents/retail/agui",
            json=_run_input("thread-ava-1", "run-1", asked),
            headers={"Authorization": f"Bearer {user}", "Accept": "text/event-stream"},
        )
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        first = _events(r.text)
        kinds = [e.type for e in first]
        assert kinds[0] == EventType.RUN_STARTED
        assert EventType.TOOL_CALL_START in kinds
        assert kinds[-1] == EventType.RUN_FINISHED
        outcome = first[-1].outcome
        assert outcome.type == "interrupt"
        (interrupt,) = outcome.interrupts
        info = interrupt.metadata["tether"]
        assert info["tool"] == "cancel_order"
        assert info["arguments"]["order_id"] == "#W1024001"
        assert info["arguments"]["zip"] == "94107"
        assert _order_status(tmp_path / "shop.sqlite", "#W1024001") == "pending"

        resume = [
            {"interruptId": interrupt.id, "status": "resolved", "payload": {"approved": True}}
        ]
        # the user may not decide (the agent's approvals are for operators): refused, nothing runs
        denied = await c.post(
            "/v1/agents/retail/agui",
            json=_run_input("thread-ava-1", "run-2", resume=resume),
            headers={"Authorization": f"Bearer {user}"},
        )
        assert denied.status_code == 403, denied.text
        assert _order_status(tmp_path / "shop.sqlite", "#W1024001") == "pending"

        r = await c.post(
            "/v1/agents/retail/agui",
            json=_run_input("thread-ava-1", "run-3", resume=resume),
            headers={"Authorization": f"Bearer {approver}", "Idempotency-Key": "agui-k1"},
        )
        assert r.status_code == 200, r.text
        second = _events(r.text)
        kinds = [e.type for e in second]
        assert EventType.TOOL_CALL_RESULT in kinds
        assert kinds[-1] == EventType.RUN_FINISHED
        assert second[-1].outcome.type == "success"
        answer = "".join(e.delta for e in second if e.type == EventType.TEXT_MESSAGE_CONTENT)
        assert "cancelled" in answer
        assert _order_status(tmp_path / "shop.sqlite", "#W1024001") == "cancelled"

        # the same request again (a retry): the first run's outcome, nothing runs twice
        again = await c.post(
            "/v1/agents/retail/agui",
            json=_run_input("thread-ava-1", "run-3", resume=resume),
            headers={"Authorization": f"Bearer {approver}", "Idempotency-Key": "agui-k1"},
        )
        assert again.status_code == 200
        replay = _events(again.text)
        assert replay[-1].type == EventType.RUN_FINISHED
        assert replay[-1].outcome.type == "success"
        events = (
            await c.get(
                "/v1/sessions/thread-ava-1/events", headers={"Authorization": f"Bearer {user}"}
            )
        ).json()["items"]
        started = [
            e for e in events if e["type"] == "tool.started" and e["data"]["name"] == "cancel_order"
        ]
        assert len(started) == 1


async def test_agui_rejects_a_resume_for_an_interrupt_that_is_not_open(served: Any) -> None:
    user = await make_key(served.db_url, user="bo", roles={"user", "approver"})
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as c:
        h = {"Authorization": f"Bearer {user}"}
        r = await c.post(
            "/v1/agents/retail/agui", json=_run_input("t-bo", "r1", "hello"), headers=h
        )
        assert _events(r.text)[-1].outcome.type == "success"
        stale = [
            {"interruptId": "approval:t-bo.9", "status": "resolved", "payload": {"approved": True}}
        ]
        r = await c.post(
            "/v1/agents/retail/agui", json=_run_input("t-bo", "r2", resume=stale), headers=h
        )
        assert r.status_code == 409
        assert r.json()["type"].endswith("/invalid-state")
        # another user cannot run in this thread: 404, as for a thread that does not exist
        other = await make_key(served.db_url, user="cy", roles={"user"})
        r = await c.post(
            "/v1/agents/retail/agui",
            json=_run_input("t-bo", "r3", "hello"),
            headers={"Authorization": f"Bearer {other}"},
        )
        assert r.status_code == 404


async def test_agui_input_that_is_not_the_protocol_is_a_problem_document(served: Any) -> None:
    user = await make_key(served.db_url, user="di", roles={"user"})
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as c:
        r = await c.post(
            "/v1/agents/retail/agui",
            json={"threadId": "x"},
            headers={"Authorization": f"Bearer {user}"},
        )
        assert r.status_code == 422
        body = r.json()
        assert set(body) >= {"type", "title", "status", "detail"}
        assert "Traceback" not in r.text
