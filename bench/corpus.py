"""Benchmark documents, all built from the real evaluation data's dev splits.

- XQuAD paragraphs (Russian and English) make many distinct mid-size documents: a seeded
  shuffle of paragraphs under a numbered heading, so no two uploads share bytes (which would
  make them duplicates) and chunk boundaries differ.
- QMSum meetings and SQuALITY stories are the long documents, with reference summaries.
- Documents of a target length in model tokens are prefixes of those long texts joined,
  cut at a paragraph or sentence boundary.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from functools import cache
from typing import Any

from docassist.evals.datasets import EVALDATA, read_jsonl, xquad_article

__all__ = ["xquad_article"]


def _rows(name: str, split: str = "dev") -> list[dict[str, Any]]:
    return read_jsonl(EVALDATA, name, split)


@cache
def xquad_paragraphs(lang: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(r["context"].strip() for r in _rows(f"xquad_{lang}")))


@cache
def xquad_questions(lang: str) -> tuple[str, ...]:
    return tuple(r["question"] for r in _rows(f"xquad_{lang}"))


def long_documents(name: str, count: int, min_chars: int = 0) -> list[dict[str, Any]]:
    """The `count` shortest dev documents of a long set of at least `min_chars` (the longest ones
    when none is that long), with their references as a list."""
    by_length = sorted(_rows(name), key=lambda r: len(r["text"]))
    long_enough = [r for r in by_length if len(r["text"]) >= min_chars]
    rows = long_enough[:count] if long_enough else by_length[-count:]
    for r in rows:
        r["references"] = r.get("reference_summaries") or [r["reference_summary"]]
    return rows


@cache
def long_pool() -> str:
    """SQuALITY stories then QMSum meetings (dev), joined: over a million characters of English."""
    texts = [r["text"].strip() for name in ("squality_long_en", "qmsum_long_en") for r in _rows(name)]
    return "\n\n".join(texts)


def cut(text: str, chars: int) -> str:
    """`text` cut to at most `chars`, back to the last paragraph or sentence end when there is one."""
    if len(text) <= chars:
        return text
    head = text[:chars]
    for boundary in ("\n\n", ". ", "\n"):
        at = head.rfind(boundary)
        if at > chars * 0.8:
            return head[: at + (1 if boundary == ". " else 0)].rstrip()
    return head.rstrip()


def text_of_tokens(source: str, tokens: int, count: Callable[[str], int]) -> tuple[str, int]:
    """A prefix of `source` of about `tokens` model tokens (counted with `count`), and its count."""
    sample = source[: min(len(source), 40_000)]
    chars_per_token = len(sample) / max(1, count(sample))
    text = cut(source, int(tokens * chars_per_token))
    n = count(text)
    if abs(n - tokens) > 0.03 * tokens:  # one correction with the measured ratio of this very text
        text = cut(source, int(len(text) * tokens / n))
        n = count(text)
    return text, n


class DocFactory:
    """Distinct documents of `paragraphs` XQuAD paragraphs, Russian and English mixed."""

    def __init__(self, seed: int = 6) -> None:
        self.pool = [*xquad_paragraphs("ru"), *xquad_paragraphs("en")]
        self.rng = random.Random(seed)
        self.made = 0

    def next(self, paragraphs: int) -> tuple[str, str]:
        """(filename, text) of a new document."""
        self.made += 1
        picked = self.rng.sample(self.pool, min(paragraphs, len(self.pool)))
        return f"bench_{self.made:05d}.txt", f"Document {self.made}\n\n" + "\n\n".join(picked)


def paragraph_doc(index: int, lang: str = "en") -> str:
    """One XQuAD paragraph as a small document (about 150–250 tokens)."""
    paragraphs = xquad_paragraphs(lang)
    return paragraphs[index % len(paragraphs)]


def words(text: str) -> int:
    return len(re.findall(r"\w+", text))
