"""Blocking work never runs on the event loop's default executor: it runs on a lane (`lanes.py`),
so uploads, summaries and start-up cannot take the threads that reads, searches and health need.

The rule is held twice: by reading the code of `pipelines/` and `api/` (no `asyncio.to_thread`, no
`run_in_executor(None, …)`), and by running a summary run's memo and a background job's attempt
on a loop whose default executor counts every call it gets."""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
from collections.abc import Callable
from pathlib import Path
from typing import Any

from huey import SqliteHuey

from docassist.pipelines.documents.registry import Registry
from docassist.pipelines.lanes import Lane
from docassist.pipelines.llm.budget import Limits
from docassist.pipelines.llm.caller import LLMCaller
from docassist.pipelines.settings import Routing
from docassist.pipelines.storage.database import Database
from docassist.pipelines.summaries.jobs.runner import JobRunner
from docassist.pipelines.summaries.jobs.store import JobStore
from docassist.pipelines.summaries.runs.board import LocalFlightBoard
from docassist.pipelines.summaries.runs.service import RunMemo, SummaryService
from docassist.pipelines.summaries.runs.store import RunOf, SummaryStore

ROOT = Path(__file__).resolve().parents[1]
# module (relative to the repository) → why it may hand work to the default executor; none may now
ALLOWED: dict[str, str] = {}


def _default_executor_calls(tree: ast.AST) -> list[int]:
    """Lines that call `to_thread` (any spelling) or `run_in_executor` without an executor of its own."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if name == "to_thread":
            lines.append(node.lineno)
        elif name == "run_in_executor":
            executor = node.args[0] if node.args else None
            if executor is None or (isinstance(executor, ast.Constant) and executor.value is None):
                lines.append(node.lineno)
    return lines


def test_no_module_hands_blocking_work_to_the_default_executor():
    found = {}
    for folder in ("pipelines", "api"):
        for path in (ROOT / folder).rglob("*.py"):
            name = str(path.relative_to(ROOT))
            if name not in ALLOWED and (lines := _default_executor_calls(ast.parse(path.read_text(encoding="utf-8")))):
                found[name] = lines
    assert found == {}, "run it on a lane of `lanes.py` instead"


def test_the_check_sees_each_way_of_reaching_the_default_executor():
    code = """
import asyncio
from asyncio import to_thread
async def f(loop, pool):
    await asyncio.to_thread(print)
    await to_thread(print)
    await loop.run_in_executor(None, print)
    await asyncio.get_running_loop().run_in_executor(None, print)
    await loop.run_in_executor(pool, print)
"""
    assert _default_executor_calls(ast.parse(code)) == [5, 6, 7, 8]


class CountingExecutor(concurrent.futures.ThreadPoolExecutor):
    """A default executor that runs what it gets, and counts it."""

    calls = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        CountingExecutor.calls += 1
        return super().submit(fn, *args, **kwargs)


def test_a_summary_runs_memo_and_a_job_attempt_use_the_storage_lane(tmp_path: Path):
    db = Database.for_data_dir(None, tmp_path)
    db.migrate()
    storage = Lane("storage", 2)
    summaries = SummaryService(
        SummaryStore(db), LLMCaller(Limits()), {}, Routing(map="m", reduce="m", answer="m"), Registry(db),
        LocalFlightBoard(), storage,
    )  # fmt: skip
    huey = SqliteHuey("jobs", filename=str(tmp_path / "queue.sqlite3"), results=False)
    jobs = JobRunner(huey, JobStore(db), Registry(db), summaries, storage, workers=0)
    job = jobs.store.create("space", "gone", "en")  # its document was never stored

    async def main() -> None:
        asyncio.get_running_loop().set_default_executor(CountingExecutor(max_workers=1))
        memo = RunMemo(summaries.store, RunOf("key", "space", "doc", "sha"), storage)
        await memo.put("node", "a partial summary", 12, 3)
        assert await memo.get("node") == ("a partial summary", 12, 3)
        await jobs._attempt(job.job_id)

    try:
        asyncio.run(main())
        failed = jobs.store.get(job.job_id)
        assert failed is not None and failed.status == "failed" and failed.error and failed.error.code == "not_found"
        assert CountingExecutor.calls == 0, "every database call ran on the storage lane"
    finally:
        storage.close()
        db.close()
