"""Plain text of unknown encoding: UTF-8, UTF-16 with or without a byte-order mark, Windows-1251,
KOI8-R, Latin-1 and the other common ones, told apart from binary data."""

from __future__ import annotations

import re
from collections import Counter

from charset_normalizer import from_bytes

from docassist.pipelines.errors import UnreadableDocument

_CONTROLS = re.compile("[\x00-\x08\x0e-\x1f\x7f\ufffd]")
_MAX_CONTROL_SHARE = 0.01  # of characters: more is binary data or a wrong guess, not text


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 text that starts with no byte-order mark, or None. In UTF-16 of an alphabetic
    script nearly every high byte is one of two values (the script's block, and 0 for spaces and
    punctuation), at every other position; which positions says the byte order."""
    n = len(data) // 2 * 2
    if n < 4:
        return None

    def dominance(column: bytes) -> float:
        return sum(count for _, count in Counter(column).most_common(2)) / len(column)

    even, odd = dominance(data[0:n:2]), dominance(data[1:n:2])
    if max(even, odd) < 0.9 or abs(even - odd) < 0.2:
        return None
    try:
        text = data[:n].decode("utf-16-le" if odd > even else "utf-16-be")
    except UnicodeDecodeError:
        return None
    return text if len(_CONTROLS.findall(text)) <= _MAX_CONTROL_SHARE * len(text) else None


def decode_text(data: bytes) -> str:
    """Decode bytes of unknown encoding: UTF-8 (with or without BOM) first, UTF-16 by its BOM or,
    without one, by the shape of its bytes, then charset-normalizer's best guess. Bytes that
    decode only to control characters are not text: `UnreadableDocument`, never garbage stored."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for bom, codec in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if data.startswith(bom):
            return data[2:].decode(codec, errors="replace")
    text: str | None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or _CONTROLS.search(text):  # UTF-16 of Latin or Cyrillic letters is valid UTF-8 with NULs or ^D
        text = _utf16_without_bom(data) or text
    if text is None:
        best = from_bytes(data).best()
        text = None if best is None else str(best)
    if text is None or len(_CONTROLS.findall(text)) > _MAX_CONTROL_SHARE * len(text):
        raise UnreadableDocument(
            "the file is not text in an encoding docassist can read (UTF-8, UTF-16, Windows-1251, KOI8-R, "
            "Latin-1 and the other common ones): it looks like binary data"
        )
    return text
