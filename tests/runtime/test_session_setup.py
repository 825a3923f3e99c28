"""The Session API: per-session dependencies, set-up errors that store nothing, internal
errors that leave a session failed (never running), and a new session's first send."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import tether
from tests.runtime.session_peer import USER, Ledger, payments_agent
from tests.runtime.session_shop import (
    WAIT,
    Shop,
    finished,
    shop_agent,
    sqlite_url,
)
from tether import Agent, ToolContext
from tether.exceptions import ConfigError, InvalidSessionState, SessionConflict
from tether.runtime import InMemoryStore, Runtime, SessionInfo, SessionStatus
from tether.runtime.ports import SessionStore
from tether.spec.approval import ApprovalPolicy
from tether.spec.model import ModelRequest
from tether.spec.principal import Principal
from tether.store import StoreUnavailable, open_store
from tether.testing import FunctionModel, ScriptedModel, ScriptedResponse, call

# --- e. per-session deps -------------------------------------------------------------------------


@dataclass
class TenantDeps:
    tenant: str | None
    serial: int
    plan: str | None = None
    closed: int = 0

    async def aclose(self) -> None:
        self.closed += 1


@tether.tool(reads=True)
def whoami(ctx: ToolContext) -> str:
    """Which deps this call got."""
    return f"{ctx.deps.tenant}:{ctx.deps.serial}:{ctx.deps.plan}"


def whoami_script(request: ModelRequest) -> ScriptedResponse:
    last = request.messages[-1]
    if last.role == "user":
        return call("whoami")
    return last.results[0].content


def deps_agent(factory: Any) -> Agent:
    return Agent(
        name="deps",
        instructions="Say who you are.",
        models=(FunctionModel(whoami_script),),
        tools=(whoami,),
        deps=factory,
        approval=ApprovalPolicy(enabled=False),
        clarify=False,
    )


class Factory:
    """A per-session deps factory that remembers what it made and what it was told."""

    def __init__(self) -> None:
        self.made: list[TenantDeps] = []
        self.infos: list[SessionInfo] = []
        self.serial = itertools.count(1)

    def __call__(self, s: SessionInfo) -> TenantDeps:
        self.infos.append(s)
        plan = s.context.get("plan")
        deps = TenantDeps(s.principal.tenant, next(self.serial), plan)
        self.made.append(deps)
        return deps


async def test_per_session_deps_are_the_sessions_own() -> None:
    factory = Factory()
    agent = deps_agent(factory)
    async with Runtime() as rt:
        acme = rt.session(agent, principal=Principal(user="a", tenant="acme"))
        globex = rt.session(agent, principal=Principal(user="g", tenant="globex"))
        a1 = await acme.send("who?")
        g1 = await globex.send("who?")
        a2 = await acme.send("who again?")
        assert [d.closed for d in factory.made] == [0, 0]
    assert (a1.output, g1.output) == ("acme:1:None", "globex:2:None")
    assert a2.output == a1.output  # the same object on the session's next turn
    assert len(factory.made) == 2
    assert {(i.session_id, i.agent) for i in factory.infos} == {
        (acme.id, "deps"),
        (globex.id, "deps"),
    }
    assert [d.closed for d in factory.made] == [1, 1]  # closed once, at aclose


async def test_per_session_deps_see_the_context_of_the_first_send() -> None:
    """``SessionInfo.context`` carries the session's context: the first send's included."""
    factory = Factory()
    async with Runtime() as rt:
        result = await rt.session(deps_agent(factory), principal=Principal(tenant="acme")).send(
            "who?", context={"plan": "gold"}
        )
    assert factory.infos[0].context == {"plan": "gold"}
    assert result.output == "acme:1:gold"


async def test_a_zero_argument_factory_is_built_once_per_runtime() -> None:
    made: list[TenantDeps] = []

    def factory() -> TenantDeps:
        deps = TenantDeps(None, len(made) + 1)
        made.append(deps)
        return deps

    agent = deps_agent(factory)
    async with Runtime() as rt:
        one = await rt.session(agent).send("who?")
        two = await rt.session(agent).send("who?")
        assert made[0].closed == 0
    async with Runtime() as rt2:
        three = await rt2.session(agent).send("who?")
    assert (one.output, two.output, three.output) == ("None:1:None", "None:1:None", "None:2:None")
    assert [d.closed for d in made] == [1, 1]


async def test_least_recently_used_session_deps_are_evicted_and_closed() -> None:
    factory = Factory()
    agent = deps_agent(factory)
    async with Runtime(max_session_deps=2) as rt:
        s1, s2, s3 = (rt.session(agent, principal=Principal(tenant=t)) for t in ("a", "b", "c"))
        await s1.send("who?")
        await s2.send("who?")
        await s1.send("who?")  # s1 used again: s2 is now the least recently used
        await s3.send("who?")
        d1, d2, d3 = factory.made
        assert (d1.closed, d2.closed, d3.closed) == (0, 1, 0)
        again = await s2.send("who?")  # built anew; s1 is now the oldest
        assert again.output == "b:4:None"
        assert (d1.closed, d3.closed) == (1, 0)
        assert len(factory.made) == 4
    assert [d.closed for d in factory.made] == [1, 1, 1, 1]


async def test_deps_shared_by_sessions_stay_open_while_a_session_uses_them() -> None:
    """A factory may hand several sessions one object (a tenant's pool): evicting one
    session's entry must not close it under the others, and shutdown closes it once."""
    pool = TenantDeps("acme", 1)
    agent = deps_agent(lambda s: pool)
    async with Runtime(max_session_deps=2) as rt:
        for _ in range(3):  # the third evicts the first session's entry: the same pool
            await rt.session(agent, principal=Principal(tenant="acme")).send("who?")
        assert pool.closed == 0, "closed while two sessions still hold it"
    assert pool.closed == 1


async def test_a_busy_sessions_deps_are_not_evicted() -> None:
    factory = Factory()
    gate = asyncio.Event()
    entered = asyncio.Event()

    @tether.tool(reads=True)
    async def slow_whoami(ctx: ToolContext) -> str:
        """Which deps, slowly."""
        entered.set()
        await gate.wait()
        return f"{ctx.deps.tenant}:{ctx.deps.closed}"

    def slow_script(request: ModelRequest) -> ScriptedResponse:
        last = request.messages[-1]
        if last.role == "user":
            return call("slow_whoami" if last.text == "slow" else "whoami")
        return last.results[0].content

    agent = Agent(
        name="deps",
        instructions="Say who you are.",
        models=(FunctionModel(slow_script),),
        tools=(whoami, slow_whoami),
        deps=factory,
        approval=ApprovalPolicy(enabled=False),
        clarify=False,
    )
    async with Runtime(max_session_deps=1) as rt:
        busy = asyncio.create_task(rt.session(agent, principal=Principal(tenant="a")).send("slow"))
        await asyncio.wait_for(entered.wait(), WAIT)
        await rt.session(agent, principal=Principal(tenant="b")).send("who?")
        assert factory.made[0].closed == 0  # in use by the turn in its tool
        gate.set()
        result = await asyncio.wait_for(busy, WAIT)
    assert result.output == "a:0"


# --- f. set-up errors store nothing --------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("anthropic:claude-sonnet-4-5", "ANTHROPIC_API_KEY"),
        ("local:/nonexistent.gguf", "local model|llama.cpp"),
        ("nope:x", "unknown model spec"),
    ],
)
async def test_a_model_that_cannot_be_used_stores_nothing(
    store: SessionStore, spec: str, match: str
) -> None:
    agent = Agent(name="setup", instructions="Help.", models=(spec,), clarify=False)
    async with Runtime(store=store, close_store=False) as rt:
        handle = rt.session(agent, principal=Principal(user="u1"))
        with pytest.raises(ConfigError, match=match):
            await handle.send("hello")
        # the same again: refused for the same reason, not as a turn "in progress"
        with pytest.raises(ConfigError, match=match):
            await handle.send("hello")
        with pytest.raises(ConfigError, match=match):
            async for _ev in rt.session(agent).stream("hello"):
                pass
        assert await store.list_sessions() == []


