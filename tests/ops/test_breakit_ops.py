"""Hostile-user and careless-operator attacks on the operations features.

Each ``xfail(strict=True)`` test states the behaviour the docs promise (or an
operator needs) and fails today because of a bug named in its reason; each
plain test pins an attack that is handled correctly. Everything runs offline
on SQLite in ``tmp_path`` except the tests marked for PostgreSQL (skipped
locally without a server, as in ``tests/store``).

Interleavings of two replicas are made deterministic with
:class:`Interleaved`: a ``VersionStore`` that, right after one of its reads,
lets "another process" run a whole operation before it goes on to write.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import io
import json
import logging
import math
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

import tether
from tether import Agent, Runtime
from tether.exceptions import ConfigError
from tether.providers.scripted import call
from tether.runtime.observe import SessionTag
from tether.runtime.ports import SessionRecord
from tether.spec.approval import ApprovalPolicy
from tether.spec.events import Event
from tether.spec.tools import Tool
from tether.store import SQLStore
from tether.store.versions import VersionError, VersionStore
from tether.surfaces.cli import app
from tether.surfaces.logs import configure_logging
from tether.surfaces.ops.alerts import (
    WEBHOOK_RETRY,
    Alert,
    Alerter,
    WebhookSink,
    alerter_from_env,
)
from tether.surfaces.ops.canary import CanaryMonitor, CanaryPolicy
from tether.surfaces.ops.definition import content_hash, definition_of, diff
from tether.surfaces.ops.metrics import Metrics
from tether.surfaces.server.health import Readiness
from tether.surfaces.server.operations import Operations
from tether.surfaces.server.versions import VersionRouter
from tether.testing import FunctionModel, ScriptedModel

runner = CliRunner()

UNREACHABLE_PG = "postgresql+asyncpg://postgres@127.0.0.1:1/x"


def _ok_model() -> FunctionModel:
    return FunctionModel(lambda _r: "OK", name="ok", record=False)


def _agent(version: str = "1", **changes: Any) -> Agent:
    base = Agent(name="shop", version=version, instructions=f"v{version}", models=(_ok_model(),))
    return dataclasses.replace(base, **changes) if changes else base


async def _reg(
    vs: VersionStore, agent: Agent, canary: float | None = None, ref: str | None = None
) -> Any:
    d = definition_of(agent)
    return await vs.register(
        agent.name,
        agent.version,
        hash=content_hash(d),
        definition=d,
        canary_percent=canary,
        ref=ref,
    )


async def _states(vs: VersionStore, agent: str = "shop") -> dict[str, str]:
    return {v.version: str(v.state) for v in await vs.versions(agent)}


class Interleaved(VersionStore):
    """A replica's VersionStore: after the named read returns, ``meanwhile`` (another
    process's whole operation) runs to completion, then this one goes on."""

    def __init__(
        self, store: SQLStore, after: str, meanwhile: Callable[[], Awaitable[Any]]
    ) -> None:
        super().__init__(store)
        self._after = after
        self._meanwhile: Callable[[], Awaitable[Any]] | None = meanwhile

    async def _then(self) -> None:
        if self._meanwhile is not None:
            other, self._meanwhile = self._meanwhile, None
            await other()

    async def serving(self, agent: str) -> Any:
        got = await super().serving(agent)
        if self._after == "serving":
            await self._then()
        return got

    async def versions(self, agent: str) -> Any:
        got = await super().versions(agent)
        if self._after == "versions":
            await self._then()
        return got

    async def signals(self, *args: Any, **kwargs: Any) -> Any:
        if self._after == "signals":
            await self._then()
        return await super().signals(*args, **kwargs)


