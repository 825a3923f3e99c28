"""Every exception Tether raises, in one place.

The tree has three families, so callers can tell *who* has to act::

    TetherError
    ├── ToolSignal                 raised by tools to steer the runtime
    │   ├── Retry                  "try this call again" (transient, tool-side)
    │   └── ToolFailed             a clean, user-explainable failure
    ├── ConfigError                a developer mistake: fix the code or config
    │   ├── ToolDefinitionError    a @tool whose signature cannot become a schema
    │   ├── AgentLoadError         an AGENT reference that cannot be imported
    │   └── ModelSpecError         a model spec string that names no provider
    └── RunError                   a run could not proceed; the session is intact
        ├── ProviderError          a model API failed (status, retryable?)
        │   └── ModelTimeout       no answer within the configured timeout
        ├── CircuitOpen            a breaker is open: the dependency failed repeatedly
        ├── ApprovalError          a stale, unknown or unauthorised approval decision
        │   └── NotApprover        the decider lacks the role the approval needs
        ├── AccessDenied           a principal acting on a session that is not theirs
        ├── ModelUnavailable       no model of the chain could answer (and why)
        ├── SessionConflict        another process holds this session's lease
        ├── SessionNotFound        no session has that id
        ├── InvalidSessionState    the session cannot take this action now
        ├── InputRejected          a user message the runtime will not accept
        ├── ShuttingDown           the runtime is closing and takes no new turns
        ├── ToolWorkersBusy        every tool thread is held by a call that timed out
        ├── RateLimited            a per-user or per-tenant limit refused the request
        ├── ModelIntegrityError    a local model file failed its hash check
        ├── ScriptExhausted        a scripted test model was called once too often
        ├── StoreTimeout           a store operation outlived op_timeout (also a TimeoutError)
        ├── StoreUnavailable       the database is unreachable or busy (also a ConnectionError)
        ├── ServerError            a Tether server answered a problem document (status, detail)
        └── ServerUnreachable      no answer from a Tether server (also a ConnectionError)

``StoreTimeout`` and ``StoreUnavailable`` are defined in
:mod:`tether.store.errors` (the store layer, imported only when a SQL store is
used) and re-exported by :mod:`tether.store`; ``ServerError`` and
``ServerUnreachable`` in :mod:`tether.client`.

Every message says the likely cause and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "AgentLoadError",
    "ApprovalError",
    "CircuitOpen",
    "ConfigError",
    "InputRejected",
    "InvalidSessionState",
    "ModelIntegrityError",
    "ModelSpecError",
    "ModelTimeout",
    "ModelUnavailable",
    "NotApprover",
    "ProviderError",
    "RateLimited",
    "Retry",
    "RunError",
    "ScriptExhausted",
    "SessionConflict",
    "SessionNotFound",
    "ShuttingDown",
    "TetherError",
    "ToolDefinitionError",
    "ToolFailed",
    "ToolSignal",
    "ToolWorkersBusy",
]


class TetherError(Exception):
    """Base class of every error Tether raises on purpose."""


# --- signals raised by tools -------------------------------------------------


class ToolSignal(TetherError):
    """Raised inside a tool to tell the runtime something about the call."""


class Retry(ToolSignal):
    """The tool hit a transient problem; the call may be tried again."""


class ToolFailed(ToolSignal):
    """The tool could not do what was asked, for a reason the user may be told.

    The message is returned to the model as a structured error result; use it
    for expected refusals ("order #W1 is not pending") rather than bugs.
    """


# --- developer mistakes ----------------------------------------------------


class ConfigError(TetherError):
    """The agent, tool or runtime is configured wrongly; fix the code or config."""


class ToolDefinitionError(ConfigError):
    """A function decorated with ``@tool`` cannot be described as a tool."""


class AgentLoadError(ConfigError):
    """An agent reference (``module:attr`` or a folder) could not be loaded."""


class ModelSpecError(ConfigError):
    """A model spec string (``anthropic:MODEL``, ``openai:MODEL``, ``local``...) is invalid."""


# --- run failures ------------------------------------------------------------


class RunError(TetherError):
    """A run could not proceed. The stored session stays consistent and resumable."""


class ProviderError(RunError):
    """A model provider call failed.

    ``status`` is the HTTP status when there was one; ``retryable`` says whether
    the failure is transient (429, 5xx, timeouts, connection errors).
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        model: str = "",
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.model = model
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


