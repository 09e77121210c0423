"""People: who signed in and with which groups, their sessions, OpenID Connect sign-ins under
way, personal tokens, the audit trail, and the owner of a conversation.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:  # SQLite alters a table by copying it
        batch.add_column(sa.Column("owner", sa.String(512)))
    op.create_index("conversations_owner", "conversations", ["space_id", "owner", "created_at"])
    op.create_table(
        "people",
        sa.Column("person_id", sa.String(512), primary_key=True),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("login", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("groups", sa.Text, nullable=False),
        sa.Column("grant", sa.Text),
        sa.Column("refreshed_at", sa.Float, nullable=False),
        sa.Column("refresh_failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("active", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("session_hash", sa.String(64), primary_key=True),
        sa.Column("person_id", sa.String(512), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_seen_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("client", sa.Text),
    )
    op.create_index("sessions_person", "sessions", ["person_id"])
    op.create_table(
        "sign_in_attempts",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("nonce", sa.Text, nullable=False),
        sa.Column("code_verifier", sa.Text, nullable=False),
        sa.Column("return_to", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "personal_tokens",
        sa.Column("token_id", sa.String(32), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("person_id", sa.String(512), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("last_used_at", sa.Float),
    )
    op.create_index("personal_tokens_person", "personal_tokens", ["person_id"])
    op.create_table(
        "audit",
        sa.Column("entry_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(512)),
        sa.Column("user_name", sa.Text),
        sa.Column("key_id", sa.String(32)),
        sa.Column("space_id", sa.String(64)),
        sa.Column("doc_id", sa.String(64)),
        sa.Column("conversation_id", sa.String(64)),
        sa.Column("route", sa.Text),
        sa.Column("client", sa.Text),
        sa.Column("request_id", sa.String(64)),
        sa.Column("detail", sa.Text),
    )
    op.create_index("audit_space", "audit", ["space_id", "at"])
    op.create_index("audit_at", "audit", ["at"])


def downgrade() -> None:
    for table in ("audit", "personal_tokens", "sign_in_attempts", "sessions", "people"):
        op.drop_table(table)
    op.drop_index("conversations_owner", "conversations")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("owner")
