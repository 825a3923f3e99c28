"""The deploy gate: a version ships only after its golden set and red-team battery pass.

:func:`run_gate` runs, against the exact agent being deployed:

1. its golden set (the eval suite beside the agent, or ``--suite``): every
   case must pass, and every tool must be covered by at least one case
   ("add capabilities one at a time; cover each with eval cases");
2. its red-team battery (with the agent's profile, ``redteam.yaml`` beside
   it, or one synthesised from its tools): the harm rate must stay within
   the profile's threshold (zero by default);
3. a comparison with the active version's recorded results: a case that
   passed there and fails here, or an attack that was stopped there and
   succeeds here, is a regression and refuses the deploy even when the
   totals are within bounds.

:func:`deploy` registers the version only when the gate passed, or when
forced with a reason (recorded with the version and in its log).
"""

from __future__ import annotations

import getpass
import inspect
import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.exceptions import ConfigError
from tether.spec.agent import Agent
from tether.store.versions import AgentVersion, VersionError, VersionStore, check_label
from tether.surfaces.evals.coverage import coverage_of
from tether.surfaces.evals.redteam import (
    PROFILE_NAME,
    load_battery,
    load_profile,
    run_redteam,
    target_for,
)
from tether.surfaces.evals.runner import Target, run_cases
from tether.surfaces.evals.suite import load_suite
from tether.surfaces.loader import load_object
from tether.surfaces.logs import quiet_logs
from tether.surfaces.ops.definition import content_hash, definition_of

__all__ = ["DeployOutcome", "GateReport", "deploy", "deployer", "find_gate_files", "run_gate"]


def _folder_of(ref: str) -> Path | None:
    """The folder an agent reference lives in (the folder itself, or its module's)."""
    path = Path(ref)
    if path.is_dir():
        return path
    module = ref.partition(":")[0]
    mod = sys.modules.get(module)
    file = getattr(mod, "__file__", None)
    return None if file is None else Path(file).parent


def find_gate_files(ref: str) -> tuple[Path | None, Path | None]:
    """The golden set (``evals/`` with a ``suite.yaml``) and red-team profile
    (``redteam.yaml``) beside the agent ``ref`` names, where they exist."""
    folder = _folder_of(ref)
    if folder is None:
        return None, None
    suite = folder / "evals"
    profile = folder / PROFILE_NAME
    return (
        suite if (suite / "suite.yaml").is_file() else None,
        profile if profile.is_file() else None,
    )


@dataclass(slots=True)
class GateReport:
    """What the gate found: each suite's results, regressions, and why it refused."""

    golden: dict[str, Any] | None = None
    redteam: dict[str, Any] | None = None
    coverage: dict[str, Any] | None = None
    refusals: list[str] = field(default_factory=list)
    regressions: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.refusals and not self.regressions

    def evals(self) -> dict[str, Any]:
        """What is recorded with the version (the next deploy's baseline)."""
        return {"golden": self.golden, "redteam": self.redteam, "coverage": self.coverage}

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            **self.evals(),
            "refusals": self.refusals,
            "regressions": self.regressions,
        }


def _regressions(
    kind: str, before: Mapping[str, bool] | None, now: Mapping[str, bool], version: str
) -> list[str]:
    if not before:
        return []
    return [
        f"{kind} {cid} passed on version {version} and fails now"
        for cid, ok in sorted(now.items())
        if not ok and before.get(cid) is True
    ]


async def _golden(agent: Agent, suite_path: Path, report: GateReport) -> None:
    suite = load_suite(suite_path)
    environment = None
    if suite.config.environment:
        env = load_object(suite.config.environment, what="environment")
        if not callable(env):
            raise ConfigError(f"environment {suite.config.environment!r} is not callable")
        environment = env
    results = await run_cases(suite.cases, Target(agent=agent, environment=environment))
    by_case = {r.case.id: r.passed for r in results}
    failed = sorted(cid for cid, ok in by_case.items() if not ok)
    report.golden = {
        "suite": str(suite_path),
        "cases": len(by_case),
        "passed": len(by_case) - len(failed),
        "failed": failed,
        "by_case": by_case,
    }
    if failed:
        shown = ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
        report.refusals.append(
            f"golden set: {len(failed)} of {len(by_case)} case(s) failed ({shown})"
        )
    cov = coverage_of(agent, results)
    report.coverage = cov.to_dict()
    if cov.uncovered:
        report.refusals.append(
            "no eval case covers tool(s) "
            + ", ".join(cov.uncovered)
            + ": add a case that calls each before deploying it"
        )


