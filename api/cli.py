"""`docassist` command line: serve, worker, ingest, documents, sync, reembed, key, audit export, eval, bench.

`ingest` and `documents` talk to a running service over HTTP (a Qdrant Edge shard admits one
process at a time, and the service holds it); with no service running, they open the
data directory themselves. `sync` keeps a space holding a folder's files, through a running
service only (`folder_sync.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from docassist.api import reembed_command
from docassist.api.command_settings import command_settings
from docassist.pipelines.settings import ConfigError, load_settings


def _print(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def _headers() -> dict[str, str]:
    key = os.environ.get("DOCASSIST_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = command_settings(args)
    if settings is None:
        return 2
    if args.workers > 1 and settings.profile.vector_store.url is None:
        print(
            "docassist: --workers > 1 needs a Qdrant server (QDRANT_URL): "
            "Qdrant Edge admits one process per data directory.",
            file=sys.stderr,
        )
        return 2
    from docassist.api.connections import uvicorn_options

    options = {
        "host": args.host,
        "port": args.port,
        "log_level": "warning",
        "timeout_graceful_shutdown": 10,
        **uvicorn_options(settings.keep_alive_s),
    }
    if args.workers > 1:  # each worker process stops (and stops its children) when this supervisor dies
        os.environ["DOCASSIST_SUPERVISOR_PID"] = str(os.getpid())
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # every worker's figures in one scrape
            from docassist.pipelines.metrics import prepare_multiprocess

            prepare_multiprocess(settings.data_dir)
        uvicorn.run("docassist.api.app:create_app", factory=True, workers=args.workers, **options)
    else:
        from docassist.api.app import create_app

        uvicorn.run(create_app(settings), **options)
    return 0


def cmd_key(args: argparse.Namespace) -> int:
    """A new random API key: the key for its holder, and the entry for `API_KEYS` (hashed, so the
    configuration holds no secret)."""
    from docassist.pipelines.keys import KeyConfigError, new_key, parse_api_keys

    key, hashed = new_key()
    try:
        parse_api_keys(f"{hashed}:{args.spaces}")
    except KeyConfigError as exc:
        print(f"docassist: --spaces: {exc}", file=sys.stderr)
        return 2
    print(f"key (give it to its holder; it is not shown again): {key}")
    print(f"API_KEYS entry: {hashed}:{args.spaces}")
    return 0


def _moment(value: str) -> float:
    """Unix seconds from an ISO date or time (`2026-12-01`, `2026-12-01T09:30:00+03:00`; UTC
    unless it says otherwise) or from unix seconds."""
    from datetime import UTC, datetime

    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (2026-12-01), a time or unix seconds") from exc
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def cmd_audit_export(args: argparse.Namespace) -> int:
    """The audit trail as JSON lines, oldest first, for a SIEM: read from the database the service
    writes (DATABASE_URL, or DATA_DIR's SQLite), while it runs."""
    from docassist.pipelines.identity.audit import AuditLog
    from docassist.pipelines.storage.database import Database

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"docassist: configuration error: {exc}", file=sys.stderr)
        return 2
    with Database.of_service(settings) as db:
        out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
        count = 0
        try:
            for line in AuditLog(db).export(args.since, args.until):
                out.write(line + "\n")
                count += 1
        finally:
            if args.output:
                out.close()
    print(f"docassist: {count} audit entries written", file=sys.stderr)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run background summary jobs (from Redis with REDIS_URL) until SIGTERM or Ctrl-C."""
    import asyncio
    import signal

    from docassist.pipelines.logs import configure_logging
    from docassist.pipelines.runtime import Runtime

    settings = command_settings(args)
    if settings is None:
        return 2
    configure_logging(settings.log_format)

    async def work() -> None:
        runtime = Runtime(settings, role="worker")
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        try:
            await runtime.start()
            await stop.wait()
        finally:
            await runtime.stop()

    asyncio.run(work())
    return 0


def _offline(fn_name: str, *fn_args: Any) -> Any:
    """Run one operation against DATA_DIR directly, without LLM or server. A file is read in the
    extraction sandbox, under the service's time and memory caps (`ingestion_only`)."""
    from dataclasses import asdict

    from docassist.pipelines.logs import configure_logging
    from docassist.pipelines.runtime import ingestion_only

    settings = load_settings()
    configure_logging(settings.log_format)
    with ingestion_only(settings) as ingestor:
        if fn_name == "list":
            docs = [asdict(r) for r in ingestor.registry.list(fn_args[0])]
            return {"space_id": fn_args[0], "documents": [_public(d) for d in docs]}
        space, path = fn_args
        result = ingestor.ingest(space, path.name, path.read_bytes())
        return {
            **_public(asdict(result.record)),
            "duplicate": result.duplicate,
            "summary_pending": False,
            "job_id": None,
        }


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ("state", "text_sha256")}


