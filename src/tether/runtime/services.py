"""What a runtime builds once per model and once per agent: :class:`ServiceCache`.

A model spec (``"anthropic:claude-sonnet-4-5"``) becomes one provider
object per runtime, checked once (a key, a model file) before anything is
stored, and prepared once before its first call (a local model loads its
weights outside every per-call timeout). An :class:`~tether.spec.agent.Agent`
becomes its :class:`~tether.runtime.caller.AgentServices` (models, tools,
tool specs, the system prompt with its canary) once.
"""

from __future__ import annotations

from tether.providers.registry import model_from_spec
from tether.runtime.approvals import CLARIFY, CLARIFY_SPEC
from tether.runtime.caller import AgentServices
from tether.runtime.context import system_prompt
from tether.runtime.leak import canary_for, canary_line
from tether.spec.agent import Agent
from tether.spec.model import Model, ToolSpec

__all__ = ["ServiceCache"]


class ServiceCache:
    """Models by spec and services by agent, for one runtime.

    ``models``: objects to use instead of building a provider from the spec
    string (tests, custom providers). ``secret``: the runtime's spotlight
    key, from which each agent's canary is derived.
    """

    def __init__(self, models: dict[str, Model] | None, secret: bytes) -> None:
        self._secret = secret
        self._models: dict[str, Model] = dict(models or {})
        #: ids of the models already set up (``prepare`` adds to it)
        self.prepared: set[int] = set()
        self._checked: set[int] = set()
        # Keyed by id() of the Agent, with the object itself kept in the entry:
        # while an entry exists its object is alive, so its id cannot be reused.
        self._services: dict[int, tuple[Agent, AgentServices]] = {}

    def model(self, ref: str | Model, timeout: float) -> Model:
        if not isinstance(ref, str):
            return ref
        model = self._models.get(ref)
        if model is None:
            model = model_from_spec(ref, timeout=timeout)
            self._models[ref] = model
        return model

    def for_agent(self, agent: Agent) -> AgentServices:
        """``agent``'s services, built on first use; each model's own check has passed."""
        entry = self._services.get(id(agent))
        if entry is not None and entry[0] is agent:
            svc = entry[1]
        else:
            canary = canary_for(self._secret, agent.name, agent.version)
            svc = AgentServices(
                models=tuple(self.model(m, agent.limits.model_timeout) for m in agent.models),
                tools={t.name: t for t in agent.tools},
                specs=tuple(t.spec for t in agent.tools) + _clarify_spec(agent),
                system=f"{system_prompt(agent)}{canary_line(canary)}\n",
                canary=canary,
                untrusted_tools=frozenset(t.name for t in agent.tools if t.untrusted_output),
            )
            self._services[id(agent)] = (agent, svc)
        self._check(svc)
        return svc

    def _check(self, svc: AgentServices) -> None:
        """Each model's own set-up check (a key, a model file), once, before anything is stored."""
        for model in svc.models:
            if id(model) in self._checked:
                continue
            check = getattr(model, "check", None)
            if check is not None:
                check()
            self._checked.add(id(model))

    async def prepare(self, model: Model) -> None:
        """Let ``model`` do its one-time set-up (a local model loads its weights), once.

        This runs before the first call and outside the per-call timeout, so a
        model that takes a minute to load is not reported as unavailable; the
        model bounds its own set-up (``LocalModel.load_timeout``).
        """
        if id(model) in self.prepared:
            return
        prepare = getattr(model, "prepare", None)
        if prepare is not None:
            await prepare()
        self.prepared.add(id(model))

    async def aclose(self) -> None:
        """Close every model this cache built or was given."""
        for model in self._models.values():
            aclose = getattr(model, "aclose", None)
            if aclose is not None:
                await aclose()


def _clarify_spec(agent: Agent) -> tuple[ToolSpec, ...]:
    """The built-in clarify tool, unless turned off or the agent has its own."""
    if not agent.clarify or agent.tool(CLARIFY) is not None:
        return ()
    return (CLARIFY_SPEC,)
