"""The sentences an answer rests on, and whether the sources hold an answer at all.

The embedded 270M model cannot be trusted to write citation markers, so the supporting
passages are chosen outside it: every sentence of the retrieved chunks is embedded (passage
side of e5) and compared with the question (query side). The best similarity says whether the
space holds an answer: under `SUPPORT_MIN` the question is declined before any LLM call. After
the answer is written, its citations are chosen among passages of one sentence, or of two
adjacent ones around the best few sentences (embedded as passages too: a sentence whose subject
is "he" or "the graph" is often scored by what it does not name, and the pair that names it
scores as a whole) — by that similarity plus the share of the question's words they contain —
with their offsets into the document's text and their own location (the page a quote is on,
not every page its chunk spans). They are ranked by the question, not by the answer: the small
model's answer is wrong often enough (the depth of Baikal, asked which river leaves it) that
ranking by it pulls the citation off the evidence — so a reader sees the passage that does
answer.

`SUPPORT_MIN` was chosen on the XQuAD dev split (150 questions per language; a space holding
the question's article, against one holding every other article): at 0.83 the best sentence
clears it for 0.96 (en) / 0.97 (ru) of answerable questions and stays under it for 0.96 / 0.88
of unanswerable ones. The passages, on every dev question (`docassist eval citations --split
dev`: a space per language holding all the split's articles, the top 3 chunks): the first quote
holds the gold answer for 0.78 (en) / 0.76 (ru) with single sentences, 0.87 / 0.84 with the
pairs around the best three sentences among them (about half the first quotes are then pairs;
every pair of the chunks gains no more). The question's words weigh 0.1 (none: 0.74 / 0.72).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding

from docassist.pipelines.documents.locations import Location
from docassist.pipelines.lanes import Lane
from docassist.pipelines.search import sparse
from docassist.pipelines.search.embeddings import embed_query
from docassist.pipelines.search.retrieval import Source, within

SUPPORT_MIN = 0.83
TERM_WEIGHT = 0.1  # how much the question's words in a passage add to its embedding similarity
PAIRS_AROUND = 3  # passages of two sentences are weighed around this many best sentences
SECOND_WITHIN = 0.01  # a second citation only when it supports the answer nearly as well as the first
# a sentence ends at . ! ? … before a capital (or any non-lowercase letter), or at a blank line; a
# single line break is a PDF's or a text file's wrapping, inside the sentence
SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[^\s\da-zа-яё])|\n\s*\n")
MIN_SENTENCE_CHARS = 12  # a shorter piece ("1.", "Итак:") is no sentence of its own


@dataclass
class Citation:
    doc_id: str
    filename: str
    chunk: int
    quote: str
    start: int | None = None  # offsets of `quote` in the document's text, where it is found there
    end: int | None = None
    score: float = 0.0
    location: Location | None = None  # where the quote itself sits (page, slide, sheet rows…)
    version: int | None = None  # the document's version it was quoted from (None: before versions were kept)


@dataclass
class Sentence:
    source: Source
    start: int  # [start, end) in the chunk's text
    end: int
    overlap: float = 0.0  # the share of the question's terms (stemmed, no stop words) it contains

    @property
    def text(self) -> str:
        return self.source.text[self.start : self.end]


@dataclass
class Evidence:
    """The sentences of the retrieved chunks, embedded, and how well the best supports the question."""

    question: str
    query: np.ndarray
    sentences: list[Sentence]
    vectors: np.ndarray
    support: float

    @property
    def answerable(self) -> bool:
        return self.support >= SUPPORT_MIN


@dataclass
class _Passage:
    first: Sentence
    last: Sentence
    score: float

    @property
    def text(self) -> str:
        return self.first.source.text[self.first.start : self.last.end]

    def overlaps(self, other: _Passage) -> bool:
        return (
            self.first.source is other.first.source
            and self.first.start < other.last.end
            and other.first.start < self.last.end
        )


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """The [start, end) of each sentence of `text` (surrounding white space left out; fragments
    shorter than a sentence dropped)."""
    spans, at = [], 0
    for boundary in [*SENTENCE_END.finditer(text), None]:
        end = boundary.start() if boundary is not None else len(text)
        piece = text[at:end]
        lead = len(piece) - len(piece.lstrip())
        start, stop = at + lead, at + len(piece.rstrip())
        if stop - start >= MIN_SENTENCE_CHARS:
            spans.append((start, stop))
        if boundary is not None:
            at = boundary.end()
    return spans


def split_sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text)]


def _overlap(asked: set[str], text: str) -> float:
    return len(asked & set(sparse.terms(text))) / max(1, len(asked))


def _adjacent(first: Sentence, second: Sentence) -> bool:
    """Two sentences next to each other in one chunk, with no paragraph break between them."""
    if first.source is not second.source or first.end > second.start:
        return False
    return "\n\n" not in first.source.text[first.end : second.start]


class Citer:
    def __init__(self, embed_model: BaseEmbedding, lane: Lane, pairs_around: int = PAIRS_AROUND) -> None:
        self.embed_model, self.lane, self.pairs_around = embed_model, lane, pairs_around

    async def evidence(self, question: str, sources: list[Source]) -> Evidence:
        asked = set(sparse.terms(question))
        spans = [(s, a, b) for s in sources for a, b in sentence_spans(s.text)]
        sentences = [Sentence(s, a, b, _overlap(asked, s.text[a:b])) for s, a, b in spans]
        if not sentences:
            return Evidence(question, np.zeros(0), [], np.zeros((0, 0)), 0.0)
        texts = [s.text for s in sentences]
        vectors = np.asarray(await self.lane.run(self.embed_model.get_text_embedding_batch, texts))
        query = np.asarray(await embed_query(self.embed_model, question, self.lane))
        return Evidence(question, query, sentences, vectors, float((vectors @ query).max()))

    async def refocus(self, evidence: Evidence, question: str) -> Evidence:
        """The same sentences weighed against another question (their vectors are kept)."""
        asked = set(sparse.terms(question))
        sentences = [Sentence(s.source, s.start, s.end, _overlap(asked, s.text)) for s in evidence.sentences]
        query = np.asarray(await embed_query(self.embed_model, question, self.lane))
        support = float((evidence.vectors @ query).max()) if sentences else 0.0
        return Evidence(question, query, sentences, evidence.vectors, support)

    async def cite(self, evidence: Evidence, used: list[Source]) -> list[Citation]:
        """The passages of `used` sources that best answer the question: one, or two when the
        second is nearly as good."""
        given = {(u.doc_id, u.chunk) for u in used}
        keep = [i for i, s in enumerate(evidence.sentences) if (s.source.doc_id, s.source.chunk) in given]
        if not keep:
            return []
        sentences = [evidence.sentences[i] for i in keep]
        dense = evidence.vectors[keep] @ evidence.query
        scores = dense + TERM_WEIGHT * np.array([s.overlap for s in sentences])
        passages = [_Passage(s, s, float(score)) for s, score in zip(sentences, scores, strict=True)]
        passages += await self._pairs(evidence, sentences, scores)
        passages.sort(key=lambda p: -p.score)
        best = passages[0]
        nearly = [p for p in passages[1:] if best.score - p.score <= SECOND_WITHIN and not p.overlaps(best)]
        chosen = [best, *nearly[:1]]
        return [quote_of(p.first, p.last, p.score) for p in chosen]

    async def _pairs(self, evidence: Evidence, sentences: list[Sentence], scores: np.ndarray) -> list[_Passage]:
        """Two-sentence passages around the best sentences, embedded and scored as the sentences are."""
        starts: set[int] = set()
        for i in np.argsort(-scores)[: self.pairs_around]:
            starts.update(j for j in (int(i) - 1, int(i)) if 0 <= j < len(sentences) - 1)
        pairs = [
            _Passage(sentences[j], sentences[j + 1], 0.0)
            for j in sorted(starts)
            if _adjacent(sentences[j], sentences[j + 1])
        ]
        if not pairs:
            return []
        vectors = np.asarray(await self.lane.run(self.embed_model.get_text_embedding_batch, [p.text for p in pairs]))
        asked = set(sparse.terms(evidence.question))
        for pair, vector in zip(pairs, vectors, strict=True):
            pair.score = float(vector @ evidence.query) + TERM_WEIGHT * _overlap(asked, pair.text)
        return pairs


def quote_of(first: Sentence, last: Sentence, score: float) -> Citation:
    """The citation of the passage from `first` to `last` (sentences of one chunk)."""
    return Citation(
        doc_id=first.source.doc_id,
        filename=first.source.filename,
        chunk=first.source.chunk,
        quote=first.source.text[first.start : last.end],
        score=round(score, 4),
        location=within(first.source, first.start, last.end),
        version=first.source.version,
    )


def place(citations: list[Citation], text_of: dict[str, str]) -> list[Citation]:
    """Fill in each quote's offsets in its document's text (`text_of`: doc_id → text)."""
    for c in citations:
        text = text_of.get(c.doc_id, "")
        at = text.find(c.quote)
        if at >= 0:
            c.start, c.end = at, at + len(c.quote)
    return citations
