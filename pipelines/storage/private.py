"""Everything docassist keeps on disk is readable by the service's own user only.

The data directory holds every space's text and originals (the SQLite database), their vectors
(Qdrant), the LLM server's log and its key: directories are 0700 and files 0600. `secure_data_dir`
sets the process's umask to 077 before anything is created — so files made later by SQLite,
Qdrant, huey or a child process are private too — and tightens what an earlier start (or a copy
made with looser permissions) left behind.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def secure_data_dir(data_dir: Path) -> int:
    """Umask 077, `data_dir` created 0700, and every directory and file under it made private;
    the number of paths whose mode was tightened."""
    os.umask(0o077)
    data_dir.mkdir(parents=True, exist_ok=True)
    fixed = _tighten(data_dir, DIR_MODE)
    for root, dirs, files in os.walk(data_dir):
        for name in dirs:
            fixed += _tighten(Path(root) / name, DIR_MODE)
        for name in files:
            fixed += _tighten(Path(root) / name, FILE_MODE)
    return fixed


def _tighten(path: Path, mode: int) -> int:
    with contextlib.suppress(FileNotFoundError):  # a file removed while we walk
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode) or stat.S_IMODE(st.st_mode) & 0o077 == 0:
            return 0
        path.chmod(stat.S_IMODE(st.st_mode) & mode)
        return 1
    return 0


def write_private(path: Path, text: str) -> None:
    """Write `path` so that it is 0600 from its first byte, whatever the umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fd, FILE_MODE)
        fh.write(text)
