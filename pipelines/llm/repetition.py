"""A generation caught in a loop: the same sentence written a third time.

Small models (Gemma 3 270M on long meeting transcripts) sometimes write one sentence over and
over until their budget runs out. Sampling penalties (`backends.py`) make that rarer; this watch
catches what gets through. It follows a streamed text sentence by sentence and says when a
sentence comes a third time, so the call can be stopped and asked once more with stronger
settings. What it lets through never holds a sentence three times: the start of a sentence
already seen twice is held back until it turns out to be another sentence, so a third copy is
never shown, not even in part.

Sentences are compared by their words, lower-cased, punctuation and spacing ignored. A sentence
of fewer than `MIN_WORDS` words ("Okay.", a transcript's "Marketing: {vocalsound}") is counted
together with the sentences after it until they have that many, so a cycle of short lines is
caught as well, and a lone "Yes." never is.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass

from docassist.pipelines.logs import event
from docassist.pipelines.sampling import Sampling

REPETITION = "repetition"  # the finish reason of a text cut before a sentence's third copy
TIMES = 3  # the copy of a sentence that stops a generation
MIN_WORDS = 4
_BOUNDARY = re.compile(r"[.!?…。！？]+[\"'”’»)\]]*\s+|\n+")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Loop:
    """Where a generation was stopped: the sentence that came a third time, as first written,
    and how many characters of text were let through before it."""

    sentence: str
    times: int
    kept_chars: int


class Restart(str):
    """Said by a stream before the text of a call asked again: whoever shows the text drops what
    the stream sent before it. An empty string, so a reader that does not know it adds nothing."""


def log_loop(endpoint: str, purpose: str, loop: Loop, retry: Sampling | None) -> None:
    """The event line of a loop found: the sentence, and the settings the call is asked again with
    (`retry`), or that the retry looped as well and its text ends before the third copy."""
    settings = ", ".join(f"{k}={v}" for k, v in retry.given().items()) if retry else ""
    event(
        "[REPETITION] " + ("A sentence came a third time: asking once more" if retry else "The retry looped too"),
        f"'{loop.sentence}' ×{loop.times} on '{endpoint}' ({purpose}) after {loop.kept_chars:,} chars; "
        + (f"retry with {settings or 'the same settings'}" if retry else "its text ends before the third copy"),
        level=logging.WARNING,
        endpoint=endpoint,
        purpose=purpose,
        sentence=loop.sentence,
        retry=retry.given() if retry else None,
    )


def sentence_key(text: str) -> str:
    """A sentence as it is compared: its words, lower-cased, one space apart."""
    return " ".join(_WORD.findall(text.lower()))


def most_copies(text: str) -> int:
    """How many times the most repeated sentence of a finished text occurs in it, sentences
    counted as the watch counts them (what an evaluation reports)."""
    watch = RepetitionWatch(times=len(text) + 1)
    watch.feed(text + "\n")
    return max(watch._counts.values(), default=0)


class RepetitionWatch:
    """Follows one streamed generation; `feed` each delta, show what it returns, and stop
    generating once `loop` is set. `finish` releases what is held back when the stream ends."""

    def __init__(self, times: int = TIMES, min_words: int = MIN_WORDS) -> None:
        self.times, self.min_words = times, min_words
        self.loop: Loop | None = None
        self.shown = ""  # everything let through so far
        self._counts: Counter[str] = Counter()
        self._first: dict[str, str] = {}  # key → the sentence as first written
        self._pending = ""  # the sentence being written, with the short ones before it
        self._pending_shown = 0  # how much of it was let through
        self._scan = 0  # where its next sentence end is looked for

    def feed(self, delta: str) -> str:
        """The part of the text so far that is safe to show now ("" while a sentence is held back,
        and always once a loop was found)."""
        if self.loop is not None:
            return ""
        self._pending += delta
        out: list[str] = []
        while (match := _BOUNDARY.search(self._pending, self._scan)) is not None:
            sentence = self._pending[: match.end()]
            if len(sentence_key(sentence).split()) < self.min_words:  # counted with the next one
                self._scan = match.end()
                continue
            self._pending, self._scan = self._pending[match.end() :], 0
            shown, self._pending_shown = self._pending_shown, max(0, self._pending_shown - len(sentence))
            if self._counted(sentence):
                return self._release(out)
            out.append(sentence[shown:])
        if not self._held():
            out.append(self._pending[self._pending_shown :])
            self._pending_shown = len(self._pending)
        return self._release(out)

    def finish(self) -> str:
        """At the end of the stream: the last sentence, unless it is (the start of) a third copy."""
        if self.loop is not None or not self._pending:
            return ""
        rest = self._pending[self._pending_shown :]
        key = sentence_key(self._pending)
        if self._held() and len(key.split()) >= self.min_words:
            copied = next(k for k, n in self._counts.items() if n >= self.times - 1 and k.startswith(key))
            self._stop(self._first[copied])
            return ""
        self._pending_shown = len(self._pending)
        return self._release([rest])

    def _counted(self, sentence: str) -> bool:
        """Count a finished sentence; True when it is the copy that stops the generation."""
        key = sentence_key(sentence)
        self._counts[key] += 1
        self._first.setdefault(key, sentence.strip())
        if self._counts[key] >= self.times:
            self._stop(self._first[key])
            return True
        return False

    def _held(self) -> bool:
        """Whether the sentence being written may still become a third copy."""
        key = sentence_key(self._pending)
        if not key:
            return bool(self._pending.strip())
        return any(k.startswith(key) for k, n in self._counts.items() if n >= self.times - 1)

    def _stop(self, sentence: str) -> None:
        self.loop = Loop(sentence=sentence, times=self.times, kept_chars=len(self.shown))

    def _release(self, parts: list[str]) -> str:
        text = "".join(parts)
        self.shown += text
        return text
