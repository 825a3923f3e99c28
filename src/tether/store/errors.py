"""Store-specific failures and the lease-conflict messages both stores share.

``StoreTimeout`` and ``StoreUnavailable`` are :class:`~tether.exceptions.RunError`
subclasses (the session stays intact and resumable) that are also a
``TimeoutError`` / ``ConnectionError``, so retry policies that classify by
the builtin exception treat them as transient.
"""

from __future__ import annotations

from datetime import datetime

from tether.exceptions import RunError, SessionConflict

__all__ = ["StoreTimeout", "StoreUnavailable", "lease_conflict", "lease_lost"]


class StoreTimeout(RunError, TimeoutError):
    """A store operation did not finish within ``op_timeout``."""


class StoreUnavailable(RunError, ConnectionError):
    """The database could not be reached or refused the operation for now."""


def _clock(expires: float | None) -> str:
    if expires is None:
        return "its lease expires"
    return datetime.fromtimestamp(expires).strftime("%H:%M:%S")


def lease_conflict(session_id: str, holder: str | None, expires: float | None) -> SessionConflict:
    """The error for trying to take a lease someone else holds."""
    return SessionConflict(
        f"session {session_id} is being advanced by another process ({holder}) "
        f"until {_clock(expires)}; wait, or resume it after the lease expires",
        holder=holder,
        expires=expires,
    )


def lease_lost(
    session_id: str, owner: str, holder: str | None, expires: float | None
) -> SessionConflict:
    """The error for committing without holding the lease; nothing was written."""
    if holder is None:
        who = "nobody holds it now (it was released)"
    else:
        who = f"it is held by {holder} until {_clock(expires)}"
    return SessionConflict(
        f"session {session_id}: {owner} no longer holds the lease ({who}); nothing "
        "was written. Another process may have taken over after the lease expired: "
        "reload the session with acquire() before advancing it",
        holder=holder,
        expires=expires,
    )
