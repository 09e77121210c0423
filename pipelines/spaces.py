"""Spaces: the unit of tenancy. A space id names one; every document, summary, job and search
belongs to exactly one space."""

from __future__ import annotations

import re

from docassist.pipelines.errors import InvalidInput

# For pydantic and JSON Schema, whose `$` is the end of the text. Python's `re` also lets `$` match
# before a trailing newline ("team\n" would pass), so Python code checks with `is_space_id`.
SPACE_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_SPACE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_space_id(value: object) -> bool:
    """The whole of `value` is a space id: nothing before it, nothing (not even a newline) after."""
    return isinstance(value, str) and _SPACE_ID.fullmatch(value) is not None


def check_space_id(space_id: str) -> str:
    if not is_space_id(space_id):
        raise InvalidInput("space_id must be 1-64 characters of A-Z, a-z, 0-9, _ and -")
    return space_id