class CircuitOpen(RunError):
    """A circuit breaker is open: calls to ``key`` fail fast until ``retry_at`` (Unix time)."""

    def __init__(self, message: str, *, key: str, retry_at: float | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.retry_at = retry_at


class ApprovalError(RunError):
    """An approval decision that cannot be taken: stale, for another call, or without the role."""


class NotApprover(ApprovalError):
    """The decider may not decide this approval (a server answers 403: they see the session)."""


class ModelUnavailable(RunError):
    """No model of the chain could answer.

    ``reasons`` has one line per model tried; ``fallback_blocked`` is true
    when a backup model was available but not allowed (the session may lead
    to a critical action, or the agent is ``no_downgrade``).
    """

    def __init__(
        self, message: str, *, reasons: tuple[str, ...] = (), fallback_blocked: bool = False
    ) -> None:
        super().__init__(message)
        self.reasons = reasons
        self.fallback_blocked = fallback_blocked


class ModelTimeout(ProviderError):
    """The model did not answer within its timeout."""

    def __init__(self, message: str, *, provider: str = "", model: str = "") -> None:
        super().__init__(message, provider=provider, model=model, retryable=True)


class SessionConflict(RunError):
    """Another process is advancing this session right now (it holds the lease).

    ``holder`` names the lease holder (``host:pid:nonce:N``, one per turn) when known, and
    ``expires`` when its lease runs out (Unix time).
    """

    def __init__(
        self, message: str, *, holder: str | None = None, expires: float | None = None
    ) -> None:
        super().__init__(message)
        self.holder = holder
        self.expires = expires


class SessionNotFound(RunError):
    """No stored session has this id."""


class InvalidSessionState(RunError):
    """The session's state does not allow this action (e.g. it already failed)."""


class AccessDenied(RunError):
    """A principal tried to act on a session that belongs to another user or tenant.

    Nothing was run or recorded. A server answers it as "not found": a
    session that is not yours does not exist for you.
    """


class ShuttingDown(RunError):
    """The runtime is shutting down (``Runtime.aclose``) and takes no new turns.

    Nothing was stored for the refused operation: send it to another
    replica, or again once this one has restarted.
    """


class ToolWorkersBusy(RunError):
    """Every tool worker thread is still running a call that timed out; nothing was run.

    Those calls hang in the tools' own code (a socket without a timeout, a
    lock): give the blocking calls inside those tools timeouts shorter than
    the tool's, or give the runtime more tool threads (``Runtime(tool_workers=...)``).
    """


class InputRejected(RunError):
    """A user message was rejected before anything was stored (empty, too long...)."""


class RateLimited(RunError):
    """A per-user or per-tenant limit refused the request; nothing was spent or stored.

    ``limit`` names it (``sessions_per_hour``, ``tokens_per_day``,
    ``concurrent_sessions``), ``scope`` says whose (``user`` or ``tenant``),
    ``key`` the user or tenant id, ``allowed`` the limit's size, and
    ``reset_at`` (Unix time) when it admits again: for a concurrency limit,
    when one of the running turns ends, so ``None``. ``retry_after`` is the
    same as a number of seconds from the time it was raised.
    """

    def __init__(
        self,
        message: str,
        *,
        limit: str,
        scope: str,
        key: str,
        allowed: int,
        reset_at: float | None,
        retry_after: float | None,
    ) -> None:
        super().__init__(message)
        self.limit = limit
        self.scope = scope
        self.key = key
        self.allowed = allowed
        self.reset_at = reset_at
        self.retry_after = retry_after


class ModelIntegrityError(RunError):
    """A local model file does not match its published sha256; it is not loaded."""


class ScriptExhausted(RunError):
    """A scripted model was called more times than it has scripted responses."""
