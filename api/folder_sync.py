"""`docassist sync DIR --space S`: keep a space holding what a folder holds, through a running
service.

One pass: walk and hash the folder (`folder_walk.py`), ask the service once what to send
(`POST /sync/diff`, however many files), then send it a few at a time (`--concurrency`): a new
file is uploaded (`POST /ingest`), a changed one becomes its document's next version (`PUT
/documents/{id}`), a document whose file is gone is deleted only with `--delete` — deletions
first, so a renamed file makes a document of its own. Uploads wait for their end (`wait=true`),
so a file that cannot be read is known and counted. A 429 or 503 with `Retry-After` is tried
again after that many seconds (at most `RETRY_CAP_S`, `TRIES` times in all).

A progress bar on stderr when it is a terminal; each failure on stderr; and last, on stdout:
`added N, updated N, deleted N, unchanged N, failed N`. Skipped bad input counts as failed.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import httpx

from docassist.api.folder_walk import Folder, LocalFile, read_folder
from docassist.api.sync_schemas import SyncDiffResponse
from docassist.pipelines.documents.folder_diff import MAX_FOLDER_FILES

Outcome = Literal["added", "updated", "deleted", "unchanged", "failed"]
TRIES = 5
RETRY_CAP_S = 60.0
UPLOAD_TIMEOUT_S = 600.0
DUPLICATE = "duplicate"
WATCH_TICK_MS = 500


@dataclass(frozen=True)
class SyncOptions:
    root: Path
    space: str
    url: str
    api_key: str | None = None
    delete: bool = False
    tags: tuple[str, ...] | None = None
    concurrency: int = 4
    progress: bool = False


@dataclass
class Tally:
    added: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    failed: int = 0

    def count(self, outcome: Outcome) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    def line(self) -> str:
        return (
            f"added {self.added}, updated {self.updated}, deleted {self.deleted}, "
            f"unchanged {self.unchanged}, failed {self.failed}"
        )


@dataclass(frozen=True)
class Action:
    """One request to make: what it is about (for a failure's message), what it counts as when it
    succeeds, and the call; the call answers None when done, else why not (`DUPLICATE`: the
    service already held these bytes)."""

    about: str
    outcome: Outcome
    call: Callable[[], Awaitable[str | None]]


class SyncRefused(Exception):
    """The pass could not start: the service is away, or refused the folder's file list."""


class Progress:
    """`done/total` and a bar on one line of stderr, redrawn as actions end; silent when off."""

    WIDTH = 30

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.enabled = total, 0, enabled and total > 0
        self._draw()

    def step(self) -> None:
        self.done += 1
        self._draw()

    def note(self, message: str) -> None:
        """A line of its own on stderr, the bar drawn again below it."""
        if self.enabled:
            sys.stderr.write("\r\033[K")
        print(message, file=sys.stderr, flush=True)
        self._draw()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()

    def _draw(self) -> None:
        if self.enabled:
            filled = self.WIDTH * self.done // self.total
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            sys.stderr.write(f"\rsyncing [{bar}] {self.done}/{self.total}")
            sys.stderr.flush()


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return min(max(float(value), 0.1), RETRY_CAP_S) if value.strip().isdigit() else None


async def _send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
    **kwargs: Any,
) -> httpx.Response:
    """The request, tried again while the service answers 429 or 503 with `Retry-After` (waited
    out with `pause`)."""
    for _ in range(TRIES - 1):
        response = await client.request(method, url, **kwargs)
        wait = _retry_after(response) if response.status_code in (429, 503) else None
        if wait is None:
            return response
        await pause(wait)
    return await client.request(method, url, **kwargs)


def _problem(response: httpx.Response) -> str:
    """The service's error as a person reads it: `status code: message`."""
    try:
        error = response.json()["error"]
        return f"{response.status_code} {error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code} {response.text[:200]}"


async def _diff(client: httpx.AsyncClient, options: SyncOptions, folder: Folder) -> SyncDiffResponse:
    if len(folder.files) > MAX_FOLDER_FILES:
        raise SyncRefused(f"{len(folder.files):,} files: one sync takes at most {MAX_FOLDER_FILES:,}; sync subfolders")
    files = [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in folder.files]
    body = {"space_id": options.space, "files": files, "delete": options.delete}
    try:
        response = await _send(client, "POST", "/sync/diff", json=body, timeout=300)
    except httpx.TransportError as exc:
        raise SyncRefused(f"cannot reach the service at {options.url}: {exc}") from exc
    if response.status_code != 200:
        raise SyncRefused(f"the service refused the folder's file list: {_problem(response)}")
    return SyncDiffResponse.model_validate(response.json())