async def test_a_model_that_cannot_be_used_leaves_a_stored_session_as_it_was(
    store: SessionStore,
) -> None:
    agent = Agent(
        name="setup", instructions="Help.", models=(ScriptedModel(["hi"]),), clarify=False
    )
    async with Runtime(store=store, close_store=False) as rt:
        sid = (await rt.session(agent, principal=Principal(user="u1")).send("hello")).session_id
        count = (await store.get(sid)).event_count
        broken = agent.with_models(["anthropic:claude-sonnet-4-5"])
        with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
            await rt.session(broken, sid).send("again")
        row = await store.get(sid)
    assert row.status == SessionStatus.IDLE
    assert row.event_count == count
    assert row.lease_owner is None


# --- g. internal errors: failed, never running ---------------------------------------------------


async def test_a_model_bug_fails_the_session_and_frees_it(store: SessionStore) -> None:
    broken = [True]

    def fn(request: ModelRequest) -> ScriptedResponse:
        if broken[0]:
            raise RuntimeError("model adapter bug")
        return "fixed"

    agent = Agent(name="buggy", instructions="Help.", models=(FunctionModel(fn),), clarify=False)
    async with Runtime(store=store, close_store=False) as rt:
        handle = rt.session(agent, principal=Principal(user="u1"))
        with pytest.raises(RuntimeError, match="model adapter bug"):
            await handle.send("hello")
        row = await store.get(handle.id)
        assert row.status == SessionStatus.FAILED
        assert row.last_error is not None
        assert "RuntimeError: model adapter bug" in row.last_error
        assert row.lease_owner is None
        # nothing is stuck: the session takes the next operation
        broken[0] = False
        resumed = await rt.session(agent, handle.id).resume()
    assert resumed.status == SessionStatus.IDLE
    assert resumed.output == "fixed"


