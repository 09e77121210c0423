"""A folder as `docassist sync` sends it: each file's path in it, SHA-256 and size — and what
could not be read, with why.

Symbolic links are followed, to files and to folders, so a folder of links syncs what they point
at; a link back to a folder above it (a loop), a chain of links that never ends and a link to
nothing are bad input, as are FIFOs, sockets, device files and files or folders that cannot be
read: each is reported and skipped, and counts as failed. A file is opened without blocking and
checked to be a regular file once open, so a file swapped for a FIFO after the walk saw it cannot
hang the sync. Hidden names (`.git`, `.DS_Store`) and Office's lock files (`~$report.docx`) are
left out silently, as are files of kinds docassist does not read (counted: `other_kinds`).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from docassist.pipelines.documents.extract import SUPPORTED

LEFT_OUT_PREFIXES = (".", "~$")
_READ_BLOCK = 1 << 20


@dataclass(frozen=True)
class LocalFile:
    path: str  # in the folder, `/`-separated: the name it is uploaded under
    full: Path
    sha256: str
    size: int


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass
class Folder:
    files: list[LocalFile] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)  # bad input: reported, counted as failed
    other_kinds: int = 0  # regular files of kinds docassist does not read

    def by_path(self) -> dict[str, LocalFile]:
        return {f.path: f for f in self.files}


@dataclass(frozen=True)
class _Place:
    """A folder still to read: where it is, its path in the synced folder, and the folders above it."""

    full: Path
    prefix: str
    above: frozenset[tuple[int, int]]


def read_folder(root: Path) -> Folder:
    """Every file under `root` that docassist reads, hashed; what could not be read, skipped."""
    folder = Folder()
    top = os.stat(root)
    places = [_Place(root, "", frozenset({(top.st_dev, top.st_ino)}))]
    while places:
        place = places.pop()
        try:
            with os.scandir(place.full) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            folder.skipped.append(Skipped(place.prefix or ".", _why(exc, link=False)))
            continue
        for entry in entries:
            if not entry.name.startswith(LEFT_OUT_PREFIXES):
                _visit(entry, place, folder, places)
    folder.files.sort(key=lambda f: f.path)
    return folder


def _visit(entry: os.DirEntry[str], place: _Place, folder: Folder, places: list[_Place]) -> None:
    path = place.prefix + entry.name
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(path).decode("utf-8", "backslashreplace")
        folder.skipped.append(Skipped(shown, "its name is not valid UTF-8"))
        return
    try:
        info = os.stat(entry.path)  # follows links: a loop is ELOOP, a link to nothing ENOENT
    except OSError as exc:
        folder.skipped.append(Skipped(path, _why(exc, link=entry.is_symlink())))
        return
    if stat.S_ISDIR(info.st_mode):
        key = (info.st_dev, info.st_ino)
        if key in place.above:
            folder.skipped.append(Skipped(path, "a link to a folder above it (a loop)"))
        else:
            places.append(_Place(Path(entry.path), path + "/", place.above | {key}))
    elif not stat.S_ISREG(info.st_mode):
        folder.skipped.append(Skipped(path, f"not a regular file ({_kind(info.st_mode)})"))
    elif PurePosixPath(entry.name).suffix.lower() not in SUPPORTED:
        folder.other_kinds += 1
    else:
        hashed = hash_file(Path(entry.path), path)
        if isinstance(hashed, LocalFile):
            folder.files.append(hashed)
        else:
            folder.skipped.append(hashed)


def hash_file(full: Path, path: str) -> LocalFile | Skipped:
    """The file's SHA-256, read in blocks; opened without blocking, so a FIFO put in its place is
    refused rather than waited on."""
    try:
        fd = os.open(full, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        return Skipped(path, _why(exc, link=False))
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return Skipped(path, f"not a regular file ({_kind(info.st_mode)})")
        digest, size = hashlib.sha256(), 0
        try:
            while block := fh.read(_READ_BLOCK):
                digest.update(block)
                size += len(block)
        except OSError as exc:
            return Skipped(path, _why(exc, link=False))
    return LocalFile(path, full, digest.hexdigest(), size)


def _why(exc: OSError, link: bool) -> str:
    if exc.errno == errno.ELOOP:
        return "a symbolic link loop"
    if exc.errno == errno.ENOENT and link:
        return "a broken symbolic link (what it points to does not exist)"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "cannot be read: permission denied"
    return f"cannot be read: {exc.strerror or exc}"


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    return "not a file or a folder"
