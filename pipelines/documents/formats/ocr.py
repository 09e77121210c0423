"""OCR of scans: PDF pages without a text layer and images (PNG, JPEG, TIFF), in Russian and English.

Tesseract 5 (Debian's `tesseract-ocr` with its `rus` and `eng` data) through pytesseract, which runs
the `tesseract` binary — so a missing binary or language is found by asking it, and said as 422
`ocr_unavailable` naming the packages. PDF pages are rendered by pypdfium2 at `OCR_DPI`. One page is
one call (`ocr_page`), so the sandbox can run each as a task of its own with its own time limit
and report pages done. Every image's size is checked from its header, before it is decoded, against
`MAX_IMAGE_PIXELS` (Pillow's decompression-bomb guard is set to the same limit).
"""

from __future__ import annotations

import io
import os
import subprocess
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from docassist.pipelines.documents.locations import OcrWord
from docassist.pipelines.environment import process_environment
from docassist.pipelines.errors import ImageTooLarge, OcrUnavailable, UnreadableDocument

if TYPE_CHECKING:
    from docassist.pipelines.documents.limits import ExtractLimits

LANGUAGES = ("rus", "eng")
OCR_DPI = 300
PACKAGES = "apt-get install tesseract-ocr tesseract-ocr-rus tesseract-ocr-eng"
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}
# Tesseract runs with one OpenMP thread: two extraction workers already read pages side by side, and
# more threads on a small machine only contend with each other and the embedding model (Tesseract's
# own advice for batch work).
# Only the binary's environment gets it: this process's embedding engine reads the same variable.
OMP_THREADS = "1"


_LANGUAGES: dict[str, frozenset[str]] = {}  # per command, once it ran: a later install is seen at once