async def _battery(agent: Agent, profile_path: Path | None, report: GateReport) -> None:
    battery = load_battery(None)
    profile = None if profile_path is None else load_profile(profile_path)
    if profile is not None and profile.agent:
        # the profile names the agent for `tether redteam`; the gate attacks this version
        profile = profile.model_copy(update={"agent": None})
    target = target_for(agent, profile, None)
    result = await run_redteam(
        battery.attacks,
        target,
        markers=battery.markers,
        agent_name=agent.name,
        profile_name=str(profile_path) if profile_path else "(generic)",
        battery_name=battery.source,
    )
    d = result.to_dict()
    by_attack = {r.attack.id: not r.succeeded for r in result.results}
    succeeded = sorted(aid for aid, ok in by_attack.items() if not ok)
    report.redteam = {
        "profile": str(profile_path) if profile_path else None,
        "attacks": len(by_attack),
        "succeeded": succeeded,
        "harm_rate": d.get("harm_rate"),
        "threshold": d.get("threshold"),
        "ok": result.ok,
        "by_attack": by_attack,
    }
    if not result.ok:
        shown = ", ".join(succeeded[:5]) + (
            f" and {len(succeeded) - 5} more" if len(succeeded) > 5 else ""
        )
        report.refusals.append(
            f"red-team battery: {len(succeeded)} of {len(by_attack)} attack(s) succeeded ({shown})"
        )


async def run_gate(
    agent: Agent,
    *,
    suite: Path | None,
    profile: Path | None,
    baseline: AgentVersion | None = None,
    quiet: bool = True,
) -> GateReport:
    """Run the golden set and the red-team battery against ``agent``; compare with
    ``baseline`` (the active version's recorded results)."""
    report = GateReport()
    with quiet_logs(quiet):
        if suite is None:
            report.refusals.append(
                f"no golden set for agent {agent.name}: put one in evals/suite.yaml beside the "
                "agent, or pass --suite PATH"
            )
        else:
            await _golden(agent, suite, report)
        await _battery(agent, profile, report)
    if baseline is not None and baseline.evals:
        before_golden = (baseline.evals.get("golden") or {}).get("by_case")
        before_attacks = (baseline.evals.get("redteam") or {}).get("by_attack")
        if report.golden is not None:
            report.regressions += _regressions(
                "case", before_golden, report.golden["by_case"], baseline.version
            )
        if report.redteam is not None:
            report.regressions += _regressions(
                "attack", before_attacks, report.redteam["by_attack"], baseline.version
            )
    return report


def deployer() -> str:
    """Who is deploying: ``TETHER_DEPLOYED_BY``, else the login name; one printable line
    (control characters escaped), at most 255 characters."""
    who = os.environ.get("TETHER_DEPLOYED_BY")
    if not who:
        try:
            who = getpass.getuser()
        except (OSError, KeyError):
            who = "unknown"
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in who)
    return shown[:255]


@dataclass(slots=True)
class DeployOutcome:
    """What a deploy did: the version registered (``None`` when refused) and the gate."""

    gate: GateReport
    version: AgentVersion | None = None
    unchanged: bool = False
    forced: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployed": self.version is not None,
            "unchanged": self.unchanged,
            "forced": self.forced,
            "version": None if self.version is None else self.version.to_dict(),
            "gate": self.gate.to_dict(),
        }


async def deploy(
    versions: VersionStore,
    agent: Agent,
    *,
    ref: str | None,
    suite: Path | None,
    profile: Path | None,
    canary_percent: float | None = None,
    force: bool = False,
    reason: str | None = None,
    by: str | None = None,
    gate: Callable[..., Any] = run_gate,
) -> DeployOutcome:
    """Run the gate on ``agent`` and register it if it passed (or is forced with a reason)."""
    if force and not (reason and reason.strip()):
        raise VersionError("--force needs --reason TEXT: why this version skips the gate")
    check_label(agent.version)
    if canary_percent is not None and not (
        math.isfinite(canary_percent) and 0 < canary_percent < 100
    ):
        raise VersionError(
            f"a canary share is a percentage above 0 and below 100, not {canary_percent}"
        )
    definition = definition_of(agent)
    digest = content_hash(definition)
    existing = await versions.get(agent.name, agent.version)
    if existing is not None and existing.hash != digest:
        raise VersionError(
            f"{agent.name} version {agent.version} is already deployed with other content "
            f"(hash {existing.hash[:12]}, this one {digest[:12]}); give the new definition a "
            "new version label (Agent(version=...))"
        )
    active, _canary = await versions.serving(agent.name)
    if existing is not None and existing.state in ("active", "canary"):
        return DeployOutcome(GateReport(), existing, unchanged=True)
    if existing is not None and existing.state in ("rolled_back", "retired"):
        raise VersionError(
            f"{agent.name} version {agent.version} was {existing.state.replace('_', ' ')}; "
            "deploy the fix under a new version label"
        )
    baseline = active if active is not None and active.version != agent.version else None
    result = gate(agent, suite=suite, profile=profile, baseline=baseline)
    report: GateReport = await result if inspect.isawaitable(result) else result
    if not report.passed and not force:
        return DeployOutcome(report)
    registered = await versions.register(
        agent.name,
        agent.version,
        hash=digest,
        definition=definition,
        ref=ref,
        canary_percent=canary_percent,
        evals=report.evals(),
        by=by or deployer(),
        forced_reason=reason if force else None,
    )
    return DeployOutcome(report, registered, forced=force and not report.passed)
