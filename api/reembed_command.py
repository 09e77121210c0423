"""`docassist reembed [--space S | --all]`: re-embed a data directory's documents with the model
in force (`pipelines/reembedding.py`), with a progress bar; run it with the environment the
service will start with, while no service holds a Qdrant Edge shard of the data directory."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from docassist.api.command_settings import command_settings

DESCRIPTION = (
    "Embed the data directory's chunks again with the embedding model the environment names (EMBEDDING_KIND, "
    "EMBEDDING_MODEL, EMBEDDING_URL …), from the collection of the model that embedded them, into that model's "
    "collection: what a service refuses to start without after a change of model. Nothing is extracted again. "
    "Resumable: a run stopped half way goes on where it stopped. The old collection is read only, and removed "
    "once the new one holds every space (--keep-old keeps it)."
)


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "reembed", help="re-embed the documents with the embedding model in force", description=DESCRIPTION
    )
    scope = parser.add_mutually_exclusive_group(required=True)
    scope.add_argument("--space", help="one space")
    scope.add_argument("--all", action="store_true", help="every space")
    parser.add_argument("--from", dest="source", default=None, help="the old collection (default: the fullest other)")
    parser.add_argument("--keep-old", action="store_true", help="keep the old collection once the new one is complete")
    parser.add_argument("--data-dir", default=None, help="overrides DATA_DIR")
    parser.set_defaults(func=cmd_reembed)


class Bar:
    """A progress bar on a terminal (tqdm); a line per page elsewhere (logs, a pipe)."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._started = time.perf_counter()

    def __call__(self, progress: Any) -> None:
        if sys.stderr.isatty():
            if self._bar is None:
                from tqdm import tqdm

                self._bar = tqdm(total=progress.total, unit="chunk", desc="reembed", file=sys.stderr)
            self._bar.update(progress.done - self._bar.n)
            self._bar.set_postfix(embedded=progress.embedded)
            return
        rate = progress.embedded / max(time.perf_counter() - self._started, 1e-6)
        share = 100 * progress.done / max(progress.total, 1)
        print(
            f"reembed: {progress.done:,} of {progress.total:,} chunks ({share:.0f}%), "
            f"{progress.embedded:,} embedded by this run ({rate:.1f}/s)",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def cmd_reembed(args: argparse.Namespace) -> int:
    from docassist.pipelines.errors import DocassistError
    from docassist.pipelines.logs import configure_logging
    from docassist.pipelines.reembedding import NothingToReembed, reembed

    settings = command_settings(args, parts=False)
    if settings is None:
        return 2
    configure_logging(settings.log_format)
    bar = Bar()
    try:
        outcome = reembed(settings, None if args.all else args.space, args.keep_old, args.source, bar)
    except NothingToReembed as exc:
        print(f"docassist reembed: {exc}", file=sys.stderr)
        return 2
    except DocassistError as exc:  # the server gone, the shard held by a running service…
        held = exc.code == "vector_store_unavailable" and settings.profile.vector_store.url is None
        hint = " (a Qdrant Edge shard admits one process: stop the service first)" if held else ""
        print(f"docassist reembed: {exc.code}: {exc.message}{hint} — run it again to resume", file=sys.stderr)
        return 1
    finally:
        bar.close()
    state = "complete: a service starts on it" if outcome.complete else "other spaces remain: reembed them too"
    print(
        f"docassist reembed: {outcome.chunks:,} chunks from {outcome.source} in {outcome.target} "
        f"({outcome.embedded:,} embedded now, {outcome.seconds}s); {state}"
        + ("; the old collection was removed" if outcome.removed else ""),
        file=sys.stderr,
    )
    return 0