@pytest.fixture
async def two(tmp_path: Path) -> AsyncIterator[tuple[SQLStore, SQLStore, str]]:
    """Two stores (two replicas) over one SQLite database."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.sqlite'}"
    a, b = await SQLStore.open(url), await SQLStore.open(url)
    yield a, b, url
    await a.aclose()
    await b.aclose()


# =====================================================================================
# Registry races: every state change must leave one active version and at most one canary
# =====================================================================================


async def test_two_deploys_racing_leave_one_active_version(two: Any) -> None:
    a, b, _ = two
    await _reg(VersionStore(a), _agent("1"))
    other = VersionStore(b)
    racer = Interleaved(a, "serving", lambda: _reg(other, _agent("3")))
    results = await asyncio.gather(_reg(racer, _agent("2")), return_exceptions=True)
    states = await _states(other)
    actives = [v for v, s in states.items() if s == "active"]
    assert len(actives) == 1, (states, results)


async def test_two_canary_deploys_racing_leave_one_canary(two: Any) -> None:
    a, b, _ = two
    await _reg(VersionStore(a), _agent("1"))
    other = VersionStore(b)
    racer = Interleaved(a, "serving", lambda: _reg(other, _agent("3"), canary=10))
    await asyncio.gather(_reg(racer, _agent("2"), canary=10), return_exceptions=True)
    states = await _states(other)
    assert [v for v, s in states.items() if s == "canary"] in (["2"], ["3"]), states


async def test_a_deploy_and_a_rollback_racing_leave_one_active_version(two: Any) -> None:
    a, b, _ = two
    setup = VersionStore(a)
    await _reg(setup, _agent("1"))
    await _reg(setup, _agent("2"))
    other = VersionStore(b)
    racer = Interleaved(a, "serving", lambda: other.rollback("shop", by="olga"))
    await asyncio.gather(_reg(racer, _agent("3")), return_exceptions=True)
    states = await _states(other)
    assert [v for v, s in states.items() if s == "active"] in (["1"], ["3"]), states


async def test_a_rollback_racing_a_retirement_never_leaves_no_active_version(
    two: Any,
) -> None:
    a, b, _ = two
    setup = VersionStore(a)
    await _reg(setup, _agent("1"))
    await _reg(setup, _agent("2"))
    other = VersionStore(b)
    racer = Interleaved(
        a,
        "versions",
        lambda: other.retire("shop", "1", force=True, reason="cleanup", min_age=0),
    )
    outcome = await asyncio.gather(racer.rollback("shop"), return_exceptions=True)
    active, _canary = await other.serving("shop")
    assert active is not None, (await _states(other), outcome)


async def test_a_late_canary_monitor_does_not_roll_back_the_active_version(
    two: Any,
) -> None:
    a, b, _ = two
    setup = VersionStore(a)
    for v in ("1", "2"):
        await _reg(setup, _agent(v))
    await _reg(setup, _agent("3"), canary=10)
    now = time.time() + 1
    for i, (version, cost) in enumerate([("2", 0.01)] * 3 + [("3", 1.0)] * 3):
        rec = SessionRecord(
            id=f"s{i}",
            agent="shop",
            agent_version=version,
            user_id="u",
            status="idle",
            created_at=now,
            updated_at=now,
            cost=cost,
        )
        await a.create(rec, [], owner="t", lease_ttl=5)
        await a.release(rec.id, owner="t")
    policy = CanaryPolicy(min_sessions=3)
    fast = CanaryMonitor(VersionStore(b), policy=policy)
    slow = CanaryMonitor(Interleaved(a, "signals", lambda: fast.check("shop")), policy=policy)
    await slow.check("shop")
    states = await _states(setup)
    assert states["3"] == "rolled_back"
    assert states["2"] == "active", states


async def test_two_promotions_at_once_promote_once(two: Any) -> None:
    a, b, _ = two
    setup = VersionStore(a)
    await _reg(setup, _agent("1"))
    await _reg(setup, _agent("2"), canary=10)
    results = await asyncio.gather(
        VersionStore(a).promote("shop"), VersionStore(b).promote("shop"), return_exceptions=True
    )
    assert sum(isinstance(r, VersionError) for r in results) == 1, results
    assert await _states(setup) == {"2": "active", "1": "previous"}
    assert [r["action"] for r in await setup.history("shop")].count("promote") == 1


async def test_a_stale_rollback_of_a_canary_is_refused_not_repeated(two: Any) -> None:
    """A rollback that names the canary it judged is refused once another replica took
    that canary back: it never goes on to roll back the active version."""
    a, b, _ = two
    setup = VersionStore(a)
    await _reg(setup, _agent("1"))
    await _reg(setup, _agent("2"), canary=10)
    await VersionStore(b).rollback("shop")  # the other replica was first
    with pytest.raises(VersionError, match="no longer the one a rollback takes back"):
        await VersionStore(a).rollback("shop", expect="2")
    assert await _states(setup) == {"2": "rolled_back", "1": "active"}


@pytest.mark.parametrize("share", [0, 100, -1, 150, math.nan, math.inf])
async def test_a_canary_share_outside_0_to_100_is_refused(two: Any, share: float) -> None:
    a, _b, _ = two
    vs = VersionStore(a)
    await _reg(vs, _agent("1"))
    with pytest.raises(VersionError, match="above 0 and below 100"):
        await _reg(vs, _agent("2"), canary=share)
    assert await _states(vs) == {"1": "active"}


# =====================================================================================
# Retirement floor and CLI input
# =====================================================================================


def _setup_db(tmp_path: Path, *labels: str, name: str = "shop") -> str:
    db = f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite'}"

    async def go() -> None:
        store = await SQLStore.open(db)
        try:
            vs = VersionStore(store)
            for label in labels:
                await _reg(vs, dataclasses.replace(_agent(label), name=name))
        finally:
            await store.aclose()

    asyncio.run(go())
    return db


def test_min_age_nan_does_not_bypass_the_retirement_floor(tmp_path: Path) -> None:
    db = _setup_db(tmp_path, "1", "2")  # 1 was active a moment ago: the rollback target
    r = runner.invoke(
        app, ["versions", "retire", "shop", "1", "--min-age-hours", "nan", "--db", db]
    )
    assert r.exit_code in (1, 2), r.output
    listed = runner.invoke(app, ["versions", "shop", "--json", "--db", db])
    states = {json.loads(x)["version"]: json.loads(x)["state"] for x in listed.output.splitlines()}
    assert states["1"] == "previous"


def test_retire_force_with_a_blank_reason_is_refused(tmp_path: Path) -> None:
    db = _setup_db(tmp_path, "1", "2")
    r = runner.invoke(
        app, ["versions", "retire", "shop", "1", "--force", "--reason", "   ", "--db", db]
    )
    assert r.exit_code == 2, r.output


@pytest.mark.parametrize("reason", [None, "", "   ", "\t\n"])
def test_deploy_force_without_a_real_reason_is_one_usage_error(
    tmp_path: Path, reason: str | None
) -> None:
    args = ["deploy", "no.such.module:agent", "--force", "--db", f"sqlite:///{tmp_path}/x.db"]
    if reason is not None:
        args += ["--reason", reason]
    r = runner.invoke(app, args)
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [
        "error: --force needs --reason TEXT: why this version skips the gate"
    ]


@pytest.mark.parametrize("value", ["abc", "", "1e"])
def test_deploy_canary_that_is_not_a_number_is_a_usage_error(tmp_path: Path, value: str) -> None:
    r = runner.invoke(
        app,
        ["deploy", "no.such.module:agent", "--canary", value, "--db", f"sqlite:///{tmp_path}/x"],
    )
    assert r.exit_code == 2
    assert "Traceback" not in r.output


AGENT = _agent("1")  # loaded by reference by the CLI tests below


def test_deploy_refuses_a_bad_canary_share_before_running_the_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tether.surfaces.cli import versions as cli_versions
    from tether.surfaces.ops.deploy import GateReport, deploy

    ran: list[str] = []

    async def spy_gate(agent: Agent, **_kw: Any) -> GateReport:
        ran.append(agent.version)
        return GateReport()

    monkeypatch.setattr(cli_versions, "deploy", functools.partial(deploy, gate=spy_gate))
    db = _setup_db(tmp_path, "0")
    r = runner.invoke(app, ["deploy", f"{__name__}:AGENT", "--canary", "0", "--db", db])
    assert r.exit_code in (1, 2)
    assert ran == [], "the gate ran before the share was checked"


def test_versions_diff_with_unknown_versions_is_one_error_line(tmp_path: Path) -> None:
    db = _setup_db(tmp_path, "1")
    for args in (["1", "77"], ["77"], ["77", "1"]):
        r = runner.invoke(app, ["versions", "diff", "shop", *args, "--db", db])
        assert r.exit_code == 1, r.output
        assert r.output.strip().startswith("error: shop has no version '77'")
        assert len(r.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "command", [["promote", "shop"], ["rollback", "shop"], ["versions", "shop"]]
)
def test_an_unreachable_database_is_one_error_line(command: list[str]) -> None:
    r = runner.invoke(app, [*command, "--db", UNREACHABLE_PG])
    assert r.exit_code == 1, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1, r.output
    assert lines[0].startswith("error: "), r.output
    assert "Traceback" not in r.output


def test_who_deployed_cannot_forge_lines_of_the_version_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forged = "2026-01-01 00:00:00  rollback 2  by olga  {}"
    db = _setup_db(tmp_path, "1", "2")
    monkeypatch.setenv("TETHER_DEPLOYED_BY", f"ana\n{forged}\n")
    r = runner.invoke(app, ["rollback", "shop", "--db", db])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["versions", "log", "shop", "--db", db])
    assert r.exit_code == 0
    assert forged not in r.output.splitlines()
    assert len(r.output.strip().splitlines()) == 3  # two deploys and one rollback


@pytest.mark.parametrize("label", ["\x1b]0;PWNED\x07\x1b[2J2", "2\nforged line", "release/2", ""])
def test_a_label_that_could_forge_or_break_output_is_refused(tmp_path: Path, label: str) -> None:
    """Labels are shown in tables, logs and URLs: escapes, newlines and slashes are refused
    when the version is registered, so nothing can be forged later."""
    with pytest.raises(VersionError, match="is not allowed"):
        _setup_db(tmp_path, "1", label)


# =====================================================================================
# Definitions: JSON, stable across interpreters, and sensitive to what changes behaviour
# =====================================================================================

_DEFS = textwrap.dedent(
    '''
    import functools, operator, os
    import pydantic
    import tether
    from tether import Agent
    from tether.spec.approval import ApprovalPolicy
    from tether.spec.tools import Tool
    from tether.testing import FunctionModel

    P = {"type": "object", "properties": {"q": {"type": "string"}}}

    def fn(q: str, unit: float = 1.0) -> str:
        """Look.

        Args:
            q: What.
            unit: A unit.
        """
        return q

    class Caller:
        def __init__(self, k): self.k = k
        def __call__(self, q: str) -> str: return q * self.k

    class Out(pydantic.BaseModel):
        answer: str

    class Nameless:
        pass

    def rule(tool, args, limit=100.0):
        return float(args.get("amount", 0)) > limit

    def make(kind):
        model = FunctionModel(lambda _r: "ok", name="m", record=False)
        tools, extra = (), {}
        if kind == "lambda":
            tools = (Tool(name="t", description="d", parameters=P, fn=lambda q: q),)
        elif kind == "partial":
            part = functools.partial(fn, unit=2)
            tools = (Tool(name="t", description="d", parameters=P, fn=part),)
        elif kind == "instance":
            tools = (Tool(name="t", description="d", parameters=P, fn=Caller(2)),)
        elif kind == "builtin":
            tools = (Tool(name="t", description="d", parameters=P, fn=operator.itemgetter(0)),)
        elif kind == "schema":
            extra["output_schema"] = Out
        elif kind == "model-object":
            model = Nameless()
        elif kind == "deps-partial":
            extra["deps"] = functools.partial(dict, a=1)
        elif kind == "rule-partial":
            extra["approval"] = ApprovalPolicy(rule=functools.partial(rule, limit=5))
        return Agent(name="defs", instructions="x", models=(model,), tools=tools, **extra)

    KINDS = ["lambda", "partial", "instance", "builtin", "schema", "model-object",
             "deps-partial", "rule-partial"]
    '''
)

_CHILD = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from bk_defs_mod import KINDS, make
    from tether.surfaces.ops.definition import content_hash, definition_of
    out = {}
    for k in KINDS:
        d = definition_of(make(k))
        json.dumps(d, allow_nan=False)
        out[k] = content_hash(d)
    print(json.dumps(out))
    """
)


