"""The canary monitor: compare a canary with the active version on live signals, and
roll it back by itself when it is worse.

Every replica runs :meth:`CanaryMonitor.run`; each check reads, from the
store, what sessions of each version did since the canary was deployed
(:meth:`~tether.store.versions.VersionStore.signals`): turns that ended
``failed``, final answers that did not own up to a failed tool, answers
that claimed an action no tool did, approvals a person denied, breakers
opened, and cost per session. Each signal is compared per session. A
signal *breaches* when the canary's rate exceeds the active version's by
more than ``margin`` **and** is more than ``ratio`` times it: both, so that
noise on small rates (0 vs 1 failure) and small differences on large rates
do not trip it. Nothing is judged before the canary has ``min_sessions``
sessions. One breach rolls the canary back (one ``UPDATE ... WHERE state =
'canary'``: two replicas do it once) and raises an alert.

The defaults (:class:`CanaryPolicy`) and how to set them from the
environment are in docs/operations.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from tether.exceptions import ConfigError
from tether.store.versions import AgentVersion, VersionError, VersionSignals, VersionStore

__all__ = ["CanaryMonitor", "CanaryPolicy", "CanaryVerdict", "Threshold", "judge"]

log = logging.getLogger("tether.canary")


@dataclass(frozen=True, slots=True)
class Threshold:
    """Breached when ``canary > active + margin`` and ``canary > active * ratio``."""

    margin: float
    ratio: float

    def __post_init__(self) -> None:
        # written so that NaN fails (every comparison with NaN is false), and inf: either
        # would silently turn the signal off
        if not (0 <= self.margin < math.inf and 1 <= self.ratio < math.inf):
            raise ConfigError(
                "a canary threshold needs a finite margin >= 0 and a finite ratio >= 1, "
                f"not margin={self.margin}, ratio={self.ratio}"
            )

    def breached(self, canary: float, active: float) -> bool:
        return canary > active + self.margin and canary > active * self.ratio


#: the signals compared, as attributes of VersionSignals, with what each means
SIGNALS: dict[str, str] = {
    "failed_turns": "failed turns per session",
    "unacknowledged_failures": "answers hiding a failed tool per session",
    "unsupported_claims": "answers claiming an action no tool did per session",
    "denials": "approvals denied per session",
    "breaker_openings": "breaker openings per session",
    "cost": "cost per session (USD)",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class CanaryPolicy:
    """When a canary is rolled back. Rates are per session; see the module docstring."""

    min_sessions: int = 20
    interval: float = 30.0
    failed_turns: Threshold = field(default_factory=lambda: Threshold(0.05, 2.0))
    unacknowledged_failures: Threshold = field(default_factory=lambda: Threshold(0.05, 2.0))
    unsupported_claims: Threshold = field(default_factory=lambda: Threshold(0.05, 2.0))
    denials: Threshold = field(default_factory=lambda: Threshold(0.10, 2.0))
    breaker_openings: Threshold = field(default_factory=lambda: Threshold(0.05, 2.0))
    cost: Threshold = field(default_factory=lambda: Threshold(0.0, 1.5))

    def __post_init__(self) -> None:
        if not (self.min_sessions >= 1 and 0 < self.interval < math.inf):  # NaN fails
            raise ConfigError(
                "CanaryPolicy: min_sessions >= 1 and a finite interval > 0, "
                f"not min_sessions={self.min_sessions}, interval={self.interval}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> CanaryPolicy:
        """``TETHER_CANARY_MIN_SESSIONS``, ``TETHER_CANARY_INTERVAL`` and, per signal,
        ``TETHER_CANARY_<SIGNAL>=MARGIN,RATIO`` (e.g. ``TETHER_CANARY_FAILED_TURNS=0.02,1.5``).

        A value that is not a finite number (``abc``, ``nan``, ``inf``), a count below
        1, an interval not above 0, a negative margin or a ratio below 1 is a
        :class:`~tether.exceptions.ConfigError` naming the variable.
        """
        values: dict[str, Any] = {}
        name = "TETHER_CANARY_MIN_SESSIONS"
        raw = environ.get(name)
        if raw is not None:
            count = raw.strip()
            if not count.isdigit() or int(count) < 1:
                raise ConfigError(f"{name}={raw!r} must be a whole number, 1 or more")
            values["min_sessions"] = int(count)
        name = "TETHER_CANARY_INTERVAL"
        raw = environ.get(name)
        if raw is not None:
            interval = _finite(raw)
            if interval is None or interval <= 0:
                raise ConfigError(
                    f"{name}={raw!r} must be a number of seconds greater than 0 (e.g. 30)"
                )
            values["interval"] = interval
        for signal in SIGNALS:
            name = f"TETHER_CANARY_{signal.upper()}"
            raw = environ.get(name)
            if raw is None:
                continue
            first, _, second = raw.partition(",")
            margin, ratio = _finite(first), _finite(second) if second.strip() else 1.0
            if margin is None or ratio is None or margin < 0 or ratio < 1:
                raise ConfigError(
                    f"{name}={raw!r} must be MARGIN,RATIO: a margin of 0 or more and a ratio "
                    f"of 1 or more, both finite numbers (e.g. {name}=0.05,2)"
                )
            values[signal] = Threshold(margin, ratio)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = {"margin": v.margin, "ratio": v.ratio} if isinstance(v, Threshold) else v
        return out


def _finite(raw: str) -> float | None:
    """``raw`` as a finite number, or ``None`` (not a number, ``nan``, ``inf``)."""
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def judge(canary: VersionSignals, active: VersionSignals, policy: CanaryPolicy) -> list[str]:
    """Why the canary is worse than the active version (empty: it is not, or too early)."""
    if canary.sessions < policy.min_sessions:
        return []
    reasons = []
    for name, meaning in SIGNALS.items():
        threshold: Threshold = getattr(policy, name)
        c, a = canary.rate(name), active.rate(name)
        if threshold.breached(c, a):
            reasons.append(f"{meaning}: canary {c:.3g}, active {a:.3g}")
    return reasons


@dataclass(frozen=True, slots=True)
class CanaryVerdict:
    """One check of one agent's canary."""

    agent: str
    canary: str | None
    outcome: str  # none | waiting | healthy | rolled_back
    reasons: tuple[str, ...] = ()
    signals: dict[str, Any] = field(default_factory=dict)


