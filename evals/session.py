"""Run the served pipelines in-process on any profile, for evaluation.

The eval scripts go through the same `Runtime` the HTTP service uses (ingestion, the
summarize and ask workflows, the endpoints of `LLM_MODE`'s profile), on a data directory of
their own so nothing is served from an earlier cache. The service's SPEC §7 logs go to
`<data_dir>/logs/eval.log` so progress bars stay readable.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from docassist.pipelines.documents.registry import DocumentRecord
from docassist.pipelines.logs import configure_logging
from docassist.pipelines.runtime import Runtime
from docassist.pipelines.settings import load_settings


class EvalSession:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    @property
    def profile(self) -> str:
        return self.runtime.settings.profile_name

    def models(self) -> dict[str, str]:
        routing = self.runtime.settings.profile.routing
        eps = self.runtime.endpoints
        return {task: eps[name].settings.model for task, name in routing.model_dump().items() if name in eps}

    async def ingest(self, space: str, name: str, text: str) -> DocumentRecord:
        result = await asyncio.to_thread(self.runtime.ingestor.ingest, space, name, text.encode("utf-8"))
        return result.record

    async def summarize(self, record: DocumentRecord, language: str | None = None) -> dict[str, Any]:
        return await self.runtime.summaries.summarize(record, language)

    async def ask(self, q: str, space: str, mode: str = "auto", top_k: int = 3) -> dict[str, Any]:
        return await self.runtime.ask(q, space, mode, top_k)  # type: ignore[arg-type]


@asynccontextmanager
async def eval_session(data_dir: Path | None = None) -> AsyncIterator[EvalSession]:
    """A started runtime on `LLM_MODE`'s profile; stopped (and its servers with it) on exit."""
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="docassist-eval-"))
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    log = (data_dir / "logs" / "eval.log").open("a", encoding="utf-8")
    configure_logging(os.environ.get("LOG_FORMAT", "text"), stream=log)
    runtime = Runtime(load_settings({**os.environ, "DATA_DIR": str(data_dir)}))
    try:
        await runtime.start()
        yield EvalSession(runtime)
    finally:
        await runtime.stop()
        log.close()