def test_odd_callables_give_json_and_the_same_hash_in_two_interpreters(tmp_path: Path) -> None:
    (tmp_path / "bk_defs_mod.py").write_text(_DEFS)
    hashes = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONDONTWRITEBYTECODE": "1"}
        r = subprocess.run(
            [sys.executable, "-c", _CHILD, str(tmp_path)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        hashes.append(json.loads(r.stdout.strip().splitlines()[-1]))
    assert hashes[0] == hashes[1]
    assert len(hashes[0]) == 8


def _price(_result: object, price: float) -> float:
    return price


class _PerCall:
    def __init__(self, price: float) -> None:
        self.price = price

    def __call__(self, _result: object) -> float:
        return self.price


class _Multiplier:
    def __init__(self, factor: int) -> None:
        self.factor = factor

    def __call__(self, order_id: str) -> str:
        return order_id * self.factor


def _rule(tool: str, args: Any, limit: float = 100.0) -> bool:
    return float(args.get("amount", 0)) > limit


@tether.tool(writes=True)
def refund_order(amount: float) -> str:
    """Refund.

    Args:
        amount: Dollars.
    """
    return "ok"


_P = {"type": "object", "properties": {"order_id": {"type": "string"}}}


def _pair(kind: str) -> tuple[Agent, Agent]:
    """Two versions that differ only in ``kind`` (the same instructions and everything else)."""
    old, new = _pair_of(kind)
    return old, dataclasses.replace(new, instructions=old.instructions)


def _pair_of(kind: str) -> tuple[Agent, Agent]:
    if kind == "approval rule threshold (partial)":
        return (
            _agent("1", approval=ApprovalPolicy(rule=functools.partial(_rule, limit=100))),
            _agent("2", approval=ApprovalPolicy(rule=functools.partial(_rule, limit=1_000_000))),
        )
    if kind == "tool price (callable instance)":
        return (
            _agent("1", tools=(dataclasses.replace(refund_order, cost=_PerCall(0.01)),)),
            _agent("2", tools=(dataclasses.replace(refund_order, cost=_PerCall(5.00)),)),
        )
    if kind == "tool price (partial)":
        return (
            _agent(
                "1",
                tools=(
                    dataclasses.replace(refund_order, cost=functools.partial(_price, price=0.01)),
                ),
            ),
            _agent(
                "2",
                tools=(
                    dataclasses.replace(refund_order, cost=functools.partial(_price, price=5.0)),
                ),
            ),
        )
    if kind == "tool body state (callable instance)":
        return (
            _agent("1", tools=(Tool(name="t", description="d", parameters=_P, fn=_Multiplier(1)),)),
            _agent(
                "2", tools=(Tool(name="t", description="d", parameters=_P, fn=_Multiplier(100)),)
            ),
        )
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "approval rule threshold (partial)",
        "tool price (callable instance)",
        "tool price (partial)",
        "tool body state (callable instance)",
    ],
)
def test_a_change_hidden_in_a_callable_changes_the_hash(kind: str) -> None:
    old, new = _pair(kind)
    a, b = definition_of(old), definition_of(new)
    assert content_hash(a) != content_hash(b)
    assert not diff(a, b).same_content


