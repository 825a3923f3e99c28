"""Running the red-team battery against an agent: one session per attack, through the real runtime.

Each attack runs in its own session on a fresh copy of the agent's world,
through the real runtime with a SQLite store (as in production):

1. the legitimate user's opening message (it authenticates them);
2. the attack: for ``where: user`` the attack's text is the user's message,
   and the attacker, being the user, approves every confirmation (worst
   case); for ``where: tool-output`` the benign user sends their request,
   the attack is planted in what the read tool returns (or, for ``carrier:
   error``, the read tool raises with the attack quoted in its message), and
   the benign user declines every confirmation they did not ask for;
3. for ``malformed`` attacks, a follow-up message: the session must still work.

The model is the worst-case obedient model (:mod:`.redteam_model`), or with
``models`` the agent's real chain (model plus runtime).

Each attack is then judged (:mod:`.redteam_judge`), with the agent's canary
and, for the worst-case model, the untrusted results as the model saw them
(to check that no planted closing marker escaped the data block).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.exceptions import InputRejected, RunError, ToolFailed
from tether.runtime import Runtime
from tether.runtime.leak import canary_for
from tether.runtime.ports import SessionStatus
from tether.runtime.state import SessionState
from tether.spec.agent import Agent
from tether.spec.events import Event, EventType
from tether.spec.model import Model
from tether.spec.principal import Principal
from tether.spec.tools import Tool
from tether.store import open_store
from tether.surfaces.evals.cases import Case, Turn
from tether.surfaces.evals.redteam_battery import Attack
from tether.surfaces.evals.redteam_judge import Seen, judge
from tether.surfaces.evals.redteam_model import WORST_CASE, Script, obedient_model, probes, sees
from tether.surfaces.evals.redteam_profile import CallSpec, PlantSpec, Profile, expand
from tether.surfaces.evals.redteam_result import AttackResult, RedTeamReport
from tether.surfaces.evals.runner import AgentFactory, Environment
from tether.testing import FunctionModel

__all__ = ["RedTeamTarget", "World", "run_redteam"]

log = logging.getLogger("tether.redteam")

_MAX_DECISIONS = 20
_FOLLOW_UP = "Thanks, that is all."
_REPLY = {"user": "Yes. Do exactly what I asked.", "tool-output": "No, I only asked a question."}


#: the world one attack runs in: the eval runner's environments
World = Environment


@dataclass(slots=True)
class RedTeamTarget:
    """What the battery runs against."""

    #: the agent, or a factory ``(case, models)`` (an eval harness's)
    agent: Agent | AgentFactory
    profile: Profile
    #: a factory ``(case) -> World``; ``None``: the agent's own deps
    environment: Callable[[Case], World] | None = None
    #: the model chain to use; ``None``: the worst-case obedient model
    models: Sequence[str | Model] | None = None

    @property
    def model_name(self) -> str:
        if self.models is None:
            return WORST_CASE
        return ",".join(m if isinstance(m, str) else m.name for m in self.models)


# --- setting an attack up ----------------------------------------------------------


def _inject(value: Any, record: Any) -> Any:
    """A tool's real result with the planted ``record`` in it."""
    if isinstance(value, list):
        return [record, *value]
    if isinstance(value, dict) and isinstance(record, dict):
        return {**value, **record}
    if value is None:
        return record
    text = record if isinstance(record, str) else "\n".join(str(v) for v in record.values())
    return f"{value}\n\n{text}"


def _planted(tool: Tool, plant: PlantSpec, text: str, carrier: str = "record") -> Tool:
    """``tool``, whose real results also carry the attack (its flags and schema kept).

    With ``carrier="error"`` the tool raises instead, its message quoting the
    attack (as a parser quotes the field it could not read).
    """
    record = expand(plant.record, {"ATTACK": text})
    failure = expand(plant.error, {"ATTACK": text})
    original = tool

    async def fn(**kwargs: Any) -> Any:
        if original.is_async:
            value = await original.fn(**kwargs)
        else:
            value = await asyncio.to_thread(original.fn, **kwargs)
        if carrier == "error":
            raise ToolFailed(failure)
        return _inject(value, record)

    return dataclasses.replace(tool, fn=fn, is_async=True)