def _languages(cmd: str) -> frozenset[str] | None:
    """The languages `cmd --list-langs` reports; None when the binary cannot be run."""
    if cmd in _LANGUAGES:
        return _LANGUAGES[cmd]
    try:
        out = subprocess.run([cmd, "--list-langs"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    langs = frozenset(line.strip() for line in out.stdout.splitlines()[1:] if line.strip())
    if set(LANGUAGES) <= langs:
        _LANGUAGES[cmd] = langs
    return langs


def check_available(limits: ExtractLimits) -> None:
    """`OcrUnavailable` unless Tesseract runs here and has Russian and English."""
    langs = _languages(limits.tesseract_cmd)
    if langs is None:
        raise OcrUnavailable(
            f"the document is a scan and needs OCR, but Tesseract ({limits.tesseract_cmd!r}) is not installed here; "
            f"install it: {PACKAGES}",
            packages=PACKAGES,
        )
    missing = [lang for lang in LANGUAGES if lang not in langs]
    if missing:
        raise OcrUnavailable(
            f"the document is a scan and needs OCR, but Tesseract has no data for {', '.join(missing)}; "
            f"install it: {PACKAGES}",
            packages=PACKAGES,
        )


def _check_pixels(width: int, height: int, limits: ExtractLimits, what: str) -> None:
    if width * height > limits.max_image_pixels:
        raise ImageTooLarge(
            f"{what} is {width:,} × {height:,} pixels; MAX_IMAGE_PIXELS allows {limits.max_image_pixels:,}",
            pixels=width * height,
            limit=limits.max_image_pixels,
        )


def _open_image(data: bytes, limits: ExtractLimits) -> Any:
    """The image, opened (its header read, nothing decoded) and its size checked. A header no
    format recognises is said in words: Pillow's own message shows the in-memory file's repr
    (`<_io.BytesIO object at 0x…>`); the caller names the uploaded file."""
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = limits.max_image_pixels
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:  # over twice the limit: Pillow refuses it; open the header to say its size
        Image.MAX_IMAGE_PIXELS = None
        try:
            image = Image.open(io.BytesIO(data))
        finally:
            Image.MAX_IMAGE_PIXELS = limits.max_image_pixels
    except UnidentifiedImageError:
        raise UnidentifiedImageError("its header is not that of any image format this service reads") from None
    _check_pixels(image.width, image.height, limits, "the image")
    return image


def image_frames(data: bytes, limits: ExtractLimits) -> int:
    """How many pages an image holds (a TIFF may hold several), each checked against MAX_IMAGE_PIXELS."""
    image = _open_image(data, limits)
    frames = getattr(image, "n_frames", 1)
    for index in range(1, min(frames, limits.max_ocr_pages + 1)):
        image.seek(index)
        _check_pixels(image.width, image.height, limits, f"page {index + 1} of the image")
    return frames


def scanned_pages(data: bytes, indices: list[int]) -> list[int]:
    """Those of `indices` (0-based PDF pages without a text layer) that hold an image: scans. A page
    with neither text nor image is blank and needs no OCR."""
    if not indices:
        return []
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    pdf = pdfium.PdfDocument(data)
    try:
        found = []
        for index in indices:
            page = pdf[index]
            try:
                if next(iter(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=3)), None) is not None:
                    found.append(index)
            finally:
                page.close()
        return found
    finally:
        pdf.close()


def render_pdf_page(data: bytes, index: int, limits: ExtractLimits, dpi: int = OCR_DPI, grayscale: bool = True) -> Any:
    """Page `index` (0-based) as an image at `dpi` (greyscale for OCR, in colour for a reader), its
    size checked before it is rendered."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    try:
        page = pdf[index]
        try:
            return draw_page(page, index + 1, limits, dpi, grayscale)
        finally:
            page.close()
    finally:
        pdf.close()


def draw_page(page: Any, number: int, limits: ExtractLimits, dpi: int, grayscale: bool) -> Any:
    """An open pdfium page drawn at `dpi` as a PIL image, its size checked before any pixel is drawn."""
    width, height = page.get_size()
    scale = dpi / 72
    _check_pixels(round(width * scale), round(height * scale), limits, f"page {number} rendered at {dpi} dpi")
    return page.render(scale=scale, grayscale=grayscale).to_pil()


def image_page(data: bytes, index: int, limits: ExtractLimits) -> Any:
    """Frame `index` of an image, upright and in greyscale (transparency flattened onto white)."""
    from PIL import Image, ImageOps

    image = _open_image(data, limits)
    image.seek(index)
    _check_pixels(image.width, image.height, limits, f"page {index + 1} of the image")
    image = ImageOps.exif_transpose(image)  # a phone's photo stored sideways, with its turn in EXIF
    if image.mode in ("RGBA", "LA", "P", "PA"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, "white")
        flat.alpha_composite(rgba)
        image = flat
    return image.convert("L")


@dataclass(frozen=True)
class OcrPage:
    """One page's text as Tesseract laid it out (lines; paragraphs apart by a blank line), and its words."""

    text: str
    words: tuple[OcrWord, ...] = ()


def page_of(data: dict[str, list[Any]], width: int, height: int) -> OcrPage:
    """The page from Tesseract's word table (`image_to_data`): its words in reading order, and the
    text they make — what `image_to_string` prints, from the same single run."""
    words: list[OcrWord] = []
    paragraphs: dict[tuple[int, int], dict[int, list[str]]] = {}
    lines: dict[tuple[int, int, int], int] = {}
    for i, word in enumerate(data["text"]):
        word = (word or "").strip()
        if int(data["level"][i]) != 5 or not word:
            continue
        block, par, line = int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i])
        number = lines.setdefault((block, par, line), len(lines))
        paragraphs.setdefault((block, par), {}).setdefault(line, []).append(word)
        left, top = int(data["left"][i]), int(data["top"][i])
        right, bottom = left + int(data["width"][i]), top + int(data["height"][i])
        box = (left * 10_000 // width, top * 10_000 // height, right * 10_000 // width, bottom * 10_000 // height)
        words.append(OcrWord(word, *box, number))
    text = "\n\n".join("\n".join(" ".join(line) for line in par.values()) for par in paragraphs.values())
    return OcrPage(text, tuple(words))


def recognize(image: Any, limits: ExtractLimits) -> OcrPage:
    """Tesseract's text and word boxes for one page image, within OCR_PAGE_TIMEOUT_S. The page goes
    to the binary as an uncompressed BMP file: pytesseract would write a PNG, whose compression
    costs about a tenth of the OCR itself at 300 dpi."""
    import pytesseract

    pytesseract.pytesseract.tesseract_cmd = limits.tesseract_cmd
    # pytesseract hands the binary its module's `environ`: a copy of ours with the thread limit
    pytesseract.pytesseract.environ = {**process_environment(), "OMP_THREAD_LIMIT": OMP_THREADS}
    with tempfile.TemporaryDirectory(prefix="docassist-ocr-") as tmp:
        path = os.path.join(tmp, "page.bmp")
        image.save(path, "BMP")
        try:
            table = pytesseract.image_to_data(
                path, lang="+".join(LANGUAGES), timeout=limits.ocr_page_timeout_s, output_type=pytesseract.Output.DICT
            )
            return page_of(table, image.width, image.height)
        except pytesseract.TesseractNotFoundError as exc:
            raise OcrUnavailable(f"Tesseract is not installed here; install it: {PACKAGES}", packages=PACKAGES) from exc
        except pytesseract.TesseractError as exc:  # it ran and failed: out of memory under EXTRACT_MEMORY_MB, above all
            said = " ".join(str(exc.message).split())[:200]
            raise UnreadableDocument(
                f"Tesseract could not read a page ({said or f'exit status {exc.status}'}); a page this size may need "
                "more memory than EXTRACT_MEMORY_MB allows"
            ) from exc
        except RuntimeError as exc:
            if "timeout" in str(exc).lower():
                raise UnreadableDocument(
                    f"OCR of one page took longer than OCR_PAGE_TIMEOUT_S ({limits.ocr_page_timeout_s:g}s)"
                ) from exc
            raise


def ocr_page(ext: str, data: bytes, index: int, limits: ExtractLimits) -> OcrPage:
    """The OCR'd text and words of page `index` (0-based) of a PDF or an image."""
    image = render_pdf_page(data, index, limits) if ext == ".pdf" else image_page(data, index, limits)
    return recognize(image, limits)
