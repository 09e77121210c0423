"""OCR of scans in Russian and English with the real Tesseract: image-only PDFs and images the tests
render from text (DejaVu Sans, which has Cyrillic), read back as a user sees them — the words, the
language, a fact `/search` finds first and the page it is on — and hostile ones refused quickly."""

from __future__ import annotations

import io
import struct
import threading
import time
import zlib

import pytest

from docassist.evals.scans import ScanStyle, image_file, image_pdf, render_pages
from docassist.pipelines.documents.extract import OcrProgress, extract_document
from docassist.pipelines.documents.limits import ExtractLimits
from docassist.pipelines.documents.locations import Location
from docassist.pipelines.documents.sandbox import ExtractionSandbox
from docassist.pipelines.errors import Cancelled, ImageTooLarge, OcrUnavailable, TooManyOcrPages, UnreadableDocument
from docassist.pipelines.language import detect_language
from tests.conftest import ingest, marked_box, xquad_article

LETTER_RU = (
    "Протокол заседания комиссии по благоустройству.\nКомиссия рассмотрела план работ на лето и утвердила смету."
)
FACT_RU = (
    "Ремонт моста через реку Сура завершат к пятнадцатому сентября.\n"
    "Подрядчиком выбрано общество «Волгастрой» из Пензы."
)
NOTICE_EN = "Harbour board notice.\nThe new ferry to Lundy Island will leave the pier at seven every morning."


@pytest.fixture(scope="module")
def letter_ru() -> bytes:
    """A two-page Russian scan: an image-only PDF at 200 dpi, a page of other text first (an XQuAD
    article), the fact on page 2."""
    style = ScanStyle(dpi=200)
    first = LETTER_RU + "\n" + xquad_article("ru", 0)[:1500]
    return image_pdf(render_pages(first, style)[:1] + render_pages(FACT_RU, style), style.dpi)


