"""Tether's test kit: public test doubles for agents' own tests.

- :class:`ScriptedModel` plays a list of responses and fails on an extra call;
  :class:`FunctionModel` answers from a function; :func:`call` builds a tool call.
- :func:`capture_events` collects every event a runtime emits.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tether.providers.scripted import FunctionModel, ScriptedModel, ScriptedResponse, call
from tether.spec.events import Event

__all__ = [
    "EventLog",
    "FunctionModel",
    "ScriptedModel",
    "ScriptedResponse",
    "call",
    "capture_events",
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
