"""A real server serving two versions of the retail agent: the registry picks, sessions stay.

Deploys and rollbacks are written to the store the server reads (as
``tether deploy`` and ``tether rollback`` do from another process); the
server picks them up without a restart, new sessions start on the version
the registry makes active, and a session keeps the version it started on.
``/metrics`` shows the turns by version.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.server.conftest import inprocess
from tests.server.helpers import retail_agent, sqlite_url
from tether import Agent
from tether.store import SQLStore, VersionStore
from tether.surfaces.ops import content_hash, definition_of


async def _deploy(db: str, agent: Agent) -> None:
    store = await SQLStore.open(db)
    try:
        d = definition_of(agent)
        await VersionStore(store).register(
            agent.name, agent.version, hash=content_hash(d), definition=d, by="test"
        )
    finally:
        await store.aclose()


async def _rollback(db: str) -> None:
    store = await SQLStore.open(db)
    try:
        await VersionStore(store).rollback("retail", by="test", reason="bad answers")
    finally:
        await store.aclose()


async def _new_version(c: httpx.AsyncClient, want: str) -> str:
    """Create sessions until one starts on ``want`` (the registry is re-read every 0.1 s)."""
    for _ in range(100):
        r = await c.post("/v1/sessions", json={"agent": "retail"})
        assert r.status_code == 201, r.text
        if r.json()["version"] == want:
            return str(r.json()["id"])
        await asyncio.sleep(0.05)
    raise AssertionError(f"no session started on version {want}")


def _turns_by_version(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "tether_turns":
            for sample in family.samples:
                if sample.name == "tether_turns_total":
                    v = sample.labels["version"]
                    out[v] = out.get(v, 0.0) + sample.value
    return out


async def test_rollback_is_picked_up_at_once_and_sessions_keep_their_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TETHER_VERSIONS_POLL", "0.1")
    monkeypatch.delenv("TETHER_METRICS_TOKEN", raising=False)
    base, _model = retail_agent(tmp_path / "shop.sqlite")
    v1 = dataclasses.replace(base, version="1")
    v2 = dataclasses.replace(base, version="2", instructions=base.instructions + "\nBe brief.")
    db = sqlite_url(tmp_path)
    with inprocess([v1, v2], tmp_path, database_url=db) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            # nothing deployed: the first version given serves, as before versions existed
            r = await c.post("/v1/sessions", json={"agent": "retail"})
            assert r.json()["version"] == "1"

            await _deploy(db, v1)
            await _deploy(db, v2)  # v2 active, v1 previous
            on_v2 = await _new_version(c, "2")
            r = await c.post(f"/v1/sessions/{on_v2}/messages", json={"message": "Hi"})
            assert r.status_code == 200, r.text

            await _rollback(db)
            on_v1 = await _new_version(c, "1")
            for _ in range(5):  # and only v1 from now on
                r = await c.post("/v1/sessions", json={"agent": "retail"})
                assert r.json()["version"] == "1"

            # the session that started on v2 goes on on v2
            r = await c.post(f"/v1/sessions/{on_v2}/messages", json={"message": "Thanks"})
            assert r.status_code == 200, r.text
            assert (await c.get(f"/v1/sessions/{on_v2}")).json()["version"] == "2"
            r = await c.post(f"/v1/sessions/{on_v1}/messages", json={"message": "Hi"})
            assert r.status_code == 200, r.text

            # a version the registry took back cannot be asked for by name
            r = await c.post("/v1/sessions", json={"agent": "retail", "version": "2"})
            assert r.status_code == 409
            assert "rolled_back" in r.json()["detail"]

            ready = await c.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["agent:retail"]["version"] == "1"

            scraped = await c.get("/metrics")
            assert scraped.status_code == 200
            turns = _turns_by_version(scraped.text)
            assert turns == {"1": 1.0, "2": 2.0}


async def test_a_deployed_version_whose_code_is_not_loaded_fails_readiness(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TETHER_VERSIONS_POLL", "0.1")
    base, _model = retail_agent(tmp_path / "shop.sqlite")
    v1 = dataclasses.replace(base, version="1")
    elsewhere = dataclasses.replace(base, version="9", instructions="Another build.")
    db = sqlite_url(tmp_path)
    with inprocess([v1], tmp_path, database_url=db) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            await _deploy(db, v1)
            await _deploy(db, elsewhere)  # active, but this replica has no code for it
            for _ in range(100):
                ready = await c.get("/readyz")
                if ready.status_code == 503:
                    break
                await asyncio.sleep(0.05)
            assert ready.status_code == 503
            detail = ready.json()["checks"]["agent:retail"]["detail"]
            assert "version 9 (active) is not loaded here" in detail
            # new sessions still start, on the code this replica has
            r = await c.post("/v1/sessions", json={"agent": "retail"})
            assert r.status_code == 201
            assert r.json()["version"] == "1"