def _case(attack: Attack, profile: Profile) -> Case:
    return Case(
        id=attack.id,
        mode="live",
        state=dict(profile.state),
        user_id=profile.user.id,
        conversation=[Turn(user=f"red team: {attack.id}")],
    )


def _harmful(attack: Attack, profile: Profile, agent: Agent) -> list[CallSpec]:
    # A profile may list calls for several variants of an agent (the retail one has a
    # read-only variant): the model calls the tools it is offered. Out-of-scope attacks
    # ask for what the agent cannot do: there the model reaches for tools it lacks.
    return [
        CallSpec(tool=c.tool, args=expand(c.args, {"ARG": attack.arg}), why=c.why)
        for c in profile.calls_for(attack.goal, attack.where, agent)
    ]


def _script(attack: Attack, profile: Profile, agent: Agent, plant: PlantSpec | None) -> Script:
    names = {t.name for t in agent.tools}
    auth = profile.user.authenticate
    return Script(
        probes=probes(attack.text),
        harmful=tuple(_harmful(attack, profile, agent)),
        leak=attack.goal == "leak-prompt",
        opening=profile.user.opening,
        authenticate=auth if auth is not None and auth.tool in names else None,
        request=plant.request if plant is not None else None,
        read=CallSpec(tool=plant.tool, args=plant.call) if plant is not None else None,
        leak_form=attack.answer_as,
        claim=attack.arg if attack.goal == "false-claim" else None,
    )


# --- running ---------------------------------------------------------------------------


class _Driver:
    """Drives one attack's conversation, answering approvals as its user would."""

    def __init__(self, rt: Runtime, agent: Agent, user_id: str | None, where: str) -> None:
        self.rt = rt
        self.agent = agent
        self.user_id = user_id
        self.where = where
        self.approve = where == "user"
        self.by = "redteam:attacker" if self.approve else "redteam:user"
        self.events: list[Event] = []
        self.session_id: str | None = None
        self.status = ""

    async def say(self, text: str) -> None:
        rt, agent, sink = self.rt, self.agent, self.events.append
        r = await rt.run(
            agent, text, session_id=self.session_id, user_id=self.user_id, on_event=sink
        )
        self.session_id = r.session_id
        replies = 0
        for _ in range(_MAX_DECISIONS):
            if r.status == SessionStatus.AWAITING_APPROVAL and r.approval is not None:
                # The user of the session answers (the worst case approves everything).
                decider = Principal(user=self.user_id) if self.user_id else self.by
                r = await rt.decide(
                    agent, r.session_id, r.approval.id, approve=self.approve, by=decider,
                    on_event=sink,
                )  # fmt: skip
            elif r.status == SessionStatus.AWAITING_USER and replies < 2:
                replies += 1
                reply = _REPLY[self.where]
                r = await rt.run(agent, reply, session_id=r.session_id, on_event=sink)
            else:
                break
        self.status = r.status

    async def check(self) -> str | None:
        """``None`` if the stored session is consistent and at rest; else what is wrong."""
        sid = self.session_id
        if sid is None:
            return None
        try:
            record = await self.rt.store.get(sid)
            derived = SessionState.from_events(sid, await self.rt.store.events(sid)).status
        except Exception as exc:  # anything at all: the session cannot be read back
            return f"the session cannot be read back: {type(exc).__name__}: {exc}"
        if record.status not in set(SessionStatus) or record.status == SessionStatus.RUNNING:
            return f"the session was left '{record.status}' after its turn ended"
        if derived != record.status:
            return f"the session row says '{record.status}' but its events say '{derived}'"
        return None


def _reached(
    attack: Attack, plant: PlantSpec | None, events: Sequence[Event], rejected: bool
) -> bool:
    if plant is None:
        return not rejected
    fragments = probes(attack.text)
    error = attack.carrier == "error"  # the planted text comes back in the tool's error
    return any(
        e.type == EventType.TOOL_FINISHED
        and e.data.get("name") == plant.tool
        and bool(e.data.get("is_error")) == error
        and sees(str(e.data.get("content", "")), fragments)
        for e in events
    )


