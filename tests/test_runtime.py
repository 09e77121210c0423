"""A runtime is whole once built: stopping it is safe whether it never started or its start failed
part way — a service that cannot start exits with its own error, not a second one from `stop`."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from docassist.pipelines.assistant import Assistant
from docassist.pipelines.errors import StoreUnavailable
from docassist.pipelines.runtime import Runtime
from docassist.pipelines.settings import Settings, load_settings


def settings(data_dir: Path, **env: str) -> Settings:
    return load_settings({**os.environ, "DATA_DIR": str(data_dir), **env})


def test_a_runtime_that_never_started_stops_cleanly(tmp_path: Path):
    runtime = Runtime(settings(tmp_path))
    asyncio.run(runtime.stop())


def test_a_runtime_whose_start_failed_reports_that_failure_and_stops_cleanly(tmp_path: Path):
    runtime = Runtime(settings(tmp_path, DATABASE_URL="postgresql+psycopg://docassist:x@127.0.0.1:9/docassist"))

    async def start_then_stop() -> None:
        try:
            with pytest.raises(StoreUnavailable):
                await runtime.start()
        finally:
            await runtime.stop()

    asyncio.run(start_then_stop())


def test_the_worker_role_has_no_search_parts_and_serves_no_assistant(tmp_path: Path):
    runtime = Runtime(settings(tmp_path), role="worker")
    try:
        assert runtime.search is None
        with pytest.raises(ValueError, match="serve role"):
            Assistant(runtime)
    finally:
        asyncio.run(runtime.stop())
