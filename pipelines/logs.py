r"""Request-scoped logs in the shape docs/LOGS.md describes.

Every record carries the request id from a context variable, so the lines of one request
can be followed through the layers and into background jobs. Text is for people reading
`docker compose logs`; `LOG_FORMAT=json` gives one JSON object per line for machines.

Much of what is logged comes from clients — paths, queries, file names, headers, parsers'
messages about their files — so no record can be made to look like another or to drive a
terminal: control characters (line breaks, ANSI escapes, C1 codes), Unicode line separators and
bidirectional overrides are written as `\xNN` / `\uNNNN` escapes in every text and field, and
traceback lines are indented under their record.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from contextvars import ContextVar
from datetime import datetime
from typing import Any, TextIO

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
logger = logging.getLogger("docassist")


# C0 and C1 controls, DEL, line/paragraph separators, bidi marks, embeddings, overrides and isolates
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with every character that could forge or hide a log line written as an escape."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


def _printable_value(value: Any) -> Any:
    return printable(value) if isinstance(value, str) else value


def clock(ts: float | None = None) -> str:
    """Wall-clock time with milliseconds, so a person can line up the blocks of one request."""
    return datetime.fromtimestamp(time.time() if ts is None else ts).strftime("%H:%M:%S.%f")[:-3]


def event(
    title: str, *lines: str, level: int = logging.INFO, exc_info: BaseException | None = None, **fields: Any
) -> None:
    """Log one titled block: `lines` for people, `fields` for machines (and JSON logs)."""
    logger.log(level, title, exc_info=exc_info, extra={"da_lines": lines, "da_fields": fields})


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", request_id_var.get())
        head = f"{clock(record.created)} [{printable(str(rid))}] {printable(record.getMessage())}"
        lines = getattr(record, "da_lines", ())
        body = "".join(f"\n  {printable(str(line))}" for line in lines)
        if record.exc_info:
            body += "".join(f"\n    {printable(line)}" for line in self.formatException(record.exc_info).splitlines())
        return head + body


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "request_id": _printable_value(getattr(record, "request_id", request_id_var.get())),
            "event": printable(record.getMessage()),
            **{k: _printable_value(v) for k, v in getattr(record, "da_fields", {}).items()},
        }
        if record.exc_info:
            payload["exception"] = "\n".join(
                printable(line) for line in self.formatException(record.exc_info).splitlines()
            )
        return json.dumps(payload, ensure_ascii=False, default=str)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


def configure_logging(fmt: str = "text", level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Send docassist's logs to stdout (or `stream`), flushed per record, in the chosen format."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    handler.addFilter(_RequestIdFilter())
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
