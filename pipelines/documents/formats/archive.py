"""Vet a zip-of-XML document (DOCX, PPTX, XLSX, ODF, EPUB) before a library parses it.

A zip bomb is refused by the sizes its directory declares, then by the sizes actually unpacked
(a directory can lie). While unpacking, every XML part goes through expat with a handler that
refuses any entity declaration: office documents and e-books never need one, and nested ones (the
"billion laughs") blow a few kilobytes up to gigabytes inside whichever parser the library uses.
"""

from __future__ import annotations

import io
import zipfile
from typing import TYPE_CHECKING
from xml.parsers import expat

from docassist.pipelines.errors import MarkupTooLarge, UnreadableDocument

if TYPE_CHECKING:
    from docassist.pipelines.documents.limits import ExtractLimits

MB = 1024 * 1024
_UNPACK_BLOCK = 1 << 20
_RATIO_FLOOR_BYTES = 1 * MB  # parts smaller than this unpacked are never ratio bombs
_XML_SUFFIXES = (".xml", ".rels", ".xhtml", ".html", ".htm", ".opf", ".ncx", ".svg", ".xsl", ".xslt", ".smil")
_ENTITY = b"<!entity"


class _EntityGuard:
    """Feeds one part to expat, refusing entity declarations. A part expat cannot parse (HTML that
    is not XHTML, a broken part) is scanned for the declaration's bytes instead."""

    def __init__(self, kind: str, part: str) -> None:
        self.kind, self.part = kind, part
        self.parser: expat.XMLParserType | None = expat.ParserCreate()
        self.parser.EntityDeclHandler = self._refuse
        self.parser.UnparsedEntityDeclHandler = self._refuse
        self.tail = b""

    def _refuse(self, name: str, *_: object) -> None:
        raise UnreadableDocument(
            f"the {self.kind} declares an XML entity ({name!r} in {self.part}); docassist refuses entity declarations: "
            "documents do not need them, and nested ones (an entity expansion bomb) blow a small file up to gigabytes",
            part=self.part,
        )

    def feed(self, block: bytes, final: bool = False) -> None:
        if self.parser is not None:
            try:
                self.parser.Parse(block, final)
                return
            except expat.ExpatError:
                self.parser = None  # not well-formed: the byte scan below takes over
        window = (self.tail + block).lower()
        if _ENTITY in window:
            self._refuse("?")
        self.tail = window[-len(_ENTITY) :]


def _looks_like_xml(name: str, first: bytes) -> bool:
    head = first[:64].lstrip(b"\xef\xbb\xbf\xff\xfe\x00 \t\r\n")
    return name.lower().endswith(_XML_SUFFIXES) or head.startswith(b"<")


def check_archive(data: bytes, limits: ExtractLimits, kind: str) -> None:
    """Refuse a zip bomb or an XML entity declaration in any part, before a library parses the file."""
    cap = int(limits.max_parse_mb * MB)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        declared = sum(m.file_size for m in members)
        if declared > cap:
            raise MarkupTooLarge(
                f"the {kind} unpacks to {declared / MB:,.0f} MB; MAX_PARSE_MB allows {limits.max_parse_mb:g}",
                unpacked_bytes=declared,
            )
        for m in members:
            if m.file_size > _RATIO_FLOOR_BYTES and m.file_size > limits.max_expansion_ratio * max(1, m.compress_size):
                raise MarkupTooLarge(
                    f"a part of the {kind} ({m.filename}) unpacks {m.file_size / max(1, m.compress_size):,.0f} times "
                    f"its packed size; MAX_EXPANSION_RATIO allows {limits.max_expansion_ratio:g}",
                    part=m.filename,
                )
        unpacked = 0
        for m in members:
            guard: _EntityGuard | None = None
            with archive.open(m) as fh:
                first = True
                while block := fh.read(_UNPACK_BLOCK):
                    unpacked += len(block)
                    if unpacked > cap:
                        raise MarkupTooLarge(
                            f"the {kind} unpacks to more than MAX_PARSE_MB ({limits.max_parse_mb:g} MB)",
                            unpacked_bytes=unpacked,
                        )
                    if first and _looks_like_xml(m.filename, block):
                        guard = _EntityGuard(kind, m.filename)
                    first = False
                    if guard is not None:
                        guard.feed(block)
            if guard is not None:
                guard.feed(b"", final=True)
