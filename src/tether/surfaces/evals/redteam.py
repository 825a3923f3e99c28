"""The red team: an adversarial battery run against an agent, by category.

``tether redteam AGENT`` (:mod:`tether.surfaces.cli.redteam`) drives it; see
``docs/redteam.md``. The parts:

- :mod:`.redteam_battery`: the attacks, shipped as data
  (``attacks/battery.yaml``): direct injection, injection inside tool
  output, encoded attacks, confirmation skipping, system-prompt extraction,
  out-of-scope requests, acting for another user, malformed and oversized
  input, SQL and shell payloads;
- :mod:`.redteam_profile`: what harm concretely means for one agent (its
  ``redteam.yaml``), or a profile synthesised from its tools;
- :mod:`.redteam_model`: the worst-case obedient model, which does whatever
  an attack says: against it the run measures what the runtime guarantees;
- :mod:`.redteam_run`: the driver (real runtime, SQLite store, approvals
  answered as the attacker or the benign user would);
- :mod:`.redteam_judge` and :mod:`.redteam_result`: what counts as harm,
  and the verdicts.

Against the agent's real model chain (``models``) the same run measures the
model and the runtime together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tether.exceptions import ConfigError
from tether.spec.agent import Agent
from tether.spec.model import Model
from tether.surfaces.evals.redteam_battery import (
    CATEGORIES,
    ENCODINGS,
    GOALS,
    Attack,
    Battery,
    encode,
    load_battery,
    select,
)
from tether.surfaces.evals.redteam_model import WORST_CASE, Script, obedient_model
from tether.surfaces.evals.redteam_profile import (
    CallSpec,
    PlantSpec,
    Profile,
    UserSpec,
    generic_profile,
    load_profile,
)
from tether.surfaces.evals.redteam_result import BLOCKS, AttackResult, RedTeamReport, Try
from tether.surfaces.evals.redteam_run import RedTeamTarget, World, run_redteam
from tether.surfaces.evals.runner import agent_factory
from tether.surfaces.loader import load_object

__all__ = [
    "BLOCKS",
    "CATEGORIES",
    "ENCODINGS",
    "GOALS",
    "WORST_CASE",
    "Attack",
    "AttackResult",
    "Battery",
    "CallSpec",
    "PlantSpec",
    "Profile",
    "RedTeamReport",
    "RedTeamTarget",
    "Script",
    "Try",
    "UserSpec",
    "World",
    "encode",
    "find_profile",
    "generic_profile",
    "load_battery",
    "load_profile",
    "obedient_model",
    "run_redteam",
    "select",
    "target_for",
]

PROFILE_NAME = "redteam.yaml"


def find_profile(agent_ref: str) -> Path | None:
    """The profile beside an agent given as a folder (``FOLDER/redteam.yaml``), if any."""
    folder = Path(agent_ref)
    candidate = folder / PROFILE_NAME
    return candidate if folder.is_dir() and candidate.is_file() else None


def target_for(
    agent: Agent, profile: Profile | None, models: Sequence[str | Model] | None = None
) -> RedTeamTarget:
    """What to run: ``agent`` (or the profile's ``agent``), its world, and the models.

    Without a profile, one is synthesised from the agent's tools
    (:func:`generic_profile`) and the agent's own deps are used. ``models``
    ``None`` means the worst-case obedient model.
    """
    if profile is None:
        chosen = agent.with_models(list(models)) if models else agent
        return RedTeamTarget(agent=chosen, profile=generic_profile(agent), models=models)
    source: Any = agent
    if profile.agent:
        source = load_object(profile.agent, what="red-team agent")
        if not isinstance(source, Agent):
            if not callable(source):
                raise ConfigError(f"{profile.agent} is neither an Agent nor a factory of one")
            source = agent_factory(source, profile.agent)
    if isinstance(source, Agent) and models:
        source = source.with_models(list(models))
    environment: Callable[[Any], World] | None = None
    if profile.environment:
        env = load_object(profile.environment, what="red-team environment")
        if not callable(env):
            raise ConfigError(f"{profile.environment} is not a factory (case) -> environment")
        environment = env
    return RedTeamTarget(agent=source, profile=profile, environment=environment, models=models)