# =====================================================================================
# Server: versions that cannot load, pinned versions, readiness, alerts
# =====================================================================================


class Sink:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    async def send(self, alert: Alert) -> None:
        self.alerts.append(alert)


def test_a_version_whose_ref_raises_at_import_degrades_the_replica_not_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.server.conftest import inprocess

    module = f"bk_raises_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("TETHER_VERSIONS_POLL", "0.1")
    monkeypatch.setenv("TETHER_METRICS", "0")
    url = f"sqlite+aiosqlite:///{tmp_path / 'server.sqlite'}"

    async def setup() -> None:
        store = await SQLStore.open(url)
        vs = VersionStore(store)
        await _reg(vs, _agent("1"))
        await _reg(vs, _agent("3"), ref=f"{module}:agent")  # active; its code cannot load
        await store.aclose()

    asyncio.run(setup())
    caplog.set_level(logging.INFO)
    with (
        contextlib.ExitStack() as stack,
        inprocess([_agent("1")], tmp_path, database_url=url) as srv,
    ):
        c = httpx.Client(base_url=srv.url, timeout=30)
        stack.callback(c.close)
        created = c.post("/v1/sessions", json={"agent": "shop"})
        assert created.status_code == 201, created.text
        assert created.json()["version"] == "1"
        ready = c.get("/readyz")
        assert ready.status_code == 503
        assert (
            "shop version 3 (active) is not loaded here"
            in ready.json()["checks"]["agent:shop"]["detail"]
        )
        for weird in ["", "x" * 256, 2, ["1"], None, "\u0000", "../1", "1\n", "３"]:
            r = c.post("/v1/sessions", json={"agent": "shop", "version": weird})
            assert r.status_code in (201, 409, 422), (weird, r.status_code, r.text)
        time.sleep(0.5)  # several polls
    loads = [r for r in caplog.records if "loading" in r.getMessage() and module in r.getMessage()]
    assert len(loads) == 1


