"""Table definitions and row conversion for the SQL store.

Two tables hold everything:

- ``sessions``: one row per session, a cache of state derived from its log
  (status, step, event count, token usage) plus the writer's lease.
- ``events``: the append-only log, keyed by ``(session_id, seq)``. ``data``
  and ``usage`` are compact JSON text, so both SQLite and PostgreSQL store
  them the same way.

Timestamps are floats (Unix seconds) from the runtime's injected clock, never
the database's, so tests control time. The schema itself is created by the
Alembic migrations in ``tether/store/migrations``; these objects describe it
for queries and must stay in step with the latest migration.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from tether.runtime.ports import SessionRecord
from tether.spec.events import Event
from tether.spec.messages import Usage

__all__ = [
    "EVENT_COLUMNS",
    "SESSION_COLUMNS",
    "agent_version_log",
    "agent_versions",
    "api_keys",
    "event_row",
    "events",
    "idempotency",
    "metadata",
    "record_params",
    "row_event",
    "row_record",
    "sessions",
    "tool_pins",
]

metadata = sa.MetaData()

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("agent", sa.String(255), nullable=False),
    sa.Column("agent_version", sa.String(255), nullable=False),
    sa.Column("user_id", sa.String(255), nullable=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("event_count", sa.Integer, nullable=False),
    sa.Column("input_tokens", sa.BigInteger, nullable=False),
    sa.Column("output_tokens", sa.BigInteger, nullable=False),
    sa.Column("cache_read_tokens", sa.BigInteger, nullable=False),
    sa.Column("cache_write_tokens", sa.BigInteger, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("lease_owner", sa.String(255), nullable=True),
    sa.Column("lease_expires", sa.Double, nullable=True),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    # Added by migration 0003 (so they come last in the row).
    sa.Column("cost", sa.Double, nullable=False, server_default="0"),
    sa.Column("tenant_id", sa.String(255), nullable=True),
    # Only immutable columns (and status, which changes at turn boundaries)
    # are indexed, so a step's commit touches no index: see migration 0002.
    sa.Index("ix_sessions_created_at", "created_at"),
    sa.Index("ix_sessions_status_created_at", "status", "created_at"),
    sa.Index("ix_sessions_user_id_created_at", "user_id", "created_at"),
    sa.Index("ix_sessions_agent_version", "agent", "agent_version"),  # migration 0005
)

events = sa.Table(
    "events",
    metadata,
    sa.Column(
        "session_id",
        sa.String(255),
        sa.ForeignKey("sessions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("time", sa.Double, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("usage", sa.Text, nullable=True),
    sa.PrimaryKeyConstraint("session_id", "seq", name="pk_events"),
    # Clustered on (session_id, seq) on SQLite: see migration 0002.
    sqlite_with_rowid=False,
)

# Column order of ``SELECT * FROM sessions`` as the store issues it.
SESSION_COLUMNS: tuple[sa.Column[Any], ...] = tuple(sessions.c)
EVENT_COLUMNS: tuple[sa.Column[Any], ...] = (
    events.c.seq,
    events.c.step,
    events.c.type,
    events.c.time,
    events.c.data,
    events.c.usage,
)

_dumps = json.JSONEncoder(separators=(",", ":")).encode


def record_params(r: SessionRecord) -> dict[str, Any]:
    """The mutable columns of a session row, as bind parameters."""
    u = r.usage
    return {
        "status": str(r.status),  # a SessionStatus binds as plain text (no adapter lookup)
        "step": r.step,
        "event_count": r.event_count,
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cache_read_tokens": u.cache_read_tokens,
        "cache_write_tokens": u.cache_write_tokens,
        "last_error": r.last_error,
        "updated_at": float(r.updated_at),
        "cost": float(r.cost),
    }


def event_row(session_id: str, e: Event) -> tuple[Any, ...]:
    """One event as a positional row, in ``events`` column order.

    Serialises ``data`` first, so a value JSON cannot encode fails before any write.
    """
    usage = None if e.usage is None else _dumps(e.usage.to_dict())
    # str(): an EventType binds as plain text, without the driver's adapter lookup
    return (session_id, e.seq, e.step, str(e.type), float(e.time), _dumps(e.data), usage)


def row_event(session_id: str, row: Sequence[Any]) -> Event:
    """Rebuild an :class:`Event` from a row in ``EVENT_COLUMNS`` order."""
    seq, step, type_, time, data, usage = row
    return Event(
        type=type_,
        session_id=session_id,
        step=int(step),
        time=float(time),
        data=json.loads(data) if data else {},
        usage=Usage.from_dict(json.loads(usage)) if usage else None,
        seq=int(seq),
    )


def row_record(row: Sequence[Any]) -> SessionRecord:
    """Rebuild a :class:`SessionRecord` from a row in ``SESSION_COLUMNS`` order."""
    (
        id_,
        agent,
        agent_version,
        user_id,
        status,
        step,
        event_count,
        input_tokens,
        output_tokens,
        cache_read_tokens,
        cache_write_tokens,
        last_error,
        lease_owner,
        lease_expires,
        created_at,
        updated_at,
        cost,
        tenant_id,
    ) = row
    return SessionRecord(
        id=id_,
        agent=agent,
        agent_version=agent_version,
        user_id=user_id,
        status=status,
        created_at=float(created_at),
        updated_at=float(updated_at),
        step=int(step),
        event_count=int(event_count),
        usage=Usage(
            int(input_tokens),
            int(output_tokens),
            int(cache_read_tokens),
            int(cache_write_tokens),
        ),
        last_error=last_error,
        lease_owner=lease_owner,
        lease_expires=None if lease_expires is None else float(lease_expires),
        cost=float(cost or 0.0),
        tenant_id=tenant_id,
    )


#: the server's API keys (``tether.store.server``); the secret is stored as its SHA-256
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("user_id", sa.String(255), nullable=False),
    sa.Column("tenant_id", sa.String(255), nullable=True),
    sa.Column("roles", sa.Text, nullable=False),
    sa.Column("scopes", sa.Text, nullable=True),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("revoked_at", sa.Double, nullable=True),
    sa.Column("last_used_at", sa.Double, nullable=True),
)

#: the first outcome of each POST sent with an ``Idempotency-Key``
idempotency = sa.Table(
    "idempotency",
    metadata,
    sa.Column("owner", sa.String(255), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("session_id", sa.String(255), nullable=True),
    sa.Column("first_seq", sa.Integer, nullable=True),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("body", sa.Text, nullable=True),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("done_at", sa.Double, nullable=True),
    sa.Index("ix_idempotency_created", "created_at"),
)

#: deployed agent versions (``tether.store.versions``), one row per agent and version label
agent_versions = sa.Table(
    "agent_versions",
    metadata,
    sa.Column("agent", sa.String(255), primary_key=True),
    sa.Column("version", sa.String(255), primary_key=True),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("ref", sa.Text, nullable=True),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("canary_percent", sa.Double, nullable=True),
    sa.Column("evals", sa.Text, nullable=True),
    sa.Column("deployed_by", sa.String(255), nullable=True),
    sa.Column("forced_reason", sa.Text, nullable=True),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("activated_at", sa.Double, nullable=True),
    sa.Column("deactivated_at", sa.Double, nullable=True),
    sa.Column("retired_at", sa.Double, nullable=True),
    sa.Index(
        "uq_agent_versions_active",
        "agent",
        unique=True,
        sqlite_where=sa.text("state = 'active'"),
        postgresql_where=sa.text("state = 'active'"),
    ),
    sa.Index(
        "uq_agent_versions_canary",
        "agent",
        unique=True,
        sqlite_where=sa.text("state = 'canary'"),
        postgresql_where=sa.text("state = 'canary'"),
    ),
)

#: what was done to versions: deploys, promotions, rollbacks, retirements
agent_version_log = sa.Table(
    "agent_version_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("agent", sa.String(255), nullable=False),
    sa.Column("version", sa.String(255), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("at", sa.Double, nullable=False),
    sa.Column("by", sa.String(255), nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Index("ix_agent_version_log_agent_at", "agent", "at"),
)

#: pinned tool definitions of tool sources (``tether.store.pins``), per agent version
tool_pins = sa.Table(
    "tool_pins",
    metadata,
    sa.Column("agent", sa.String(255), primary_key=True),
    sa.Column("version", sa.String(255), primary_key=True),
    sa.Column("server", sa.String(255), primary_key=True),
    sa.Column("tool", sa.String(255), primary_key=True),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("hash", sa.String(64), nullable=True),
    sa.Column("definition", sa.Text, nullable=True),
    sa.Column("pending_hash", sa.String(64), nullable=True),
    sa.Column("pending_definition", sa.Text, nullable=True),
    sa.Column("reason", sa.String(32), nullable=True),
    sa.Column("first_seen", sa.Double, nullable=False),
    sa.Column("decided_by", sa.String(255), nullable=True),
    sa.Column("decided_at", sa.Double, nullable=True),
)