async def send_with_broken_deps(handle: Any, why: str) -> None:
    """Send; the deps' failure must surface, and the tool must not run without them.

    It may be raised, returned on a failed result, or given to the model as
    the tool's error result (the turn then goes on without the tool).
    """
    error: str | None
    try:
        result = await handle.send("who?")
    except RuntimeError as exc:
        error = str(exc)
    else:
        if result.status == SessionStatus.FAILED:
            error = result.error
        else:
            (done,) = finished(result.events, "whoami")
            assert done["is_error"] is True
            error = done["content"]
    assert error is not None
    assert why in error


async def assert_settled_after(store: SessionStore, sid: str, why: str) -> None:
    """Never left ``running``, never holding the lease; a failure says why."""
    row = await store.get(sid)
    assert row.status in (SessionStatus.FAILED, SessionStatus.IDLE)
    if row.status == SessionStatus.FAILED:
        assert row.last_error is not None
        assert why in row.last_error
    assert row.lease_owner is None
    assert row.lease_expires is None


async def test_a_deps_factory_that_raises_surfaces_and_frees_the_session(
    store: SessionStore,
) -> None:
    calls = [0]

    def factory(s: SessionInfo) -> TenantDeps:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("cannot connect to the shop database")
        return TenantDeps(s.principal.tenant, calls[0])

    agent = deps_agent(factory)
    async with Runtime(store=store, close_store=False) as rt:
        handle = rt.session(agent, principal=Principal(user="u1", tenant="acme"))
        await send_with_broken_deps(handle, "shop database")
        await assert_settled_after(store, handle.id, "shop database")
        # the same handle works once the factory does
        ok = await handle.send("who?")
    assert ok.status == SessionStatus.IDLE
    assert ok.output == "acme:2:None"


