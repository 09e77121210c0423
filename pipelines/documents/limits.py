"""What reading one file may cost: `ExtractLimits`, the limits `extract.py` and each reader of
`formats/` check before the step they protect. A module of its own, below both, so the readers
take their limits without importing the dispatcher that imports them."""

from __future__ import annotations

from pydantic import Field

from docassist.pipelines.environment import FromEnvironment


class ExtractLimits(FromEnvironment):
    """What reading one file may cost; each limit's environment variable declared here."""

    # markup a parser reads: an HTML file, a zip format's parts once unpacked
    max_parse_mb: float = Field(default=32, gt=0, validation_alias="MAX_PARSE_MB")
    # unpacked / packed size of one part of a zip format
    max_expansion_ratio: float = Field(default=100, gt=1, validation_alias="MAX_EXPANSION_RATIO")
    max_pdf_pages: int = Field(default=2000, gt=0, validation_alias="MAX_PDF_PAGES")
    max_document_chars: int = Field(default=2_000_000, gt=0, validation_alias="MAX_DOCUMENT_CHARS")
    # non-empty rows of an XLSX, ODS or CSV, its sheets together
    max_sheet_rows: int = Field(default=100_000, gt=0, validation_alias="MAX_SHEET_ROWS")
    # scanned PDF pages and image frames OCR reads in one document
    max_ocr_pages: int = Field(default=200, ge=0, validation_alias="MAX_OCR_PAGES")
    ocr_page_timeout_s: float = Field(default=60, gt=0, validation_alias="OCR_PAGE_TIMEOUT_S")  # one page
    # one PDF page drawn for a reader (GET /documents/{id}/pages/{n}): past it the render is stopped
    page_render_timeout_s: float = Field(default=5, gt=0, le=120, validation_alias="PAGE_RENDER_TIMEOUT_S")
    # an image or a rendered page; Pillow's own default guard
    max_image_pixels: int = Field(default=89_478_485, gt=0, validation_alias="MAX_IMAGE_PIXELS")
    tesseract_cmd: str = Field(default="tesseract", validation_alias="TESSERACT_CMD")
