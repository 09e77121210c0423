"""State several processes share: document contents in the database, summaries and partial
results tied to their space and document, leases on jobs.

Data moves too: each document's extracted text and original bytes are read from
`DATA_DIR/files/<space>/<doc_id>/` (where the first release kept them) into
`document_contents`. Summaries and partial results are re-keyed to the space-scoped keys at the
next start (`pipelines/summaries/first_release.py`), since keys depend on the configuration the
service runs with; until then a summary's `text_sha256` is empty.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import context, op

revision = "0002"
down_revision = "0001"


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    if "text_sha256" not in _columns("documents"):  # databases from before that column
        op.add_column("documents", sa.Column("text_sha256", sa.String(64)))
    contents = op.create_table(
        "document_contents",
        sa.Column("space_id", sa.String(64), nullable=False),
        sa.Column("doc_id", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("original", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("space_id", "doc_id"),
    )
    op.add_column("summaries", sa.Column("text_sha256", sa.String(64)))
    op.create_index("summaries_text", "summaries", ["space_id", "text_sha256"])
    op.add_column("partials", sa.Column("space_id", sa.String(64)))
    op.add_column("partials", sa.Column("doc_id", sa.String(64)))
    op.add_column("partials", sa.Column("created_at", sa.Float))
    op.create_index("partials_doc", "partials", ["space_id", "doc_id"])
    op.add_column("jobs", sa.Column("lease_owner", sa.String(64)))
    op.add_column("jobs", sa.Column("lease_expires_at", sa.Float))
    op.add_column("jobs", sa.Column("queued_at", sa.Float))
    op.create_index("jobs_lease", "jobs", ["status", "lease_expires_at"])

    bind = op.get_bind()
    files = context.config.attributes.get("files_dir")
    docs = sa.table("documents", sa.column("space_id"), sa.column("doc_id"), sa.column("text_sha256"))
    rows = bind.execute(sa.select(docs.c.space_id, docs.c.doc_id)).all()
    for space_id, doc_id in rows:
        folder = Path(files) / space_id / doc_id if files else None
        text_file = folder / "text.txt" if folder else None
        if text_file is None or not text_file.exists():
            continue
        originals = sorted(p for p in folder.iterdir() if p.name.startswith("original"))
        bind.execute(
            contents.insert().values(
                space_id=space_id,
                doc_id=doc_id,
                text=text_file.read_text(encoding="utf-8"),
                original=originals[0].read_bytes() if originals else b"",
            )
        )
