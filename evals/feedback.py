"""`docassist eval feedback`: every reader's verdict on an answer — the question, the answer, its
citations, thumbs up or down, the comment, the space, when, and where it was given (a
conversation, or `/ask`) — as JSON lines, the material the notebooks tune prompts on.

Read from the database the service writes (DATABASE_URL, or DATA_DIR's SQLite), while it runs,
as `docassist audit export` reads the audit trail. Who rated is not written: tuning a prompt
needs the verdict, not the person.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TextIO

from docassist.pipelines.conversations.feedback_store import FeedbackStore
from docassist.pipelines.settings import ConfigError, load_settings
from docassist.pipelines.spaces import is_space_id
from docassist.pipelines.storage.database import Database


def write_lines(store: FeedbackStore, space_id: str | None, out: TextIO) -> int:
    """Every verdict (of `space_id`, or all), oldest first, one JSON object a line; the count."""
    count = 0
    for rated in store.export(space_id):
        out.write(json.dumps(asdict(rated), ensure_ascii=False) + "\n")
        count += 1
    return count


def export(space_id: str | None, out: Path | None) -> int:
    """The command: exit 0, or 2 for a bad space or configuration."""
    if space_id is not None and not is_space_id(space_id):
        print(f"docassist eval feedback: --space {space_id!r}: 1-64 of A-Z, a-z, 0-9, _ and -", file=sys.stderr)
        return 2
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"docassist: configuration error: {exc}", file=sys.stderr)
        return 2
    with Database.of_service(settings) as db:
        store = FeedbackStore(db)
        if out is None:
            count = write_lines(store, space_id, sys.stdout)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("w", encoding="utf-8") as fh:
                count = write_lines(store, space_id, fh)
    print(f"docassist: {count} verdicts written", file=sys.stderr)
    return 0
