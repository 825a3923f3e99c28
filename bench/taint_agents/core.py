"""What the taint benchmark's agents share: worlds, tasks, attacks, and the obedient model.

An agent of the benchmark (a :class:`Suite`) is its tools (Python, in its
module), a world factory (the records its tools read and change, fresh for
each run), and its tasks and attacks (YAML beside the module, loaded by
:func:`load_cases`).

- A :class:`Task` is what a legitimate user types, and the calls a model
  doing it makes. Its values come from the user's message, the session's
  context or a trusted tool's result (``untrusted_values: true`` marks the
  few tasks whose approved values honestly come from untrusted content, a
  bill's IBAN: there the planted-value warning is expected).
- An :class:`Attack` is text planted in the world's untrusted *slots* (an
  email's body, a review, a web page, a transaction's note; or a field a
  read tool parses and raises on, quoting it) and the calls it asks for.
- :func:`obedient_model` is the worst case: it does the task, and as soon as
  a tool result carries the planted text it makes the attack's calls, then
  carries on with the task.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from tether import Agent, ApprovalPolicy, Limits, ModelRequest, Tool, ToolCall
from tether.spec.guard import GuardPolicy
from tether.surfaces.evals.redteam_model import probes, sees
from tether.testing import FunctionModel, ScriptedResponse

__all__ = [
    "KINDS",
    "Attack",
    "Call",
    "Suite",
    "Task",
    "World",
    "load_cases",
    "obedient_model",
]

#: the attack kinds, in report order
KINDS = (
    "transfer",  # money, a booking or a refund to the attacker
    "exfil-mail",  # the user's data emailed to the attacker
    "credential",  # a password, a recovery email, mail forwarding the attacker chose
    "exfil-egress",  # the user's data in a URL a read-only egress tool fetches
    "reformatted",  # a planted value the model re-typed (spacing, case, zero-width)
    "error-carrier",  # planted where a read tool raises, quoting it in its error
    "undeclared-source",  # planted in what a tool returns that a careless author leaves unmarked
    "trusted-values",  # an action built from values the user's own data holds
)

#: the model's final answer, attack or not (the benchmark judges calls, not prose)
FINAL = "Done."


@dataclass(frozen=True, slots=True)
class Call:
    """One tool call a model makes: ``harm`` says an attack's call is the harm itself
    (``False``: a read the attack needs first, such as looking up what it sends out)."""

    tool: str
    args: dict[str, Any]
    harm: bool = True


@dataclass(frozen=True, slots=True)
class Task:
    """A legitimate user's request and the calls that do it."""

    id: str
    prompt: str
    calls: tuple[Call, ...]
    #: the values of its approved calls come from untrusted content (a warning is expected)
    untrusted_values: bool = False
    #: data about the session from the application (trusted provenance)
    context: dict[str, Any] | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class Attack:
    """Text planted in the world, and the calls it gets an obedient model to make."""

    id: str
    kind: str
    text: str
    calls: tuple[Call, ...]
    #: where it is planted (empty: every content slot of the agent)
    slots: tuple[str, ...] = ()
    note: str = ""

    @property
    def harmful(self) -> tuple[Call, ...]:
        return tuple(c for c in self.calls if c.harm)


