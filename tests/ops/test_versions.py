"""Versions: the definition and its hash, the diff's risks, and the registry's states.

Each test drives the real store (SQLite in a temporary folder; the state
machine is also run once on PostgreSQL) and asserts what an operator relies
on: one active version, rollback at once and never back to a rolled-back
version, no retirement within 24 hours of serving.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import tether
from tests.store.conftest import drop_schema, postgres_url, require_postgres
from tether import Agent, ToolContext
from tether.runtime.ports import SessionRecord
from tether.spec.events import SessionStatus
from tether.spec.tools import Risk
from tether.store import SQLStore
from tether.store.versions import MIN_RETIRE_AGE, VersionError, VersionState, VersionStore
from tether.surfaces.ops.definition import content_hash, definition_of, diff
from tether.testing import FakeClock


@tether.tool(reads=True)
def look(ctx: ToolContext, order_id: str) -> str:
    """Look up an order.

    Args:
        order_id: The order.
    """
    return order_id


@tether.tool(irreversible=True, summary="cancel {order_id}")
def cancel(ctx: ToolContext, order_id: str) -> str:
    """Cancel an order.

    Args:
        order_id: The order.
    """
    return f"cancelled {order_id}"


def _agent(version: str = "1", **changes: Any) -> Agent:
    base = Agent(
        name="shop", version=version, instructions="Help with orders.", tools=(look, cancel)
    )
    return dataclasses.replace(base, **changes) if changes else base


# --- definition and diff --------------------------------------------------------------


def test_the_hash_ignores_the_label_and_changes_with_any_content() -> None:
    h1 = content_hash(definition_of(_agent("1")))
    assert content_hash(definition_of(_agent("7"))) == h1
    assert content_hash(definition_of(_agent("1", instructions="Help with orders!"))) != h1
    assert content_hash(definition_of(_agent("1", models=("scripted",)))) != h1
    loosened = dataclasses.replace(cancel, risk=Risk(writes=True))
    assert content_hash(definition_of(_agent("1", tools=(look, loosened)))) != h1


def test_a_tool_whose_code_changed_has_another_hash() -> None:
    @tether.tool(reads=True, name="look")
    def look_v2(ctx: ToolContext, order_id: str) -> str:
        """Look up an order.

        Args:
            order_id: The order.
        """
        return order_id.upper()

    d1 = definition_of(_agent())
    d2 = definition_of(_agent(tools=(look_v2, cancel)))
    assert d1["tools"][1]["code"]["source_sha256"] != d2["tools"][1]["code"]["source_sha256"]
    assert content_hash(d1) != content_hash(d2)


def test_the_definition_holds_schemas_flags_policies_and_limits() -> None:
    d = definition_of(_agent())
    tools = {t["name"]: t for t in d["tools"]}
    assert tools["cancel"]["risk"]["irreversible"] is True
    assert tools["cancel"]["approval"] == "always"
    assert tools["look"]["approval"] == "never"
    assert tools["cancel"]["parameters"]["properties"]["order_id"]["type"] == "string"
    assert tools["cancel"]["code"]["module"] == __name__
    assert d["limits"]["max_tool_calls"] == 25
    assert d["budget"]["max_tokens"] == 200_000
    assert d["approval"]["mode"] == "user"
    assert d["models"] == ["local"]


def test_the_diff_shows_a_lost_approval_as_a_risk() -> None:
    old = definition_of(_agent("1"))
    loosened = dataclasses.replace(cancel, risk=Risk(writes=True))
    new = definition_of(_agent("2", tools=(look, loosened), instructions="Help fast."))
    d = diff(old, new)
    assert not d.same_content
    assert any("cancel lost its approval requirement" in r for r in d.risks)
    assert any("no longer marked irreversible" in r for r in d.risks)
    assert "-Help with orders." in d.instructions
    assert "+Help fast." in d.instructions
    assert d.changes[0].risk is not None  # risks first


def test_the_diff_names_added_and_removed_tools_and_benign_changes_are_no_risk() -> None:
    old = definition_of(_agent("1"))
    new = definition_of(_agent("2", tools=(cancel,), temperature=0.2))
    d = diff(old, new)
    assert d.removed_tools == ("look",)
    assert d.risks == ()
    added = diff(new, old)
    assert added.added_tools == ("look",)
    assert added.risks == ("new tool look (approval: never)",)
    assert diff(old, definition_of(_agent("9"))).same_content


# --- the registry -----------------------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLStore]:
    s = await SQLStore.open(f"sqlite+aiosqlite:///{tmp_path / 'v.sqlite'}")
    yield s
    await s.aclose()


async def _register(vs: VersionStore, agent: Agent, **kw: Any) -> Any:
    d = definition_of(agent)
    return await vs.register(agent.name, agent.version, hash=content_hash(d), definition=d, **kw)


async def _session_on(store: SQLStore, version: str, sid: str, now: float) -> None:
    rec = SessionRecord(
        id=sid,
        agent="shop",
        agent_version=version,
        user_id="u",
        status=SessionStatus.IDLE,
        created_at=now,
        updated_at=now,
    )
    await store.create(rec, [], owner="t", lease_ttl=5)
    await store.release(sid, owner="t")


async def test_deploys_promotion_and_rollback_keep_one_active_version(store: SQLStore) -> None:
    clock = FakeClock(1000.0)
    vs = VersionStore(store, clock=clock)
    v1 = await _register(vs, _agent("1"), by="ana")
    assert v1.state == VersionState.ACTIVE
    clock.advance(10)
    v2 = await _register(vs, _agent("2", instructions="v2"))
    assert v2.state == VersionState.ACTIVE
    states = {v.version: v.state for v in await vs.versions("shop")}
    assert states == {"1": VersionState.PREVIOUS, "2": VersionState.ACTIVE}

    clock.advance(10)
    v3 = await _register(vs, _agent("3", instructions="v3"), canary_percent=10)
    assert v3.state == VersionState.CANARY
    active, canary = await vs.serving("shop")
    assert (active and active.version, canary and canary.version) == ("2", "3")
    with pytest.raises(VersionError, match="is a canary"):
        await _register(vs, _agent("4", instructions="v4"))

    taken, serving = await vs.rollback("shop", by="ops", reason="bad")
    assert (taken.version, serving and serving.version) == ("3", "2")
    assert (await vs.get("shop", "3")).state == VersionState.ROLLED_BACK  # type: ignore[union-attr]

    taken, serving = await vs.rollback("shop")  # no canary: back to the previous active
    assert (taken.version, serving and serving.version) == ("2", "1")
    with pytest.raises(VersionError, match="no previous version"):
        await vs.rollback("shop")  # never back to a rolled-back version
    actions = [row["action"] for row in await vs.history("shop")]
    assert actions == ["rollback", "rollback", "deploy", "deploy", "deploy"]


async def test_promote_makes_the_canary_active(store: SQLStore) -> None:
    vs = VersionStore(store, clock=FakeClock(5.0))
    await _register(vs, _agent("1"))
    await _register(vs, _agent("2", instructions="x"), canary_percent=25)
    promoted = await vs.promote("shop", by="ana")
    assert promoted.state == VersionState.ACTIVE
    assert promoted.canary_percent is None
    assert (await vs.get("shop", "1")).state == VersionState.PREVIOUS  # type: ignore[union-attr]
    with pytest.raises(VersionError, match="no canary"):
        await vs.promote("shop")


async def test_a_label_is_bound_to_its_content(store: SQLStore) -> None:
    vs = VersionStore(store)
    await _register(vs, _agent("1"))
    again = await _register(vs, _agent("1"))  # same content: nothing changes
    assert again.state == VersionState.ACTIVE
    with pytest.raises(VersionError, match="already deployed with other content"):
        await _register(vs, _agent("1", instructions="changed"))


async def test_a_canary_needs_an_active_version_and_a_sane_share(store: SQLStore) -> None:
    vs = VersionStore(store)
    with pytest.raises(VersionError, match="no active version"):
        await _register(vs, _agent("1"), canary_percent=10)
    await _register(vs, _agent("1"))
    for bad in (0, 100, -5, 150):
        with pytest.raises(VersionError, match="percentage"):
            await _register(vs, _agent("2", instructions="x"), canary_percent=bad)


async def test_a_version_that_served_is_not_retired_within_24_hours(store: SQLStore) -> None:
    clock = FakeClock(1_000_000.0)
    vs = VersionStore(store, clock=clock)
    await _register(vs, _agent("1"))
    await _session_on(store, "1", "s-1", clock())
    await _register(vs, _agent("2", instructions="x"))  # v1 stops taking new sessions now
    with pytest.raises(VersionError, match="is active"):
        await vs.retire("shop", "2")
    clock.advance(23 * 3600)
    with pytest.raises(VersionError, match=r"may be retired in 1\.0 h"):
        await vs.retire("shop", "1")
    with pytest.raises(VersionError, match="needs --force"):
        await vs.retire("shop", "1", min_age=3600)
    listed = {v.version: v for v in await vs.versions("shop")}
    assert listed["1"].sessions == 1
    clock.advance(3601)
    retired = await vs.retire("shop", "1", by="ana")
    assert retired.state == VersionState.RETIRED
    # a retired version is never made active again by a rollback
    with pytest.raises(VersionError, match="no previous version"):
        await vs.rollback("shop")


async def test_force_retires_early_and_is_recorded(store: SQLStore) -> None:
    clock = FakeClock(50.0)
    vs = VersionStore(store, clock=clock)
    await _register(vs, _agent("1"))
    await _session_on(store, "1", "s-1", clock())
    await _register(vs, _agent("2", instructions="x"))
    await vs.retire("shop", "1", force=True, reason="security fix", by="ana")
    entry = (await vs.history("shop"))[0]
    assert entry["action"] == "retire"
    assert entry["detail"] == {"forced": True, "reason": "security fix"}


async def test_a_canary_taken_back_before_serving_may_be_retired_at_once(store: SQLStore) -> None:
    vs = VersionStore(store, clock=FakeClock(50.0))
    await _register(vs, _agent("1"))
    await _register(vs, _agent("2", instructions="x"), canary_percent=5)
    taken, _serving = await vs.rollback("shop")
    assert taken.state == VersionState.ROLLED_BACK
    assert (await vs.retire("shop", "2")).state == VersionState.RETIRED


async def test_the_previous_version_stays_a_day_even_without_sessions(store: SQLStore) -> None:
    """It is what a rollback returns to: retiring it early needs --force."""
    vs = VersionStore(store, clock=FakeClock(50.0))
    await _register(vs, _agent("1"))
    await _register(vs, _agent("2", instructions="x"))
    with pytest.raises(VersionError, match=r"may be retired in 24\.0 h"):
        await vs.retire("shop", "1")


@pytest.mark.postgres
async def test_the_registry_state_machine_on_postgresql() -> None:
    require_postgres()
    schema = f"tether_test_{uuid.uuid4().hex[:12]}"
    pg = await SQLStore.open(postgres_url(), schema=schema)
    try:
        vs = VersionStore(pg, clock=FakeClock(10.0))
        await _register(vs, _agent("1"))
        await _register(vs, _agent("2", instructions="x"), canary_percent=50)
        taken, serving = await vs.rollback("shop")
        assert (taken.version, serving and serving.version) == ("2", "1")
        assert (await vs.serving("shop"))[1] is None
    finally:
        await pg.aclose()
        await drop_schema(schema)


def test_retire_age_is_a_day() -> None:
    assert MIN_RETIRE_AGE == 24 * 3600


# --- races between replicas: real concurrent transactions on both databases ------------


async def _two_stores(backend: str, tmp_path: Path) -> tuple[SQLStore, SQLStore, str | None]:
    if backend == "postgres":
        require_postgres()
        schema = f"tether_test_{uuid.uuid4().hex[:12]}"
        a = await SQLStore.open(postgres_url(), schema=schema)
        b = await SQLStore.open(postgres_url(), schema=schema)
        return a, b, schema
    url = f"sqlite+aiosqlite:///{tmp_path / 'race.sqlite'}"
    return await SQLStore.open(url), await SQLStore.open(url), None


async def _settle(*coros: Any) -> list[Any]:
    return list(await asyncio.gather(*coros, return_exceptions=True))


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_racing_deploys_promotes_and_rollbacks_keep_one_active(
    backend: str, tmp_path: Path
) -> None:
    """Two replicas (two engines) change one agent's versions at the same moment, many
    times over: whatever wins, there is one active version and at most one canary, and
    the loser gets a VersionError, never a database error."""
    a, b, schema = await _two_stores(backend, tmp_path)
    try:
        va, vb = VersionStore(a), VersionStore(b)
        await _register(va, _agent("0"))
        n = 1
        for _round in range(6):
            n += 2
            one, two = (
                _agent(str(n), instructions=f"v{n}"),
                _agent(str(n + 1), instructions=f"w{n}"),
            )
            results = await _settle(
                _register(va, one, canary_percent=10), _register(vb, two, canary_percent=10)
            )
            assert sum(isinstance(r, VersionError) for r in results) == 1, results
            results = await _settle(va.promote("shop"), vb.rollback("shop"))
            assert all(not isinstance(r, Exception) or isinstance(r, VersionError) for r in results)
            results = await _settle(
                _register(va, _agent(f"{n}x", instructions=f"x{n}")), vb.rollback("shop")
            )
            assert all(not isinstance(r, Exception) or isinstance(r, VersionError) for r in results)
            rows = await va.versions("shop")
            states = [v.state for v in rows]
            assert states.count(VersionState.ACTIVE) == 1, [(v.version, v.state) for v in rows]
            assert states.count(VersionState.CANARY) <= 1
    finally:
        await a.aclose()
        await b.aclose()
        if schema is not None:
            await drop_schema(schema)


def test_an_mcp_servers_credentials_are_not_in_the_definition() -> None:
    """The definition is stored and shown: a server's header and env values (tokens) and a
    URL's userinfo and query are left out; which keys are set, and everything else, stays."""
    server = tether.mcp_server(
        "http",
        name="docs",
        url="https://user:hunter2-pw@mcp.example/api?token=s3cr3t-query",
        headers={"Authorization": "Bearer sk-live-abcdefghijklmnop"},
        trust=True,
    )
    d = definition_of(_agent(tools=(look, cancel, server)))
    text = json.dumps(d)
    for secret in ("hunter2-pw", "s3cr3t-query", "sk-live-abcdefghijklmnop"):
        assert secret not in text
    (src,) = d["toolsets"]
    assert src["headers"] == ["Authorization"]
    assert src["url"] == "https://mcp.example/api"
    assert src["trust"] is True
    untrusted = definition_of(
        _agent(
            tools=(
                look,
                cancel,
                tether.mcp_server("http", name="docs", url="https://mcp.example/api"),
            )
        )
    )
    assert content_hash(untrusted) != content_hash(d)  # trust is part of the version
