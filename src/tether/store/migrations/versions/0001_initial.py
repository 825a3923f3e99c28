"""Initial schema: the ``sessions`` row cache and the ``events`` log.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Timestamps are ``DOUBLE`` Unix seconds supplied by the runtime's clock;
event ``data`` and ``usage`` are compact JSON text.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``sessions`` and ``events`` with their indexes."""
    op.create_table(
        "sessions",
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
    )
    op.create_index("ix_sessions_updated_at", "sessions", ["updated_at"])
    op.create_index("ix_sessions_status_updated_at", "sessions", ["status", "updated_at"])
    op.create_index("ix_sessions_user_id_updated_at", "sessions", ["user_id", "updated_at"])
    op.create_table(
        "events",
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
    )


def downgrade() -> None:
    """Drop both tables (and every stored session)."""
    op.drop_table("events")
    op.drop_index("ix_sessions_user_id_updated_at", table_name="sessions")
    op.drop_index("ix_sessions_status_updated_at", table_name="sessions")
    op.drop_index("ix_sessions_updated_at", table_name="sessions")
    op.drop_table("sessions")
