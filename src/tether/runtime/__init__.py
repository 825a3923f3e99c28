"""The step machine: sessions driven step by step, persisted after every step."""

from tether.runtime.context import PREAMBLE
from tether.runtime.memory import InMemoryStore
from tether.runtime.ports import SessionRecord, SessionStatus, SessionStore
from tether.runtime.runtime import EventSink, Runtime, TurnResult
from tether.runtime.session import Session, SessionInfo
from tether.runtime.state import SessionState

__all__ = [
    "PREAMBLE",
    "EventSink",
    "InMemoryStore",
    "Runtime",
    "Session",
    "SessionInfo",
    "SessionRecord",
    "SessionState",
    "SessionStatus",
    "SessionStore",
    "TurnResult",
]
