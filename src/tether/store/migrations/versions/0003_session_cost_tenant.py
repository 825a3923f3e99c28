"""Sessions record their cost and their tenant.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24

``cost`` (dollars, at the prices in force when each call was made) is a
cache of the session's ``model.response`` and ``context.compressed`` events,
like the token counts beside it, so cost reports read one row per session.
``tenant_id`` names the organisation a user belongs to, for per-tenant limits
and reports; it never changes after the session is created.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("sessions", sa.Column("cost", sa.Double(), nullable=False, server_default="0"))
    op.add_column("sessions", sa.Column("tenant_id", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("tenant_id")
        batch.drop_column("cost")
