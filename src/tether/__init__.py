"""Tether: a runtime that takes tool-using LLM agents from demo to production.

The public API is re-exported here; submodules are private unless documented.
"""

from typing import Any

from tether.exceptions import (
    CircuitOpen,
    ConfigError,
    ModelUnavailable,
    ProviderError,
    RateLimited,
    RunError,
    SessionConflict,
    SessionNotFound,
    TetherError,
    ToolFailed,
)
from tether.runtime import Runtime, TurnResult
from tether.spec import (
    Agent,
    Budget,
    Event,
    EventType,
    Limits,
    Message,
    Model,
    Quota,
    RateLimits,
    Risk,
    Tool,
    ToolCall,
    ToolContext,
    ToolResult,
    Usage,
    tool,
)
from tether.spec.policy import BreakerPolicy, RetryPolicy
from tether.spec.pricing import Price, PriceTable

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The SQL store pulls in SQLAlchemy; load it only when it is asked for.
    if name == "open_store":
        from tether.store import open_store

        return open_store
    raise AttributeError(f"module 'tether' has no attribute {name!r}")


__all__ = [
    "Agent",
    "BreakerPolicy",
    "Budget",
    "CircuitOpen",
    "ConfigError",
    "Event",
    "EventType",
    "Limits",
    "Message",
    "Model",
    "ModelUnavailable",
    "Price",
    "PriceTable",
    "ProviderError",
    "Quota",
    "RateLimited",
    "RateLimits",
    "RetryPolicy",
    "Risk",
    "RunError",
    "Runtime",
    "SessionConflict",
    "SessionNotFound",
    "TetherError",
    "Tool",
    "ToolCall",
    "ToolContext",
    "ToolFailed",
    "ToolResult",
    "TurnResult",
    "Usage",
    "__version__",
    "open_store",
    "tool",
]
