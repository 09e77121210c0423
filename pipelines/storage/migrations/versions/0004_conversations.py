"""Conversations: follow-up questions over a space, each message kept with what it was condensed
to and the citations and sources its answer showed, so a conversation reads back as it was.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("conversation_id", sa.String(64), primary_key=True),
        sa.Column("space_id", sa.String(64), nullable=False),
        sa.Column("title", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("conversations_space", "conversations", ["space_id", "created_at"])
    op.create_table(
        "messages",
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("conversation_id", sa.String(64), nullable=False),
        sa.Column("space_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("standalone_question", sa.Text),
        sa.Column("language", sa.String(8)),
        sa.Column("grounded", sa.Integer),
        sa.Column("citations", sa.Text),
        sa.Column("sources", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("conversation_id", "position", name="messages_order"),
    )


def downgrade() -> None:
    op.drop_table("messages")
    op.drop_table("conversations")
