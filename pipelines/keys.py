"""API keys: the one place that reads `API_KEYS`, says what each key reaches, and matches a key.

The format leaves nothing to guess, and anything else stops the start with a message that says
what to write instead:

    API_KEYS = ENTRY[,ENTRY…]      a comma separates keys
    ENTRY    = SECRET:SCOPE
    SECRET   = a key in clear (printable ASCII, no space , : or |)  |  sha256:<64 hex digits>
    SCOPE    = *  (every space)  |  space_a|space_b  ('|' separates the spaces of one key)

An empty scope, an empty entry, a key given twice (in clear or hashed), a space id that is not
one, or a character outside printable ASCII is refused. Keys are kept only as SHA-256 digests and
compared digest to digest in constant time, all of them on every request, so the configuration
may hold hashes (`docassist key` makes a key and its `sha256:` form) and no two keys collide.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from docassist.pipelines.spaces import is_space_id

EVERY_SPACE = "*"
WEAK_BELOW = 16  # characters: a key in clear shorter than this is logged as weak at start
_CLEAR = re.compile(r"[!-~]+")  # printable ASCII without space
_RESERVED = set(",:|")
_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
_HOW = "write each entry as KEY:* for every space or KEY:space_a|space_b for some, entries separated by commas"


class KeyConfigError(ValueError):
    """`API_KEYS` cannot be read without guessing; the message says what to write."""


@dataclass(frozen=True)
class ApiKey:
    """One configured key: its SHA-256 digest, the spaces it reaches (None: every space), and
    how it was written (clear or hashed) — never the key itself."""

    digest: bytes
    spaces: frozenset[str] | None
    hashed: bool = False
    weak: bool = False


def digest_of(key: bytes | str) -> bytes:
    return hashlib.sha256(key.encode() if isinstance(key, str) else key).digest()


def parse_api_keys(raw: str) -> tuple[ApiKey, ...]:
    """The keys `raw` configures; () when it is unset or blank (the service is then open)."""
    if not raw.strip():
        return ()
    keys: list[ApiKey] = []
    seen: dict[bytes, int] = {}
    for n, entry in enumerate(raw.split(","), start=1):
        key = _parse_entry(entry.strip(), n)
        if key.digest in seen:
            raise KeyConfigError(f"API_KEYS entries {seen[key.digest]} and {n} are the same key; give each key once")
        seen[key.digest] = n
        keys.append(key)
    return tuple(keys)


def _parse_entry(entry: str, n: int) -> ApiKey:
    where = f"API_KEYS entry {n}"
    if not entry:
        raise KeyConfigError(f"{where} is empty (two commas in a row, or one at an end); remove it, or {_HOW}")
    if not _CLEAR.fullmatch(entry):
        raise KeyConfigError(
            f"{where} has a character outside printable ASCII (a space, a control character or a non-Latin "
            f"letter); keys are printable ASCII — `docassist key` makes one — and {_HOW}"
        )
    secret, colon, scope = entry.rpartition(":")
    if not colon:
        raise KeyConfigError(
            f"{where} has no ':' and so names no spaces. For a key for every space write KEY:*; "
            f"if it is a space of the key before it, join the spaces with '|' (KEY:space_a|space_b), not ','"
        )
    if secret.startswith("sha256:"):
        hex_digest = secret.removeprefix("sha256:")
        if not _DIGEST.fullmatch(hex_digest):
            raise KeyConfigError(f"{where}: after 'sha256:' come the 64 hex digits of the key's SHA-256 digest")
        digest, hashed = bytes.fromhex(hex_digest), True
    else:
        if not secret or _RESERVED & set(secret):
            raise KeyConfigError(f"{where}: the key is empty or contains ',', ':' or '|'; {_HOW}")
        digest, hashed = digest_of(secret), False
    return ApiKey(digest, _parse_scope(scope, where), hashed, weak=not hashed and len(secret) < WEAK_BELOW)


def _parse_scope(scope: str, where: str) -> frozenset[str] | None:
    if scope == EVERY_SPACE:
        return None
    spaces = scope.split("|")
    if not scope or "" in spaces:
        raise KeyConfigError(
            f"{where} names an empty space (nothing after ':', or '|' with nothing beside it); write KEY:* for "
            "every space or KEY:space_a|space_b for some"
        )
    if EVERY_SPACE in spaces:
        raise KeyConfigError(f"{where}: '*' (every space) stands alone, not among other spaces")
    for space in spaces:
        if not is_space_id(space):
            raise KeyConfigError(f"{where}: {space!r} is not a space id (1-64 of A-Z, a-z, 0-9, _ and -)")
    return frozenset(spaces)


def find_key(given: bytes, keys: tuple[ApiKey, ...]) -> ApiKey | None:
    """The key `given` is, or None. Every configured digest is compared, in constant time."""
    if not given:
        return None
    offered = digest_of(given)
    found: ApiKey | None = None
    for key in keys:
        if hmac.compare_digest(offered, key.digest):
            found = key
    return found


def describe(keys: tuple[ApiKey, ...]) -> list[str]:
    """What each key reaches, by its position in `API_KEYS`, for the start-up log."""
    lines = []
    for n, key in enumerate(keys, start=1):
        reach = "every space" if key.spaces is None else ", ".join(sorted(key.spaces))
        notes = [note for note, on in (("given as sha256", key.hashed), ("weak: under 16 characters", key.weak)) if on]
        lines.append(f"key {n}: {reach}" + (f" ({'; '.join(notes)})" if notes else ""))
    return lines


def new_key() -> tuple[str, str]:
    """A fresh random key and its `sha256:` form for `API_KEYS`."""
    key = secrets.token_urlsafe(32)
    return key, "sha256:" + digest_of(key).hex()