async def test_a_deps_factory_that_raises_on_a_stored_session_frees_it(
    tmp_path: Path,
) -> None:
    factory = Factory()
    async with Runtime(store=await open_store(sqlite_url(tmp_path))) as rt:
        sid = (
            await rt.session(deps_agent(factory), principal=Principal(user="u1")).send("who?")
        ).session_id

    def failing(s: SessionInfo) -> TenantDeps:
        raise RuntimeError("cannot connect to the shop database")

    store = await open_store(sqlite_url(tmp_path))
    async with Runtime(store=store) as fresh:
        await send_with_broken_deps(fresh.session(deps_agent(failing), sid), "shop database")
        await assert_settled_after(store, sid, "shop database")
        # nothing is left "in progress" in the runtime either: the next call runs (and fails)
        await send_with_broken_deps(fresh.session(deps_agent(failing), sid), "shop database")
        await assert_settled_after(store, sid, "shop database")
        # and once the deps work again, the session goes on
        result = await fresh.session(deps_agent(Factory()), sid).send("who?")
    assert result.status == SessionStatus.IDLE
    assert result.output == "None:1:None"


async def test_a_tool_bug_is_a_tool_error_not_a_failed_session(store: SessionStore) -> None:
    @tether.tool(reads=True)
    def flaky(q: str) -> str:
        """A lookup with a bug."""
        raise KeyError(q)

    model = ScriptedModel([call("flaky", q="x"), "The lookup failed, sorry."])
    agent = Agent(
        name="flaky", instructions="Help.", models=(model,), tools=(flaky,), clarify=False
    )
    async with Runtime(store=store, close_store=False) as rt:
        result = await rt.session(agent).send("look x up")
        row = await store.get(result.session_id)
    assert row.status == SessionStatus.IDLE
    assert row.lease_owner is None
    (done,) = finished(result.events, "flaky")
    assert done["is_error"] is True
    assert "KeyError" in done["content"]


async def test_the_same_handle_cannot_run_two_turns_at_once() -> None:
    shop = Shop()
    model = ScriptedModel([call("cancel_order", order_id="#W1"), "Cancelled."])
    agent = shop_agent(model, shop, enabled=False)
    async with Runtime() as rt:
        handle = rt.session(agent, principal=Principal(user="u1", scopes=frozenset({"orders"})))
        first = asyncio.create_task(handle.send("cancel #W1"))
        await asyncio.wait_for(shop.entered.wait(), WAIT)
        with pytest.raises(SessionConflict, match="already has a turn in progress"):
            await handle.send("and #W2")
        with pytest.raises(SessionConflict):
            await handle.resume()
        shop.release.set()
        result = await asyncio.wait_for(first, WAIT)
        with pytest.raises(InvalidSessionState):
            await handle.answer("what question?")
    assert result.status == SessionStatus.IDLE
    assert shop.cancelled == ["#W1"]


# --- a new session's first send ------------------------------------------------------------------


class FlakyCreate(InMemoryStore):
    """A store whose first ``create`` fails as a database restart would (nothing written)."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    async def create(self, record: Any, events: Any, *, owner: str, lease_ttl: float) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("the database is restarting; nothing was written")
        await super().create(record, events, owner=owner, lease_ttl=lease_ttl)


async def test_a_first_send_that_was_not_stored_can_be_sent_again() -> None:
    store = FlakyCreate()
    agent = payments_agent(Ledger())
    async with Runtime(store=store) as rt:
        handle = rt.session(agent, principal=USER)
        with pytest.raises(StoreUnavailable):
            await handle.send("hello")
        assert await store.list_sessions() == []
        result = await handle.send("hello")  # the retry creates it
    assert result.status == SessionStatus.IDLE
    assert result.output == "echo: hello"


async def test_a_new_id_that_exists_stays_refused_and_never_joins_that_session() -> None:
    ledger = Ledger()
    ledger.release.set()
    agent = payments_agent(ledger, approvals=False)
    async with Runtime() as rt:
        await rt.session(agent, "order-1", principal=USER, new=True).send("hello")
        before = await rt.store.events("order-1")
        mine = rt.session(agent, "order-1", principal=USER, new=True)
        for _ in range(2):  # a retry on the same handle is refused the same way
            with pytest.raises(SessionConflict, match="already exists"):
                await mine.send("charge 42")
        after = await rt.store.events("order-1")
    assert [e.to_dict() for e in after] == [e.to_dict() for e in before]
    assert ledger.charges == []
