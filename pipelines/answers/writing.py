"""The model's answer, streamed sentence by sentence, each sentence checked before it is sent.

A sentence the passages do not bear out (`support.SupportChecker`) never reaches the reader: it
is dropped and logged with why. The language check and its retry (`stream_in_language`) still see
the whole text; a retry's `reset` is passed on with the first sentence sent after it (or with the
quote that replaces an answer left empty). With `verify: off` the deltas pass straight through.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from docassist.pipelines.answers.phrases import quoted
from docassist.pipelines.answers.support import Check, Judge, SentenceStream, SupportChecker
from docassist.pipelines.errors import DocassistError
from docassist.pipelines.llm.caller import Completion, LLMCaller
from docassist.pipelines.llm.endpoints import Endpoint
from docassist.pipelines.llm.in_language import stream_in_language
from docassist.pipelines.llm.prompts import Prompt, render
from docassist.pipelines.logs import event

JUDGE_OUTPUT = 64  # tokens: "yes" or "no", with room for a reasoning model's short thought
Emit = Callable[[str, bool], None]


@dataclass
class Written:
    text: str  # what was sent: the kept sentences (or, unchecked, the whole answer)
    kept: list[Check] = field(default_factory=list)
    dropped: list[Check] = field(default_factory=list)
    reset_pending: bool = False  # a retry started over and nothing was sent since: the next text resets


class AnswerWriter:
    def __init__(
        self, caller: LLMCaller, endpoint: Endpoint, checker: SupportChecker | None, emit: Emit,
        record: Callable[[Completion], Awaitable[None]],
    ) -> None:  # fmt: skip
        self.caller, self.endpoint, self.checker, self.emit, self.record = caller, endpoint, checker, emit, record
        self.written = Written("")
        self.sentences = SentenceStream()

    async def write(self, prompt: Callable[[bool], Prompt], language: str, max_output: int) -> Written:
        text, _ = await stream_in_language(
            self.caller, self.endpoint, prompt, language, "answer", max_output, self._delta, self.record
        )
        if self.checker is None:
            self.written.text = text
            return self.written
        await self._gate(self.sentences.rest())
        self.written.text = self.written.text.strip()
        return self.written

    async def _delta(self, delta: str, reset: bool) -> None:
        if reset:  # the language retry starts over: what was sent is void
            self.written = Written("", reset_pending=True)
            self.sentences.rest()
        if self.checker is None:
            self.emit(delta, reset)
            return
        for sentence in self.sentences.feed(delta):
            await self._gate(sentence)

    async def _gate(self, sentence: str) -> None:
        if not sentence.strip() or self.checker is None:
            return
        check = await self.checker.check(sentence)
        if not check.supported:
            self.written.dropped.append(check)
            why = f"states {', '.join(check.missing)}, not in the passages" if check.missing else ""
            event(
                "[ANSWER CHECK] Sentence dropped",
                f"{check.text[:120]!r}: {why or f'closest passage sentence {check.score:.3f}'}",
                score=round(check.score, 4),
                missing=check.missing,
                level=logging.INFO,
            )
            return
        self.emit(sentence, self.written.reset_pending)
        self.written.reset_pending = False
        self.written.kept.append(check)
        self.written.text += sentence


def llm_judge(caller: LLMCaller, endpoint: Endpoint, language: str) -> Judge:
    """A yes/no question to the model: does the passage state the sentence? A failed call keeps
    the sentence (the match already passed it): the check never fails an answer."""

    async def judge(sentence: str, passage: str) -> bool:
        prompt = render(
            "verify",
            endpoint.style,
            language,
            context=passage,
            question=sentence,
            instructions=endpoint.spec.instructions,
        )
        try:
            completion = await caller.complete(endpoint, prompt, purpose="verify", max_output=JUDGE_OUTPUT)
        except DocassistError:
            return True
        verdict = completion.text.strip().lower()
        return not verdict.startswith(("no", "нет", "ні"))

    return judge


async def cut_quote(quote: str, language: str, cap: int, count: Callable[[str], Awaitable[int]]) -> str:
    """The quote cut at a word to fit `cap` tokens (`count`: the answer model's), introduced as
    `quoted` does when that fits too."""
    words = quote.split()

    async def fits(n: int, framed: bool) -> bool:
        cut = " ".join(words[:n]) + "…"
        return await count(quoted(language, cut) if framed else cut) <= cap

    framed = await fits(1, True)
    low, high = 1, len(words)  # the most words that fit: at least one, whatever it costs
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if await fits(mid, framed) else (low, mid - 1)
    cut = " ".join(words[:low]) + "…"
    return quoted(language, cut) if framed else cut
