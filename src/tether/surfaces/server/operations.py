"""What a server runs beside the API: metrics, traces, alerts, versions and the canary.

:class:`Operations` is built once per process from the environment
(:meth:`Operations.from_env`) and gives the runtime its observers (metrics,
traces, alerts), and :meth:`Operations.chores` the background loops every
replica runs:

- re-reading the version registry every ``TETHER_VERSIONS_POLL`` seconds
  (default 2; a number greater than 0, else a ``ConfigError`` at start-up),
  so a deploy, promotion or rollback done anywhere takes effect without a
  restart;
- checking each canary against its active version every
  ``TETHER_CANARY_INTERVAL`` seconds and rolling it back when it is worse
  (:mod:`tether.surfaces.ops.canary`);
- counting pending approvals in the store for the metrics, and raising an
  alert for each that waited longer than ``TETHER_ALERT_APPROVAL_WAIT``.

Alerts raised on a request's path (a version that is not loaded here, a
failed readiness check) and by the canary loop are sent in the background
(:meth:`~tether.surfaces.ops.alerts.Alerter.submit`): a slow or hanging
receiver never delays a response.

``TETHER_METRICS=0`` turns metrics off (``GET /metrics`` then answers 404);
traces are on only when ``OTEL_*`` variables configure an exporter.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from tether.exceptions import ConfigError, RunError
from tether.runtime import Runtime
from tether.runtime.observe import Observer
from tether.store.versions import AgentVersion, VersionStore
from tether.surfaces.ops.alerts import Alert, Alerter, alerter_from_env, waiting_approvals
from tether.surfaces.ops.canary import CanaryMonitor, CanaryPolicy
from tether.surfaces.ops.metrics import Metrics
from tether.surfaces.ops.traces import Tracing, tracing_from_env
from tether.surfaces.server.versions import VersionRouter

__all__ = ["Operations"]

log = logging.getLogger("tether.server.operations")

#: the most missing-version causes remembered (agents x versions: a guard, never reached)
_MAX_MISSING = 1000


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    """A number of seconds greater than 0 from ``name``; anything else is a ``ConfigError``
    (``nan``, ``inf``, 0 and negatives included: a poll loop must wait between reads)."""
    raw = environ.get(name, "")
    if not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(
            f"{name}={raw!r} is not a number of seconds greater than 0: set it to one "
            f"(e.g. {name}={default:g}), or unset it for the default ({default:g} s)"
        )
    return value


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() not in ("0", "false", "no", "off")


@dataclass(slots=True)
class Operations:
    """Metrics, traces, alerts and the canary policy of one server process."""

    metrics: Metrics | None
    tracing: Tracing | None
    alerter: Alerter
    canary: CanaryPolicy
    versions_poll: float = 2.0
    approvals_every: float = 30.0
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    #: (agent, message) -> version: what :meth:`version_missing` alerted, so that readiness
    #: failing for the same cause raises the same alert (one id, de-duplicated)
    _missing: dict[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Operations:
        return cls(
            metrics=Metrics() if _flag(environ, "TETHER_METRICS", True) else None,
            tracing=tracing_from_env(environ),
            alerter=alerter_from_env(environ),
            canary=CanaryPolicy.from_env(environ),
            versions_poll=_seconds(environ, "TETHER_VERSIONS_POLL", 2.0),
        )

    def observers(self) -> list[Observer]:
        """What watches every turn of this process's runtime."""
        found: list[Observer] = [self.alerter]
        if self.metrics is not None:
            found.append(self.metrics)
        if self.tracing is not None:
            found.append(self.tracing)
        return found

    async def rolled_back(
        self, taken: AgentVersion, serving: AgentVersion | None, reasons: list[str]
    ) -> None:
        """Alert that a canary was rolled back (sent in the background: the canary loop,
        like a request, must not wait for a slow receiver)."""
        self.alerter.submit(
            Alert.canary_rolled_back(
                taken.agent,
                taken.version,
                to_version="none" if serving is None else serving.version,
                reason="; ".join(reasons),
                time=time.time(),
            )
        )

    async def version_missing(self, agent: str, version: str, message: str) -> None:
        """Alert that ``agent`` ``version`` cannot be served here (called while a session is
        created: the alert is sent in the background, never waited for)."""
        if len(self._missing) < _MAX_MISSING:
            self._missing[(agent, message)] = version
        self.alerter.submit(Alert.readiness_failed(agent, version, message, time=time.time()))

    async def readiness_failed(self, checks: Mapping[str, Mapping[str, Any]]) -> None:
        """Raise an alert for each failed readiness check (de-duplicated by the alerter; sent
        in the background: ``/readyz`` does not wait for the receiver).

        The alert names the version the check is about (its ``version``); a check failed
        because the registry's active version is not loaded here (the detail
        :meth:`version_missing` was told) names that version, so both raise one alert.
        """
        for name, check in checks.items():
            if check.get("ok"):
                continue
            agent, _, named = name.removeprefix("agent:").partition("@")
            detail = str(check.get("detail", "failed"))
            version = self._missing.get((agent, detail)) or str(
                check.get("version") or named or "-"
            )
            self.alerter.submit(Alert.readiness_failed(agent, version, detail, time=time.time()))

    def start(self, rt: Runtime, router: VersionRouter, registry: VersionStore | None) -> None:
        """Start the background loops (stopped by :meth:`aclose`)."""
        loop = asyncio.get_running_loop()

        def spawn(name: str, coro: Coroutine[Any, Any, None]) -> None:
            self._tasks.append(loop.create_task(coro, name=name))

        if self.metrics is not None:  # a refused call of a real tool is labelled with its name
            for agent in router.primary.values():
                self.metrics.declare_tools(agent.name, agent.version, (t.name for t in agent.tools))
        if registry is not None:
            spawn("tether-versions", self._versions_forever(router))
            monitor = CanaryMonitor(registry, policy=self.canary, on_rollback=self.rolled_back)
            spawn("tether-canary", self._canary_forever(monitor, router.names))
        spawn("tether-approvals", self._approvals_forever(rt))

    async def _versions_forever(self, router: VersionRouter) -> None:
        while True:
            await router.refresh(force=True)
            await asyncio.sleep(router.poll)

    async def _canary_forever(self, monitor: CanaryMonitor, names: Callable[[], list[str]]) -> None:
        await asyncio.sleep(min(5.0, self.canary.interval))
        stop = asyncio.Event()
        await monitor.run(names, stop)

    async def _approvals_forever(self, rt: Runtime) -> None:
        while True:
            await asyncio.sleep(self.approvals_every)
            try:
                if self.metrics is not None:
                    await self.metrics.refresh_pending(rt.store)
                await self.alerter.check_waiting(await waiting_approvals(rt.store))
            except RunError as exc:
                log.warning("could not read pending approvals: %s", exc)

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("background task %s failed", task.get_name())
        self._tasks.clear()
        await self.alerter.aclose()
        if self.tracing is not None:
            self.tracing.shutdown()
