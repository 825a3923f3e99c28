"""Lease owner ids and the one safe takeover: a holder proven dead.

A lease owner id is ``host:pid:nonce``. When a session's lease is held by a
process on *this* host that no longer exists (it crashed, or was killed
with SIGKILL), waiting for the lease to expire helps nobody: the runtime
takes the lease over with a compare-and-set on that exact holder. A holder
on another host, or one still alive, is never overridden.
"""

from __future__ import annotations

import os
import socket
import uuid

__all__ = ["holder_is_dead", "owner_id"]

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
