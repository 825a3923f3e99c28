"""Lease owner ids, and the opt-in takeover of a holder proven dead.

A runtime's owner id is ``host:pid:nonce``; each turn holds the lease as
``host:pid:nonce:N`` (its own, so a refused operation never releases
another turn's lease). A lease is renewed while its turn works and taken
over only once it has expired.

:func:`holder_is_dead` is used only with ``Runtime(takeover_dead_pids=True)``:
when the holder is a process of this host *and PID namespace* that no longer
exists, the runtime takes the lease over at once with a compare-and-set on
that exact holder. It is off by default because a host name does not
identify a PID namespace: containers with host networking share one, and a
live holder in another container would be judged dead.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime

from tether.exceptions import SessionConflict

__all__ = ["holder_is_dead", "lease_conflict", "lease_lost", "owner_id"]

_HOST = socket.gethostname()


def owner_id() -> str:
    """A new lease owner id for this process."""
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_is_dead(holder: str) -> bool:
    """True only if ``holder`` names a process on this host that has exited."""
    host, _, rest = holder.partition(":")
    pid_text, _, _nonce = rest.partition(":")
    if host != _HOST or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A killed child not yet reaped by its parent still 'exists'; treat it as dead."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[-1].split()
    except OSError:
        return False
    return bool(fields) and fields[0] == "Z"


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
