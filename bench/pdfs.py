"""PDFs a hostile client would upload, written byte by byte for the benchmarks and the tests, so
an image can declare any size whatever its stream holds: the "decompression bomb" shape, a few KB
on disk, that costs minutes to draw, and a page of vector fills no pixel count sees."""

from __future__ import annotations

import random
import zlib

PAGE = (612, 792)  # US Letter, in points
PROBE_IMAGES = 20
PROBE_SIDE = 131_000  # pixels a side each image declares: 17 billion pixels, never decoded


def one_page_pdf(text: str, drawing: bytes = b"", images: tuple[tuple[int, bytes], ...] = ()) -> bytes:
    """A one-page PDF with `text` as its text layer (Helvetica, ASCII), then `drawing` (content
    stream operators), then each of `images` — (pixels a side it declares, its Flate stream) as a
    greyscale image — drawn 100 pt wide. The content is deflated, so repeated operators take little room."""
    xobjects = " ".join(f"/Im{i} {6 + i} 0 R" for i in range(len(images)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents 4 0 R " % PAGE
        + f"/Resources << /Font << /F1 5 0 R >> /XObject << {xobjects} >> >> >>".encode(),
    ]
    places = b"".join(
        b"q 100 0 0 100 %d %d cm /Im%d Do Q\n" % (72 + i % 4 * 110, 72 + i // 4 * 110, i) for i in range(len(images))
    )
    content = b"BT /F1 12 Tf 72 720 Td (%s) Tj ET\n" % text.encode("ascii") + drawing + places
    objects.append(_stream(b"/Filter /FlateDecode", zlib.compress(content, 9)))
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for side, payload in images:
        kind = b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray" % (side, side)
        objects.append(_stream(kind + b" /BitsPerComponent 8 /Filter /FlateDecode", payload))
    return _pdf(objects)


def _stream(dictionary: bytes, data: bytes) -> bytes:
    return b"<< %s /Length %d >>\nstream\n" % (dictionary, len(data)) + data + b"\nendstream"


def _pdf(objects: list[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def bomb_pdf(text: str, images: int = PROBE_IMAGES, side: int = PROBE_SIDE, payload_bytes: int = 0) -> bytes:
    """A page of `images` images declaring `side`² pixels each. Each stream holds `payload_bytes`
    of noise (incompressible: the file's size), or a few hundred bytes of zeros when 0 — a
    decoder that trusts the declared size draws what the stream lacks as black, row by row."""
    noise = random.Random(40)
    if payload_bytes:
        streams = [zlib.compress(noise.randbytes(payload_bytes), 0) for _ in range(images)]
    else:
        streams = [zlib.compress(bytes(1 << 16), 9)] * images
    return one_page_pdf(text, images=tuple((side, stream) for stream in streams))


def slow_vector_pdf(text: str, fills: int = 40_000) -> bytes:
    """A page of `fills` full-page grey rectangles, each painted over the last: no image, nothing a
    pixel count sees, a few KB on disk, and seconds of drawing per ten thousand fills."""
    return one_page_pdf(text, drawing=b"0.5 g\n" + b"0 0 %d %d re f\n" % PAGE * fills)
