"""What the ``stream*`` methods yield: :class:`StreamEvent` items of a :class:`StreamKind`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tether.surfaces.server.models import EventOut, Problem, TurnOut

__all__ = ["StreamEnd", "StreamEvent", "StreamKind"]


class StreamKind(StrEnum):
    """What a :class:`StreamEvent` holds."""

    #: a stored event (``id`` is its ``seq``): each comes once, in order
    EVENT = "event"
    #: a streamed-only ``model.delta`` (``seq`` 0, ``id`` None): live text, never replayed
    DELTA = "delta"
    #: the turn's outcome (``turn``): the last item of a turn stream
    TURN = "turn"
    #: the session is at rest (``end``): the last item of an events stream, and of a
    #: turn stream picked up again after a break
    END = "end"
    #: the server reported a problem (``problem``); the stream ends with it
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """How an events stream ended: the session's ``status`` and the last ``seq`` sent."""

    status: str
    last_seq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamEvent:
    """One item of a stream; ``kind`` says which one field is set."""

    kind: StreamKind
    #: the stored event's ``seq`` (``EVENT``), else None
    id: int | None = None
    event: EventOut | None = None
    turn: TurnOut | None = None
    problem: Problem | None = None
    end: StreamEnd | None = None
