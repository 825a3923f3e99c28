"""Pinned tool definitions of tool sources.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-15

``tool_pins``: one row per agent name, agent version, tool source (MCP
server) name and tool name. ``hash`` is the SHA-256 of the canonical JSON
of the accepted definition (``name``, ``description``, ``inputSchema``,
``annotations``), ``definition`` that JSON; both are empty for a tool never
accepted. ``state`` is ``accepted`` or ``quarantined``; a quarantined row
holds the definition waiting for an operator (``pending_hash``,
``pending_definition``) and why (``reason``: ``changed``, ``new``,
``injection``). ``decided_by``/``decided_at``: who accepted it and when
(``decided_by`` empty: trusted on first use).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "tool_pins",
        sa.Column("agent", sa.String(255), primary_key=True),
        sa.Column("version", sa.String(255), primary_key=True),
        sa.Column("server", sa.String(255), primary_key=True),
        sa.Column("tool", sa.String(255), primary_key=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("hash", sa.String(64), nullable=True),
        sa.Column("definition", sa.Text(), nullable=True),
        sa.Column("pending_hash", sa.String(64), nullable=True),
        sa.Column("pending_definition", sa.Text(), nullable=True),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("first_seen", sa.Double(), nullable=False),
        sa.Column("decided_by", sa.String(255), nullable=True),
        sa.Column("decided_at", sa.Double(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("tool_pins")
