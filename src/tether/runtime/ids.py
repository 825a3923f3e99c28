"""Session ids that sort by creation time.

A session id is a UUID version 7 (RFC 9562: 48 bits of Unix milliseconds,
then random bits) in 32 hex digits. Ids made in a later millisecond sort
later (within one millisecond their order is random), so a new
session's row and its events land at the right edge of the stores' B-tree
indexes instead of at a random page, and ``ORDER BY id`` is roughly creation
order. The random part (74 bits) keeps ids unguessable enough for a log
line, not for a secret: never use a session id as a credential.

Python 3.14 has :func:`uuid.uuid7`; it is used where present. On 3.11-3.13
the same layout is built here (a dozen lines, not worth a dependency).
"""

from __future__ import annotations

import os
import time
import uuid

__all__ = ["new_session_id"]


def _uuid7() -> uuid.UUID:
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")  # 80 bits; 74 are kept
    value = (ms & (1 << 48) - 1) << 80 | rand & ((1 << 80) - 1)
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # variant 10
    return uuid.UUID(int=value)


_make = getattr(uuid, "uuid7", _uuid7)


def new_session_id() -> str:
    """A new time-ordered session id: 32 lowercase hex digits (a UUIDv7)."""
    return _make().hex
