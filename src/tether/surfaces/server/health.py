"""Readiness that asks the agent: the store answers, and each agent's model chain does.

:func:`probe_agent` sends the agent's :class:`~tether.spec.health.HealthCheck`
message through its model chain (no tools, nothing stored) and judges the
answer: ready only if the *primary* model answered in time and the answer
matches. :class:`Readiness` caches each result for the check's ``interval``
so that a load balancer probing every second costs one model call per
interval; failures are cached for a shorter time so recovery shows fast.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from tether.exceptions import TetherError
from tether.runtime import Runtime
from tether.spec.agent import Agent

log = logging.getLogger("tether.server.health")

__all__ = ["Readiness", "probe_agent"]


async def probe_agent(rt: Runtime, agent: Agent) -> dict[str, Any]:
    """``{"ok": bool, "detail": str, ...}`` for one agent's model chain."""
    check = agent.health
    primary = agent.models[0] if isinstance(agent.models[0], str) else agent.models[0].name
    started = time.perf_counter()
    try:
        async with asyncio.timeout(check.timeout):
            answer = await rt.probe(agent, check.message, max_tokens=check.max_tokens)
    except TimeoutError:
        return {
            "ok": False,
            "model": primary,
            "detail": f"the model chain did not answer within {check.timeout:g} s",
        }
    except TetherError as exc:
        return {"ok": False, "model": primary, "detail": str(exc)[:500]}
    latency = round((time.perf_counter() - started) * 1000, 1)
    text = answer.response.message.text or ""
    out: dict[str, Any] = {"model": answer.model.name, "latency_ms": latency}
    if answer.index > 0:
        return out | {
            "ok": False,
            "detail": f"the primary model {primary} is unavailable (paused by its breaker or "
            f"failing); the backup {answer.model.name} answered",
        }
    if not check.accepts(text):
        return out | {
            "ok": False,
            "detail": f"the answer {text[:80]!r} does not match {check.expect!r}",
        }
    return out | {"ok": True, "detail": "answered as expected"}


class Readiness:
    """``/readyz``: the store, then every served agent, each result cached."""

    def __init__(
        self,
        rt: Runtime,
        agents: dict[str, Agent] | Callable[[], list[Agent]],
        *,
        fail_ttl: float = 2.0,
        problems: Mapping[str, str] | None = None,
        on_failure: Callable[[dict[str, dict[str, Any]]], Awaitable[None]] | None = None,
    ) -> None:
        self.rt = rt
        #: what to probe: the versions new sessions start on (each agent's active and canary)
        self.agents: Callable[[], list[Agent]] = (
            (lambda: list(agents.values())) if isinstance(agents, dict) else agents
        )
        self.fail_ttl = fail_ttl
        #: by agent: why this replica cannot serve the version the registry made active
        self.problems = problems if problems is not None else {}
        self.on_failure = on_failure
        self._cache: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def check(self) -> tuple[bool, dict[str, dict[str, Any]]]:
        checks: dict[str, dict[str, Any]] = {"store": await self._store()}
        agents = self.agents()
        names = [a.name for a in agents]
        results = await asyncio.gather(*(self._agent(a) for a in agents))
        for agent, result in zip(agents, results, strict=True):
            key = f"agent:{agent.name}"
            if names.count(agent.name) > 1:
                key += f"@{agent.version}"
            checks[key] = result | {"version": agent.version}
            problem = self.problems.get(agent.name)
            if problem is not None:
                checks[key] = checks[key] | {"ok": False, "detail": problem}
        ok = all(c["ok"] for c in checks.values())
        if not ok and self.on_failure is not None:
            try:
                await self.on_failure(checks)
            except Exception:  # an alert that cannot be sent must not fail the probe
                log.exception("could not raise the readiness alert")
        return ok, checks

    async def _store(self) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(5.0):
                await self.rt.store.list_sessions(limit=1)
        except (TimeoutError, TetherError, OSError) as exc:
            return {"ok": False, "detail": f"the session store did not answer: {exc}"[:500]}
        return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}

    async def _agent(self, agent: Agent) -> dict[str, Any]:
        now = time.monotonic()
        key = (agent.name, agent.version)
        hit = self._cache.get(key)
        if hit is not None and now < hit[0]:
            return hit[1] | {"cached": True}
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # concurrent probes share one model call
            hit = self._cache.get(key)
            if hit is not None and time.monotonic() < hit[0]:
                return hit[1] | {"cached": True}
            result = await probe_agent(self.rt, agent)
            ttl = (
                agent.health.interval if result["ok"] else min(agent.health.interval, self.fail_ttl)
            )
            self._cache[key] = (time.monotonic() + ttl, result)
            return result