async def _upload(client: httpx.AsyncClient, options: SyncOptions, file: LocalFile, doc_id: str | None) -> str | None:
    """Send one file, new (`doc_id` None) or as its document's next version; None when done, else
    why not. A duplicate answer (the same bytes already there) is `unchanged`."""
    try:  # read on the loop: this is the command's own process, and the upload waits on the service anyway
        data = file.full.read_bytes()
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    form: dict[str, Any] = {"space_id": options.space, "wait": "true"}
    if options.tags is not None:
        form["tags"] = list(options.tags)
    if doc_id is None:
        form["replace"] = "true"  # one uploaded since the diff under this name: its next version
    method, url = ("POST", "/ingest") if doc_id is None else ("PUT", f"/documents/{doc_id}")
    response = await _send(client, method, url, files={"file": (file.path, data)}, data=form, timeout=UPLOAD_TIMEOUT_S)
    if response.status_code in (200, 202):
        return DUPLICATE if response.status_code == 200 and response.json().get("duplicate") else None
    return _problem(response)


async def _delete(client: httpx.AsyncClient, options: SyncOptions, doc_id: str) -> str | None:
    response = await _send(client, "DELETE", f"/documents/{doc_id}", params={"space_id": options.space})
    return None if response.status_code in (200, 404) else _problem(response)  # 404: gone already


def _plan(client: httpx.AsyncClient, options: SyncOptions, folder: Folder, diff: SyncDiffResponse) -> list[Action]:
    """What to do, deletions first (so a renamed file makes a document of its own); a deletion
    only with `--delete`."""
    files = folder.by_path()
    gone = diff.delete if options.delete else []
    actions = [Action(f"delete {g.filename}", "deleted", partial(_delete, client, options, g.doc_id)) for g in gone]
    actions += [Action(p, "added", partial(_upload, client, options, files[p], None)) for p in diff.upload]
    actions += [
        Action(u.path, "updated", partial(_upload, client, options, files[u.path], u.doc_id)) for u in diff.update
    ]
    return actions


async def _run(actions: list[Action], concurrency: int, tally: Tally, progress: Progress) -> None:
    """Run the actions at most `concurrency` at a time, each counted as it ends."""
    gate = asyncio.Semaphore(concurrency)

    async def one(action: Action) -> None:
        async with gate:
            try:
                problem = await action.call()
            except httpx.TransportError as exc:
                problem = f"the service did not answer: {exc}"
        if problem == DUPLICATE:
            tally.count("unchanged")
        elif problem is not None:
            tally.count("failed")
            progress.note(f"docassist sync: {action.about}: {problem}")
        else:
            tally.count(action.outcome)
        progress.step()

    await asyncio.gather(*(one(a) for a in actions))


async def _pass(options: SyncOptions, folder: Folder, tally: Tally) -> None:
    headers = {"Authorization": f"Bearer {options.api_key}"} if options.api_key else {}
    async with httpx.AsyncClient(base_url=options.url, headers=headers, timeout=60) as client:
        diff = await _diff(client, options, folder)
        tally.unchanged += diff.unchanged + len(diff.duplicate)
        if diff.delete and not options.delete:
            print(
                f"docassist sync: {len(diff.delete)} document(s) of space {options.space!r} not in the folder, "
                "kept (--delete removes them)",
                file=sys.stderr,
            )
        actions = _plan(client, options, folder, diff)
        deletions = [a for a in actions if a.outcome == "deleted"]
        progress = Progress(len(actions), options.progress)
        try:
            await _run(deletions, options.concurrency, tally, progress)
            await _run(actions[len(deletions) :], options.concurrency, tally, progress)
        finally:
            progress.close()


def sync_once(options: SyncOptions) -> Tally:
    """One pass over the folder; every failure reported on stderr and counted."""
    folder = read_folder(options.root)
    tally = Tally(failed=len(folder.skipped))
    for skipped in folder.skipped:
        print(f"docassist sync: skipped {skipped.path}: {skipped.reason}", file=sys.stderr)
    try:
        asyncio.run(_pass(options, folder, tally))
    except SyncRefused as exc:
        print(f"docassist sync: {exc}", file=sys.stderr)
        tally.failed = len(folder.files) + len(folder.skipped)
    return tally


def run_pass(options: SyncOptions) -> int:
    """One pass and its last line on stdout; 1 when anything failed."""
    tally = sync_once(options)
    print(tally.line(), flush=True)
    return 1 if tally.failed else 0


def watch(options: SyncOptions) -> int:
    """A pass, then another after each batch of changes in the folder, until Ctrl-C or SIGTERM;
    the exit status of the last pass. The watcher starts before the first pass, so a change made
    while a pass runs is the next batch, never lost."""
    import watchfiles

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    status: int | None = None
    batches = watchfiles.watch(
        options.root, stop_event=stop, raise_interrupt=False, yield_on_timeout=True, rust_timeout=WATCH_TICK_MS
    )
    try:
        for changes in batches:  # an empty batch each tick: the first one starts the first pass
            if changes or status is None:
                status = run_pass(options)
    except KeyboardInterrupt:
        pass
    return status or 0