def cmd_ingest(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        print(f"docassist: no such file: {path}", file=sys.stderr)
        return 2
    try:
        with path.open("rb") as fh:
            response = httpx.post(
                f"{args.url}/ingest",
                headers=_headers(),
                timeout=600,
                files={"file": (path.name, fh)},
                data={"space_id": args.space, "generate_summary": str(args.summary).lower()},
            )
    except httpx.ConnectError:
        _print(_offline("ingest", args.space, path))
        return 0
    _print(response.json())
    return 0 if response.is_success else 1


def cmd_documents(args: argparse.Namespace) -> int:
    try:
        response = httpx.get(f"{args.url}/documents", params={"space_id": args.space}, headers=_headers(), timeout=60)
    except httpx.ConnectError:
        _print(_offline("list", args.space))
        return 0
    _print(response.json())
    return 0 if response.is_success else 1


def cmd_sync(args: argparse.Namespace) -> int:
    """One pass over the folder (and more on each change with `--watch`): exit 1 when anything
    failed, bad input included; 2 for a command line that cannot run."""
    from docassist.api.folder_sync import SyncOptions, run_pass, watch
    from docassist.pipelines.errors import InvalidInput
    from docassist.pipelines.search.scope import clean_tags
    from docassist.pipelines.spaces import is_space_id

    root = Path(args.dir)
    problem = None if root.is_dir() else f"not a folder: {root}"
    if problem is None and not is_space_id(args.space):
        problem = f"--space {args.space!r}: 1-64 characters of A-Z, a-z, 0-9, _ and -"
    try:
        tags = clean_tags(args.tags, "--tags") if args.tags is not None else None
    except InvalidInput as exc:
        problem = problem or exc.message
    if problem is None and args.concurrency < 1:
        problem = "--concurrency must be at least 1"
    if problem is not None:
        print(f"docassist sync: {problem}", file=sys.stderr)
        return 2
    options = SyncOptions(
        root, args.space, args.url.rstrip("/"), os.environ.get("DOCASSIST_API_KEY") or None,
        args.delete, tags, args.concurrency, sys.stderr.isatty(),
    )  # fmt: skip
    return watch(options) if args.watch else run_pass(options)


def _sync_parser(sub: Any, url: str) -> None:
    sync = sub.add_parser(
        "sync",
        help="keep a space holding a folder's files, through the running service",
        description="Upload the folder's new files, send its changed ones as new versions, and with --delete "
        "delete the documents whose file is gone. A file's document is named by its path in the folder "
        "(sub/dir/report.pdf). Hidden files and kinds docassist does not read are left out; symbolic link loops, "
        "broken links, FIFOs, device files and unreadable files are reported and skipped, and count as failed. "
        "The last line: added N, updated N, deleted N, unchanged N, failed N; exit 1 when failed > 0. "
        "DOCASSIST_URL names the service, DOCASSIST_API_KEY the key or personal token.",
    )
    sync.add_argument("dir", help="the folder")
    sync.add_argument("--space", default="default")
    sync.add_argument("--delete", action="store_true", help="delete the space's documents that are not in the folder")
    sync.add_argument("--watch", action="store_true", help="after the first pass, sync again on each change")
    sync.add_argument(
        "--tags", nargs="+", action="extend", default=None, metavar="TAG",
        help="tags for each document this run uploads or updates (replacing its tags)",
    )  # fmt: skip
    sync.add_argument("--concurrency", type=int, default=4, help="uploads at a time (default 4)")
    sync.add_argument("--url", default=url)
    sync.set_defaults(func=cmd_sync)


_DELEGATED = {"eval": "docassist.evals.cli", "bench": "docassist.bench.__main__"}


def _delegate(command: str, argv: list[str]) -> int:
    """`docassist eval …` and `docassist bench …`: imported only when asked for, with the rest of
    the command line; both need the `eval` extra, checked before anything runs."""
    import importlib

    from docassist.pipelines.extras import EVAL, MissingExtra

    try:
        EVAL.require(f"docassist {command}")
    except MissingExtra as exc:
        print(exc, file=sys.stderr)
        return 2
    return int(importlib.import_module(_DELEGATED[command]).main(argv))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in _DELEGATED:
        return _delegate(argv[0], argv[1:])
    parser = argparse.ArgumentParser(prog="docassist", description="Self-hosted document assistant.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    serve.add_argument("--data-dir", default=None, help="overrides DATA_DIR")
    serve.add_argument("--workers", type=int, default=1, help="HTTP worker processes (needs QDRANT_URL above 1)")
    serve.set_defaults(func=cmd_serve)
    worker = sub.add_parser("worker", help="run background summary jobs (shared through REDIS_URL)")
    worker.add_argument("--data-dir", default=None, help="overrides DATA_DIR")
    worker.set_defaults(func=cmd_worker)
    url = os.environ.get("DOCASSIST_URL", "http://127.0.0.1:8000")
    ingest = sub.add_parser("ingest", help="add a document to a space")
    ingest.add_argument("file")
    ingest.add_argument("--space", default="default")
    ingest.add_argument("--summary", action="store_true", help="pre-compute its summary in the background")
    ingest.add_argument("--url", default=url)
    ingest.set_defaults(func=cmd_ingest)
    docs = sub.add_parser("documents", help="list a space's documents")
    docs.add_argument("--space", default="default")
    docs.add_argument("--url", default=url)
    docs.set_defaults(func=cmd_documents)
    _sync_parser(sub, url)
    reembed_command.add_parser(sub)
    key = sub.add_parser("key", help="make a new API key and its sha256 entry for API_KEYS")
    key.add_argument("--spaces", default="*", help="what it reaches: * (every space) or space_a|space_b")
    key.set_defaults(func=cmd_key)
    audit = sub.add_parser("audit", help="the audit trail").add_subparsers(dest="audit_command", required=True)
    export = audit.add_parser("export", help="write the audit trail as JSON lines (for a SIEM)")
    export.add_argument("--since", type=_moment, default=None, help="from this date, time or unix seconds")
    export.add_argument("--until", type=_moment, default=None, help="before this date, time or unix seconds")
    export.add_argument("--output", "-o", default=None, help="a file (default: standard output)")
    export.set_defaults(func=cmd_audit_export)
    sub.add_parser("eval", help="score the configured profile on the evaluation data (docassist eval --help)")
    sub.add_parser("bench", help="benchmarks against a real docassist serve (docassist bench --help)")
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
