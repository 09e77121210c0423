"""HTML and XHTML: the text a browser shows, within the parser's depth and MAX_PARSE_MB."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from docassist.pipelines.errors import MarkupTooLarge, TooDeeplyNested

if TYPE_CHECKING:
    from docassist.pipelines.documents.limits import ExtractLimits
    from docassist.pipelines.documents.locations import Part

MB = 1024 * 1024
MAX_MARKUP_DEPTH = 256  # libxml2's limit for HTML and XML without its "huge" option


def html_document_parts(data: bytes, limits: ExtractLimits) -> list[Part]:
    if len(data) > limits.max_parse_mb * MB:
        raise MarkupTooLarge(
            f"the HTML file is {len(data) / MB:,.1f} MB; MAX_PARSE_MB allows {limits.max_parse_mb:g}",
            size_bytes=len(data),
        )
    from docassist.pipelines.documents.formats.headings import html_parts
    from docassist.pipelines.documents.formats.plain import decode_text

    return html_parts(visible(decode_text(data), "HTML"))


def visible(markup: str | bytes, kind: str) -> Any:
    """The parsed document without what a browser does not show (scripts, styles, templates)."""
    import lxml.html

    parser = lxml.html.HTMLParser()
    root = lxml.html.document_fromstring(markup, parser=parser)
    if any("Excessive depth" in entry.message for entry in parser.error_log):
        raise TooDeeplyNested(too_deep(kind))
    for element in root.xpath("//script|//style|//noscript|//template"):
        element.drop_tree()
    return root


def markup_text(markup: str | bytes, kind: str) -> str:
    """The visible text of HTML or XHTML (an EPUB chapter: bytes, its encoding declared inside)."""
    return "\n".join(visible(markup, kind).itertext())


def too_deep(kind: str) -> str:
    return (
        f"the {kind} nests elements more than {MAX_MARKUP_DEPTH} levels deep; its parser reads no deeper, so the "
        "text below would be lost — save it with a flatter structure"
    )
