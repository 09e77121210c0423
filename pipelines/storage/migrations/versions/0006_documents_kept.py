"""Documents a team keeps: versions under one id (the row's `version`, its bytes' SHA-256 and
when it came; `document_versions` for the replaced ones), a document's title and its case-folded
title and filename (what a title search reads), its tags (one row each, by case-folded tag), and
the scope a conversation keeps for its questions (JSON; null: the whole space).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:  # SQLite alters a table by copying it
        batch.add_column(sa.Column("title", sa.Text))
        batch.add_column(sa.Column("title_key", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("version", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("sha256", sa.String(64)))
        batch.add_column(sa.Column("version_at", sa.Float))
    docs = sa.table(
        "documents", sa.column("space_id"), sa.column("doc_id"), sa.column("filename"), sa.column("title_key")
    )
    conn = op.get_bind()
    for space_id, doc_id, filename in conn.execute(sa.select(docs.c.space_id, docs.c.doc_id, docs.c.filename)).all():
        conn.execute(
            sa.update(docs)
            .where(docs.c.space_id == space_id, docs.c.doc_id == doc_id)
            .values(title_key=f"\n{filename}".casefold())
        )
    op.create_table(
        "document_tags",
        sa.Column("space_id", sa.String(64), nullable=False),
        sa.Column("doc_id", sa.String(64), nullable=False),
        sa.Column("tag_key", sa.String(256), nullable=False),
        sa.Column("tag", sa.Text, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("space_id", "doc_id", "tag_key"),
    )
    op.create_index("document_tags_tag", "document_tags", ["space_id", "tag_key"])
    op.create_table(
        "document_versions",
        sa.Column("space_id", sa.String(64), nullable=False),
        sa.Column("doc_id", sa.String(64), nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("uploaded_at", sa.Float, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("text", sa.Text),
        sa.Column("original", sa.LargeBinary),
        sa.PrimaryKeyConstraint("space_id", "doc_id", "n"),
    )
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("scope", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("scope")
    op.drop_table("document_versions")
    op.drop_index("document_tags_tag", "document_tags")
    op.drop_table("document_tags")
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("version_at")
        batch.drop_column("sha256")
        batch.drop_column("version")
        batch.drop_column("title_key")
        batch.drop_column("title")
