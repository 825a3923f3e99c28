"""AG-UI 1.0 for Tether: what a CopilotKit / AG-UI front end asks, and what it reads back.

Pure translation, no I/O: the endpoint (``POST /v1/agents/{name}/agui``)
reads a :class:`~ag_ui.core.RunAgentInput`, calls :func:`parse_input`,
runs the turn, feeds every Tether :class:`~tether.spec.events.Event` of it
to an :class:`AguiTranslator` and writes what comes back with
:func:`encode` (server-sent events).

This module is the facade over the two halves:
:mod:`~tether.surfaces.server.agui_input` reads what the client asks (and
holds the mapping of threads, runs and resumes), and
:mod:`~tether.surfaces.server.agui_events` writes what it reads back (and
holds the mapping of events, interrupts and errors).
"""

from __future__ import annotations

from tether.surfaces.server.agui_events import CONTENT_TYPE, AguiTranslator, encode, reject
from tether.surfaces.server.agui_input import (
    APPROVAL_PREFIX,
    CLARIFY_PREFIX,
    AguiAnswer,
    AguiDecision,
    AguiInputError,
    AguiMessage,
    AguiRequest,
    check_pending,
    parse_input,
)

__all__ = [
    "APPROVAL_PREFIX",
    "CLARIFY_PREFIX",
    "CONTENT_TYPE",
    "AguiAnswer",
    "AguiDecision",
    "AguiInputError",
    "AguiMessage",
    "AguiRequest",
    "AguiTranslator",
    "check_pending",
    "encode",
    "parse_input",
    "reject",
]
