"""Which of a space's documents a search reads: chosen documents, tags (any of), languages, an
upload-time window. Applied inside Qdrant as payload filters beside the space's (`store.py`,
`edge_store.py`), never by dropping hits afterwards, so `top_k` stays full of in-scope chunks.

The payload keys are written with every chunk at ingest (`tags` and `uploaded_at` beside
`language`); `PATCH /documents/{id}` rewrites a document's `tags` on its chunks."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from docassist.pipelines.errors import InvalidInput

TAGS_KEY = "tags"  # a chunk's document's tags, case-folded: a scope's tags match in any case
LANGUAGE_KEY = "language"
UPLOADED_KEY = "uploaded_at"  # seconds since the epoch, as the registry's `created_at`
VERSION_KEY = "version"  # the document version a chunk belongs to (`PUT /documents/{id}`)
MAX_SCOPE_DOCUMENTS = 1000  # a scope names documents one by one; past this, a tag says it better
MAX_SCOPE_VALUES = 100  # tags or languages in one scope
MAX_TAGS = 100  # tags on one document
MAX_TAG_CHARS = 64
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")


def uploaded_payload(seconds: float) -> float:
    """An upload time as chunks carry it: to the millisecond, a float every store keeps exactly
    (Qdrant Edge prints a payload float to fewer digits than a full `time.time()` has)."""
    return round(seconds, 3)


def tag_payload(tags: tuple[str, ...]) -> list[str]:
    """A document's tags as its chunks carry them (case-folded, as a scope asks for them)."""
    return [tag.casefold() for tag in tags]


def clean_tags(tags: list[str], field: str = "tags") -> tuple[str, ...]:
    """Tags as stored: trimmed, duplicates (by case) dropped, order kept; a tag that is empty, too
    long or holds control characters is refused, as is more than `MAX_TAGS` of them."""
    if len(tags) > MAX_TAGS:
        raise InvalidInput(f"{field}: at most {MAX_TAGS} tags", limit=MAX_TAGS, given=len(tags))
    kept: dict[str, str] = {}
    for raw in tags:
        tag = raw.strip() if isinstance(raw, str) else ""
        if not tag or len(tag) > MAX_TAG_CHARS:
            raise InvalidInput(f"{field}: a tag is 1-{MAX_TAG_CHARS} characters", tag=str(raw)[:80])
        if _CONTROL.search(tag):
            shown = tag.encode("unicode_escape").decode()[:80]
            raise InvalidInput(f"{field}: a tag cannot hold control characters", tag=shown)
        kept.setdefault(tag.casefold(), tag)
    return tuple(kept.values())


@dataclass(frozen=True)
class Scope:
    """Empty fields leave that dimension open; the empty scope is the whole space."""

    doc_ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    uploaded_after: float | None = None
    uploaded_before: float | None = None

    @classmethod
    def of(
        cls,
        doc_ids: list[str] | None = None,
        tags: list[str] | None = None,
        languages: list[str] | None = None,
        uploaded_after: datetime | float | None = None,
        uploaded_before: datetime | float | None = None,
    ) -> Scope:
        """A checked scope: at most `MAX_SCOPE_DOCUMENTS` documents, valid tags and language codes,
        a window that is not empty."""
        ids = tuple(dict.fromkeys(doc_ids or ()))
        if len(ids) > MAX_SCOPE_DOCUMENTS:
            raise InvalidInput(
                f"doc_ids: a scope names at most {MAX_SCOPE_DOCUMENTS:,} documents; tag them and scope by tag",
                limit=MAX_SCOPE_DOCUMENTS,
                given=len(ids),
            )
        if any(not isinstance(i, str) or not 1 <= len(i) <= 64 for i in ids):
            raise InvalidInput("doc_ids: each is a document id of 1-64 characters")
        langs = tuple(dict.fromkeys(code.strip().lower() for code in languages or ()))
        if len(langs) > MAX_SCOPE_VALUES or any(not _LANGUAGE.match(code) for code in langs):
            raise InvalidInput('languages: ISO 639-1 codes such as "ru" or "en"', languages=list(langs)[:10])
        found = tuple(tag.casefold() for tag in clean_tags(list(tags or ())))
        after, before = _seconds(uploaded_after), _seconds(uploaded_before)
        if after is not None and before is not None and after >= before:
            raise InvalidInput("uploaded_after must be earlier than uploaded_before")
        return cls(ids, found, langs, after, before)

    def __bool__(self) -> bool:
        return bool(self.doc_ids or self.tags or self.languages) or self.window

    @property
    def window(self) -> bool:
        return self.uploaded_after is not None or self.uploaded_before is not None

    def as_dict(self) -> dict[str, Any]:
        """What a conversation keeps of its scope (JSON): the fields that are set."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items() if v not in ((), None)}

    @classmethod
    def from_dict(cls, kept: dict[str, Any] | None) -> Scope:
        if not kept:
            return cls()
        return cls.of(**kept)

    def describe(self) -> str:
        """For the logs: what the scope keeps, in a few words."""
        parts = []
        if self.doc_ids:
            parts.append(f"{len(self.doc_ids)} document(s)")
        if self.tags:
            parts.append("tags " + "|".join(self.tags[:5]))
        if self.languages:
            parts.append("languages " + "|".join(self.languages))
        if self.window:
            parts.append(f"uploaded {self.uploaded_after or '…'}–{self.uploaded_before or '…'}")
        return ", ".join(parts) or "whole space"


def _seconds(value: datetime | float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):  # a time without its zone is UTC, as the service's clock
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return float(value)
