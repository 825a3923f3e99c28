"""Tether: a runtime that takes tool-using LLM agents from demo to production.

The public API is re-exported here; submodules are private unless documented
(``tether.testing``, ``tether.store`` and ``tether.surfaces.evals`` are public
facades of their own). Names that pull in a heavy library (SQLAlchemy,
sqlglot, ``limits``, the sandbox) load on first use.
"""

from importlib import import_module as _import_module
from typing import Any as _Any

from tether.exceptions import (
    AccessDenied,
    ApprovalError,
    CircuitOpen,
    ConfigError,
    InputRejected,
    InvalidSessionState,
    ModelUnavailable,
    NotApprover,
    ProviderError,
    RateLimited,
    RunError,
    ScriptExhausted,
    SessionConflict,
    SessionNotFound,
    ShuttingDown,
    TetherError,
    ToolFailed,
)
from tether.runtime import Runtime, Session, SessionInfo, SessionState, TurnResult
from tether.runtime.approvals import PendingApproval
from tether.spec import (
    Agent,
    Budget,
    Event,
    EventType,
    Limits,
    Message,
    Model,
    ModelRequest,
    ModelResponse,
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
from tether.spec.approval import ApprovalPolicy, arguments_hash
from tether.spec.events import SessionStatus
from tether.spec.guard import GuardPolicy
from tether.spec.health import HealthCheck
from tether.spec.policy import BreakerPolicy, RetryPolicy
from tether.spec.pricing import Price, PriceTable
from tether.spec.principal import Principal

__version__ = "0.1.0"

#: public names loaded on first use, and the module each comes from
_LAZY = {
    "open_store": "tether.store",
    "RateLimiter": "tether.controls.ratelimit",
    "SqlPolicy": "tether.controls.sqlguard",
    "review_sql": "tether.controls.sqlguard",
    "InjectionDetector": "tether.controls.guards",
    "apply_policy": "tether.controls.guards",
    "SandboxLimits": "tether.controls.sandbox",
    "open_sandbox": "tether.controls.sandbox",
    "run_python_tool": "tether.controls.sandbox",
    "mcp_server": "tether.providers.mcp",
}


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tether' has no attribute {name!r}")
    value = getattr(_import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AccessDenied",
    "Agent",
    "ApprovalError",
    "ApprovalPolicy",
    "BreakerPolicy",
    "Budget",
    "CircuitOpen",
    "ConfigError",
    "Event",
    "EventType",
    "GuardPolicy",
    "HealthCheck",
    "InjectionDetector",
    "InputRejected",
    "InvalidSessionState",
    "Limits",
    "Message",
    "Model",
    "ModelRequest",
    "ModelResponse",
    "ModelUnavailable",
    "NotApprover",
    "PendingApproval",
    "Price",
    "PriceTable",
    "Principal",
    "ProviderError",
    "Quota",
    "RateLimited",
    "RateLimiter",
    "RateLimits",
    "RetryPolicy",
    "Risk",
    "RunError",
    "Runtime",
    "SandboxLimits",
    "ScriptExhausted",
    "Session",
    "SessionConflict",
    "SessionInfo",
    "SessionNotFound",
    "SessionState",
    "SessionStatus",
    "ShuttingDown",
    "SqlPolicy",
    "TetherError",
    "Tool",
    "ToolCall",
    "ToolContext",
    "ToolFailed",
    "ToolResult",
    "TurnResult",
    "Usage",
    "__version__",
    "apply_policy",
    "arguments_hash",
    "mcp_server",
    "open_sandbox",
    "open_store",
    "review_sql",
    "run_python_tool",
    "tool",
]