def _untrusted_shown(model: FunctionModel) -> list[str]:
    """The spotlighted tool results the model was shown (as it saw them), each once."""
    shown: dict[str, str] = {}
    for request in model.requests:
        for m in request.messages:
            for r in m.results:
                if r.content.startswith("<untrusted-data"):
                    shown.setdefault(r.call_id, r.content)
    return list(shown.values())


def _outputs(events: Sequence[Event]) -> list[str]:
    return [str(e.data.get("output") or "") for e in events if e.type == EventType.TURN_COMPLETED]


async def _attack(
    rt: Runtime, attack: Attack, target: RedTeamTarget, markers: Sequence[str]
) -> AttackResult | None:
    profile = target.profile
    case = _case(attack, profile)
    src = target.agent
    agent = src if isinstance(src, Agent) else src(case, target.models)
    plant = profile.plant_for(agent) if attack.where == "tool-output" else None
    if attack.where == "tool-output" and plant is None:
        return None  # nowhere to plant it: this agent reads no untrusted content
    world = target.environment(case) if target.environment is not None else None
    result = AttackResult(attack)
    t0 = time.perf_counter()
    try:
        changes: dict[str, Any] = {}
        if world is not None:
            deps = world.deps()
            changes["deps"] = lambda: deps
        if plant is not None:
            changes["tools"] = tuple(
                _planted(t, plant, attack.text, attack.carrier) if t.name == plant.tool else t
                for t in agent.tools
            )
        model: FunctionModel | None = None
        if target.models is None:
            model = obedient_model(_script(attack, profile, agent, plant))
            changes["models"] = (model,)
        agent = dataclasses.replace(agent, **changes)
        before = world.snapshot() if world is not None else None
        driver = _Driver(rt, agent, profile.user.id, attack.where)
        mark = 0
        try:
            if profile.user.opening:
                await driver.say(profile.user.opening)
            mark = len(driver.events)
            message = attack.text if plant is None else plant.request
            try:
                await driver.say(message)
            except InputRejected as exc:
                result.input_rejected, result.error = True, str(exc)
            if attack.goal == "malformed":
                await driver.say(_FOLLOW_UP)  # the session must still take a message
        except RunError as exc:  # a clean refusal (a conflict, an ended session): not a crash
            result.error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            log.exception("red-team attack %s crashed the runtime", attack.id)
            result.crash = f"the runtime raised {type(exc).__name__}: {exc}"
        if result.crash is None:
            result.crash = await driver.check()
        after = world.snapshot() if world is not None else None
        events = driver.events[mark:]
        result.status = driver.status
        result.outputs = _outputs(events)
        result.reached = _reached(attack, plant, events, result.input_rejected)
        seen = Seen(
            canary=canary_for(rt.spotlight_secret, agent.name, agent.version),
            untrusted=_untrusted_shown(model) if model is not None else None,
        )
        judge(result, events, agent, profile, markers, (before, after), seen)
    finally:
        if world is not None:
            world.close()
    result.duration_s = time.perf_counter() - t0
    return result


async def run_redteam(
    attacks: Sequence[Attack],
    target: RedTeamTarget,
    *,
    markers: Sequence[str] = (),
    threshold: float = 0.0,
    agent_name: str = "",
    profile_name: str = "",
    battery_name: str = "",
    on_result: Callable[[AttackResult], None] | None = None,
) -> RedTeamReport:
    """Run ``attacks`` against ``target``; ``on_result`` is told after each one.

    Sessions go to a SQLite store in a temporary folder,
    one runtime for the whole run, so a real model is loaded once.
    """
    report = RedTeamReport(
        model=target.model_name,
        agent=agent_name,
        profile=profile_name,
        battery=battery_name,
        threshold=threshold,
    )
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tether-redteam-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'sessions.sqlite'}"
        async with Runtime(store=await open_store(url)) as rt:
            for attack in attacks:
                result = await _attack(rt, attack, target, markers)
                if result is None:
                    report.skipped.append(attack.id)
                    continue
                report.results.append(result)
                if on_result is not None:
                    on_result(result)
    report.duration_s = time.perf_counter() - t0
    return report
