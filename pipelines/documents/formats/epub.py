"""EPUB: chapters in spine (reading) order, each chapter's XHTML read as HTML files are."""

from __future__ import annotations

import io
import warnings


def epub_text(data: bytes) -> str:
    from ebooklib import ITEM_DOCUMENT, epub

    from docassist.pipelines.documents.extract import markup_text

    with warnings.catch_warnings():  # ebooklib warns about its own future defaults on every read
        warnings.simplefilter("ignore")
        book = epub.read_epub(io.BytesIO(data), options={"ignore_ncx": True})
    chapters = []
    for idref, *_ in book.spine:
        item = book.get_item_with_id(idref)
        if item is None or item.get_type() != ITEM_DOCUMENT or isinstance(item, epub.EpubNav):
            continue  # the table of contents repeats the chapters' titles, not their text
        chapters.append(markup_text(item.get_content(), "EPUB"))
    return "\n\n".join(chapters)
