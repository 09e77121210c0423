"""Typed errors the pipelines raise; `api/errors.py` maps each code to an HTTP status."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field


def shown(value: str, limit: int = 80) -> str:
    """A client-given value as an error message quotes it: in quotes, cut to `limit` characters,
    so an answer never grows with what was sent."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


class DocassistError(Exception):
    """Base error: a stable machine `code`, a message for people, optional details."""

    code = "internal_error"
    _by_code: ClassVar[dict[str, type[DocassistError]]] = {}

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        DocassistError._by_code[cls.code] = cls

    @staticmethod
    def from_code(code: str, message: str, **details: Any) -> DocassistError:
        """The typed error for `code`: how an error reported by a run (here or in another
        process) becomes the same exception again, with the same HTTP status."""
        cls = DocassistError._by_code.get(code)
        if cls is not None:
            return cls(message, **details)
        err = DocassistError(message, **details)
        err.code = code
        return err


class UnsupportedMediaType(DocassistError):
    code = "unsupported_media_type"


class NoText(DocassistError):
    code = "no_text"


class UnreadableDocument(DocassistError):
    code = "unreadable_document"


class TooLarge(DocassistError):
    code = "too_large"


class TooManyChunks(TooLarge):
    """The document would take longer to embed than MAX_DOCUMENT_CHUNKS allows."""

    code = "too_many_chunks"


class InvalidInput(DocassistError):
    code = "invalid_input"


class UnsupportedValue(InvalidInput):
    """A request asks for what docassist cannot do (several choices of a completion, a forced tool
    call, JSON output): refused, naming the field in `param`, rather than quietly ignored (400)."""

    code = "unsupported_value"


class NotFound(DocassistError):
    code = "not_found"

    @classmethod
    def document(cls, space_id: str, doc_id: str) -> NotFound:
        """A document the space does not hold: the same words whether or not another space has it."""
        return cls(f"no document {shown(doc_id)} in space {space_id!r}", space_id=space_id)


class NotReady(DocassistError):
    """The document is still being read: its upload job runs. Asked again after `retry_after_s`
    (its upload's remaining time, when known), it is there."""

    code = "not_ready"

    def __init__(self, message: str, job_id: str = "", retry_after_s: int = 2, **details: Any) -> None:
        super().__init__(message, job_id=job_id, retry_after_s=retry_after_s, **details)
        self.retry_after_s = retry_after_s


class Forbidden(DocassistError):
    code = "forbidden"


class Unauthorized(DocassistError):
    code = "unauthorized"


class InvalidCredentials(Unauthorized):
    """A sign-in with a wrong password or an unknown username: one answer for both, so it never
    tells whether the person exists."""

    code = "invalid_credentials"


class SessionExpired(Unauthorized):
    """The session cookie is unknown, ended, past its idle or absolute expiry, or its person lost
    every right at a refresh: sign in again."""

    code = "session_expired"


class IdentityProviderUnavailable(DocassistError):
    """The LDAP directory or the OpenID provider does not answer (or answers with a server error):
    a sign-in is refused with 503 and Retry-After; open sessions keep their last rights meanwhile."""

    code = "identity_provider_unavailable"


class CrossSiteRequest(Forbidden):
    """A state-changing request that rides a session cookie and names another site in `Origin`."""

    code = "cross_site_request"


class SignInFailed(Unauthorized):
    """A sign-in through the OpenID provider that cannot be completed: a forged or replayed callback
    (unknown `state`, a reused code, an ID token whose signature, issuer, audience, expiry or nonce
    does not hold)."""

    code = "sign_in_failed"


class LLMUnavailable(DocassistError):
    """The endpoint is down, refused, or timed out. Retrying later may work."""

    code = "llm_unavailable"


class ContextOverflow(DocassistError):
    """The server said the prompt does not fit; callers re-split instead of failing."""

    code = "context_overflow"


class VectorStoreUnavailable(DocassistError):
    code = "vector_store_unavailable"


class SummarizationStalled(DocassistError):
    """A reduce level failed to shrink: stopping beats looping forever."""

    code = "summarization_stalled"


class Cancelled(DocassistError):
    """Nobody waits for the run any more, or its document was deleted."""

    code = "cancelled"


class EmbedderUnavailable(DocassistError):
    """The process that embeds uploads exited or failed a batch; the next upload starts it again."""

    code = "embedder_unavailable"


