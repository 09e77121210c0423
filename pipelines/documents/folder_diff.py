"""What a folder kept in sync must send: its files' hashes against the space's documents.

`docassist sync` walks a folder, hashes each file and asks once (`POST /sync/diff`); the answer
says which files to upload, which to send as a new version of which document, and which
documents the folder no longer has. A file maps to the document whose filename is the file's
path in the folder as the service keeps it (`names.stored_name`: `sub/dir/report.pdf`); when
several documents share that name, the newest (as `/ingest` with `replace=true` picks it).

A space keeps one document per content (a document's id is made from its bytes): a file whose
bytes a staying document already holds under another name is `duplicate`, nothing to send —
uploading it would only answer that document again. Where that document is itself going
(`delete` asked for and its name not in the folder: a file renamed), the file is uploaded, and
the client deletes before it uploads so the upload makes a document of its own.

The space's documents are read in one query, whatever the folder's size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from docassist.pipelines.documents.names import stored_name
from docassist.pipelines.errors import InvalidInput, shown
from docassist.pipelines.storage.tables import documents

if TYPE_CHECKING:  # the command line imports this module's shapes and limits: none of the database's start
    from docassist.pipelines.storage.database import Database

MAX_FOLDER_FILES = 100_000  # one `POST /sync/diff`
MAX_PATH_CHARS = 1024


@dataclass(frozen=True)
class FolderFile:
    """A file of the folder: its path there (`/`-separated), the SHA-256 of its bytes, its size."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Held:
    """A ready document of the space as the diff reads it; `sha256` None: uploaded before it was kept."""

    doc_id: str
    filename: str
    sha256: str | None
    created_at: float


@dataclass(frozen=True)
class Changed:
    """A file whose document holds other bytes: its next version."""

    path: str
    doc_id: str


@dataclass(frozen=True)
class Gone:
    """A document whose filename is no file of the folder."""

    doc_id: str
    filename: str


@dataclass(frozen=True)
class Duplicate:
    """A file whose bytes a staying document holds under another name (`filename`)."""

    path: str
    doc_id: str
    filename: str


@dataclass(frozen=True)
class FolderDiff:
    upload: list[str]  # paths with no document of their name
    update: list[Changed]
    delete: list[Gone]  # listed whether or not deletion was asked for; the client decides
    duplicate: list[Duplicate]
    unchanged: int


def held_documents(db: Database, space_id: str) -> list[Held]:
    """The space's ready documents, oldest first, in one query."""
    c = documents.c
    query = (
        select(c.doc_id, c.filename, c.sha256, c.created_at)
        .where(c.space_id == space_id, c.state == "ready")
        .order_by(c.created_at, c.doc_id)
    )
    with db.begin() as conn:
        return [Held(*row) for row in conn.execute(query)]


def by_name(files: Sequence[FolderFile]) -> dict[str, FolderFile]:
    """The files by the name their document keeps; two paths kept as one name are refused."""
    named: dict[str, FolderFile] = {}
    for file in files:
        name = stored_name(file.path)
        if name in named:
            first = named[name].path
            raise InvalidInput(
                f"files {shown(first)} and {shown(file.path)} would both be the document {shown(name)}",
                path=file.path[:200],
            )
        named[name] = file
    return named


def diff_folder(files: Sequence[FolderFile], held: Sequence[Held], delete: bool) -> FolderDiff:
    """What to send for `files`, given the space's documents `held` (oldest first, each with its
    `sha256`) and whether documents not in the folder are to be deleted."""
    named = by_name(files)
    newest = {h.filename: h for h in held}  # oldest first: the newest of a name stays
    staying = {h.sha256: h for h in held if h.sha256 and _keeps_its_bytes(h, named, newest, delete)}
    upload: list[str] = []
    update: list[Changed] = []
    duplicate: list[Duplicate] = []
    unchanged = 0
    for name, file in named.items():
        doc = newest.get(name)
        if doc is not None and doc.sha256 == file.sha256:
            unchanged += 1
        elif doc is not None:
            update.append(Changed(file.path, doc.doc_id))
        elif (twin := staying.get(file.sha256)) is not None:
            duplicate.append(Duplicate(file.path, twin.doc_id, twin.filename))
        else:
            upload.append(file.path)
    gone = [Gone(h.doc_id, h.filename) for h in held if h.filename not in named]
    return FolderDiff(upload, update, gone, duplicate, unchanged)


def _keeps_its_bytes(doc: Held, named: dict[str, FolderFile], newest: dict[str, Held], delete: bool) -> bool:
    """The document still holds its bytes after this sync: not deleted, not given a new version."""
    file = named.get(doc.filename)
    if file is None:
        return not delete
    return newest[doc.filename] is not doc or file.sha256 == doc.sha256


def with_hashes(held: list[Held], names: set[str], original: Callable[[str], bytes | None]) -> list[Held]:
    """`held` with the SHA-256 of documents uploaded before it was kept, where a file of the folder
    is named as one: read from its stored original (only those rows, only once)."""
    return [
        Held(h.doc_id, h.filename, hashlib.sha256(original(h.doc_id) or b"").hexdigest(), h.created_at)
        if h.sha256 is None and h.filename in names
        else h
        for h in held
    ]


def diff_space(
    db: Database, space_id: str, files: Sequence[FolderFile], delete: bool, original: Callable[[str], bytes | None]
) -> FolderDiff:
    """`diff_folder` against the space's documents as the database holds them now."""
    names = set(by_name(files))
    held = with_hashes(held_documents(db, space_id), names, original)
    return diff_folder(files, held, delete)