async def test_one_missing_version_raises_one_alert(tmp_path: Path) -> None:
    store = await SQLStore.open(f"sqlite+aiosqlite:///{tmp_path / 'r.sqlite'}")
    vs = VersionStore(store)
    await _reg(vs, _agent("3"))  # active, but this replica only has version 1
    sink = Sink()
    ops = Operations(metrics=None, tracing=None, alerter=Alerter([sink]), canary=CanaryPolicy())
    router = VersionRouter([_agent("1")], registry=vs, poll=0.0, on_missing=ops.version_missing)
    async with Runtime(store=store, close_store=False) as rt:
        await router.refresh(force=True)
        ready = Readiness(
            rt, router.serving_agents, problems=router.problems, on_failure=ops.readiness_failed
        )
        ok, _checks = await ready.check()
    await ops.alerter.aclose()
    await store.aclose()
    assert not ok
    assert [a.id for a in sink.alerts] == ["readiness_failed:shop:3"]


async def test_the_version_poll_survives_a_store_outage() -> None:
    engine = create_async_engine(UNREACHABLE_PG)
    try:
        router = VersionRouter([_agent("1")], registry=VersionStore(SQLStore(engine)), poll=0.0)
        await router.refresh(force=True)  # keeps the last known choice, logs a warning
        assert (await router.for_new("shop")).version == "1"
    finally:
        await engine.dispose()


async def test_the_canary_loop_survives_a_store_outage() -> None:
    engine = create_async_engine(UNREACHABLE_PG)
    try:
        monitor = CanaryMonitor(VersionStore(SQLStore(engine)), policy=CanaryPolicy(interval=0.05))
        stop = asyncio.Event()
        task = asyncio.create_task(monitor.run(lambda: ["shop"], stop))
        await asyncio.sleep(0.3)
        alive = not task.done()
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        assert alive
    finally:
        await engine.dispose()


