"""The server's API keys and idempotency records.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08

``api_keys``: one row per key. The secret is never stored: ``secret_hash``
is its SHA-256 (keys are 32 random bytes, so a fast hash is enough; a
password hash would only slow every request). ``roles`` and ``scopes`` are
JSON lists (``scopes`` NULL: every tool). ``revoked_at`` set: refused.

``idempotency``: the first outcome of a POST sent with an
``Idempotency-Key``, keyed by who sent it and the key. ``fingerprint``
(method, path and body hashed) tells a retry from a different request
reusing the key; ``first_seq`` is the first event of the turn it ran, so a
retried streaming request replays that turn's events.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("tenant_id", sa.String(255), nullable=True),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("revoked_at", sa.Double(), nullable=True),
        sa.Column("last_used_at", sa.Double(), nullable=True),
    )
    op.create_table(
        "idempotency",
        sa.Column("owner", sa.String(255), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(255), nullable=True),
        sa.Column("first_seq", sa.Integer(), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("done_at", sa.Double(), nullable=True),
    )
    op.create_index("ix_idempotency_created", "idempotency", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_created", table_name="idempotency")
    op.drop_table("idempotency")
    op.drop_table("api_keys")
