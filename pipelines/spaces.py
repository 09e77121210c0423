"""Spaces: the unit of tenancy. A space id names one; every document, summary, job and search
belongs to exactly one space."""

from __future__ import annotations

import re

from docassist.pipelines.errors import InvalidInput

SPACE_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_SPACE_ID = re.compile(SPACE_PATTERN)


def check_space_id(space_id: str) -> str:
    if not isinstance(space_id, str) or not _SPACE_ID.match(space_id):
        raise InvalidInput("space_id must be 1-64 characters of A-Z, a-z, 0-9, _ and -")
    return space_id
