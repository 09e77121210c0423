"""The name a document keeps for its file.

A file's name as uploaded, with its folders when it names a clean relative path
(`contracts/2026/lease.pdf`): a folder kept in sync (`docassist sync`) uploads each file under its
path in the folder, so two `report.pdf` in different subfolders stay two documents. Anything else
— an absolute path, `..`, `.` or an empty step — keeps only its last part, as before paths were
kept, so no upload can name a place outside the folder it came from.
"""

from __future__ import annotations

from pathlib import PurePosixPath

_NOT_A_STEP = ("", ".", "..")


def stored_name(filename: str) -> str:
    """`filename` as a document keeps it: a clean relative path whole, anything else its last part."""
    steps = filename.split("/")
    if all(step not in _NOT_A_STEP for step in steps):
        return filename
    return PurePosixPath(filename).name
