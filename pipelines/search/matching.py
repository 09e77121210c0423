"""The sentence of a hit that matches its query best: where a source that spans several slides,
sheets' rows, chapters or pages says the fact sits (`retrieval.match_location`).

A chunk is a few hundred tokens and may cross a slide, page or chapter boundary; its own location
is where it starts. The sentence sharing the most distinct query stems with the query (the same
Snowball stems BM25 searches on, so Russian word forms meet), ties broken by the shorter sentence
(more of it is the match), is taken as the place the hit is about. It costs a stemming pass over
the hit's text, well under a millisecond: no model is asked.
"""

from __future__ import annotations

import re

from docassist.pipelines.search.sparse import terms

# a sentence ends at . ! ? … followed by a space, or at a line break (a row, a heading, a bullet)
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) of each sentence or line of `text`, blank ones left out."""
    spans, at = [], 0
    for brk in _SENTENCE_END.finditer(text):
        if text[at : brk.start()].strip():
            spans.append((at, brk.start()))
        at = brk.end()
    if text[at:].strip():
        spans.append((at, len(text)))
    return spans


def best_sentence(text: str, query: str) -> tuple[int, int] | None:
    """The span of the sentence of `text` that shares the most distinct stems with `query`; None
    when no sentence shares any."""
    wanted = set(terms(query))
    if not wanted:
        return None
    best: tuple[int, int] | None = None
    best_key = (0, 0)
    for start, end in sentence_spans(text):
        stems = terms(text[start:end])
        key = (len(wanted.intersection(stems)), -len(stems))
        if key[0] > 0 and key > best_key:
            best, best_key = (start, end), key
    return best