OnRollback = Callable[[AgentVersion, AgentVersion | None, list[str]], Awaitable[None]]


class CanaryMonitor:
    """Checks each agent's canary against its active version; rolls back what is worse."""

    def __init__(
        self,
        versions: VersionStore,
        *,
        policy: CanaryPolicy | None = None,
        on_rollback: OnRollback | None = None,
    ) -> None:
        self.versions = versions
        self.policy = policy if policy is not None else CanaryPolicy()
        self.on_rollback = on_rollback

    async def check(self, agent: str) -> CanaryVerdict:
        active, canary = await self.versions.serving(agent)
        if canary is None:
            return CanaryVerdict(agent, None, "none")
        since = canary.created_at
        c = await self.versions.signals(agent, canary.version, since=since)
        a = (
            VersionSignals()
            if active is None
            else await self.versions.signals(agent, active.version, since=since)
        )
        signals = {"canary": c.to_dict(), "active": a.to_dict()}
        if c.sessions < self.policy.min_sessions:
            return CanaryVerdict(agent, canary.version, "waiting", signals=signals)
        reasons = judge(c, a, self.policy)
        if not reasons:
            return CanaryVerdict(agent, canary.version, "healthy", signals=signals)
        why = "; ".join(reasons)
        try:
            taken, serving = await self.versions.rollback(
                agent, by="canary-monitor", reason=f"live signals: {why}", expect=canary.version
            )
        except VersionError:  # another replica rolled it back (or it was promoted) meanwhile
            return CanaryVerdict(agent, canary.version, "none", signals=signals)
        log.error("canary %s of %s rolled back: %s", taken.version, agent, why)
        if self.on_rollback is not None:
            await self.on_rollback(taken, serving, reasons)
        return CanaryVerdict(agent, canary.version, "rolled_back", tuple(reasons), signals)

    async def run(self, agents: Callable[[], list[str]], stop: asyncio.Event) -> None:
        """Check every agent each ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            for agent in agents():
                try:
                    await self.check(agent)
                except Exception as exc:  # the store is down, a bug: check again next time
                    log.warning("canary check of %s failed: %s", agent, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.policy.interval)