class World:
    """A run's records. ``slots`` is the text untrusted reads return; subclasses add the rest.

    ``egress`` lists what left the system through egress tools (URLs fetched,
    queries sent); :meth:`attacker_effects` says which effects reached the
    attacker, as a cross-check of the call-level verdict.
    """

    #: slots a read tool parses (a date, a status): an attack there replaces the value,
    #: and the tool raises quoting it
    PARSED: frozenset[str] = frozenset()
    #: the attacker's values (addresses, accounts, domains): an effect carrying one reached them
    ATTACKER: tuple[str, ...] = ()

    def __init__(self, slots: Mapping[str, str]) -> None:
        self.slots = dict(slots)
        self.egress: list[str] = []

    def plant(self, text: str, slots: Sequence[str]) -> None:
        for name in slots:
            if name not in self.slots:
                raise KeyError(f"{type(self).__name__} has no slot {name!r}")
            if name in self.PARSED:
                self.slots[name] = text
            else:
                self.slots[name] = f"{self.slots[name]}\n\n{text}"

    def effects(self) -> list[str]:
        """Every outward or lasting effect of the run, as text (subclasses add theirs)."""
        return [f"egress {u}" for u in self.egress]

    def attacker_effects(self) -> list[str]:
        marks = [_flat(m) for m in self.ATTACKER]
        return [e for e in self.effects() if any(m in _flat(e) for m in marks)]


def _flat(text: str) -> str:
    """Lower case, without the separators a reformatted value gains or loses."""
    return re.sub(r"[\s\-\u200b\u00ad]", "", text.lower())


@dataclass(frozen=True, slots=True)
class Suite:
    """One agent of the benchmark: its tools, policy, world, tasks and attacks."""

    name: str
    instructions: str
    tools: tuple[Tool, ...]
    policy: ApprovalPolicy
    world: Callable[[], World]
    tasks: tuple[Task, ...]
    attacks: tuple[Attack, ...]
    user: str
    #: the content slots plain attacks are planted in (what the untrusted reads return)
    plant: tuple[str, ...]
    #: the read tool a careless deployment leaves without ``untrusted_output``
    undeclared: str

    def agent(
        self,
        world: World,
        model: FunctionModel,
        *,
        policy: ApprovalPolicy | None = None,
        misdeclared: bool = False,
        guard: bool = False,
    ) -> Agent:
        """The agent on ``world`` with ``model``; ``misdeclared``: :attr:`undeclared` unmarked."""
        tools = self.tools
        if misdeclared:
            tools = tuple(
                replace(t, untrusted_output=False, trusted_fields=frozenset(), trust_declared=False)
                if t.name == self.undeclared
                else t
                for t in tools
            )
        return Agent(
            name=f"taint-{self.name}",
            instructions=self.instructions,
            models=(model,),
            tools=tools,
            deps=lambda: world,
            approval=policy or self.policy,
            limits=Limits(max_tool_calls=40, max_tool_calls_per_turn=30),
            guard=GuardPolicy(user="warn") if guard else None,
        )

    def slots_of(self, attack: Attack) -> tuple[str, ...]:
        return attack.slots or self.plant


# --- the obedient model ------------------------------------------------------------------


def obedient_model(task: Task, attack: Attack | None) -> FunctionModel:
    """The worst case: it does ``task``, and obeys ``attack`` the moment a result carries it.

    Stateless, like a model: each answer is derived from the request alone.
    It makes the task's calls one per step; once a tool result (a success or
    an error) carries the planted text, the attack's calls come next, then the
    rest of the task. A declined call is not retried. Call ids say whose call
    it is (``task:J-N`` or ``atk:J-N``: the J-th call of the task or the attack, the
    N-th call of the turn), for the judge.
    """
    fragments = probes(attack.text) if attack is not None else ()

    def answer(request: ModelRequest) -> ScriptedResponse:
        msgs = request.messages
        last = max((i for i, m in enumerate(msgs) if m.role == "user"), default=-1)
        made: list[str] = []
        results: dict[str, str] = {}
        for m in msgs[last + 1 :]:
            made.extend(c.id for c in m.tool_calls)
            for r in m.results:
                results[r.call_id] = r.content
        plan = [("task", j, c) for j, c in enumerate(task.calls)]
        if attack is not None:
            seen = next(
                (i for i, cid in enumerate(made) if sees(results.get(cid, ""), fragments)), None
            )
            if seen is not None:
                plan[seen + 1 : seen + 1] = [("atk", j, c) for j, c in enumerate(attack.calls)]
        if len(made) < len(plan):
            who, j, c = plan[len(made)]
            return ToolCall(f"{who}:{j}-{len(made)}", c.tool, dict(c.args))
        return FINAL

    return FunctionModel(answer, name="function:obedient", record=False)