class EmbeddingUnavailable(EmbedderUnavailable):
    """The embedding server (`EMBEDDING_KIND=openai`) does not answer, times out, answers with a
    server error or does not serve the model: searches and uploads are refused (503, Retry-After)
    rather than left waiting, and work again once `/health` finds it back."""

    code = "embedding_unavailable"


class EmbeddingInvalid(EmbeddingUnavailable):
    """The embedding server answered with something else than the model's vectors: another
    dimension, fewer or more vectors than texts, indexes that do not match. Nothing is stored; the
    server (or `EMBEDDING_MODEL`) is what must change."""

    code = "embedding_invalid"


class EmbeddingRefused(InvalidInput):
    """The embedding server refused a text as it stands (its 400: over the model's window, say)."""

    code = "embedding_refused"


class StoreUnavailable(DocassistError):
    """The database or Redis does not answer; retrying later works once it is back."""

    code = "store_unavailable"


class MarkupTooLarge(TooLarge):
    """More markup than a parser may read (`MAX_PARSE_MB`): an HTML file, a zip format (DOCX, PPTX,
    XLSX, ODF, EPUB) that unpacks past it or past the compression-ratio cap, or a file whose reading
    needs more than `EXTRACT_MEMORY_MB`."""

    code = "markup_too_large"


class TooManyPages(TooLarge):
    """A PDF with more pages than `MAX_PDF_PAGES`."""

    code = "too_many_pages"


class TooManyRows(TooLarge):
    """A spreadsheet or CSV with more rows than `MAX_SHEET_ROWS`, its sheets together."""

    code = "too_many_rows"


class TextTooLong(TooLarge):
    """Extracted text longer than `MAX_DOCUMENT_CHARS`."""

    code = "text_too_long"


class TooManyOcrPages(TooLarge):
    """More pages without a text layer (or image frames) than `MAX_OCR_PAGES` lets OCR read."""

    code = "too_many_ocr_pages"


class ImageTooLarge(TooLarge):
    """An image, or a PDF page rendered for OCR, with more pixels than `MAX_IMAGE_PIXELS`: Pillow's
    decompression-bomb guard, checked from the header before anything is decoded."""

    code = "image_too_large"


class PageTooCostly(UnreadableDocument):
    """A PDF page that would cost more to draw than a page render may: images declaring more
    pixels than `MAX_IMAGE_PIXELS`, or a render past `PAGE_RENDER_TIMEOUT_S` (then stopped)."""

    code = "page_too_costly"


class OcrUnavailable(DocassistError):
    """A scan needs OCR and Tesseract, or its Russian or English data, is not installed here."""

    code = "ocr_unavailable"


class EncryptedDocument(DocassistError):
    """A PDF that needs a password to open."""

    code = "encrypted_document"


class TooDeeplyNested(DocassistError):
    """Markup (HTML, a DOCX's XML) nested deeper than its parser reads: the text past that depth
    would be lost without a word, so the file is refused instead."""

    code = "too_deeply_nested"


class TooBusy(DocassistError):
    """More of this kind of request in flight than its limit admits: refused at once (429) with
    the seconds to wait in `retry_after_s`, instead of queueing without bound."""

    code = "too_many_requests"

    def __init__(self, message: str, retry_after_s: int = 1, **details: Any) -> None:
        super().__init__(message, retry_after_s=retry_after_s, **details)
        self.retry_after_s = retry_after_s


class UploadQueueFull(TooBusy):
    """Every upload worker is busy and the queue in front of them is full (`UPLOAD_QUEUE`)."""

    code = "upload_queue_full"


class SpaceUploadQueueFull(UploadQueueFull):
    """The space holds its share of the upload places (`UPLOADS_PER_SPACE`): the rest are kept for
    other spaces, so one space's burst cannot leave them none."""

    code = "space_upload_queue_full"


class SearchQueueFull(TooBusy):
    """Every search thread is busy and as many searches wait for one as may (the process is past
    its capacity): refused at once (503) rather than answered late."""

    code = "search_queue_full"


class SignInThrottled(TooBusy):
    """Too many failed sign-ins for one username or from one client address in the last minute."""

    code = "sign_in_throttled"


class RenderQueueFull(TooBusy):
    """The render worker is busy and the few page renders that may wait for it already do."""

    code = "render_queue_full"


class JobError(BaseModel):
    """Why a background job (a summary or an upload) failed, as it is stored and shown: the same
    code, message and details its error would have had in a response."""

    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, exc: DocassistError) -> JobError:
        return cls(code=exc.code, message=exc.message, details=exc.details)
