"""The taint benchmark's agents (``bench/taint.py``): tools in Python, tasks and attacks in YAML.

Four agents, each with its own world: ``workspace`` (mail, calendar,
documents, the web), ``banking``, ``travel`` and ``retail`` (a shop's support
assistant). See :mod:`.core` for what a task, an attack and the obedient
model are.
"""

from __future__ import annotations

from .core import KINDS, Attack, Call, Suite, Task, World, obedient_model

__all__ = ["KINDS", "SUITES", "Attack", "Call", "Suite", "Task", "World", "load", "obedient_model"]

#: the agents, in report order
SUITES = ("workspace", "banking", "travel", "retail")


def load(names: tuple[str, ...] | list[str] = SUITES) -> list[Suite]:
    """The named agents' suites (all four by default)."""
    from . import banking, retail, travel, workspace

    modules = {"workspace": workspace, "banking": banking, "travel": travel, "retail": retail}
    unknown = sorted(set(names) - set(modules))
    if unknown:
        raise ValueError(f"unknown agent(s) {unknown}: use {', '.join(SUITES)}")
    return [modules[n].suite() for n in SUITES if n in names]
