"""The provider-neutral conversation model.

A conversation is a list of :class:`Message`. Providers translate it to their
own wire format and back; nothing above the providers layer knows any
vendor's shape. Messages are plain frozen dataclasses (no validation cost on
the hot path) with ``to_dict``/``from_dict`` for storage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Message", "Role", "ToolCall", "ToolResult", "Usage"]

Role = Literal["user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call the model asked for: ``id`` is the provider's call id."""

    id: str
    name: str
    arguments: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ToolCall:
        return cls(id=d["id"], name=d["name"], arguments=d.get("arguments") or {})


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool call produced, as text for the model.

    ``is_error`` marks a structured failure (the tool raised, timed out, or
    refused); ``content`` then says what could not be done.
    """

    call_id: str
    name: str
    content: str
    is_error: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "name": self.name,
            "content": self.content,
            "is_error": self.is_error,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ToolResult:
        return cls(
            call_id=d["call_id"],
            name=d["name"],
            content=d["content"],
            is_error=bool(d.get("is_error", False)),
        )


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens one model call used, as the provider reported them."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
        )

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
        )

    def to_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Usage:
        if not d:
            return cls()
        return cls(
            int(d.get("input_tokens", 0)),
            int(d.get("output_tokens", 0)),
            int(d.get("cache_read_tokens", 0)),
            int(d.get("cache_write_tokens", 0)),
        )


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of the conversation.

    - ``user``: ``text`` is what the person wrote.
    - ``assistant``: ``text`` (may be empty) and ``tool_calls`` (may be empty);
      ``model`` names the model that wrote it and ``degraded`` is true when it
      came from a fallback model.
    - ``tool``: ``results`` holds one :class:`ToolResult` per call of the
      preceding assistant message.
    """

    role: Role
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    results: tuple[ToolResult, ...] = ()
    model: str | None = None
    degraded: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def user(cls, text: str) -> Message:
        return cls(role="user", text=text)

    @classmethod
    def assistant(
        cls, text: str = "", tool_calls: tuple[ToolCall, ...] | list[ToolCall] = ()
    ) -> Message:
        return cls(role="assistant", text=text, tool_calls=tuple(tool_calls))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"role": self.role, "text": self.text}
        if self.tool_calls:
            d["tool_calls"] = [c.to_dict() for c in self.tool_calls]
        if self.results:
            d["results"] = [r.to_dict() for r in self.results]
        if self.model is not None:
            d["model"] = self.model
        if self.degraded:
            d["degraded"] = True
        if self.metadata:
            d["metadata"] = self.metadata
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Message:
        return cls(
            role=d["role"],
            text=d.get("text", ""),
            tool_calls=tuple(ToolCall.from_dict(c) for c in d.get("tool_calls", ())),
            results=tuple(ToolResult.from_dict(r) for r in d.get("results", ())),
            model=d.get("model"),
            degraded=bool(d.get("degraded", False)),
            metadata=dict(d.get("metadata") or {}),
        )
