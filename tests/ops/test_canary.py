"""The canary: a share of new sessions, compared on live signals, rolled back by itself.

Two versions of one agent share a real SQLite store: the active one answers,
the canary's model fails every call (the test kit's ``FaultyModel``). New
sessions are routed by the server's :class:`VersionRouter`; the monitor
reads what each version's sessions did from the store, rolls the canary
back, and the alert reaches a sink. Sessions already on the canary stay on
it.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tether import Agent
from tether.exceptions import RunError
from tether.runtime import Runtime
from tether.spec.policy import BreakerPolicy, RetryPolicy
from tether.store import SQLStore
from tether.store.versions import VersionSignals, VersionState, VersionStore
from tether.surfaces.ops.alerts import Alert, Alerter, AlertKind
from tether.surfaces.ops.canary import CanaryMonitor, CanaryPolicy, Threshold, judge
from tether.surfaces.ops.definition import content_hash, definition_of
from tether.surfaces.server.operations import Operations
from tether.surfaces.server.versions import VersionRouter
from tether.testing import FaultyModel, FunctionModel


class Sink:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    async def send(self, alert: Alert) -> None:
        self.alerts.append(alert)


def _versions() -> tuple[Agent, Agent]:
    good = Agent(
        name="shop",
        version="1",
        instructions="Help.",
        models=(FunctionModel(lambda _r: "Happy to help.", name="scripted-good", record=False),),
    )
    broken = FaultyModel(
        FunctionModel(lambda _r: "never", name="scripted-bad", record=False),
        rate=1.0,
        kinds=["503"],
    )
    bad = Agent(
        name="shop",
        version="2",
        instructions="Help, in a new way.",
        models=(broken,),
        retry=RetryPolicy(max_retries=0),
        breaker=BreakerPolicy(failure_threshold=1000),
    )
    return good, bad


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLStore]:
    s = await SQLStore.open(f"sqlite+aiosqlite:///{tmp_path / 'c.sqlite'}")
    yield s
    await s.aclose()


async def _deploy(vs: VersionStore, agent: Agent, canary: float | None = None) -> None:
    d = definition_of(agent)
    await vs.register(
        agent.name, agent.version, hash=content_hash(d), definition=d, canary_percent=canary
    )


async def _serve(router: VersionRouter, rt: Runtime, n: int) -> dict[str, list[str]]:
    """Start ``n`` sessions through the router; session ids by version."""
    by_version: dict[str, list[str]] = {"1": [], "2": [], "3": []}
    for _ in range(n):
        agent = await router.for_new("shop")
        s = rt.session(agent)
        with contextlib.suppress(RunError):
            await s.send("Where is my order?")
        by_version[agent.version].append(s.id)
    return by_version


async def test_a_failing_canary_rolls_back_by_itself_and_alerts(store: SQLStore) -> None:
    good, bad = _versions()
    vs = VersionStore(store)
    await _deploy(vs, good)
    await _deploy(vs, bad, canary=50)
    sink = Sink()
    policy = CanaryPolicy(min_sessions=8)
    ops = Operations(metrics=None, tracing=None, alerter=Alerter([sink]), canary=policy)
    router = VersionRouter([good, bad], registry=vs, poll=0.0, rng=random.Random(7))
    async with Runtime(store=store, close_store=False) as rt:
        served = await _serve(router, rt, 40)
        assert len(served["2"]) >= 8, served  # the canary got its share
        assert len(served["1"]) >= 8, served

        monitor = CanaryMonitor(vs, policy=policy, on_rollback=ops.rolled_back)
        verdict = await monitor.check("shop")
        assert verdict.outcome == "rolled_back"
        assert any(r.startswith("failed turns per session") for r in verdict.reasons)
        assert verdict.signals["canary"]["failed_turns"] == len(served["2"])
        assert verdict.signals["active"]["failed_turns"] == 0

        assert (await vs.get("shop", "2")).state == VersionState.ROLLED_BACK  # type: ignore[union-attr]
        (alert,) = sink.alerts
        assert alert.kind == AlertKind.CANARY_ROLLED_BACK
        assert (alert.agent, alert.version) == ("shop", "2")
        assert "rolled back to 1" in alert.summary
        log = await vs.history("shop")
        assert log[0]["action"] == "rollback"
        assert log[0]["by"] == "canary-monitor"

        # new sessions go to the active version only; the canary's sessions stay on it
        after = await _serve(router, rt, 10)
        assert after["2"] == []
        rec = await store.get(served["2"][0])
        assert router.for_session(rec) is bad
        # a second check (another replica) finds nothing left to do
        assert (await monitor.check("shop")).outcome == "none"
    await ops.alerter.aclose()


async def test_a_healthy_canary_stays_and_a_young_one_waits(store: SQLStore) -> None:
    good, _bad = _versions()
    twin = Agent(
        name="shop",
        version="3",
        instructions="Help, briefly.",
        models=(FunctionModel(lambda _r: "Sure.", name="scripted-twin", record=False),),
    )
    vs = VersionStore(store)
    await _deploy(vs, good)
    await _deploy(vs, twin, canary=50)
    router = VersionRouter([good, twin], registry=vs, poll=0.0, rng=random.Random(3))
    monitor = CanaryMonitor(vs, policy=CanaryPolicy(min_sessions=5))
    async with Runtime(store=store, close_store=False) as rt:
        assert (await monitor.check("shop")).outcome == "waiting"
        await _serve(router, rt, 30)
        verdict = await monitor.check("shop")
    assert verdict.outcome == "healthy"
    assert (await vs.get("shop", "3")).state == VersionState.CANARY  # type: ignore[union-attr]


def test_a_breach_needs_both_the_margin_and_the_ratio() -> None:
    t = Threshold(margin=0.05, ratio=2.0)
    assert t.breached(0.30, 0.10)
    assert not t.breached(0.12, 0.10)  # within the margin
    assert not t.breached(0.60, 0.50)  # past the margin, under twice
    assert not t.breached(0.0, 0.0)
    with pytest.raises(Exception, match="margin"):
        Threshold(margin=-1, ratio=2)


def test_judge_compares_per_session_rates_after_min_sessions() -> None:
    policy = CanaryPolicy(min_sessions=10)
    active = VersionSignals(sessions=100, denials=5, cost=10.0)
    assert judge(VersionSignals(sessions=9, denials=9), active, policy) == []
    reasons = judge(VersionSignals(sessions=10, denials=5, cost=3.0), active, policy)
    assert reasons == [
        "approvals denied per session: canary 0.5, active 0.05",
        ("cost per session (USD): canary 0.3, active 0.1"),
    ]


def test_the_policy_reads_the_environment() -> None:
    policy = CanaryPolicy.from_env(
        {"TETHER_CANARY_MIN_SESSIONS": "50", "TETHER_CANARY_FAILED_TURNS": "0.02,1.5"}
    )
    assert policy.min_sessions == 50
    assert policy.failed_turns == Threshold(0.02, 1.5)
    with pytest.raises(Exception, match="TETHER_CANARY"):
        CanaryPolicy.from_env({"TETHER_CANARY_MIN_SESSIONS": "many"})
