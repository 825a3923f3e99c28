"""Session ids: UUIDv7, time-ordered across milliseconds, unique."""

from __future__ import annotations

import time
import uuid

from tether.runtime.ids import _uuid7, new_session_id


def test_session_ids_are_uuid7_hex() -> None:
    sid = new_session_id()
    assert len(sid) == 32
    assert sid == sid.lower()
    parsed = uuid.UUID(sid)
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_fallback_layout_carries_the_time_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    value = _uuid7()
    after = time.time_ns() // 1_000_000
    assert before <= value.int >> 80 <= after
    assert (value.version, value.variant) == (7, uuid.RFC_4122)


def test_ids_made_in_later_milliseconds_sort_later_and_never_repeat() -> None:
    ids = []
    for _ in range(5):
        ids.append(new_session_id())
        time.sleep(0.002)
    assert ids == sorted(ids)
    assert len({new_session_id() for _ in range(10_000)}) == 10_000
