"""Request-scoped logs in the shape docs/LOGS.md describes.

Every record carries the request id from a context variable, so the lines of one request
can be followed through the layers and into background jobs. Text is for people reading
`docker compose logs`; `LOG_FORMAT=json` gives one JSON object per line for machines.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from datetime import datetime
from typing import Any, TextIO

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
logger = logging.getLogger("docassist")


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
        head = f"{clock(record.created)} [{rid}] {record.getMessage()}"
        lines = getattr(record, "da_lines", ())
        body = "".join(f"\n  {line}" for line in lines)
        if record.exc_info:
            body += "\n" + self.formatException(record.exc_info)
        return head + body


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "request_id": getattr(record, "request_id", request_id_var.get()),
            "event": record.getMessage(),
            **getattr(record, "da_fields", {}),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
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
