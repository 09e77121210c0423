"""Presentations: slides in order, each with its number and title, then its text, tables and
speaker notes. The labels ("Slide 3", "Notes") are written in Russian when the deck is, so a
Russian deck's text stays Russian for language detection and for its summaries."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

from docassist.pipelines.documents.locations import Location, Part

_CYRILLIC = re.compile("[А-Яа-яЁё]")
_LATIN = re.compile("[A-Za-z]")


def labels(texts: list[str]) -> tuple[str, str]:
    """The words for a slide and its notes, in Russian when Cyrillic letters outnumber Latin ones."""
    joined = " ".join(texts)
    if len(_CYRILLIC.findall(joined)) > len(_LATIN.findall(joined)):
        return "Слайд", "Заметки"
    return "Slide", "Notes"


def one_line(text: str) -> str:
    return " ".join(text.split())


def write_slides(slides: list[tuple[str, list[str], str]]) -> list[Part]:
    """(title, body parts, notes) per slide, as numbered paragraphs, each located at its slide."""
    slide_word, notes_word = labels([t for title, body, notes in slides for t in (title, *body, notes)])
    out = []
    for number, (title, body, notes) in enumerate(slides, 1):
        parts = [f"{slide_word} {number}: {title}" if title else f"{slide_word} {number}"]
        parts += [b for b in body if b.strip()]
        if notes.strip():
            parts.append(f"{notes_word}: {notes.strip()}")
        out.append(Part("\n".join(parts), Location(slide=number, title=title or None)))
    return out


def _shapes(shapes: Any) -> Iterator[Any]:
    for shape in shapes:
        if hasattr(shape, "shapes"):  # a group: its shapes in order
            yield from _shapes(shape.shapes)
        else:
            yield shape


def pptx_text(data: bytes) -> list[Part]:
    from pptx import Presentation

    slides = []
    for slide in Presentation(io.BytesIO(data)).slides:
        title_shape = slide.shapes.title
        title = one_line(title_shape.text_frame.text) if title_shape is not None else ""
        body = []
        for shape in _shapes(slide.shapes):
            if title_shape is not None and shape.shape_id == title_shape.shape_id:
                continue
            if shape.has_text_frame:
                body.append(shape.text_frame.text)
            elif getattr(shape, "has_table", False):
                body += [" | ".join(one_line(c.text) for c in row.cells) for row in shape.table.rows]
        notes = ""
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = slide.notes_slide.notes_text_frame.text
        slides.append((title, body, notes))
    return write_slides(slides)
