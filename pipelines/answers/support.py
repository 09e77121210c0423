"""Whether each sentence of an answer is borne out by the passages it was written from.

A small model's answer often contradicts the very passage quoted under it (the reading room
closed, it says, because of "48 thousand readers", where the quote says the roof leaked). So a
generated answer is read sentence by sentence before it is sent: the numbers and names it states
must be in the passages (or the question), and the closest sentence of the passages must be
close enough (`SENTENCE_MIN`, chosen on the dev questions: `docassist eval answers --split dev`
reports the answer that each threshold would have given). A sentence that fails is dropped; an
answer left with nothing is replaced by the passage that answers, quoted (`phrases.quoted`).
A model set to `verify: llm` is also asked yes or no about each sentence that passed.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import BaseModel, Field

from docassist.pipelines.answers.citations import (
    MIN_SENTENCE_CHARS,
    SENTENCE_END,
    Citation,
    Evidence,
    Sentence,
    quote_of,
)
from docassist.pipelines.lanes import Lane
from docassist.pipelines.search.embeddings import embed_query

SENTENCE_MIN = 0.86  # the closest passage sentence must be at least this similar (query side vs passage side)
_DIGITS = re.compile(r"\d+(?:[\s\u00a0\u202f.,]\d+)*")
_NAME = re.compile(r"(?<![\w-])[A-ZА-ЯЁ][\w-]{2,}")
_WORD = re.compile(r"[\w-]+")
_CYRILLIC = re.compile(r"[а-яёіїєґўқғүұһәөң]", re.IGNORECASE)
CYRILLIC_LANGUAGES = frozenset({"ru", "uk", "be", "kk", "bg", "sr", "mk"})

Judge = Callable[[str, str], Awaitable[bool]]  # (sentence, passage) → does the passage state it


class SentenceSupport(BaseModel):
    """One sentence of an answer and the citation (an index into the answer's `citations`) it rests on."""

    text: str
    citation: int | None = Field(default=None, description="the index of the citation that supports it")
    score: float = Field(default=0.0, description="its similarity to that passage")


@dataclass
class Check:
    """The verdict on one answer sentence."""

    text: str
    supported: bool
    score: float = 0.0
    evidence: Sentence | None = None  # the passage sentence closest to it
    missing: list[str] = field(default_factory=list)  # numbers and names the passages do not hold


def _number_keys(text: str) -> set[str]:
    """The numbers of `text`, written without separators ("48 000", "48,000" and "48000" alike)."""
    return {re.sub(r"\D", "", m.group()) for m in _DIGITS.finditer(text)}


def _stem(word: str) -> str:
    """What is compared of a name: its first letters, so that "Москвы" matches "Москва"."""
    word = word.lower()
    return word[:5] if len(word) > 5 else word[: max(3, len(word) - 1)]


def other_script(sentence: str, language: str) -> bool:
    """Whether most letters of `sentence` are of another script than `language` is written in
    (Cyrillic or not): a sentence in the wrong script is no answer to the question, whatever it says."""
    letters = [ch for ch in sentence if ch.isalpha()]
    if len(letters) < 8:
        return False
    cyrillic = sum(bool(_CYRILLIC.match(ch)) for ch in letters) / len(letters)
    return cyrillic < 0.5 if language in CYRILLIC_LANGUAGES else cyrillic > 0.5


def unstated(sentence: str, evidence_text: str) -> list[str]:
    """The numbers and names `sentence` states that `evidence_text` does not hold. The first word
    is not taken for a name: every sentence starts with a capital."""
    missing = sorted(_number_keys(sentence) - _number_keys(evidence_text), key=len)
    words = {w.lower() for w in _WORD.findall(evidence_text)}
    first = _WORD.search(sentence)
    for m in _NAME.finditer(sentence):
        if first is not None and m.start() == first.start():
            continue
        stem = _stem(m.group())
        if not any(w.startswith(stem) for w in words):
            missing.append(m.group())
    return missing


class SupportChecker:
    """Checks answer sentences against the evidence of one question."""

    def __init__(
        self, embed_model: BaseEmbedding, lane: Lane, evidence: Evidence, question: str,
        threshold: float = SENTENCE_MIN, judge: Judge | None = None, language: str | None = None,
    ) -> None:  # fmt: skip
        """`language`: the answer's; a sentence in another script is not borne out."""
        self.embed_model, self.lane, self.evidence = embed_model, lane, evidence
        self.threshold, self.judge, self.language = threshold, judge, language
        texts = {id(s.source): s.source.text for s in evidence.sentences}
        self.stated = "\n".join([question, *texts.values()])

    async def check(self, sentence: str) -> Check:
        text = sentence.strip()
        if not self.evidence.sentences:
            return Check(text, False)
        vector = np.asarray(await embed_query(self.embed_model, text, self.lane))
        scores = self.evidence.vectors @ vector
        best = int(np.argmax(scores))
        verdict = Check(text, False, float(scores[best]), self.evidence.sentences[best], unstated(text, self.stated))
        if self.language and other_script(text, self.language):
            verdict.missing.append(f"text in another script than {self.language}")
        verdict.supported = not verdict.missing and verdict.score >= self.threshold
        if verdict.supported and self.judge is not None and verdict.evidence is not None:
            verdict.supported = await self.judge(text, _around(verdict.evidence))
        return verdict


def _around(sentence: Sentence) -> str:
    """The passage a judge reads: the sentence's whole chunk, which names what "it" is."""
    return sentence.source.text


class SentenceStream:
    """Cuts streamed text into sentences as they complete, at the boundaries quotes are cut at
    (`citations.SENTENCE_END`); a piece shorter than a sentence waits for the one after it."""

    def __init__(self) -> None:
        self.buffer = ""

    def feed(self, delta: str) -> list[str]:
        self.buffer += delta
        done: list[str] = []
        at = 0
        for m in SENTENCE_END.finditer(self.buffer):
            if m.end() == len(self.buffer):  # the next sentence has not begun: its capital is unseen
                break
            if len(self.buffer[at : m.start()].strip()) >= MIN_SENTENCE_CHARS:
                done.append(self.buffer[at : m.end()])
                at = m.end()
        self.buffer = self.buffer[at:]
        return done

    def rest(self) -> str:
        rest, self.buffer = self.buffer, ""
        return rest


def supported_by(citations: list[Citation], checks: list[Check]) -> list[SentenceSupport]:
    """Each kept sentence with the citation it rests on: one already chosen that holds its evidence
    sentence, else a new citation of that sentence, added to `citations`."""
    out: list[SentenceSupport] = []
    for check in checks:
        if check.evidence is None:
            out.append(SentenceSupport(text=check.text, score=round(check.score, 4)))
            continue
        ev = check.evidence
        index = next(
            (
                i
                for i, c in enumerate(citations)
                if c.doc_id == ev.source.doc_id and c.chunk == ev.source.chunk and ev.text in c.quote
            ),
            None,
        )
        if index is None:
            citations.append(quote_of(ev, ev, check.score))
            index = len(citations) - 1
        out.append(SentenceSupport(text=check.text, citation=index, score=round(check.score, 4)))
    return out
