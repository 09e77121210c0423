"""The condense step of a conversation: a follow-up question rewritten, from the turns before it,
into a question that stands on its own — what retrieval is given (LlamaIndex's
`CondenseQuestionChatEngine` does the same). "А когда был закрыт её читальный зал?" after a
question about a library must find the library's reading room.

The history is kept within a token budget, newest turns first; an answer that declined says
nothing about the subject and is left out. The first question of a conversation is not
condensed (no LLM call). A rewrite is never trusted blindly: a failed call, an empty reply, one
that takes no word from the history (a small model drops the pronoun rather than resolve it:
"Когда был закрыт читальный зал?"), one much longer than what it was made from, one in another
language or one retrieval cannot take falls back to the follow-up written after the previous
question — a condense step never fails an answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from docassist.pipelines.errors import DocassistError
from docassist.pipelines.language import detect_language
from docassist.pipelines.llm.caller import Completion, LLMCaller
from docassist.pipelines.llm.endpoints import Endpoint
from docassist.pipelines.llm.prompts import language_slots, render
from docassist.pipelines.logs import event
from docassist.pipelines.search import sparse

HISTORY_TOKENS = 1024  # at most this much history: the last few turns are what a pronoun refers to
ANSWER_CHARS = 400  # an earlier answer is cut to this; its first sentences name what it is about
MAX_OUTPUT = 96  # tokens: one question
TOO_LONG = 1.5  # a rewrite longer than this many times history and follow-up together is not one
_QUOTES = "\"'«»“”„`"
_LABELS = ("вопрос:", "question:", "следующий вопрос:", "next question:")


@dataclass
class Exchange:
    """One earlier turn: the question as asked and its answer (empty when it was declined)."""

    question: str
    answer: str


@dataclass
class Condensed:
    """The question retrieval is given and how it was made."""

    question: str
    how: str  # "first" (nothing to condense), "llm" (the rewrite), "history" or "fallback" (previous + follow-up)
    seconds: float = 0.0
    completion: Completion | None = None  # the condense call, when one was made and answered
    reason: str = ""  # why the rewrite was not used


Fits = Callable[[str], bool]  # whether retrieval takes a question (characters, embedding tokens)


class Condenser:
    def __init__(self, caller: LLMCaller, endpoint: Endpoint, fits: Fits) -> None:
        self.caller, self.endpoint, self.fits = caller, endpoint, fits

    async def history(self, exchanges: list[Exchange]) -> str:
        """The turns, oldest first, of those the budget keeps counting from the newest."""
        q_cue, a_cue = _cues(self.endpoint, exchanges)
        kept: list[str] = []
        used = 0
        for ex in reversed(exchanges):
            answer = ex.answer if len(ex.answer) <= ANSWER_CHARS else ex.answer[:ANSWER_CHARS].rstrip() + "…"
            turn = f"{q_cue} {ex.question.strip()}" + (f"\n{a_cue} {answer.strip()}" if answer.strip() else "")
            n = await self.endpoint.tokens.exact(turn)
            if kept and used + n > HISTORY_TOKENS:
                break
            kept.append(turn)
            used += n
        return "\n".join(reversed(kept))

    async def standalone(self, exchanges: list[Exchange], follow_up: str, language: str) -> Condensed:
        if not exchanges:
            return Condensed(follow_up, "first")
        started = time.perf_counter()
        fallback = self._fallback(exchanges[-1].question, follow_up)
        if self.endpoint.spec.condense == "history":  # this model's rewrites are rarely usable: no call
            event(
                "[CONDENSE] Follow-up written after the previous question",
                f"{self.endpoint.settings.model} is set to condense=history (config/llm_models.json); "
                f"retrieval gets {fallback!r}",
                how="history",
            )
            return Condensed(fallback, "history", reason="condense=history for this model")
        history = await self.history(exchanges)
        prompt = render(
            "condense",
            self.endpoint.style,
            language,
            history=history,
            question=follow_up,
            instructions=self.endpoint.spec.instructions,
        )
        completion: Completion | None = None
        try:
            completion = await self.caller.complete(self.endpoint, prompt, purpose="condense", max_output=MAX_OUTPUT)
        except DocassistError as exc:
            reason = f"the condense call failed: {exc.message}"
        else:
            rewritten = _cleaned(completion.text)
            reason = self._refusal(rewritten, history, follow_up, language)
            if not reason:
                seconds = round(time.perf_counter() - started, 3)
                event(
                    "[CONDENSE] Follow-up rewritten",
                    f"{follow_up!r} → {rewritten!r} ({seconds:.2f}s)",
                    how="llm",
                    seconds=seconds,
                )
                return Condensed(rewritten, "llm", seconds, completion)
        seconds = round(time.perf_counter() - started, 3)
        event(
            "[CONDENSE] Falling back to the previous question and the follow-up",
            f"{reason}; retrieval gets {fallback!r}",
            how="fallback",
            seconds=seconds,
            level=logging.WARNING,
        )
        return Condensed(fallback, "fallback", seconds, completion, reason)

    def _fallback(self, previous: str, follow_up: str) -> str:
        joined = f"{previous.strip()} {follow_up.strip()}"
        return joined if self.fits(joined) else follow_up

    def _refusal(self, rewritten: str, history: str, follow_up: str, language: str) -> str:
        """Why a rewrite cannot be used, or "" when it can."""
        if not rewritten:
            return "the rewrite is empty"
        added = set(sparse.terms(rewritten)) - set(sparse.terms(follow_up))
        if not added & set(sparse.terms(history)):  # the pronoun dropped rather than resolved, or an echo
            return "the rewrite takes nothing from the history"
        if len(rewritten) > TOO_LONG * (len(history) + len(follow_up)):
            return f"the rewrite ({len(rewritten)} chars) is longer than the history and the follow-up"
        got = detect_language(rewritten, default=language).code
        if got != language and len(rewritten) >= 20:
            return f"the rewrite is in {got}, the follow-up in {language}"
        if not self.fits(rewritten):
            return "the rewrite is longer than retrieval reads"
        return ""


def _cues(endpoint: Endpoint, exchanges: list[Exchange]) -> tuple[str, str]:
    """How the turns are labelled: in the language of the conversation for a base model's prompt."""
    if endpoint.style == "chat":
        return "User:", "Assistant:"
    slots = language_slots(detect_language(exchanges[-1].question).code)
    return slots["question_cue"], slots["answer_cue"]


def _cleaned(text: str) -> str:
    """The rewrite's first line without the quotes or label a model may wrap it in."""
    line = text.strip().split("\n", 1)[0].strip()
    for label in _LABELS:  # "Вопрос: …" — a label the model repeats before the question
        if line.lower().startswith(label):
            line = line[len(label) :].strip()
    return line.strip(_QUOTES).strip()
