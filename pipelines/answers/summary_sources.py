"""Each sentence of a summary tied to the passage of its document it rests on.

The same matcher as an answer's citations, with no LLM call: each summary sentence is searched for
within its own document (hybrid search scoped to the document, `TOP_K` chunks), the sentences of
every chunk found are embedded once, and each summary sentence gets the passage of one sentence,
or two adjacent ones, among all of them that is closest to it (`Citer.cite`) — with its offsets in the document's
text and its own page. A sentence whose closest passage stays under `SUPPORT_MIN` (the primer of a
small model, "The text reports that…", or a claim the document does not make) gets none.
"""

from __future__ import annotations

from collections.abc import Callable

from docassist.pipelines.answers.citations import SUPPORT_MIN, Citer, place, sentence_spans
from docassist.pipelines.documents.registry import DocumentRecord
from docassist.pipelines.lanes import Lane
from docassist.pipelines.search.retrieval import Retriever, Source
from docassist.pipelines.search.scope import Scope
from docassist.pipelines.summaries.events import SummaryCitation, SummarySentence

TOP_K = 3  # chunks of the document searched per summary sentence


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
            if not cited or focused.support < SUPPORT_MIN:
                out.append(SummarySentence(text=text))
                continue
            best = place(cited[:1], {record.doc_id: document})[0]
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
