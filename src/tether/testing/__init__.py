"""Tether's test kit: public test doubles for agents' own tests.

- :class:`ScriptedModel` plays a list of responses and fails on an extra call;
  :class:`FunctionModel` answers from a function; :func:`call` builds a tool call.
- :func:`capture_events` collects every event a runtime emits.
- :class:`FakeClock` is virtual time: pass it as the clock and its ``sleep``
  where code waits, so tests never really sleep.
- :class:`FaultyModel` wraps a model so chosen calls fail (429, 5xx, timeouts,
  resets, cut streams), listed per call or at a seeded random ``rate``.
- :func:`faulty_tool` wraps a tool the same way (raise, refuse, retry, hang,
  slow); :class:`Fault` and :class:`ToolFault` describe one injected fault.
- :class:`GatedModel` holds a model's answer until the test opens its gate,
  to test what happens while a call is in progress.
- :func:`block_network` refuses every connection but loopback with
  :class:`NetworkBlocked`.

The pytest plugin (:mod:`tether.testing.pytest_plugin`, registered when tether
is installed) blocks the network in every test and provides the fixtures
``tether_runtime``, ``tether_sqlite_runtime``, ``fake_clock`` and
``tether_events``. ``unwrap`` gives back the data inside a spotlighted (untrusted) tool result,
for a scripted model that reads it. Importing this package does not import pytest.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tether.providers.scripted import FunctionModel, ScriptedModel, ScriptedResponse, call
from tether.runtime.taint import unwrap
from tether.spec.events import Event
from tether.testing.clock import FakeClock
from tether.testing.faults import (
    MODEL_FAULT_KINDS,
    TOOL_FAULT_KINDS,
    Fault,
    FaultyModel,
    FaultyTool,
    ToolFault,
    faulty_tool,
)
from tether.testing.gate import GatedModel
from tether.testing.network import NetworkBlocked, block_network

__all__ = [
    "MODEL_FAULT_KINDS",
    "TOOL_FAULT_KINDS",
    "EventLog",
    "FakeClock",
    "Fault",
    "FaultyModel",
    "FaultyTool",
    "FunctionModel",
    "GatedModel",
    "NetworkBlocked",
    "ScriptedModel",
    "ScriptedResponse",
    "ToolFault",
    "block_network",
    "call",
    "capture_events",
    "faulty_tool",
    "unwrap",
]


class EventLog(list[Event]):
    """A list of events with small helpers for assertions; callable as an event sink."""

    def __call__(self, event: Event) -> None:
        self.append(event)

    def types(self) -> list[str]:
        """Event types in order, streamed deltas left out."""
        return [e.type for e in self if e.stored]

    def of(self, type_: str) -> list[Event]:
        """The events of one type."""
        return [e for e in self if e.type == type_]

    def tool_calls(self) -> list[tuple[str, dict[str, object]]]:
        """``(name, arguments)`` of every tool call that started."""
        return [(e.data["name"], e.data["arguments"]) for e in self.of("tool.started")]


@contextmanager
def capture_events() -> Iterator[EventLog]:
    """``with capture_events() as log: await rt.run(..., on_event=log)``."""
    yield EventLog()
