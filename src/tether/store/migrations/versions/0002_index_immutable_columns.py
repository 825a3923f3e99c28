"""A layout for cheap commits: sessions indexed by immutable columns, events clustered.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

The 0001 indexes all ended in ``updated_at``, which every commit changes: on
SQLite each commit then rewrote three index entries (about 30 KB of WAL
instead of 16 KB, and twice the CPU), and on PostgreSQL no commit could be a
HOT update. Listings are now newest-created first, served by indexes on
``created_at`` (never changes), alone and after ``status`` and ``user_id``.
``status`` changes only at turn boundaries, and the store leaves it out of a
commit's ``UPDATE`` when it has not changed.

On SQLite, ``events`` becomes a ``WITHOUT ROWID`` table clustered on its
primary key ``(session_id, seq)``: one B-tree instead of a table plus an
index, so appending an event writes one page instead of two, and a session's
events lie together for ``acquire``. The table is rebuilt (its rows copied);
nothing references ``events``, so no cascade fires. PostgreSQL has no such
option and keeps its table.
"""

from __future__ import annotations

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_OLD = {
    "ix_sessions_updated_at": ["updated_at"],
    "ix_sessions_status_updated_at": ["status", "updated_at"],
    "ix_sessions_user_id_updated_at": ["user_id", "updated_at"],
}
_NEW = {
    "ix_sessions_created_at": ["created_at"],
    "ix_sessions_status_created_at": ["status", "created_at"],
    "ix_sessions_user_id_created_at": ["user_id", "created_at"],
}


def _rebuild_events(*, with_rowid: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "events", recreate="always", table_kwargs={"sqlite_with_rowid": with_rowid}
    ):
        pass


def upgrade() -> None:
    """Replace the ``updated_at`` indexes with ``created_at`` ones; cluster ``events``."""
    for name in _OLD:
        op.drop_index(name, table_name="sessions")
    for name, columns in _NEW.items():
        op.create_index(name, "sessions", columns)
    _rebuild_events(with_rowid=False)


def downgrade() -> None:
    """Back to the 0001 layout."""
    _rebuild_events(with_rowid=True)
    for name in _NEW:
        op.drop_index(name, table_name="sessions")
    for name, columns in _OLD.items():
        op.create_index(name, "sessions", columns)