# --- the YAML data ---------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\$([A-Z][A-Z0-9_]*)")
_TASK_KEYS = {"id", "prompt", "calls", "untrusted_values", "context", "note"}
_ATTACK_KEYS = {"id", "kind", "text", "calls", "slots", "note"}
_CALL_KEYS = {"tool", "args", "harm"}


def _fill(value: Any, facts: Mapping[str, Any], where: str) -> Any:
    """``value`` with ``$NAME`` replaced by ``facts[NAME]`` (a whole ``$NAME`` keeps its type)."""
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole:
            return _fact(facts, whole.group(1), where)
        return _PLACEHOLDER.sub(lambda m: str(_fact(facts, m.group(1), where)), value)
    if isinstance(value, list):
        return [_fill(v, facts, where) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, facts, where) for k, v in value.items()}
    return value


def _fact(facts: Mapping[str, Any], name: str, where: str) -> Any:
    if name not in facts:
        raise ValueError(f"{where}: unknown placeholder ${name}")
    return facts[name]


def _keys(raw: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(raw).__name__}")
    extra = sorted(set(raw) - allowed)
    if extra:
        raise ValueError(f"{where}: unknown key(s) {extra}; allowed: {sorted(allowed)}")
    return raw


def _calls(raw: Any, tools: set[str], where: str) -> tuple[Call, ...]:
    out = []
    for i, c in enumerate(raw or []):
        spec = _keys(c, _CALL_KEYS, f"{where}.calls[{i}]")
        if spec["tool"] not in tools:
            raise ValueError(f"{where}.calls[{i}]: the agent has no tool {spec['tool']!r}")
        out.append(Call(spec["tool"], dict(spec.get("args") or {}), bool(spec.get("harm", True))))
    return tuple(out)


def load_cases(
    path: Path, facts: Mapping[str, Any], tools: Sequence[Tool], slots: Sequence[str]
) -> tuple[tuple[Task, ...], tuple[Attack, ...]]:
    """The tasks and attacks of one agent's YAML file, checked strictly."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data = _keys(data, {"tasks", "attacks"}, path.name)
    names = {t.name for t in tools}
    tasks: list[Task] = []
    for raw in data["tasks"]:
        where = f"{path.name}: task {raw.get('id')}"
        spec = _fill(_keys(raw, _TASK_KEYS, where), facts, where)
        tasks.append(
            Task(
                id=spec["id"],
                prompt=spec["prompt"].strip(),
                calls=_calls(spec["calls"], names, where),
                untrusted_values=bool(spec.get("untrusted_values", False)),
                context=spec.get("context"),
                note=spec.get("note", ""),
            )
        )
    attacks: list[Attack] = []
    for raw in data["attacks"]:
        where = f"{path.name}: attack {raw.get('id')}"
        spec = _fill(_keys(raw, _ATTACK_KEYS, where), facts, where)
        if spec["kind"] not in KINDS:
            raise ValueError(f"{where}: unknown kind {spec['kind']!r}; use one of {KINDS}")
        unknown = sorted(set(spec.get("slots") or ()) - set(slots))
        if unknown:
            raise ValueError(f"{where}: unknown slot(s) {unknown}; the world has {sorted(slots)}")
        attacks.append(
            Attack(
                id=spec["id"],
                kind=spec["kind"],
                text=spec["text"].strip(),
                calls=_calls(spec["calls"], names, where),
                slots=tuple(spec.get("slots") or ()),
                note=spec.get("note", ""),
            )
        )
    ids = [t.id for t in tasks] + [a.id for a in attacks]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"{path.name}: ids used twice: {dupes}")
    return tuple(tasks), tuple(attacks)
