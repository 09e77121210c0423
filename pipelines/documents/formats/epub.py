"""EPUB: chapters in spine (reading) order, each chapter's XHTML read as HTML files are, located at
its chapter — the title the book's table of contents gives it, or else its first line."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterable
from typing import Any

from docassist.pipelines.documents.locations import Location, Part

_MAX_TITLE = 120


def _titles(toc: Iterable[Any]) -> dict[str, str]:
    """File name → title, from the table of contents (nested sections included)."""
    titles: dict[str, str] = {}
    for entry in toc:
        if isinstance(entry, tuple | list) and len(entry) == 2:  # (section, its children)
            entry, children = entry
            titles |= _titles(children)
        href, title = getattr(entry, "href", None), getattr(entry, "title", None)
        if href and title:
            titles.setdefault(href.split("#")[0], " ".join(str(title).split()))
    return titles


def epub_text(data: bytes) -> list[Part]:
    from ebooklib import ITEM_DOCUMENT, epub

    from docassist.pipelines.documents.formats.markup import markup_text

    with warnings.catch_warnings():  # ebooklib warns about its own future defaults on every read
        warnings.simplefilter("ignore")
        book = epub.read_epub(io.BytesIO(data), options={"ignore_ncx": True})
    titles = _titles(book.toc)
    chapters = []
    for idref, *_ in book.spine:
        item = book.get_item_with_id(idref)
        if item is None or item.get_type() != ITEM_DOCUMENT or isinstance(item, epub.EpubNav):
            continue  # the table of contents repeats the chapters' titles, not their text
        text = markup_text(item.get_content(), "EPUB")
        first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
        title = titles.get(item.get_name()) or first_line[:_MAX_TITLE]
        chapters.append(Part(text, Location(chapter=title) if title else None))
    return chapters
