"""A scanned PDF's words and their boxes on each page, kept at ingest (JSON on its contents' row),
so a quote can be marked on the page it came from without reading the page again.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    with op.batch_alter_table("document_contents") as batch:
        batch.add_column(sa.Column("page_words", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("document_contents") as batch:
        batch.drop_column("page_words")
