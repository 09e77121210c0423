"""Each sentence of a summary tied to the passage of its document it rests on.

The same matcher as an answer's citations, with no LLM call: each summary sentence is searched for
within its own document (hybrid search scoped to the document, `TOP_K` chunks), the sentences of
every chunk found are embedded once, and each summary sentence gets the passage of one sentence,
or two adjacent ones, among all of them that is closest to it (`Citer.cite`) — with its offsets in the document's
text and its own page. The passage must bear the sentence out by the rule an answer sentence is
held to (`support`): at least `SENTENCE_MIN` similar, and every number and name the sentence
states in the passage — and, as a summary sentence restates rather than answers, at most
`NEW_WORDS_MAX` of its content words absent from the passage (a small model's summary sentence
that shares a passage's topic but not its claim brings words of its own: "the crew and officers
of the vessel" against "we are cooperating"). A sentence with no such passage (the primer of a
small model, "The text reports that…", a year the model changed, a claim the document does not
make) gets none: a reader sees which sentences the document bears out, and a citation is never
decoration.
"""

from __future__ import annotations

from collections.abc import Callable

from docassist.pipelines.answers.citations import Citer, place, sentence_spans
from docassist.pipelines.answers.support import SENTENCE_MIN, unstated
from docassist.pipelines.documents.registry import DocumentRecord
from docassist.pipelines.lanes import Lane
from docassist.pipelines.search.retrieval import Retriever, Source
from docassist.pipelines.search.scope import Scope
from docassist.pipelines.search.sparse import terms
from docassist.pipelines.summaries.events import SummaryCitation, SummarySentence

TOP_K = 3  # chunks of the document searched per summary sentence
# content words of a summary sentence its passage may lack: one paraphrased word. Chosen on the dev
# split's hand labels (evals/labels/summary-support-dev-*.jsonl): English citations borne out
# 0.72 → 0.95, Russian 0.71 → 0.77 (its wrong sentences reuse the passage's own words)
NEW_WORDS_MAX = 1
# how a summary speaks of its document ("The text reports that", "В тексте говорится о том, что"):
# words that make no claim of their own
_NO_CLAIM = frozenset(
    terms(
        "text report reports reported say says said document article writes wrote states stated mention "
        "mentions also текст тексте говорится говорит сообщается документ статье сказано пишет отмечается также"
    )
)


def new_words(sentence: str, quote: str) -> list[str]:
    """The content words (stems) of `sentence` that `quote` does not hold; as with names, their first
    five letters are compared (the small model's "библиотекаю" is the passage's "библиотеку")."""
    quoted = {t[:5] for t in terms(quote)}
    return [t for t in terms(sentence) if t[:5] not in quoted and t not in _NO_CLAIM]


def bears_out(sentence: str, quote: str, similarity: float, new_words_max: int | None = NEW_WORDS_MAX) -> bool:
    """Whether `quote` may be cited for the summary sentence: close enough, stating every number
    and name the sentence does, and lacking at most `new_words_max` of its content words (None:
    any number — the answers' rule alone, which the evaluation reports beside it)."""
    return (
        similarity >= SENTENCE_MIN
        and not unstated(sentence, quote)
        and (new_words_max is None or len(new_words(sentence, quote)) <= new_words_max)
    )


class SummarySources:
    def __init__(
        self, retriever: Retriever, citer: Citer, text_of: Callable[[DocumentRecord], str], lane: Lane
    ) -> None:
        """`lane`: where the document's text is read (the storage lane)."""
        self.retriever, self.citer, self.text_of, self.lane = retriever, citer, text_of, lane

    async def sentences(self, record: DocumentRecord, summary: str) -> list[SummarySentence]:
        texts = [summary[a:b] for a, b in sentence_spans(summary)]
        scope = Scope(doc_ids=[record.doc_id])
        found: list[list[Source]] = []
        for text in texts:
            found.append((await self.retriever.search(text, record.space_id, TOP_K, scope)).sources)
        chunks = {(s.doc_id, s.chunk): s for hits in found for s in hits}
        if not chunks:
            return [SummarySentence(text=t) for t in texts]
        evidence = await self.citer.evidence(texts[0], list(chunks.values()))  # every sentence embedded once
        document = await self.lane.run(self.text_of, record)
        out: list[SummarySentence] = []
        for text in texts:  # the closest passage among all the chunks found, whichever sentence found it
            focused = await self.citer.refocus(evidence, text)
            cited = await self.citer.cite(focused, list(chunks.values()))
            best = place(cited[:1], {record.doc_id: document})[0] if cited else None
            if best is None or not bears_out(text, best.quote, focused.support):
                out.append(SummarySentence(text=text))
                continue
            citation = SummaryCitation(
                doc_id=best.doc_id,
                quote=best.quote,
                start=best.start,
                end=best.end,
                location=best.location,
                score=best.score,
            )
            out.append(SummarySentence(text=text, citations=[citation]))
        return out
