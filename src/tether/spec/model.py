"""The ``Model`` seam: what the runtime asks of any model provider.

A provider implements one method, :meth:`Model.stream`, which takes a
:class:`ModelRequest` and yields :class:`TextDelta` events while tokens
arrive, then exactly one :class:`ModelResponse`. The Protocol lives in the
spec layer (DESIGN.md lists it under providers) so that ``Agent`` can name
it while staying pure data; ``tether.providers`` re-exports it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from tether.spec.messages import Message, Usage

TOOL_CHOICES = ("auto", "required", "none")

__all__ = [
    "TOOL_CHOICES",
    "Model",
    "ModelRequest",
    "ModelResponse",
    "ModelStreamEvent",
    "TextDelta",
    "ToolSpec",
]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """What a model is told about a tool: name, description and JSON Schema."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """One call to a model.

    ``system`` is built by the runtime (preamble + the agent's fixed
    instructions) and is never built from user data. ``tool_choice`` is
    ``auto`` (the model decides), ``required`` (it must call one of
    ``tools``) or ``none`` (it must not call any); providers map it to their
    API's own option.
    """

    system: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str = "auto"
    max_tokens: int = 1024
    temperature: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of assistant text, as soon as the provider streams it."""

    text: str


@dataclass(frozen=True, slots=True)
class ModelResponse:
    """The finished answer of one model call.

    ``message`` is the assistant message (text and/or tool calls); ``model``
    the spec of the model that produced it (``anthropic:claude-...``);
    ``stop_reason`` the provider's reason, normalised to ``end``,
    ``tool_use``, ``max_tokens`` or the provider's own word.
    """

    message: Message
    usage: Usage
    model: str
    stop_reason: str = "end"


ModelStreamEvent = TextDelta | ModelResponse


@runtime_checkable
class Model(Protocol):
    """A model provider. ``name`` is its spec string; ``stream`` does the call."""

    @property
    def name(self) -> str: ...

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        """Yield :class:`TextDelta` events, then exactly one :class:`ModelResponse`."""
        ...