def text_page(text: str) -> bytes:
    """A one-page PDF with a text layer (reportlab, DejaVu Sans)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas

    from docassist.evals.scans import font_file

    pdfmetrics.registerFont(TTFont("DejaVuSans", font_file()))
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    c.setFont("DejaVuSans", 12)
    for i, line in enumerate(text.split("\n")):
        c.drawString(72, 770 - 16 * i, line)
    c.showPage()
    c.save()
    return buf.getvalue()


def huge_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A PNG whose header says `width` × `height` pixels, in a few hundred bytes (what a
    decompression bomb looks like before it is decoded)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * 4096)  # the first few rows only: nothing should ever decode the rest
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def blank_scan(pages: int) -> bytes:
    """An image-only PDF of `pages` tiny pages."""
    from PIL import Image

    return image_pdf([Image.new("L", (40, 40), 255) for _ in range(pages)], 72)


# Extraction functions: no service needed.


def test_a_russian_scan_is_read_page_by_page_with_its_pages_located(letter_ru):
    extracted = extract_document("letter.pdf", letter_ru)
    for words in ("Протокол заседания комиссии", "реку Сура", "пятнадцатому сентября", "«Волгастрой»"):
        assert words in extracted.text, (words, extracted.text)
    assert detect_language(extracted.text).code == "ru"
    assert extracted.ocr_pages == 2
    assert [s.location for s in extracted.sections] == [Location(page=1), Location(page=2)]
    page2 = extracted.sections[1]
    assert "Сура" in extracted.text[page2.start : page2.end]


def test_an_english_png_and_a_two_page_tiff_are_read():
    png = image_file(render_pages(NOTICE_EN, ScanStyle(dpi=150))[0])
    extracted = extract_document("notice.png", png)
    assert "ferry to Lundy Island" in extracted.text and "seven every morning" in extracted.text
    assert detect_language(extracted.text).code == "en"
    assert extracted.sections == ()  # a single image has no pages to name

    pages = render_pages("First page: the harbour.", ScanStyle(dpi=150)) + render_pages(
        "Second page: the lighthouse.", ScanStyle(dpi=150)
    )
    buf = io.BytesIO()
    pages[0].save(buf, "TIFF", save_all=True, append_images=pages[1:], compression="tiff_deflate")
    tiff = extract_document("two.tiff", buf.getvalue())
    assert "harbour" in tiff.text and "lighthouse" in tiff.text
    assert [s.location.page for s in tiff.sections] == [1, 2]


def test_a_photo_stored_sideways_is_read_upright():
    page = render_pages(NOTICE_EN, ScanStyle(dpi=150))[0].rotate(90, expand=True)
    exif = page.getexif()
    exif[0x0112] = 6  # orientation: turn 90° clockwise to show
    buf = io.BytesIO()
    page.convert("RGB").save(buf, "JPEG", exif=exif, quality=90)
    assert "ferry to Lundy Island" in extract_document("photo.jpg", buf.getvalue()).text


def test_a_mixed_pdf_keeps_its_text_layer_and_ocrs_only_the_scanned_page():
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for data in (text_page("Text layer page: the budget is 42 million."), image_pdf(render_pages(NOTICE_EN), 300)):
        for page in PdfReader(io.BytesIO(data)).pages:
            writer.add_page(page)
    writer.add_blank_page(width=595, height=842)  # neither text nor image: nothing to OCR
    buf = io.BytesIO()
    writer.write(buf)
    extracted = extract_document("mixed.pdf", buf.getvalue())
    assert extracted.ocr_pages == 1
    assert extracted.text.startswith("Text layer page: the budget is 42 million.")
    assert "ferry to Lundy Island" in extracted.text
    assert [s.location.page for s in extracted.sections] == [1, 2]


def test_without_tesseract_a_scan_is_ocr_unavailable_naming_the_packages_and_text_pdfs_still_read(letter_ru):
    missing = ExtractLimits(tesseract_cmd="/nonexistent/tesseract")
    with pytest.raises(OcrUnavailable) as caught:
        extract_document("letter.pdf", letter_ru, missing)
    assert "apt-get install tesseract-ocr tesseract-ocr-rus tesseract-ocr-eng" in str(caught.value)
    with pytest.raises(OcrUnavailable):
        extract_document("notice.jpg", image_file(render_pages(NOTICE_EN, ScanStyle(dpi=100))[0], "JPEG"), missing)
    assert "budget" in extract_document("text.pdf", text_page("The budget is 42 million."), missing).text


def test_a_30000_pixel_square_image_is_refused_from_its_header_naming_the_limit():
    started = time.monotonic()
    with pytest.raises(ImageTooLarge, match="MAX_IMAGE_PIXELS") as caught:
        extract_document("bomb.png", huge_png())
    assert time.monotonic() - started < 2
    assert "30,000 × 30,000" in str(caught.value)


def test_a_scan_past_max_ocr_pages_is_refused_before_any_page_is_read():
    started = time.monotonic()
    with pytest.raises(TooManyOcrPages, match="MAX_OCR_PAGES allows 3"):
        extract_document("many.pdf", blank_scan(4), ExtractLimits(max_ocr_pages=3))
    assert time.monotonic() - started < 3


def test_a_page_past_ocr_page_timeout_s_is_unreadable_naming_the_limit(letter_ru):
    with pytest.raises(UnreadableDocument, match="OCR_PAGE_TIMEOUT_S"):
        extract_document("letter.pdf", letter_ru, ExtractLimits(ocr_page_timeout_s=0.05))


def test_the_sandbox_ocrs_page_by_page_and_reports_progress_in_the_parent(letter_ru):
    seen: list[tuple[int, int]] = []
    sandbox = ExtractionSandbox(ExtractLimits(), workers=1)
    try:
        extracted = sandbox.extract("letter.pdf", letter_ru, progress=lambda step: seen.append((step.done, step.total)))
        assert seen == [(0, 2), (1, 2), (2, 2)]
        assert "реку Сура" in extracted.text and extracted.sections[1].location == Location(page=2)
        assert sandbox.extract("note.txt", "Просто текст.".encode(), progress=seen.append).text == "Просто текст."
        assert len(seen) == 3, "no OCR, no progress"

        def abandon(step: OcrProgress) -> None:
            if step.done == 1:
                raise Cancelled("the upload was abandoned")

        with pytest.raises(Cancelled):  # an abandoned upload stops between pages
            sandbox.extract("letter.pdf", letter_ru, progress=abandon)
        assert sandbox.extract("after.txt", "Дальше.".encode()).text == "Дальше."
    finally:
        sandbox.close()


def numbered_scan(pages: int) -> bytes:
    """An image-only PDF whose page N says which page it is, in words Tesseract reads surely."""
    style = ScanStyle(dpi=150)
    words = ["ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT"]
    return image_pdf([render_pages(f"PAGE {words[i]} OF THE REPORT", style)[0] for i in range(pages)], style.dpi)


def test_a_scan_is_read_on_every_free_worker_and_its_pages_come_back_in_order():
    steps: list[OcrProgress] = []
    sandbox = ExtractionSandbox(ExtractLimits(), workers=2)
    try:
        extracted = sandbox.extract("report.pdf", numbered_scan(5), progress=steps.append)
    finally:
        sandbox.close()
    words = ["ONE", "TWO", "THREE", "FOUR", "FIVE"]
    positions = [extracted.text.index(f"PAGE {w}") for w in words]
    assert positions == sorted(positions), extracted.text
    assert [s.done for s in steps] == [0, 1, 2, 3, 4, 5]
    for step in steps[1:-1]:  # what comes with each step is the text of the pages read so far, and only those
        assert f"PAGE {words[step.done - 1]}" in step.text_so_far
        assert f"PAGE {words[step.done]}" not in step.text_so_far
        assert extracted.text.startswith(step.text_so_far)


def test_a_long_scan_gives_a_borrowed_worker_back_to_an_upload_that_waits():
    """Two workers, an eight-page scan on both: a text file uploaded meanwhile is read within a
    page or two of its arrival, not after the whole scan (a busy machine may delay the file's
    thread by a page)."""
    sandbox = ExtractionSandbox(ExtractLimits(), workers=2)
    sandbox.warm_up()
    done_when_text_read: list[int] = []
    pages_done = [0]
    started = threading.Event()

    def scan_progress(step: OcrProgress) -> None:
        pages_done[0] = step.done
        if step.done == 1:
            started.set()

    def read_text() -> None:
        started.wait(120)
        sandbox.extract("note.txt", "Короткая записка.".encode())
        done_when_text_read.append(pages_done[0])

    reader = threading.Thread(target=read_text)
    reader.start()
    try:
        sandbox.extract("report.pdf", numbered_scan(8), progress=scan_progress)
    finally:
        reader.join(60)
        sandbox.close()
    assert done_when_text_read and done_when_text_read[0] <= 5, done_when_text_read


# Through the service, as a user uploads.


def test_a_russian_scan_is_searchable_and_its_hit_names_the_page(http, space, letter_ru):
    r = ingest(http, space, "letter.pdf", letter_ru, wait="true")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["language"] == "ru"
    text = http.get(f"/documents/{doc['doc_id']}/text", params={"space_id": space}).text
    assert "пятнадцатому сентября" in text
    ingest(http, space, "notice.png", image_file(render_pages(NOTICE_EN, ScanStyle(dpi=150))[0]), wait="true")
    hits = http.post("/search", json={"q": "Когда завершат ремонт моста через Суру?", "space_id": space}).json()
    assert hits["sources"][0]["doc_id"] == doc["doc_id"]
    location = hits["sources"][0]["location"]  # the fact is on page 2; its chunk may begin with page 1's last lines
    assert location.get("page_end", location["page"]) == 2, location
    # the best-matching sentence is on page 2, wherever its chunk begins
    assert hits["sources"][0]["match_location"] == {"page": 2}, hits["sources"][0]
    first = http.post("/search", json={"q": "протокол комиссии по благоустройству", "space_id": space}).json()
    assert first["sources"][0]["doc_id"] == doc["doc_id"] and first["sources"][0]["location"] == {"page": 1}
    scraped = http.get("/metrics").text  # an operator charts OCR pages/s from these two counters
    pages = [line for line in scraped.splitlines() if line.startswith("docassist_ocr_pages_total")]
    assert pages and float(pages[0].split()[-1]) >= 3, pages  # the letter's two pages and the notice
    assert any(line.startswith("docassist_ocr_seconds_total") for line in scraped.splitlines())


def test_a_quote_from_a_scan_is_marked_on_its_page_from_the_words_ocr_kept(http, space, letter_ru):
    doc = ingest(http, space, "letter.pdf", letter_ru, wait="true").json()
    text = http.get(f"/documents/{doc['doc_id']}/text", params={"space_id": space}).text
    start = text.index("пятнадцатому сентября")  # as OCR read it (the test above checks it did)
    span = f"{start}-{start + len('пятнадцатому сентября')}"
    url = f"/documents/{doc['doc_id']}/pages"
    marked = http.get(f"{url}/2", params={"space_id": space, "highlight": span})
    assert marked.status_code == 200 and marked.headers["highlight-lines"] == "1", marked.headers
    box = marked_box(marked.content)
    assert box is not None
    left, top, right, bottom = box
    # the scan's page 2 holds the fact's few lines at its top, under render_pages' margin
    height = 1286  # A4 at 110 dpi
    assert top > 60 and bottom < height // 3 and bottom - top < 60, box
    assert right - left > 150, box
    other = http.get(f"{url}/1", params={"space_id": space, "highlight": span})
    assert other.headers["highlight-lines"] == "0" and marked_box(other.content) is None


def test_hostile_scans_are_refused_quickly_and_nothing_is_stored(http, space):
    for name, data, code, limit in (
        ("bomb.png", huge_png(), "image_too_large", "MAX_IMAGE_PIXELS"),
        ("many.pdf", blank_scan(201), "too_many_ocr_pages", "MAX_OCR_PAGES"),
    ):
        started = time.monotonic()
        r = ingest(http, space, name, data, wait="true")
        assert time.monotonic() - started < 10, name
        assert r.status_code == 413 and r.json()["error"]["code"] == code, r.text
        assert limit in r.json()["error"]["message"]
    assert http.get("/documents", params={"space_id": space}).json()["documents"] == []
    assert http.get("/health").status_code == 200
