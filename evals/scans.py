"""Scans made from text: each page rendered with a real font at a given resolution, optionally
turned slightly and blurred as a flatbed scanner leaves it, then saved as an image-only PDF or an
image. `docassist eval ocr`, the OCR bench and the tests read what OCR makes of them."""

from __future__ import annotations

import functools
import io
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFilter, ImageFont

A4_INCHES = (8.27, 11.69)
MARGIN_INCHES = 0.8
FONT_POINTS = 12
_FALLBACK_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


@functools.cache
def font_file() -> str:
    """A sans-serif font with Cyrillic letters, as fontconfig finds it (DejaVu Sans on Debian)."""
    try:
        out = subprocess.run(
            ["fc-match", "--format=%{file}", "DejaVu Sans:lang=ru"], capture_output=True, text=True, timeout=10
        )
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except OSError:
        pass
    return _FALLBACK_FONT


@dataclass(frozen=True)
class ScanStyle:
    dpi: int = 300
    rotate_degrees: float = 0.0
    blur_radius: float = 0.0


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}".strip()
            if line and draw.textlength(candidate, font=font) > width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


def render_pages(text: str, style: ScanStyle = ScanStyle()) -> list[Image.Image]:
    """`text` on as many A4 pages as it fills, greyscale, at `style.dpi`."""
    dpi = style.dpi
    size = (round(A4_INCHES[0] * dpi), round(A4_INCHES[1] * dpi))
    margin = round(MARGIN_INCHES * dpi)
    font = ImageFont.truetype(font_file(), round(FONT_POINTS / 72 * dpi))
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    lines = _wrap(probe, text, font, size[0] - 2 * margin)
    step = round(font.size * 1.45)
    per_page = (size[1] - 2 * margin) // step
    pages = []
    for start in range(0, max(1, len(lines)), per_page):
        page = Image.new("L", size, 255)
        draw = ImageDraw.Draw(page)
        for i, line in enumerate(lines[start : start + per_page]):
            draw.text((margin, margin + i * step), line, font=font, fill=0)
        if style.rotate_degrees:
            page = page.rotate(style.rotate_degrees, resample=Image.Resampling.BICUBIC, fillcolor=255)
        if style.blur_radius:
            page = page.filter(ImageFilter.GaussianBlur(style.blur_radius))
        pages.append(page)
    return pages


def image_pdf(pages: Sequence[Image.Image], dpi: int) -> bytes:
    """The pages as an image-only PDF (no text layer), as a scanner writes one."""
    buf = io.BytesIO()
    pages[0].save(buf, "PDF", resolution=dpi, save_all=True, append_images=list(pages[1:]))
    return buf.getvalue()


def image_file(page: Image.Image, fmt: str = "PNG", dpi: int = 300) -> bytes:
    buf = io.BytesIO()
    page.save(buf, fmt, dpi=(dpi, dpi))
    return buf.getvalue()
