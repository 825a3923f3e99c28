"""The agents' dependencies a runtime built: once per runtime, or once per session.

``Agent(deps=factory)``: a factory with no argument is called once per
runtime; one with a required positional argument is called once per
session with a :class:`~tether.runtime.session.SessionInfo` (the session id,
its principal, its context), so each user or tenant gets its own
connection. Either may be async. :class:`DepsCache` keeps what was built,
closes the least recently used per-session entries beyond its cap (never
one a turn is using, never an object another session still holds), and
closes each object once at shutdown (``aclose`` or ``close``, awaited if
it is a coroutine).
"""

from __future__ import annotations

import inspect
import logging
from collections import OrderedDict
from collections.abc import Callable, Container
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tether.runtime.session import SessionInfo

__all__ = ["DepsCache"]

log = logging.getLogger("tether.runtime")

_Factory = Callable[..., Any]


class DepsCache:
    """What agents' deps factories built, for one runtime."""

    __slots__ = ("_busy", "_max", "_per_runtime", "_per_session", "_takes")

    def __init__(self, *, max_sessions: int, busy: Container[str]) -> None:
        # Keyed by id() of the factory, with the factory itself kept in the
        # entry: while an entry exists its factory is alive, so its id cannot
        # be reused by a new one (which would get another agent's deps).
        self._per_runtime: dict[int, tuple[_Factory, Any]] = {}
        self._per_session: OrderedDict[tuple[int, str], tuple[_Factory, Any]] = OrderedDict()
        self._takes: dict[int, bool] = {}
        self._max = max_sessions
        #: session ids with a turn in progress (their deps are never evicted)
        self._busy = busy

    async def get(self, factory: _Factory | None, info: SessionInfo) -> Any:
        """The deps ``factory`` built for this runtime, or for ``info``'s session."""
        if factory is None:
            return None
        if not self._takes_session(factory):
            made = self._per_runtime.get(id(factory))
            if made is not None and made[0] is factory:
                return made[1]
            deps = await _maybe_await(factory())
            self._per_runtime[id(factory)] = (factory, deps)
            return deps
        key = (id(factory), info.session_id)
        made = self._per_session.get(key)
        if made is not None and made[0] is factory:
            self._per_session.move_to_end(key)
            return made[1]
        deps = await _maybe_await(factory(info))
        self._per_session[key] = (factory, deps)
        await self._evict()
        return deps

    async def aclose(self) -> None:
        """Close every object built, each once, however many sessions shared it."""
        made = {id(d): d for _f, d in [*self._per_session.values(), *self._per_runtime.values()]}
        self._per_session.clear()
        self._per_runtime.clear()
        for deps in made.values():
            await _close_quietly(deps)

    def _takes_session(self, factory: _Factory) -> bool:
        known = self._takes.get(id(factory))
        if known is None:
            known = self._takes[id(factory)] = _takes_argument(factory)
        return known

    async def _evict(self) -> None:
        """Close the least recently used per-session deps beyond the cap (never a busy one)."""
        extra = len(self._per_session) - self._max
        if extra <= 0:
            return
        for key in list(self._per_session):
            if extra <= 0:
                break
            if key[1] in self._busy:
                continue
            _factory, deps = self._per_session.pop(key)
            extra -= 1
            # A factory may hand several sessions one object (a pool per tenant):
            # it is closed only once no session's entry holds it any more.
            if any(d is deps for _f, d in self._per_session.values()):
                continue
            await _close_quietly(deps)


def _takes_argument(factory: _Factory) -> bool:
    """Whether a deps factory takes the session (a required positional argument) or nothing."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        for p in params
    )


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


async def _close_quietly(deps: Any) -> None:
    closer = getattr(deps, "aclose", None) or getattr(deps, "close", None)
    if closer is None:
        return
    try:
        res = closer()
        if inspect.isawaitable(res):
            await res
    except Exception:
        log.exception("closing deps %r failed", type(deps).__name__)
