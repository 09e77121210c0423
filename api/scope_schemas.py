"""The scope fields a question or a search may carry, read into the pipelines' `Scope`."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from docassist.pipelines.search.scope import MAX_SCOPE_DOCUMENTS, Scope


class ScopeFields(BaseModel):
    """Which of the space's documents to read (all of those given hold; each list is any of)."""

    model_config = ConfigDict(extra="forbid")
    doc_ids: list[str] | None = Field(
        default=None, description=f"only these documents (at most {MAX_SCOPE_DOCUMENTS:,}; more: 422)"
    )
    tags: list[str] | None = Field(default=None, description="only documents with any of these tags")
    languages: list[str] | None = Field(default=None, description='only documents in these languages ("ru", "en")')
    uploaded_after: datetime | None = Field(default=None, description="only documents uploaded at or after (ISO 8601)")
    uploaded_before: datetime | None = Field(default=None, description="only documents uploaded before (ISO 8601)")

    def scope(self) -> Scope:
        return Scope.of(self.doc_ids, self.tags, self.languages, self.uploaded_after, self.uploaded_before)

    def has_scope(self) -> bool:
        return any(
            v is not None for v in (self.doc_ids, self.tags, self.languages, self.uploaded_after, self.uploaded_before)
        )


class ScopeIn(ScopeFields):
    """The same fields as one object: `/v1`'s `scope` (the OpenAI client's `extra_body`)."""


def scope_out(scope: Scope) -> dict[str, object] | None:
    """A kept scope as the API shows it (a conversation's); None for the whole space."""
    if not scope:
        return None
    shown: dict[str, object] = {}
    if scope.doc_ids:
        shown["doc_ids"] = list(scope.doc_ids)
    if scope.tags:
        shown["tags"] = list(scope.tags)
    if scope.languages:
        shown["languages"] = list(scope.languages)
    if scope.uploaded_after is not None:
        shown["uploaded_after"] = datetime.fromtimestamp(scope.uploaded_after, UTC).isoformat()
    if scope.uploaded_before is not None:
        shown["uploaded_before"] = datetime.fromtimestamp(scope.uploaded_before, UTC).isoformat()
    return shown
