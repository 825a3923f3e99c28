"""The ``SessionStore`` contract, run against every backend (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import pytest

from tether.exceptions import SessionConflict, SessionNotFound
from tether.runtime.ports import SessionRecord, SessionStatus, SessionStore
from tether.spec.events import Event, EventType
from tether.spec.messages import Usage

T0 = 1_700_000_000.0
TTL = 30.0


def make_record(sid: str | None = None, **kw: Any) -> SessionRecord:
    fields: dict[str, Any] = {
        "id": sid or uuid.uuid4().hex,
        "agent": "retail",
        "agent_version": "3",
        "user_id": "user-1",
        "status": SessionStatus.RUNNING,
        "created_at": T0,
        "updated_at": T0,
    }
    fields.update(kw)
    return SessionRecord(**fields)


def ev(
    sid: str, seq: int, *, step: int = 0, type_: str = EventType.USER_MESSAGE, **data: Any
) -> Event:
    return Event(type=type_, session_id=sid, step=step, time=T0 + seq, data=data, seq=seq)


async def new_session(store: SessionStore, owner: str = "a", **kw: Any) -> SessionRecord:
    rec = make_record(**kw)
    first = ev(rec.id, 1, type_=EventType.SESSION_CREATED, agent=rec.agent)
    rec.event_count = 1
    await store.create(rec, [first], owner=owner, lease_ttl=TTL)
    return rec


# --- create / get / events ----------------------------------------------------


async def test_create_get_events_round_trip(store: SessionStore) -> None:
    rec = make_record(
        agent="Ünïcode agent ☃",
        user_id="用户-7",
        step=2,
        event_count=3,
        usage=Usage(120, 45, 7, 3),
        last_error="it broke: «quotes»",
    )
    message = {
        "role": "assistant",
        "text": "Здравствуйте 👋",
        "tool_calls": [{"id": "c1", "name": "find", "arguments": {"q": [1, 2.5, None, True]}}],
    }
    evs = [
        ev(rec.id, 1, type_=EventType.SESSION_CREATED, agent=rec.agent, version="3"),
        ev(rec.id, 2, text="naïve café — \u2028 \x00 ok"),
        Event(
            type=EventType.MODEL_RESPONSE,
            session_id=rec.id,
            step=1,
            time=T0 + 2.25,
            data={"message": message, "model": "scripted", "nested": {"a": {"b": {"c": []}}}},
            usage=Usage(100, 40, 5, 1),
            seq=3,
        ),
    ]
    await store.create(rec, evs, owner="host:1:abc", lease_ttl=TTL)

    got = await store.get(rec.id)
    assert got == replace(rec, lease_owner="host:1:abc", lease_expires=T0 + TTL)
    assert await store.events(rec.id) == evs
    assert await store.events(rec.id, after_seq=1) == evs[1:]
    assert await store.events(rec.id, after_seq=3) == []


async def test_create_duplicate_id_conflicts_and_keeps_the_original(store: SessionStore) -> None:
    rec = await new_session(store)
    again = replace(rec, agent="other")
    with pytest.raises(SessionConflict, match="already exists"):
        await store.create(again, [ev(rec.id, 2)], owner="b", lease_ttl=TTL)
    got = await store.get(rec.id)
    assert got.agent == "retail"
    assert got.lease_owner == "a"
    assert [e.seq for e in await store.events(rec.id)] == [1]


async def test_missing_session(store: SessionStore) -> None:
    with pytest.raises(SessionNotFound):
        await store.get("nope")
    with pytest.raises(SessionNotFound):
        await store.acquire("nope", owner="a", now=T0, lease_ttl=TTL)
    with pytest.raises(SessionNotFound):
        await store.commit(make_record("nope"), [], owner="a", lease_ttl=TTL)
    assert await store.events("nope") == []


# --- leases ----------------------------------------------------------------------


async def test_acquire_while_lease_is_valid_conflicts_with_holder(store: SessionStore) -> None:
    rec = await new_session(store, owner="host-a:11:n1")
    with pytest.raises(SessionConflict) as info:
        await store.acquire(rec.id, owner="host-b:22:n2", now=T0 + 10, lease_ttl=TTL)
    assert info.value.holder == "host-a:11:n1"
    assert info.value.expires == T0 + TTL
    msg = str(info.value)
    assert rec.id in msg
    assert "being advanced by another process (host-a:11:n1)" in msg
    assert "resume it after the lease expires" in msg
    assert (await store.get(rec.id)).lease_owner == "host-a:11:n1"


async def test_lease_is_held_until_strictly_after_expiry(store: SessionStore) -> None:
    rec = await new_session(store)
    with pytest.raises(SessionConflict):
        await store.acquire(rec.id, owner="b", now=T0 + TTL, lease_ttl=TTL)
    got, _ = await store.acquire(rec.id, owner="b", now=T0 + TTL + 0.001, lease_ttl=TTL)
    assert got.lease_owner == "b"


async def test_acquire_after_expiry_takes_over_and_old_holder_cannot_commit(
    store: SessionStore,
) -> None:
    rec = await new_session(store)
    got, evs = await store.acquire(rec.id, owner="b", now=T0 + 31, lease_ttl=TTL)
    assert got.lease_owner == "b"
    assert got.lease_expires == T0 + 31 + TTL
    assert [e.seq for e in evs] == [1]
    assert evs[0].type == EventType.SESSION_CREATED

    stale = replace(rec, step=5, event_count=2, updated_at=T0 + 32)
    with pytest.raises(SessionConflict) as info:
        await store.commit(stale, [ev(rec.id, 2)], owner="a", lease_ttl=TTL)
    assert info.value.holder == "b"
    assert "nothing was written" in str(info.value)
    after = await store.get(rec.id)
    assert (after.step, after.event_count, after.lease_owner) == (0, 1, "b")
    assert [e.seq for e in await store.events(rec.id)] == [1]


async def test_acquire_by_the_holder_renews(store: SessionStore) -> None:
    rec = await new_session(store)
    got, _ = await store.acquire(rec.id, owner="a", now=T0 + 20, lease_ttl=TTL)
    assert (got.lease_owner, got.lease_expires) == ("a", T0 + 20 + TTL)


async def test_replace_takes_over_a_live_lease_from_exactly_that_holder(
    store: SessionStore,
) -> None:
    rec = await new_session(store, owner="dead:1:x")
    with pytest.raises(SessionConflict):
        await store.acquire(rec.id, owner="b", now=T0 + 1, lease_ttl=TTL, replace="other:2:y")
    got, _ = await store.acquire(rec.id, owner="b", now=T0 + 1, lease_ttl=TTL, replace="dead:1:x")
    assert got.lease_owner == "b"
    assert (await store.get(rec.id)).lease_expires == T0 + 1 + TTL


async def test_release(store: SessionStore) -> None:
    rec = await new_session(store)
    await store.release(rec.id, owner="b")  # not the holder: no-op
    assert (await store.get(rec.id)).lease_owner == "a"
    await store.release(rec.id, owner="a")
    got = await store.get(rec.id)
    assert (got.lease_owner, got.lease_expires) == (None, None)
    await store.release("nope", owner="a")  # unknown session: no-op
    # a released lease is free for anyone, long before it would have expired
    taken, _ = await store.acquire(rec.id, owner="b", now=T0 + 1, lease_ttl=TTL)
    assert taken.lease_owner == "b"


# --- append (a turn's commits between status changes) ------------------------------


async def test_append_adds_events_and_leaves_the_row_alone(store: SessionStore) -> None:
    rec = await new_session(store)
    before = await store.get(rec.id)
    await store.append(rec.id, [ev(rec.id, 2, step=1), ev(rec.id, 3, step=1)], owner="a")
    got = await store.events(rec.id)
    assert [(e.seq, e.step, e.type) for e in got] == [
        (1, 0, EventType.SESSION_CREATED),
        (2, 1, EventType.USER_MESSAGE),
        (3, 1, EventType.USER_MESSAGE),
    ]
    # the row is a cache of the log: its next commit catches up, append leaves it
    assert await store.get(rec.id) == before
    rec.event_count, rec.step, rec.updated_at = 4, 1, T0 + 5
    await store.commit(rec, [ev(rec.id, 4, step=1)], owner="a", lease_ttl=TTL)
    row = await store.get(rec.id)
    assert (row.event_count, row.step) == (4, 1)


async def test_append_by_a_non_holder_writes_nothing(store: SessionStore) -> None:
    rec = await new_session(store)
    with pytest.raises(SessionConflict, match="no longer holds the lease") as info:
        await store.append(rec.id, [ev(rec.id, 2)], owner="b")
    assert info.value.holder == "a"
    await store.release(rec.id, owner="a")
    with pytest.raises(SessionConflict):
        await store.append(rec.id, [ev(rec.id, 2)], owner="a")  # released: not the holder
    assert [e.seq for e in await store.events(rec.id)] == [1]


async def test_append_after_a_takeover_writes_nothing(store: SessionStore) -> None:
    rec = await new_session(store)
    await store.acquire(rec.id, owner="b", now=T0 + TTL + 1, lease_ttl=TTL)  # a's expired
    with pytest.raises(SessionConflict):
        await store.append(rec.id, [ev(rec.id, 2)], owner="a")
    assert [e.seq for e in await store.events(rec.id)] == [1]


async def test_append_of_a_seq_already_stored_writes_nothing(store: SessionStore) -> None:
    rec = await new_session(store)
    await store.append(rec.id, [ev(rec.id, 2)], owner="a")
    with pytest.raises(SessionConflict, match="already stored"):
        await store.append(rec.id, [ev(rec.id, 3), ev(rec.id, 2)], owner="a")
    assert [e.seq for e in await store.events(rec.id)] == [1, 2]


async def test_append_to_an_unknown_session(store: SessionStore) -> None:
    with pytest.raises(SessionNotFound):
        await store.append("nope", [ev("nope", 1)], owner="a")


# --- renew (the lease heartbeat) -------------------------------------------------


async def test_renew_extends_the_lease_past_its_original_expiry(store: SessionStore) -> None:
    rec = await new_session(store)  # "a" holds it until T0 + TTL
    expires = await store.renew(rec.id, owner="a", now=T0 + 20, lease_ttl=TTL)
    assert expires == T0 + 20 + TTL
    got = await store.get(rec.id)
    assert (got.lease_owner, got.lease_expires) == ("a", T0 + 20 + TTL)
    # past the original expiry, before the renewed one: still held
    with pytest.raises(SessionConflict) as info:
        await store.acquire(rec.id, owner="b", now=T0 + TTL + 1, lease_ttl=TTL)
    assert (info.value.holder, info.value.expires) == ("a", T0 + 20 + TTL)
    # past the renewed expiry: free
    taken, _ = await store.acquire(rec.id, owner="b", now=T0 + 20 + TTL + 0.001, lease_ttl=TTL)
    assert taken.lease_owner == "b"


async def test_renew_sets_the_expiry_even_when_that_shortens_it(store: SessionStore) -> None:
    rec = await new_session(store)  # held until T0 + TTL
    assert await store.renew(rec.id, owner="a", now=T0 + 1, lease_ttl=5.0) == T0 + 6
    assert (await store.get(rec.id)).lease_expires == T0 + 6
    taken, _ = await store.acquire(rec.id, owner="b", now=T0 + 7, lease_ttl=TTL)
    assert taken.lease_owner == "b"


async def test_renew_changes_only_the_lease(store: SessionStore) -> None:
    rec = await new_session(store)
    rec.status, rec.step, rec.event_count, rec.updated_at = (
        SessionStatus.AWAITING_APPROVAL,
        2,
        2,
        T0 + 5,
    )
    rec.usage, rec.cost, rec.last_error = Usage(1, 2, 3, 4), 0.5, "x"
    await store.commit(rec, [ev(rec.id, 2, step=2)], owner="a", lease_ttl=TTL)
    before = await store.get(rec.id)
    await store.renew(rec.id, owner="a", now=T0 + 10, lease_ttl=60.0)
    after = await store.get(rec.id)
    assert after.updated_at == T0 + 5  # not ``now``
    assert after == replace(before, lease_expires=T0 + 10 + 60.0)
    assert [e.seq for e in await store.events(rec.id)] == [1, 2]
    # the holder's next commit (same status, then a new one) still lands
    rec.step, rec.event_count, rec.updated_at = 3, 3, T0 + 11
    await store.commit(rec, [ev(rec.id, 3, step=3)], owner="a", lease_ttl=TTL)
    rec.status, rec.event_count = SessionStatus.IDLE, 4
    await store.commit(rec, [ev(rec.id, 4, step=3)], owner="a", lease_ttl=TTL)
    got = await store.get(rec.id)
    assert (got.status, got.step, got.event_count) == (SessionStatus.IDLE, 3, 4)
    assert got.lease_expires == T0 + 11 + TTL


async def test_renew_by_a_non_holder_conflicts_and_changes_nothing(store: SessionStore) -> None:
    rec = await new_session(store)
    before = await store.get(rec.id)
    with pytest.raises(SessionConflict) as info:
        await store.renew(rec.id, owner="b", now=T0 + 5, lease_ttl=TTL)
    assert (info.value.holder, info.value.expires) == ("a", T0 + TTL)
    assert "b no longer holds the lease" in str(info.value)
    # an expired lease is not up for grabs through renew: only acquire takes it
    with pytest.raises(SessionConflict):
        await store.renew(rec.id, owner="b", now=T0 + TTL + 5, lease_ttl=TTL)
    assert await store.get(rec.id) == before


async def test_renew_after_release_conflicts(store: SessionStore) -> None:
    rec = await new_session(store)
    await store.release(rec.id, owner="a")
    with pytest.raises(SessionConflict) as info:
        await store.renew(rec.id, owner="a", now=T0 + 1, lease_ttl=TTL)
    assert info.value.holder is None
    assert "it was released" in str(info.value)
    got = await store.get(rec.id)
    assert (got.lease_owner, got.lease_expires) == (None, None)


async def test_an_expired_lease_nobody_took_over_can_still_be_renewed(
    store: SessionStore,
) -> None:
    rec = await new_session(store)
    late = T0 + TTL + 5  # "a"'s lease ran out 5 s ago; the row still names it
    assert await store.renew(rec.id, owner="a", now=late, lease_ttl=TTL) == late + TTL
    with pytest.raises(SessionConflict) as info:
        await store.acquire(rec.id, owner="b", now=late + 1, lease_ttl=TTL)
    assert info.value.holder == "a"


async def test_renew_after_another_owner_took_over_conflicts(store: SessionStore) -> None:
    rec = await new_session(store)
    await store.acquire(rec.id, owner="b", now=T0 + TTL + 1, lease_ttl=TTL)
    with pytest.raises(SessionConflict) as info:
        await store.renew(rec.id, owner="a", now=T0 + TTL + 2, lease_ttl=TTL)
    assert (info.value.holder, info.value.expires) == ("b", T0 + TTL + 1 + TTL)
    got = await store.get(rec.id)
    assert (got.lease_owner, got.lease_expires) == ("b", T0 + TTL + 1 + TTL)


async def test_renew_of_an_unknown_session_is_not_found(store: SessionStore) -> None:
    with pytest.raises(SessionNotFound):
        await store.renew("nope", owner="a", now=T0, lease_ttl=TTL)


# --- commit ----------------------------------------------------------------------


async def test_commit_appends_updates_and_renews_the_lease(store: SessionStore) -> None:
    rec = await new_session(store)
    rec.status = SessionStatus.AWAITING_APPROVAL
    rec.step, rec.event_count, rec.updated_at = 1, 3, T0 + 5
    rec.usage = Usage(10, 20, 30, 40)
    rec.cost = 0.012345
    rec.last_error = "x"
    new = [ev(rec.id, 2, step=1, text="hi"), ev(rec.id, 3, step=1, text="there")]
    await store.commit(rec, new, owner="a", lease_ttl=TTL)
    got = await store.get(rec.id)
    assert got == replace(rec, lease_owner="a", lease_expires=T0 + 5 + TTL)
    assert [e.seq for e in await store.events(rec.id)] == [1, 2, 3]
    assert await store.events(rec.id, after_seq=1) == new

    rec.updated_at = T0 + 6  # a commit with no events still updates the row
    await store.commit(rec, [], owner="a", lease_ttl=TTL)
    assert (await store.get(rec.id)).updated_at == T0 + 6


async def test_commit_with_release_gives_the_lease_back_in_the_same_write(
    store: SessionStore,
) -> None:
    rec = await new_session(store)
    rec.status, rec.step, rec.event_count, rec.updated_at = SessionStatus.IDLE, 1, 2, T0 + 3
    await store.commit(rec, [ev(rec.id, 2, step=1)], owner="a", lease_ttl=TTL, release=True)
    got = await store.get(rec.id)
    assert (got.status, got.step, got.lease_owner, got.lease_expires) == (
        SessionStatus.IDLE,
        1,
        None,
        None,
    )
    assert [e.seq for e in await store.events(rec.id)] == [1, 2]
    # the old holder can no longer write; anyone may take the lease at once
    with pytest.raises(SessionConflict):
        await store.commit(rec, [ev(rec.id, 3)], owner="a", lease_ttl=TTL)
    taken, _ = await store.acquire(rec.id, owner="b", now=T0 + 4, lease_ttl=TTL)
    assert taken.lease_owner == "b"


async def test_status_is_stored_whether_or_not_it_changed(store: SessionStore) -> None:
    # The SQL store leaves ``status`` out of a commit that keeps it; every
    # sequence of same/changed statuses, across a re-acquire, must land.
    rec = await new_session(store)
    statuses = [
        SessionStatus.RUNNING,
        SessionStatus.RUNNING,
        SessionStatus.AWAITING_APPROVAL,
        SessionStatus.AWAITING_APPROVAL,
        SessionStatus.RUNNING,
    ]
    seq = 1
    for i, status in enumerate(statuses):
        seq += 1
        rec.status, rec.step, rec.event_count = status, i + 1, seq
        await store.commit(rec, [ev(rec.id, seq, step=i + 1)], owner="a", lease_ttl=TTL)
        got = await store.get(rec.id)
        assert (got.status, got.step) == (status, i + 1)
    await store.release(rec.id, owner="a")
    # another holder changes it; the first one comes back and must not trust
    # what it wrote before
    other, _ = await store.acquire(rec.id, owner="b", now=T0 + 1, lease_ttl=TTL)
    other.status, other.event_count = SessionStatus.FAILED, seq + 1
    await store.commit(other, [ev(rec.id, seq + 1)], owner="b", lease_ttl=TTL, release=True)
    back, _ = await store.acquire(rec.id, owner="a", now=T0 + 2, lease_ttl=TTL)
    assert back.status == SessionStatus.FAILED
    back.status, back.event_count = SessionStatus.RUNNING, seq + 2
    await store.commit(back, [ev(rec.id, seq + 2)], owner="a", lease_ttl=TTL)
    assert (await store.get(rec.id)).status == SessionStatus.RUNNING


async def test_commit_by_a_non_holder_writes_nothing(store: SessionStore) -> None:
    rec = await new_session(store)
    changed = replace(rec, status=SessionStatus.FAILED, step=9, updated_at=T0 + 1)
    with pytest.raises(SessionConflict) as info:
        await store.commit(changed, [ev(rec.id, 2)], owner="b", lease_ttl=TTL)
    assert info.value.holder == "a"
    await store.release(rec.id, owner="a")
    with pytest.raises(SessionConflict):
        await store.commit(changed, [ev(rec.id, 2)], owner="a", lease_ttl=TTL)
    got = await store.get(rec.id)
    assert (got.status, got.step, got.updated_at) == (SessionStatus.RUNNING, 0, T0)
    assert [e.seq for e in await store.events(rec.id)] == [1]


async def test_seq_conflict_is_a_session_conflict_and_commit_is_atomic(
    store: SessionStore,
) -> None:
    rec = await new_session(store)
    rec.step, rec.event_count, rec.updated_at = 1, 2, T0 + 1
    await store.commit(rec, [ev(rec.id, 2, text="first writer")], owner="a", lease_ttl=TTL)

    # a second writer with the same lease owner re-appends seq 2 along with seq 3
    other = replace(rec, step=7, event_count=3, updated_at=T0 + 2, status=SessionStatus.FAILED)
    batch = [ev(rec.id, 3, text="new"), ev(rec.id, 2, text="second writer")]
    with pytest.raises(SessionConflict):
        await store.commit(other, batch, owner="a", lease_ttl=TTL)

    got = await store.get(rec.id)
    assert (got.step, got.event_count, got.status) == (1, 2, SessionStatus.RUNNING)
    assert got.updated_at == T0 + 1
    stored = await store.events(rec.id)
    assert [e.seq for e in stored] == [1, 2]
    assert stored[1].data == {"text": "first writer"}


async def test_duplicate_seq_within_one_batch_conflicts(store: SessionStore) -> None:
    rec = await new_session(store)
    with pytest.raises(SessionConflict):
        await store.commit(rec, [ev(rec.id, 2), ev(rec.id, 2)], owner="a", lease_ttl=TTL)
    assert [e.seq for e in await store.events(rec.id)] == [1]


async def test_unserialisable_event_fails_before_anything_is_written(
    store: SessionStore,
) -> None:
    rec = await new_session(store)
    if type(store).__name__ == "InMemoryStore":
        pytest.skip("the in-memory store keeps objects and never serialises them")
    bad = Event(type="x", session_id=rec.id, step=1, time=T0, data={"o": object()}, seq=2)
    changed = replace(rec, step=4, updated_at=T0 + 1)
    with pytest.raises(TypeError):
        await store.commit(changed, [ev(rec.id, 3), bad], owner="a", lease_ttl=TTL)
    assert (await store.get(rec.id)).step == 0
    assert [e.seq for e in await store.events(rec.id)] == [1]


async def test_events_after_seq_in_order(store: SessionStore) -> None:
    rec = await new_session(store)
    for i in range(2, 42, 4):
        batch = [ev(rec.id, s, step=s) for s in range(i, i + 4)]
        rec.event_count, rec.updated_at = i + 3, T0 + i
        await store.commit(rec, batch, owner="a", lease_ttl=TTL)
    assert [e.seq for e in await store.events(rec.id)] == list(range(1, 42))
    assert [e.seq for e in await store.events(rec.id, after_seq=37)] == [38, 39, 40, 41]


# --- listing ---------------------------------------------------------------------


async def test_list_sessions_filters_and_orders_newest_first(store: SessionStore) -> None:
    specs = [
        ("s1", "retail", "u1", SessionStatus.COMPLETED, 10.0),
        ("s2", "retail", "u2", SessionStatus.RUNNING, 30.0),
        ("s3", "billing", "u1", SessionStatus.RUNNING, 20.0),
        ("s4", "retail", None, SessionStatus.FAILED, 40.0),
        ("s5", "billing", "u1", SessionStatus.COMPLETED, 20.0),
    ]
    for sid, agent, user, status, created in specs:
        rec = make_record(
            sid,
            agent=agent,
            user_id=user,
            status=status,
            created_at=T0 + created,
            updated_at=T0 + 100 - created,  # the order must not come from here
        )
        await store.create(rec, [], owner="a", lease_ttl=TTL)

    async def ids(**kw: Any) -> list[str]:
        return [r.id for r in await store.list_sessions(**kw)]

    assert await ids() == ["s4", "s2", "s5", "s3", "s1"]  # ties: larger id first
    assert await ids(limit=2) == ["s4", "s2"]
    assert await ids(status=SessionStatus.RUNNING) == ["s2", "s3"]
    assert await ids(agent="billing") == ["s5", "s3"]
    assert await ids(user_id="u1") == ["s5", "s3", "s1"]
    assert await ids(agent="retail", status=SessionStatus.COMPLETED, user_id="u1") == ["s1"]
    assert await ids(agent="nobody") == []
    first = (await store.list_sessions(limit=1))[0]
    assert first == await store.get("s4")
    assert await ids(limit=None) == ["s4", "s2", "s5", "s3", "s1"]
    assert await ids(since=T0 + 20.0) == ["s4", "s2", "s5", "s3"]
    assert await ids(since=T0 + 20.5, user_id="u1") == []


async def test_tenant_and_cost_are_kept(store: SessionStore) -> None:
    rec = await new_session(store, tenant_id="acme")
    assert (await store.get(rec.id)).tenant_id == "acme"
    rec.cost = 1.5
    await store.commit(rec, [], owner="a", lease_ttl=TTL)
    got = await store.get(rec.id)
    assert (got.cost, got.tenant_id) == (1.5, "acme")


async def test_scan_events_across_sessions_by_type_and_time(store: SessionStore) -> None:
    a = await new_session(store)
    b = await new_session(store)
    for rec in (b, a):
        rec.event_count = 3
        batch = [
            ev(rec.id, 2, step=1, type_=EventType.MODEL_RESPONSE, model="m"),
            ev(rec.id, 3, step=1, type_=EventType.TURN_COMPLETED, output="x"),
        ]
        await store.commit(rec, batch, owner="a", lease_ttl=TTL)
    got = await store.scan_events([EventType.MODEL_RESPONSE, EventType.SESSION_CREATED])
    first, second = sorted([a.id, b.id])
    assert [(e.session_id, e.seq, e.type) for e in got] == [
        (first, 1, EventType.SESSION_CREATED),
        (first, 2, EventType.MODEL_RESPONSE),
        (second, 1, EventType.SESSION_CREATED),
        (second, 2, EventType.MODEL_RESPONSE),
    ]
    assert got[1].data == {"model": "m"}
    late = await store.scan_events([EventType.MODEL_RESPONSE], since=T0 + 2)
    assert len(late) == 2
    assert await store.scan_events([EventType.MODEL_RESPONSE], since=T0 + 2.5) == []
    assert await store.scan_events([]) == []


async def test_returned_records_are_copies(store: SessionStore) -> None:
    rec = await new_session(store)
    got = await store.get(rec.id)
    got.status = SessionStatus.FAILED
    rec.status = SessionStatus.COMPLETED
    assert (await store.get(rec.id)).status == SessionStatus.RUNNING
