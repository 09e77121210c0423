"""How an answer is written, weighed on the same questions in the same run.

Each question is asked twice, in turns: as the service answered before answers were checked
(`before`: the model's words, unchecked) and as the profile's model is configured now
(`configured`: `answer` and `verify` in config/llm_models.json). Both are timed from the question
to the first answer text and to the end, so their cost is compared on the same machine at the
same moment. The unchecked answer is then checked sentence by sentence after the fact — the same
`SupportChecker` the service runs — at every threshold of `THRESHOLDS`, which says what each
threshold would have answered: where it is chosen (`SENTENCE_MIN`) and whether quoting the
passage beats the model's own words.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from docassist.evals.session import EvalSession
from docassist.pipelines.answers.events import AnswerDelta, AskComplete
from docassist.pipelines.answers.phrases import quoted
from docassist.pipelines.answers.support import SentenceStream, SupportChecker
from docassist.pipelines.answers.workflow import CITED_CHUNKS
from docassist.pipelines.assistant import Assistant

THRESHOLDS = [round(0.80 + 0.01 * i, 2) for i in range(16)]
BEFORE = {"answer": "generative", "verify": "off"}


@dataclass
class Timed:
    done: AskComplete
    first_s: float  # to the first answer text
    wall_s: float


@contextlib.contextmanager
def style(assistant: Assistant, **fields: str) -> Iterator[None]:
    """The answer endpoint's model set to answer as `fields` say (`config/llm_models.json`'s keys),
    for the questions asked inside."""
    endpoint = assistant.answers.endpoint
    kept = endpoint.spec
    endpoint.spec = kept.model_copy(update=fields)
    try:
        yield
    finally:
        endpoint.spec = kept


async def ask_timed(session: EvalSession, q: str, space: str, top_k: int) -> Timed:
    started = time.perf_counter()
    first = 0.0
    events = await session.assistant.ask_events(q, space, "auto", top_k)
    async for ev in events:
        if isinstance(ev, AnswerDelta) and not first:
            first = time.perf_counter() - started
        if isinstance(ev, AskComplete):
            return Timed(ev, first, time.perf_counter() - started)
    raise RuntimeError(f"no answer to {q!r}")


def sentences(text: str) -> list[str]:
    stream = SentenceStream()
    return [s for s in [*stream.feed(text), stream.rest()] if s.strip()]


async def checked_after(session: EvalSession, q: str, done: AskComplete) -> list[dict[str, Any]]:
    """Each sentence of an unchecked answer with its closest passage sentence's score and the
    numbers and names the passages lack."""
    if not done.grounded or not done.sources:
        return []
    citer = session.assistant.answers.citer
    evidence = await citer.evidence(q, done.sources[:CITED_CHUNKS])
    checker = SupportChecker(citer.embed_model, citer.lane, evidence, q, threshold=0.0, language=done.language)
    out = []
    for sentence in sentences(done.answer):
        check = await checker.check(sentence)
        out.append({"text": sentence, "score": round(check.score, 4), "missing": check.missing})
    return out


def would_answer(checks: list[dict[str, Any]], quote: str, language: str, threshold: float) -> str:
    """The answer a threshold gives: the sentences it keeps, else the quote."""
    kept = [c["text"] for c in checks if not c["missing"] and c["score"] >= threshold]
    return "".join(kept).strip() or (quoted(language, quote) if quote else "")


def ratio(rows: list[dict[str, Any]], key: str) -> float:
    """Configured over before, of the mean of `key`."""
    before = statistics.fmean(r["before"][key] for r in rows)
    return round(statistics.fmean(r["configured"][key] for r in rows) / before, 3) if before else 0.0


async def ask_both(session: EvalSession, q: str, space: str, top_k: int, turn: int) -> dict[str, Any]:
    """The question asked as before and as configured (which goes first alternates with `turn`),
    the unchecked answer checked after the fact, and what each threshold would have answered."""
    timed: dict[str, Timed] = {}
    for name in ("before", "configured") if turn % 2 == 0 else ("configured", "before"):
        with style(session.assistant, **(BEFORE if name == "before" else {})):
            timed[name] = await ask_timed(session, q, space, top_k)
    before, configured = timed["before"].done, timed["configured"].done
    checks = await checked_after(session, q, before)
    quote = before.citations[0].quote if before.citations else ""
    return {
        "configured": configured,
        "before": {"answer": before.answer, "wall_s": round(timed["before"].wall_s, 3),
                   "first_s": round(timed["before"].first_s, 3)},
        "configured_timing": {"wall_s": round(timed["configured"].wall_s, 3),
                              "first_s": round(timed["configured"].first_s, 3)},
        "checks": checks,
        "by_threshold": {str(t): would_answer(checks, quote, before.language, t) for t in THRESHOLDS} if checks else {},
    }  # fmt: skip
