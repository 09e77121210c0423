"""Each cached summary's sentences with the passage of the document each rests on
(`summaries.sentences`, JSON; NULL until they are tied).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.add_column("summaries", sa.Column("sentences", sa.Text))


def downgrade() -> None:
    op.drop_column("summaries", "sentences")
