"""Agent versions and what was done to them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08

``agent_versions``: one row per deployed version of an agent, keyed by the
agent's name and its declared version. ``definition`` is the version's
whole declaration as JSON (instructions, model chain, every tool's schema,
flags and code hash, policies, limits) and ``hash`` its SHA-256 over that
JSON without the version label. ``state`` is ``active`` (one per agent),
``canary`` (at most one, with ``canary_percent``), ``previous`` (served
before; its sessions go on), ``rolled_back`` (a canary taken back) or
``retired``. ``evals`` holds the golden set's and the red-team battery's
results at deploy time, the baseline the next deploy is compared with.

Partial unique indexes keep one active version and one canary per agent.

``agent_version_log``: every deploy, promotion, rollback and retirement,
with who did it and why (a forced deploy's reason).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "agent_versions",
        sa.Column("agent", sa.String(255), primary_key=True),
        sa.Column("version", sa.String(255), primary_key=True),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("ref", sa.Text(), nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("canary_percent", sa.Double(), nullable=True),
        sa.Column("evals", sa.Text(), nullable=True),
        sa.Column("deployed_by", sa.String(255), nullable=True),
        sa.Column("forced_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("activated_at", sa.Double(), nullable=True),
        sa.Column("deactivated_at", sa.Double(), nullable=True),
        sa.Column("retired_at", sa.Double(), nullable=True),
    )
    # at most one active version and one canary per agent, whatever two writers do
    for state in ("active", "canary"):
        where = sa.text(f"state = '{state}'")
        op.create_index(
            f"uq_agent_versions_{state}",
            "agent_versions",
            ["agent"],
            unique=True,
            sqlite_where=where,
            postgresql_where=where,
        )
    op.create_table(
        "agent_version_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("agent", sa.String(255), nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("by", sa.String(255), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
    )
    op.create_index("ix_agent_version_log_agent_at", "agent_version_log", ["agent", "at"])
    op.create_index("ix_sessions_agent_version", "sessions", ["agent", "agent_version"])


def downgrade() -> None:
    op.drop_index("ix_sessions_agent_version", table_name="sessions")
    op.drop_index("ix_agent_version_log_agent_at", table_name="agent_version_log")
    op.drop_table("agent_version_log")
    op.drop_index("uq_agent_versions_canary", table_name="agent_versions")
    op.drop_index("uq_agent_versions_active", table_name="agent_versions")
    op.drop_table("agent_versions")
