"""Upload jobs: an upload that takes more than a few seconds is answered with a job id, and its
stage and progress live here, where every backend can read them.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("space_id", sa.String(64), nullable=False),
        sa.Column("doc_id", sa.String(64), nullable=False),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Text, nullable=False),
        sa.Column("result", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("generate_summary", sa.Integer, nullable=False, server_default="0"),
        sa.Column("summary_job_id", sa.String(64)),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("uploads_doc", "uploads", ["space_id", "doc_id"])
    op.create_index("uploads_status", "uploads", ["status", "updated_at"])


def downgrade() -> None:
    op.drop_table("uploads")
