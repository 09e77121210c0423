"""Run the served pipelines in-process on any profile, for evaluation.

The eval scripts go through the same `Assistant` the HTTP service uses (ingestion, the
summarize and ask workflows, the endpoints of `LLM_MODE`'s profile), on a data directory of
their own so nothing is served from an earlier cache. The service's logs go to
`<data_dir>/logs/eval.log` so progress bars stay readable.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from docassist.pipelines.answers.events import AskComplete
from docassist.pipelines.answers.workflow import Mode
from docassist.pipelines.assistant import Assistant
from docassist.pipelines.documents.registry import DocumentRecord
from docassist.pipelines.logs import configure_logging
from docassist.pipelines.runtime import Runtime
from docassist.pipelines.settings import load_settings
from docassist.pipelines.summaries.events import SummaryComplete
from docassist.pipelines.views import Ingested


class EvalSession:
    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant

    @property
    def profile(self) -> str:
        return self.assistant.settings.profile_name

    @property
    def embed_model(self) -> Any:
        return self.assistant.answers.embed_model

    @property
    def context_window(self) -> int:
        return self.assistant.model_config().endpoints[self.assistant.settings.profile.routing.reduce].context_window

    def models(self) -> dict[str, str]:
        cfg = self.assistant.model_config()
        return {task: cfg.endpoints[name].model_name for task, name in cfg.routing.items()}

    async def ingest(self, space: str, name: str, text: str) -> DocumentRecord:
        ingested = await self.assistant.ingest(space, name, text.encode("utf-8"), wait=True)
        assert isinstance(ingested, Ingested)  # waited for: never a job that runs on
        return ingested.document.record

    async def summarize(
        self, record: DocumentRecord, language: str | None = None, force: bool = False
    ) -> SummaryComplete:
        return await self.assistant.summarize(record.space_id, record.doc_id, language, force)

    async def ask(self, q: str, space: str, mode: Mode = "auto", top_k: int = 3) -> AskComplete:
        return await self.assistant.ask(q, space, mode, top_k)


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
        yield EvalSession(Assistant(runtime))
    finally:
        await runtime.stop()
        log.close()
