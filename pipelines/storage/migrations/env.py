"""Alembic environment: docassist runs its migrations itself at start (`Database.migrate`), on
the connection it hands over in `config.attributes["connection"]`."""

from __future__ import annotations

from alembic import context

from docassist.pipelines.storage.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
