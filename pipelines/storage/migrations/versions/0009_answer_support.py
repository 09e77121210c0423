"""Each stored answer's sentences with the citation each rests on (`messages.support`, JSON).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.add_column("messages", sa.Column("support", sa.Text))


def downgrade() -> None:
    op.drop_column("messages", "support")
