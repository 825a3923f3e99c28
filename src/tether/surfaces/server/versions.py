"""Which agent version serves a session: the registry decides, the loaded code runs.

A server loads agents from their references (``tether serve REF...``);
several references may give versions of one agent (each an ``Agent`` with
the same name and its own ``version``). The version registry in the store
(:class:`~tether.store.versions.VersionStore`, written by ``tether deploy``,
``promote``, ``rollback``) says which version is active and which is a
canary. The :class:`VersionRouter` reads it every ``poll`` seconds, so a
promotion or a rollback done anywhere takes effect on every replica within
that time, without a restart:

- a new session starts on the canary with its share's probability, else on
  the active version;
- an existing session always continues on the version it started on;
- a version is served only when the code loaded here *is* that version:
  its content hash equals the registered hash. When the registry names a
  version whose code is not loaded here (or differs), the router tries to
  load it from the reference it was deployed from; failing that, new
  sessions go to the version loaded here, an error is logged and an alert
  raised (once per version), and the replica's readiness says so.

With no version registered for an agent (nothing deployed yet), the loaded
agent serves as before.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence

from tether.exceptions import ConfigError
from tether.runtime.ports import SessionRecord
from tether.spec.agent import Agent
from tether.store.versions import AgentVersion, VersionState, VersionStore
from tether.surfaces.loader import load_agent
from tether.surfaces.ops.definition import content_hash, definition_of
from tether.surfaces.server.problems import ApiProblem

__all__ = ["VersionRouter"]

log = logging.getLogger("tether.server.versions")

Notify = Callable[[str, str, str], Awaitable[None] | None]


class VersionRouter:
    """The loaded versions of each agent, and the registry's choice among them."""

    def __init__(
        self,
        agents: Sequence[Agent],
        *,
        registry: VersionStore | None = None,
        poll: float = 2.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_missing: Notify | None = None,
        load_timeout: float = 30.0,
    ) -> None:
        #: the version each reference gave first, by agent name (served when nothing is deployed)
        self.primary: dict[str, Agent] = {}
        self._loaded: dict[tuple[str, str], Agent] = {}
        self._hash: dict[tuple[str, str], str] = {}
        for a in agents:
            self.primary.setdefault(a.name, a)
            key = (a.name, a.version)
            if key in self._loaded and self._loaded[key] is not a:
                raise ConfigError(f"agent {a.name!r} version {a.version!r} is loaded twice")
            self._loaded[key] = a
        self.registry = registry
        self.poll = poll
        self._rng = rng if rng is not None else random.Random()
        self._clock = clock
        self._on_missing = on_missing
        #: seconds a version's code may take to import (from the reference it was deployed from)
        self.load_timeout = load_timeout
        self._serving: dict[str, tuple[AgentVersion | None, AgentVersion | None]] = {}
        self._read_at = -float("inf")
        self._warned: set[tuple[str, str, str]] = set()
        #: why this replica cannot serve what the registry says (for readiness)
        self.problems: dict[str, str] = {}
        self._lock = asyncio.Lock()

    # --- the registry --------------------------------------------------------------

    def _hash_of(self, agent: Agent) -> str:
        key = (agent.name, agent.version)
        if key not in self._hash:
            self._hash[key] = content_hash(definition_of(agent))
        return self._hash[key]

    async def refresh(self, *, force: bool = False) -> None:
        """Read the registry (at most every ``poll`` seconds unless ``force``)."""
        if self.registry is None:
            return
        if not force and self._clock() - self._read_at < self.poll:
            return
        async with self._lock:
            if not force and self._clock() - self._read_at < self.poll:
                return
            serving = {}
            try:
                for name in self.primary:
                    serving[name] = await self.registry.serving(name)
            except Exception as exc:  # the store is down: keep the last known choice
                log.warning("could not read the version registry: %s", exc)
                self._read_at = self._clock()  # and do not ask again before the next poll
                return
            self._serving = serving
            self._read_at = self._clock()
        for name, (active, canary) in serving.items():
            for v in (active, canary):
                if v is not None:
                    await self._ensure(v)
            if active is None or self._usable(active) is not None:
                self.problems.pop(name, None)
            else:
                await self._missing(active, self.primary[name])

    async def _ensure(self, v: AgentVersion) -> None:
        """Load ``v`` from its reference when it is not loaded here (once)."""
        key = (v.agent, v.version)
        if key in self._loaded or v.ref is None or (v.agent, v.version, "load") in self._warned:
            return
        self._warned.add((v.agent, v.version, "load"))
        try:  # importing runs the module's code: off the event loop, and bounded
            agent = await asyncio.wait_for(asyncio.to_thread(load_agent, v.ref), self.load_timeout)
        except TimeoutError:
            log.error(
                "version %s of %s: loading %s took longer than %g s; not served here",
                v.version,
                v.agent,
                v.ref,
                self.load_timeout,
            )
            return
        except Exception as exc:
            log.error("version %s of %s: loading %s failed: %s", v.version, v.agent, v.ref, exc)
            return
        if agent.name == v.agent and agent.version == v.version:
            self._loaded[key] = agent
            log.info("loaded %s version %s from %s", v.agent, v.version, v.ref)
        else:
            log.error(
                "version %s of %s: %s gives agent %s version %s instead; not served here",
                v.version,
                v.agent,
                v.ref,
                agent.name,
                agent.version,
            )

    def _usable(self, v: AgentVersion) -> Agent | None:
        agent = self._loaded.get((v.agent, v.version))
        if agent is not None and self._hash_of(agent) == v.hash:
            return agent
        return None

    async def _missing(self, v: AgentVersion, fallback: Agent) -> None:
        why = (
            "is not loaded here"
            if (v.agent, v.version) not in self._loaded
            else ("is loaded here with other content than was deployed")
        )
        message = (
            f"{v.agent} version {v.version} ({v.state}) {why}; new sessions start on version "
            f"{fallback.version} instead. Deploy its code to this replica"
        )
        if v.state == VersionState.ACTIVE:
            self.problems[v.agent] = message
        key = (v.agent, v.version, why)
        if key in self._warned:
            return
        self._warned.add(key)
        log.error("%s", message)
        if self._on_missing is not None:
            result = self._on_missing(v.agent, v.version, message)
            if result is not None:
                await result

    # --- choosing --------------------------------------------------------------------

    def names(self) -> list[str]:
        return list(self.primary)

    async def for_new(self, name: str, version: str | None = None) -> Agent:
        """The version a new session of ``name`` starts on (``version``: the caller's pick)."""
        primary = self.primary.get(name)
        if primary is None:
            raise ApiProblem(
                404, "agent-not-served", f"this server does not serve an agent named {name!r}"
            )
        await self.refresh()
        active, canary = self._serving.get(name, (None, None))
        if version is not None:
            return await self._pinned(name, version, active, canary)
        if (
            canary is not None
            and canary.canary_percent
            and self._rng.random() * 100 < canary.canary_percent
        ):
            chosen = self._usable(canary)
            if chosen is not None:
                return chosen
            await self._missing(canary, primary)
        if active is None:
            return primary
        chosen = self._usable(active)
        if chosen is not None:
            return chosen
        await self._missing(active, primary)
        return primary

    async def _pinned(
        self, name: str, version: str, active: AgentVersion | None, canary: AgentVersion | None
    ) -> Agent:
        agent = self._loaded.get((name, version))
        if agent is None:
            served = sorted(v for n, v in self._loaded if n == name)
            raise ApiProblem(
                409,
                "version-not-served",
                f"agent {name!r} version {version!r} is not served here (served: "
                f"{', '.join(served)})",
            )
        if self.registry is not None and (active is not None or canary is not None):
            v = await self.registry.get(name, version)
            if v is None or v.state in (VersionState.RETIRED, VersionState.ROLLED_BACK):
                state = "not deployed" if v is None else str(v.state)
                raise ApiProblem(
                    409,
                    "version-not-served",
                    f"agent {name!r} version {version!r} is {state}; new sessions cannot start "
                    "on it",
                )
            if v.hash != self._hash_of(agent):
                raise ApiProblem(
                    409,
                    "version-not-served",
                    f"agent {name!r} version {version!r} loaded here differs from what was "
                    "deployed",
                )
        return agent

    def for_session(self, rec: SessionRecord) -> Agent:
        """The version ``rec`` started on (sessions never change version)."""
        agent = self._loaded.get((rec.agent, rec.agent_version))
        if agent is not None:
            return agent
        primary = self.primary.get(rec.agent)
        if primary is None:
            raise ApiProblem(
                404, "agent-not-served", f"this server does not serve an agent named {rec.agent!r}"
            )
        if self._serving.get(rec.agent, (None, None)) == (None, None):
            return primary  # nothing deployed: the loaded code serves every session, as before
        raise ApiProblem(
            503,
            "version-not-loaded",
            f"session {rec.id} runs on {rec.agent} version {rec.agent_version}, which is not "
            "loaded on this replica; retry (another replica may serve it), or load that "
            "version's code here",
        )

    def loaded_for_session(self, rec: SessionRecord) -> Agent | None:
        """Like :meth:`for_session`, ``None`` where that raises."""
        try:
            return self.for_session(rec)
        except ApiProblem:
            return None

    def serving_agents(self) -> list[Agent]:
        """What new sessions may start on now: each agent's active version (and canary)."""
        out: list[Agent] = []
        for name, primary in self.primary.items():
            active, canary = self._serving.get(name, (None, None))
            chosen = [a for a in (self._usable(v) for v in (active, canary) if v) if a]
            out.extend(chosen or [primary])
        return out
