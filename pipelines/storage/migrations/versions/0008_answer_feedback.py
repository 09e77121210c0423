"""Readers' verdicts on answers: `answer_feedback` (one per answer and caller, with an optional
comment), and `asked_answers`, the `/ask` answers kept by their request id so they can be rated.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.create_table(
        "asked_answers",
        sa.Column("answer_id", sa.String(64), primary_key=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("space_id", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(512)),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("language", sa.String(8)),
        sa.Column("grounded", sa.Integer),
        sa.Column("citations", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("asked_answers_request", "asked_answers", ["space_id", "request_id"])
    op.create_index("asked_answers_at", "asked_answers", ["created_at"])
    op.create_table(
        "answer_feedback",
        sa.Column("answer_id", sa.String(64), nullable=False),
        sa.Column("rater", sa.String(600), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("space_id", sa.String(64), nullable=False),
        sa.Column("conversation_id", sa.String(64)),
        sa.Column("rating", sa.String(8), nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("answer_id", "rater"),
    )
    op.create_index("answer_feedback_space", "answer_feedback", ["space_id", "created_at"])
    op.create_index("answer_feedback_conversation", "answer_feedback", ["conversation_id"])


def downgrade() -> None:
    op.drop_index("answer_feedback_conversation", "answer_feedback")
    op.drop_index("answer_feedback_space", "answer_feedback")
    op.drop_table("answer_feedback")
    op.drop_index("asked_answers_at", "asked_answers")
    op.drop_index("asked_answers_request", "asked_answers")
    op.drop_table("asked_answers")