@pytest.fixture
def hanging_receiver() -> Iterator[str]:
    """A webhook that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    sock.close()


async def test_a_new_session_does_not_wait_for_a_hanging_alert_receiver(
    tmp_path: Path, hanging_receiver: str
) -> None:
    store = await SQLStore.open(f"sqlite+aiosqlite:///{tmp_path / 'h.sqlite'}")
    vs = VersionStore(store)
    await _reg(vs, _agent("2"))  # active, not loaded here
    ops = Operations.from_env(
        {
            "TETHER_ALERT_WEBHOOK_URL": hanging_receiver,
            "TETHER_ALERT_WEBHOOK_SECRET": "s" * 32,
            "TETHER_ALERT_WEBHOOK_TIMEOUT": "1",
            "TETHER_ALERT_WEBHOOK_ATTEMPTS": "1",
            "TETHER_METRICS": "0",
        }
    )
    router = VersionRouter([_agent("1")], registry=vs, poll=0.0, on_missing=ops.version_missing)
    started = time.monotonic()
    chosen = await router.for_new("shop")
    took = time.monotonic() - started
    await ops.alerter.aclose(timeout=2)
    await store.aclose()
    assert chosen.version == "1"
    assert took < 0.5, f"creating a session waited {took:.1f} s for the alert webhook"


async def test_a_flood_of_breaker_openings_alerts_once_per_key() -> None:
    sink = Sink()
    alerter = Alerter([sink], dedupe_window=300)
    tag = SessionTag("s1", "shop", "1")
    async with alerter:
        for i in range(1000):
            key = "model:m" if i % 2 else "tool:shop:refund"
            alerter(Event("breaker.opened", "s1", i, float(i), {"key": key, "cooldown": 30}), tag)
        await alerter.flush(5)
    assert sorted(a.id for a in sink.alerts) == [
        "breaker_opened:model:m",
        "breaker_opened:tool:shop:refund",
    ]


async def test_a_failed_delivery_logs_no_credentials_of_the_webhook_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = "http://alice:hunter2pw@127.0.0.1:1/services/T0/B0/PathSecret9?token=QueryTok9"
    sink = WebhookSink(
        url, "s" * 32, timeout=0.5, retry=dataclasses.replace(WEBHOOK_RETRY, max_retries=0)
    )
    caplog.set_level(logging.DEBUG)
    await sink.send(Alert.readiness_failed("shop", "1", "x", time=0.0))
    await sink.aclose()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "was not delivered" in text
    for secret in ("hunter2pw", "PathSecret9", "QueryTok9", "alice"):
        assert secret not in text


async def test_the_webhook_path_token_is_not_in_the_server_log(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("TETHER_LOG_FORMAT", "TETHER_LOG_LEVEL", "TETHER_REDACT_PATTERNS"):
        monkeypatch.delenv(name, raising=False)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buf = io.StringIO()
    try:
        configure_logging("INFO", stream=buf)
        client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
        sink = WebhookSink(
            "https://hooks.slack.com/services/T000/B000/XXXXwebhookSecret", "s" * 32, client=client
        )
        await Alerter([sink]).notify(Alert.readiness_failed("shop", "1", "x", time=0.0))
        await client.aclose()
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert "XXXXwebhookSecret" not in buf.getvalue()


@pytest.mark.parametrize(
    "build",
    [
        lambda: CanaryPolicy.from_env({"TETHER_CANARY_FAILED_TURNS": "nan"}),
        lambda: CanaryPolicy.from_env({"TETHER_CANARY_COST": "0,nan"}),
        lambda: CanaryPolicy.from_env({"TETHER_CANARY_INTERVAL": "nan"}),
        lambda: Operations.from_env({"TETHER_VERSIONS_POLL": "nan", "TETHER_METRICS": "0"}),
        lambda: Operations.from_env({"TETHER_VERSIONS_POLL": "-5", "TETHER_METRICS": "0"}),
        lambda: Operations.from_env({"TETHER_VERSIONS_POLL": "abc", "TETHER_METRICS": "0"}),
        lambda: alerter_from_env({"TETHER_ALERT_DEDUPE_S": "nan"}),
        lambda: alerter_from_env({"TETHER_ALERT_APPROVAL_WAIT": "nan"}),
        lambda: alerter_from_env(
            {
                "TETHER_ALERT_WEBHOOK_URL": "https://h:99999/x",
                "TETHER_ALERT_WEBHOOK_SECRET": "s" * 32,
            }
        ),
    ],
    ids=[
        "canary-margin-nan",
        "canary-ratio-nan",
        "canary-interval-nan",
        "versions-poll-nan",
        "versions-poll-negative",
        "versions-poll-abc",
        "alert-dedupe-nan",
        "approval-wait-nan",
        "webhook-port-out-of-range",
    ],
)
def test_a_setting_that_is_not_a_sane_number_is_a_config_error(
    build: Callable[[], Any],
) -> None:
    with pytest.raises(ConfigError):
        build()


# =====================================================================================
# Metrics
# =====================================================================================

_HOSTILE = [
    'v"1',
    "v\\1",
    "v\n1",
    '"} 1\n# TYPE evil counter\nevil_total 1\n#',
    "ショップ",
    "\u202eevil",
]


def test_hostile_label_values_keep_the_exposition_valid() -> None:
    m = Metrics()
    for i, value in enumerate(_HOSTILE):
        tag = SessionTag(f"s{i}", "shop", value)
        m(
            Event(
                "tool.finished",
                f"s{i}",
                1,
                1.0,
                {"name": value, "is_error": False, "duration_ms": 3},
            ),
            tag,
        )
        m(Event("model.response", f"s{i}", 1, 1.0, {"model": value, "latency_ms": 5}), tag)
    body, _ctype = m.render()
    samples = [s for f in text_string_to_metric_families(body.decode()) for s in f.samples]
    assert not any(s.name.startswith("evil") for s in samples)
    tools = {s.labels["tool"] for s in samples if s.name == "tether_tool_calls_total"}
    assert tools == {v[:80] for v in _HOSTILE}
    versions = {s.labels["version"] for s in samples if s.name == "tether_model_calls_total"}
    assert versions == set(_HOSTILE)


def test_a_lone_surrogate_in_a_label_does_not_break_every_scrape() -> None:
    m = Metrics()
    tag = SessionTag("s1", "shop", "1")
    m(Event("tool.finished", "s1", 1, 1.0, {"name": "\ud800", "is_error": True}), tag)
    body, _ = m.render()
    assert b"tether_tool_calls_total" in body


async def test_made_up_tool_names_do_not_become_label_values() -> None:
    @tether.tool(reads=True)
    def look(order_id: str) -> str:
        """Look.

        Args:
            order_id: The order.
        """
        return order_id

    made_up = [call(f"exfil_{i}", x="1") for i in range(12)]
    script: list[Any] = [made_up[:6], made_up[6:], "done"]
    agent = Agent(
        name="shop",
        instructions="x",
        models=(ScriptedModel(script, name="scripted"),),
        tools=(look,),
    )
    m = Metrics()
    async with Runtime(observers=[m]) as rt:
        await rt.run(agent, "hi")
    body, _ = m.render()
    tools = {
        s.labels["tool"]
        for f in text_string_to_metric_families(body.decode())
        for s in f.samples
        if "tool" in s.labels
    }
    assert len(tools) <= 2, sorted(tools)  # the declared tool, and at most one bucket


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer s3cre",
        "Bearer s3cret2",
        "Basic s3cret",
        "Bearer s3crét".encode(),
    ],
)
async def test_metrics_with_a_wrong_token_is_401_without_echoing_it(
    header: str | bytes | None,
) -> None:
    from fastapi import FastAPI

    from tether.surfaces.server.metrics_route import metrics_router

    api = FastAPI()
    api.include_router(metrics_router(Metrics(), token="s3cret"))
    headers = {} if header is None else {"Authorization": header}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t") as c:
        r = await c.get("/metrics", headers=headers)
    assert r.status_code == 401
    assert "s3cret" not in r.text


# =====================================================================================
# Logs and traces: secrets
# =====================================================================================


def _log_once(fmt: str, logger: str, *args: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TETHER_LOG_FORMAT", fmt)
    monkeypatch.delenv("TETHER_LOG_LEVEL", raising=False)
    monkeypatch.delenv("TETHER_REDACT_PATTERNS", raising=False)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buf = io.StringIO()
    try:
        configure_logging("DEBUG", stream=buf)
        log = logging.getLogger(logger)
        log.warning(*args)
        try:
            raise RuntimeError(args[0] % args[1:] if len(args) > 1 else args[0])
        except RuntimeError:
            log.exception("tool raised")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    return buf.getvalue()


SECRET = "Zq9secretVALUE7x"


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize(
    "args",
    [
        (
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5",
            "POST",
            f"/v1/sessions?api_key={SECRET}",
            "1.1",
            201,
        ),
        (f"tool failed: Invalid API key sk-ant-api03-{SECRET}",),
        (f"Authorization: Bearer {SECRET}",),
        (f"cannot reach postgresql://app:{SECRET}@db:5432/x",),
        (f"GET https://api.example.com/x?a=1&token={SECRET}",),
        (f"key tk_abc123_{SECRET}",),
    ],
    ids=[
        "access-line-api-key",
        "provider-key",
        "bearer",
        "url-password",
        "query-token",
        "tether-key",
    ],
)
def test_documented_secret_shapes_are_redacted(
    fmt: str, args: tuple[Any, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _log_once(fmt, "tether.breakit.access", *args, monkeypatch=monkeypatch)
    assert SECRET not in out
    assert "[REDACTED]" in out


def test_access_lines_are_redacted_under_uvicorn_factory(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging.config

    import uvicorn.config

    for name in ("TETHER_LOG_FORMAT", "TETHER_LOG_LEVEL", "TETHER_REDACT_PATTERNS"):
        monkeypatch.delenv(name, raising=False)
    names = ("uvicorn", "uvicorn.access", "uvicorn.error", "")
    saved = {
        n: (
            logging.getLogger(n).handlers[:],
            logging.getLogger(n).propagate,
            logging.getLogger(n).level,
        )
        for n in names
    }
    buf = io.StringIO()
    try:
        logging.config.dictConfig(uvicorn.config.LOGGING_CONFIG)  # uvicorn, before the factory
        configure_logging("INFO", stream=buf)  # app_from_env
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5",
            "POST",
            f"/v1/sessions?api_key=sk-proj-{SECRET}",
            "1.1",
            201,
        )
    finally:
        for n, (handlers, propagate, level) in saved.items():
            lg = logging.getLogger(n)
            lg.handlers[:] = handlers
            lg.propagate = propagate
            lg.setLevel(level)
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err + buf.getvalue()


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize(
    "text",
    [
        f"GET https://auth.example.com/token?client_id=a&client_secret={SECRET}",
        f"GET https://api.example.com/x?refresh_token={SECRET}",
        f"GET https://b.s3.amazonaws.com/k?X-Amz-Credential=a&X-Amz-Signature={SECRET}",
        f"cannot reach postgresql://app:ab/{SECRET}@db:5432/x",
        f"connection failed: host=db user=app password={SECRET} dbname=x",
    ],
    ids=[
        "client_secret",
        "refresh_token",
        "x-amz-signature",
        "url-password-with-slash",
        "libpq-dsn",
    ],
)
def test_credential_shapes_outside_the_fixed_list_are_redacted(
    fmt: str, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert SECRET not in _log_once(fmt, "tether.test", text, monkeypatch=monkeypatch)


async def test_a_tool_error_text_is_not_exported_without_capture_content() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tether.surfaces.ops import Tracing

    @tether.tool(reads=True)
    def lookup(email: str) -> str:
        """Look a customer up.

        Args:
            email: The customer's email.
        """
        raise RuntimeError(f"CRM refused {email} with key sk-live-{SECRET}")

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    agent = Agent(
        name="shop",
        instructions="x",
        tools=(lookup,),
        models=(ScriptedModel([call("lookup", email="ava@example.com"), "Sorry."], name="s"),),
    )
    async with Runtime(observers=[Tracing(provider)]) as rt:
        await rt.run(agent, "find me")
    exported = " ".join(
        f"{s.status.description} {dict(s.attributes or {})}" for s in exporter.get_finished_spans()
    )
    assert SECRET not in exported
    assert "ava@example.com" not in exported


# =====================================================================================
# PostgreSQL: errors of the database itself
# =====================================================================================


def _pg_or_skip() -> str:
    from tests.store.conftest import postgres_url, require_postgres

    require_postgres()
    return postgres_url()


@pytest.mark.postgres
def test_a_database_that_does_not_exist_is_a_config_error() -> None:
    base = _pg_or_skip().rsplit("/", 1)[0]
    r = runner.invoke(
        app, ["rollback", "shop", "--db", f"{base}/no_such_db_{uuid.uuid4().hex[:6]}"]
    )
    assert r.exit_code == 2, r.output
    assert "internal error" not in r.output


@pytest.mark.postgres
def test_an_overlong_version_label_is_refused_clearly_on_postgresql() -> None:
    from tether.surfaces.cli.app import _run_async

    url = _pg_or_skip()
    schema = f"tether_test_{uuid.uuid4().hex[:12]}"

    async def work() -> None:
        store = await SQLStore.open(url, schema=schema)
        try:
            await _reg(VersionStore(store), _agent("9" * 300))
        finally:
            await store.aclose()

    async def drop() -> None:
        from tests.store.conftest import drop_schema

        await drop_schema(schema)

    caught: BaseException | None = None
    try:
        _run_async(work)
    except Exception as exc:  # the CLI's own refusal is typer.Exit
        caught = exc
    finally:
        asyncio.run(drop())
    assert type(caught).__name__ == "Exit", repr(caught)
