"""The Session API: who acts on a session, with which scopes and deps, and what a failure leaves.

- A session's scopes are fixed by whoever created it: a decider with every
  scope, a resume after a crash, a later caller asking for more, none of
  them widens them; a later call may narrow them for itself.
- Who may decide an approval (operator and user mode).
- ``stream`` is ``send`` as events; ``context`` reaches the model.
- Per-session deps: built per session, closed at shutdown and on eviction.
- Set-up errors store nothing; an internal error never leaves a session
  ``running`` with its lease held.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.runtime.session_shop import (
    OPS,
    WAIT,
    Shop,
    finished,
    offered,
    shop_agent,
    sqlite_url,
)
from tether import Agent
from tether.exceptions import AccessDenied, ApprovalError, ConfigError
from tether.runtime import Runtime, SessionStatus
from tether.runtime.ports import SessionStore
from tether.spec.events import Event, EventType
from tether.spec.model import ModelRequest
from tether.spec.principal import Principal
from tether.store import open_store
from tether.testing import FunctionModel, ScriptedModel, ScriptedResponse, call

# --- a. an approver's scopes do not reach the turn -----------------------------------------------


async def test_a_decider_with_every_scope_does_not_widen_the_session() -> None:
    shop = Shop()
    shop.release.set()
    model = ScriptedModel(
        [call("cancel_order", order_id="#W1"), call("refund", order_id="#W1"), "done"]
    )
    agent = shop_agent(model, shop)
    async with Runtime() as rt:
        first = await rt.session(
            agent, principal=Principal(user="u1", scopes=frozenset({"orders"}))
        ).send("cancel and refund #W1")
        assert first.approval is not None
        assert offered(model.requests[0]) == ["order_status", "cancel_order"]
        done = await rt.session(agent, first.session_id).decide(first.approval.id, True, by=OPS)
        events = await rt.store.events(first.session_id)
    assert done.status == SessionStatus.IDLE
    assert done.output == "done"
    assert shop.cancelled == ["#W1"]
    assert shop.refunds == []
    # every request of the continued turn still hides the refund tool
    assert len(model.requests) == 3
    for request in model.requests[1:]:
        assert offered(request) == ["order_status", "cancel_order"]
    (refused,) = finished(events, "refund")
    assert refused["is_error"] is True
    assert "may not use refund" in refused["content"]
    # the refund was refused outright, not sent for approval
    assert [e.type for e in events].count(EventType.APPROVAL_REQUESTED) == 1


async def test_a_resume_after_a_crash_keeps_the_stored_scopes(tmp_path: Path) -> None:
    shop = Shop()
    model = ScriptedModel(
        [call("cancel_order", order_id="#W1"), call("refund", order_id="#W1"), "done"]
    )
    agent = shop_agent(model, shop)
    rt = Runtime(store=await open_store(sqlite_url(tmp_path)))
    first = await rt.session(
        agent, principal=Principal(user="u1", scopes=frozenset({"orders"}))
    ).send("cancel and refund #W1")
    sid = first.session_id
    assert first.approval is not None
    deciding = asyncio.create_task(rt.session(agent, sid).decide(first.approval.id, True, by=OPS))
    await asyncio.wait_for(shop.entered.wait(), WAIT)
    # the process shuts down while the cancel is running: the turn is cut off mid-tool
    await rt.aclose(timeout=0.05)
    with pytest.raises(asyncio.CancelledError):
        await deciding
    store = await open_store(sqlite_url(tmp_path))
    async with Runtime(store=store) as fresh:
        row = await store.get(sid)
        assert row.status == SessionStatus.RUNNING
        assert row.lease_owner is None
        # no principal given: the stored one ({"orders"}) applies, not "every tool"
        resumed = await fresh.session(agent, sid).resume()
        events = await store.events(sid)
    assert resumed.status == SessionStatus.IDLE
    assert shop.cancelled == ["#W1"]  # not run twice: its outcome is unknown
    assert shop.refunds == []
    assert len(model.requests) == 3
    for request in model.requests[1:]:
        assert "refund" not in offered(request)
    (refused,) = finished(events, "refund")
    assert "may not use refund" in refused["content"]
    (cancel,) = finished(events, "cancel_order")
    assert "outcome unknown" in cancel["content"]


# --- b. narrow, never widen; never another user --------------------------------------------------


async def test_a_later_call_may_narrow_for_itself_only() -> None:
    shop = Shop()
    model = ScriptedModel(["hello", call("refund", order_id="#W1"), "I cannot refund.", "hi"])
    agent = shop_agent(model, shop)
    async with Runtime() as rt:
        both = Principal(user="u1", scopes=frozenset({"orders", "refunds"}))
        sid = (await rt.session(agent, principal=both).send("hi")).session_id
        narrow = Principal(user="u1", scopes=frozenset({"orders"}))
        result = await rt.session(agent, sid, principal=narrow).send("refund #W1")
        again = await rt.session(agent, sid).send("and now?")
    assert offered(model.requests[0]) == ["order_status", "cancel_order", "refund"]
    assert offered(model.requests[1]) == ["order_status", "cancel_order"]
    assert offered(model.requests[2]) == ["order_status", "cancel_order"]
    (refused,) = finished(result.events, "refund")
    assert "may not use refund" in refused["content"]
    assert shop.refunds == []
    # the narrowing was for that call: the stored scopes apply again
    assert again.output == "hi"
    assert offered(model.requests[3]) == ["order_status", "cancel_order", "refund"]


@pytest.mark.parametrize(
    "wider",
    [
        Principal(user="u1", scopes=frozenset({"orders", "refunds", "admin"})),
        Principal(scopes=frozenset({"orders", "refunds"})),
        Principal(user="u1", scopes=None),
        Principal(user="u1", roles=frozenset({"approver"}), scopes=None),
    ],
    ids=["more_scopes", "scopes_only", "trusted", "approver_role"],
)
async def test_a_later_call_never_widens(wider: Principal) -> None:
    shop = Shop()
    model = ScriptedModel(["hello", call("refund", order_id="#W1"), "I cannot refund."])
    agent = shop_agent(model, shop)
    async with Runtime() as rt:
        handle = rt.session(agent, principal=Principal(user="u1", scopes=frozenset({"orders"})))
        sid = (await handle.send("hi")).session_id
        later = rt.session(agent, sid, principal=wider)
        result = await later.send("refund #W1")
        assert later.principal is not None
        assert later.principal.scopes == frozenset({"orders"})
        assert later.principal.roles == frozenset()
    assert offered(model.requests[1]) == ["order_status", "cancel_order"]
    assert shop.refunds == []
    (refused,) = finished(result.events, "refund")
    assert "may not use refund" in refused["content"]


@pytest.mark.parametrize(
    ("other", "match"),
    [
        (Principal(user="mallory"), "belongs to user 'u1'"),
        (Principal(user="u1", tenant="globex"), "belongs to tenant 'acme'"),
        (Principal(tenant="globex", scopes=frozenset({"orders"})), "belongs to tenant 'acme'"),
    ],
    ids=["other_user", "other_tenant", "tenant_only"],
)
async def test_another_user_or_tenant_is_refused_and_changes_nothing(
    store: SessionStore, other: Principal, match: str
) -> None:
    shop = Shop()
    model = ScriptedModel([call("cancel_order", order_id="#W1"), "Cancelled."])
    agent = shop_agent(model, shop)
    async with Runtime(store=store, close_store=False) as rt:
        owner = Principal(user="u1", tenant="acme", scopes=frozenset({"orders"}))
        first = await rt.session(agent, principal=owner).send("cancel #W1")
        sid = first.session_id
        assert first.approval is not None
        before = await store.events(sid)
        handle = rt.session(agent, sid, principal=other)
        with pytest.raises(AccessDenied, match=match):
            await handle.send("yes")
        with pytest.raises(AccessDenied, match=match):
            await handle.decide(first.approval.id, True, by=OPS)
        with pytest.raises(AccessDenied, match=match):
            async for _ev in handle.stream("yes"):
                pass
        row = await store.get(sid)
        assert row.status == SessionStatus.AWAITING_APPROVAL
        assert row.lease_owner is None
        assert len(await store.events(sid)) == len(before)
        assert shop.cancelled == []
        assert len(model.requests) == 1
        # and the rightful user still can
        shop.release.set()
        ok = await rt.session(agent, sid, principal=Principal(user="u1")).decide(
            first.approval.id, True, by="u1"
        )
    assert ok.status == SessionStatus.IDLE
    assert shop.cancelled == ["#W1"]


# --- c. who may decide ---------------------------------------------------------------------------


async def approval_waiting(rt: Runtime, agent: Agent, owner: Principal) -> tuple[str, str]:
    first = await rt.session(agent, principal=owner).send("cancel #W1")
    assert first.approval is not None
    return first.session_id, first.approval.id


async def assert_untouched(rt: Runtime, sid: str, count: int, shop: Shop) -> None:
    row = await rt.store.get(sid)
    assert row.status == SessionStatus.AWAITING_APPROVAL
    assert row.lease_owner is None
    assert row.event_count == count
    types = [e.type for e in await rt.store.events(sid)]
    assert EventType.APPROVAL_DECIDED not in types
    assert shop.cancelled == []


@pytest.mark.parametrize(
    "decider",
    [Principal(user="u1"), "u1", Principal(user="mallory"), Principal(user="u1", scopes=None)],
    ids=["own_user", "own_user_by_name", "other_user", "own_user_trusted"],
)
async def test_operator_mode_refuses_a_decider_without_the_role(
    store: SessionStore, decider: Principal | str
) -> None:
    shop = Shop()
    shop.release.set()
    model = ScriptedModel([call("cancel_order", order_id="#W1"), "Cancelled."])
    agent = shop_agent(model, shop, mode="operator")
    async with Runtime(store=store, close_store=False) as rt:
        sid, aid = await approval_waiting(rt, agent, Principal(user="u1"))
        count = (await store.get(sid)).event_count
        with pytest.raises(ApprovalError, match="needs the 'approver' role"):
            await rt.session(agent, sid).decide(aid, True, by=decider)
        await assert_untouched(rt, sid, count, shop)
        done = await rt.session(agent, sid).decide(
            aid, True, by=Principal(user="olga", roles=frozenset({"approver"}))
        )
    assert done.output == "Cancelled."
    assert shop.cancelled == ["#W1"]


@pytest.mark.parametrize(
    "decider",
    [Principal(user="u1"), "u1", OPS, Principal(user="u1", tenant="acme")],
    ids=["own_user", "own_user_by_name", "approver", "own_user_and_tenant"],
)
async def test_user_mode_accepts_the_sessions_user_and_an_approver(
    store: SessionStore, decider: Principal | str
) -> None:
    shop = Shop()
    shop.release.set()
    model = ScriptedModel([call("cancel_order", order_id="#W1"), "Cancelled."])
    agent = shop_agent(model, shop)
    async with Runtime(store=store, close_store=False) as rt:
        sid, aid = await approval_waiting(rt, agent, Principal(user="u1", tenant="acme"))
        done = await rt.session(agent, sid).decide(aid, True, by=decider)
    assert done.status == SessionStatus.IDLE
    assert shop.cancelled == ["#W1"]


@pytest.mark.parametrize(
    "decider",
    [
        Principal(user="mallory"),
        "mallory",
        Principal(user="mallory", scopes=frozenset({"orders"})),
        # the same user id in another organisation is another person
        Principal(user="u1", tenant="globex"),
    ],
    ids=["other_user", "other_user_by_name", "other_user_with_scopes", "same_id_other_tenant"],
)
async def test_user_mode_refuses_another_user(
    store: SessionStore, decider: Principal | str
) -> None:
    shop = Shop()
    shop.release.set()
    model = ScriptedModel([call("cancel_order", order_id="#W1"), "Cancelled."])
    agent = shop_agent(model, shop)
    async with Runtime(store=store, close_store=False) as rt:
        sid, aid = await approval_waiting(rt, agent, Principal(user="u1", tenant="acme"))
        count = (await store.get(sid)).event_count
        with pytest.raises(ApprovalError, match="cannot decide approval"):
            await rt.session(agent, sid).decide(aid, True, by=decider)
        await assert_untouched(rt, sid, count, shop)
        assert len(model.requests) == 1


# --- d. stream is send as events -----------------------------------------------------------------


def chatty(request: ModelRequest) -> ScriptedResponse:
    last = request.messages[-1]
    if last.role == "user":
        return call("order_status", _id="c1", order_id="#W1")
    return f"Order #W1 is {last.results[0].content}; glad to help."


async def test_stream_yields_what_send_would(store: SessionStore) -> None:
    shop = Shop()
    streamed_model = FunctionModel(chatty, chunk=4)
    sent_model = FunctionModel(chatty, chunk=4)
    owner = Principal(user="u1", scopes=frozenset({"orders"}))
    context = {"plan": "gold", "locale": "fr"}
    async with Runtime(store=store, close_store=False) as rt:
        handle = rt.session(shop_agent(streamed_model, shop), principal=owner)
        streamed = [ev async for ev in handle.stream("where is #W1?", context=context)]
        log: list[Event] = []
        result = await rt.session(shop_agent(sent_model, shop), principal=owner).send(
            "where is #W1?", context=context, on_event=log.append
        )
        stored = await store.events(handle.id)

    def shape(events: list[Event]) -> list[tuple[str, int, int]]:
        return [(e.type, e.step, e.seq) for e in events]

    assert shape(streamed) == shape(log) == shape(result.events)
    assert EventType.MODEL_DELTA in [e.type for e in streamed]
    assert EventType.CONTEXT_SET in [e.type for e in streamed]
    assert shape([e for e in streamed if e.stored]) == shape(stored)
    assert (await store.get(handle.id)).status == SessionStatus.IDLE
    # the context reached the model as a data block, not in the system prompt
    for model in (streamed_model, sent_model):
        first = model.requests[0].messages[0]
        assert "<session-data>" in first.text
        assert '"plan": "gold"' in first.text
        assert "gold" not in model.requests[0].system
    assert result.output == "Order #W1 is pending; glad to help."
    deltas = "".join(e.data["text"] for e in streamed if e.type == EventType.MODEL_DELTA)
    assert deltas == result.output


async def test_stream_raises_what_send_raises() -> None:
    shop = Shop()
    agent = shop_agent(FunctionModel(chatty), shop)
    async with Runtime() as rt:
        handle = rt.session(agent, principal=Principal(user="u1"))
        with pytest.raises(ConfigError, match="context cannot be stored"):
            async for _ev in handle.stream("hi", context={"when": object()}):
                pass
        assert await rt.store.list_sessions() == []


async def test_a_session_started_without_a_user_cannot_be_claimed_by_one(
    store: SessionStore,
) -> None:
    shop = Shop()
    model = ScriptedModel(["Hello.", "Hello again."])
    agent = shop_agent(model, shop, enabled=False)
    async with Runtime(store=store, close_store=False) as rt:
        first = await rt.session(agent).send("hi")
        count = (await store.get(first.session_id)).event_count
        claimed = rt.session(agent, first.session_id, principal=Principal(user="mallory"))
        with pytest.raises(AccessDenied, match=r"started with no user.*cannot claim it"):
            await claimed.send("hi again")
        assert (await store.get(first.session_id)).event_count == count  # nothing recorded
        again = await rt.session(agent, first.session_id).send("hi again")
    assert again.output == "Hello again."
