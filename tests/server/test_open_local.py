"""Open local mode (no keys stored, loopback) lets in only requests straight from this machine.

A reverse proxy on the same machine connects from loopback too: a request
that carries a proxy's headers must not act as the all-roles local user.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.server.conftest import inprocess, make_key
from tests.server.helpers import assert_problem, retail_agent, sqlite_url


@pytest.mark.parametrize(
    "header",
    [
        {"X-Forwarded-For": "203.0.113.7"},
        {"Forwarded": "for=203.0.113.7"},
        {"X-Real-IP": "203.0.113.7"},
    ],
)
async def test_a_proxied_request_is_not_the_local_user(
    tmp_path: Path, header: dict[str, str]
) -> None:
    agent, _model = retail_agent(tmp_path / "shop.sqlite")
    with inprocess([agent], tmp_path) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            direct = await c.get("/v1/sessions")
            assert direct.status_code == 200  # open: straight from loopback, no key
            proxied = await c.get("/v1/sessions", headers=header)
            assert_problem(proxied, 401, "unauthenticated")
            r = await c.post("/v1/sessions", json={"agent": "retail"}, headers=header)
            assert_problem(r, 401, "unauthenticated")


async def test_the_first_key_closes_open_mode(tmp_path: Path) -> None:
    agent, _model = retail_agent(tmp_path / "shop.sqlite")
    with inprocess([agent], tmp_path) as srv:
        srv.state.gate.recheck = 0  # see the new key at once, not within five seconds
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
            assert (await c.get("/v1/sessions")).status_code == 200
            token = await make_key(sqlite_url(tmp_path), user="ava")
            assert_problem(await c.get("/v1/sessions"), 401, "unauthenticated")
            ok = await c.get("/v1/sessions", headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200
