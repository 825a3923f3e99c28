"""Turning an AGENT reference into an :class:`~tether.spec.agent.Agent`.

A reference is either ``module:attribute`` (``examples.retail.agent:agent``)
or a folder holding an agent definition: a package folder whose
``agent.py`` (or ``__init__.py``) defines ``agent``. A folder's parent is put
on ``sys.path`` so the package imports the normal way.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from tether.exceptions import AgentLoadError
from tether.spec.agent import Agent

__all__ = ["load_agent", "load_object"]


def _import(module: str, attr: str, ref: str) -> Agent:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise AgentLoadError(
            f"cannot import {module!r} for agent {ref!r} ({exc}); run from the folder that "
            "contains it, or give a path to the agent's folder"
        ) from exc
    try:
        obj = getattr(mod, attr)
    except AttributeError as exc:
        raise AgentLoadError(
            f"module {module!r} has no attribute {attr!r} (agent {ref!r})"
        ) from exc
    if callable(obj) and not isinstance(obj, Agent):
        obj = obj()
    if not isinstance(obj, Agent):
        raise AgentLoadError(f"{ref!r} is a {type(obj).__name__}, not a tether.Agent")
    return obj


def load_agent(ref: str) -> Agent:
    """Load the agent ``ref`` names. Raises :class:`AgentLoadError` with a fix."""
    path = Path(ref)
    if path.is_dir():
        folder = path.resolve()
        if not (folder / "__init__.py").exists() and not (folder / "agent.py").exists():
            raise AgentLoadError(f"folder {ref!r} has no agent.py or __init__.py defining `agent`")
        parent = str(folder.parent)
        if parent not in sys.path:
            sys.path.insert(0, parent)
        # Nested package folders (examples/retail) import by their dotted path.
        package = folder.name
        probe = folder.parent
        while (probe / "__init__.py").exists():
            package = f"{probe.name}.{package}"
            if str(probe.parent) not in sys.path:
                sys.path.insert(0, str(probe.parent))
            probe = probe.parent
        module = f"{package}.agent" if (folder / "agent.py").exists() else package
        return _import(module, "agent", ref)
    module, sep, attr = ref.partition(":")
    if not sep or not module or not attr:
        raise AgentLoadError(
            f"agent reference {ref!r} is neither a folder nor 'module:attribute' "
            "(e.g. examples.retail.agent:agent or examples/retail)"
        )
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    return _import(module, attr, ref)


def load_object(ref: str, *, what: str = "object") -> object:
    """The object ``module:attribute`` names (a factory, an environment), imported.

    Raises :class:`AgentLoadError` with the fix when it cannot be found.
    """
    module, sep, attr = ref.partition(":")
    if not sep or not module or not attr:
        raise AgentLoadError(f"{what} reference {ref!r} is not 'module:attribute'")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise AgentLoadError(
            f"cannot import {module!r} for {what} {ref!r} ({exc}); run from the folder "
            "that contains it"
        ) from exc
    try:
        obj: object = getattr(mod, attr)
    except AttributeError as exc:
        raise AgentLoadError(
            f"module {module!r} has no attribute {attr!r} ({what} {ref!r})"
        ) from exc
    return obj
