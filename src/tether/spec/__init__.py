"""Pure data: messages, events, tools, agents and the Model seam."""

from tether.spec.agent import Agent, Limits
from tether.spec.budget import Budget, Quota, RateLimits
from tether.spec.events import EPHEMERAL_TYPES, Event, EventType
from tether.spec.messages import Message, Role, ToolCall, ToolResult, Usage
from tether.spec.model import (
    Model,
    ModelRequest,
    ModelResponse,
    ModelStreamEvent,
    TextDelta,
    ToolSpec,
)
from tether.spec.tools import Risk, Tool, ToolContext, tool

__all__ = [
    "EPHEMERAL_TYPES",
    "Agent",
    "Budget",
    "Event",
    "EventType",
    "Limits",
    "Message",
    "Model",
    "ModelRequest",
    "ModelResponse",
    "ModelStreamEvent",
    "Quota",
    "RateLimits",
    "Risk",
    "Role",
    "TextDelta",
    "Tool",
    "ToolCall",
    "ToolContext",
    "ToolResult",
    "ToolSpec",
    "Usage",
    "tool",
]
