"""The LLM requests the service sent, as it sent them: the service appends each request body to its
capture file (`LLM_CAPTURE_FILE`), and a benchmark replays exactly those bodies straight to the
same llama.cpp server — the same prompts, `max_tokens`, stop sequences, temperature and streaming."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Request:
    url: str
    body: dict[str, Any]

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))


class Capture:
    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        """Where the file ends now: requests sent after this are `since(mark)`."""
        return self.path.stat().st_size if self.path.exists() else 0

    def since(self, mark: int) -> list[Request]:
        with self.path.open("rb") as fh:
            fh.seek(mark)
            lines = fh.read().decode("utf-8").splitlines()
        return [Request(**json.loads(line)) for line in lines if line.strip()]
