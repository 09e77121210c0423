"""Whether each summary sentence is borne out by the passage it cites.

The proxy is the faithfulness test (`metrics.faithfulness`) narrowed to the one passage the
sentence names: e5 cosine between sentence and quote (both as passages) at least `MIN_COSINE`,
and at least `MIN_OVERLAP` of the sentence's stems found in the quote. It is checked against
sentences labelled by hand (`evals/labels/summary-support-*.jsonl`: `supported` true or false
for each sentence and its quote), and the agreement is reported beside the share.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from docassist.evals.metrics import unit_embeddings
from docassist.pipelines.answers.citations import sentence_spans
from docassist.pipelines.answers.summary_sources import NEW_WORDS_MAX, bears_out
from docassist.pipelines.search.sparse import terms
from docassist.pipelines.summaries.events import SummarySentence

MIN_COSINE = 0.86  # as metrics.faithfulness
MIN_OVERLAP = 0.6
LABELS = Path(__file__).parent / "labels"


def pairs_of(sentences: list[SummarySentence], embed: Any) -> list[dict[str, Any]]:
    """Each sentence with a citation, its quote, the proxy's two measures and its verdict."""
    cited = [(s.text, s.citations[0].quote) for s in sentences if s.citations]
    if not cited:
        return []
    vectors = unit_embeddings([t for pair in cited for t in pair], embed)
    out = []
    for i, (text, quote) in enumerate(cited):
        cosine = float(np.dot(vectors[2 * i], vectors[2 * i + 1]))
        words, quoted = terms(text), set(terms(quote))
        overlap = sum(w in quoted for w in words) / len(words) if words else 1.0
        supported = cosine >= MIN_COSINE and overlap >= MIN_OVERLAP
        out.append(
            {
                "text": text,
                "quote": quote,
                "cosine": round(cosine, 4),
                "overlap": round(overlap, 3),
                "supported": supported,
            }
        )
    return out


def support_of(sentences: list[SummarySentence], embed: Any) -> dict[str, Any]:
    pairs = pairs_of(sentences, embed)
    return {
        "sentences": len(sentences),
        "cited": len(pairs),
        "supported": sum(p["supported"] for p in pairs),
        "pairs": pairs,
    }


def labels(language: str, split: str = "test") -> list[dict[str, Any]]:
    """The hand-labelled sentences of `language`: the test split's (`summary-support-ru.jsonl`) or the
    dev split's (`summary-support-dev-ru.jsonl`), from summaries of that split."""
    name = f"summary-support-{language}" if split == "test" else f"summary-support-dev-{language}"
    path = LABELS / f"{name}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def agreement(language: str, embed: Any = None) -> dict[str, Any] | None:
    """The proxy against the hand labels of `language`: agreement, and the labelled share; with
    `embed`, also which labelled pairs the citation rule still cites and how many of those a person
    found borne out (the rule's precision, the figure a reader of a citation relies on)."""
    rows = labels(language)
    if not rows:
        return None
    agree = sum(r["proxy"] == r["supported"] for r in rows)
    out = {
        "labelled": len(rows),
        "agreement": round(agree / len(rows), 3),
        "supported_by_hand": round(sum(r["supported"] for r in rows) / len(rows), 3),
        "supported_by_proxy": round(sum(r["proxy"] for r in rows) / len(rows), 3),
    }
    if embed is not None:
        kept = [r for r in rows if cited_by_rule(r["text"], r["quote"], embed)]
        out["cited_by_rule"] = len(kept)
        out["cited_supported_by_hand"] = round(sum(r["supported"] for r in kept) / len(kept), 3) if kept else None
    return out


def similarity(text: str, quote: str, embed: Any) -> float:
    """The sentence (query side) against the quote's closest sentence (passage side), as
    `summary_sources` measures it."""
    spans = sentence_spans(quote) or [(0, len(quote))]
    passages = unit_embeddings([quote[a:b] for a, b in spans], embed)
    query = np.asarray(embed.get_query_embedding(text), dtype=np.float32)
    return float((passages @ (query / np.linalg.norm(query))).max())


def cited_by_rule(text: str, quote: str, embed: Any) -> bool:
    """Whether `summary_sources` would cite `quote` for `text`."""
    return bears_out(text, quote, similarity(text, quote, embed))


def rule_against_labels(split: str, embed: Any) -> dict[str, Any]:
    """The citation rule against the hand labels of `split`, per language: of the sentences it
    cites, the share a person found borne out (precision), and of those a person found borne out,
    the share it cites (recall) — beside the rule without its new-words limit, to show what that buys."""
    report: dict[str, Any] = {"split": split, "new_words_max": NEW_WORDS_MAX, "languages": {}}
    for language in ("ru", "en"):
        rows = labels(language, split)
        if not rows:
            continue
        scored = [(r, similarity(r["text"], r["quote"], embed)) for r in rows]
        rules = {
            name: [r for r, sim in scored if bears_out(r["text"], r["quote"], sim, limit)]
            for name, limit in (
                ("similarity, numbers and names", None),
                ("the rule (with the new-words limit)", NEW_WORDS_MAX),
            )
        }
        supported = sum(r["supported"] for r in rows)
        report["languages"][language] = {
            "labelled": len(rows),
            "supported_by_hand": supported,
            "rules": {
                name: {
                    "cited": len(kept),
                    "cited_supported": sum(r["supported"] for r in kept),
                    "precision": round(sum(r["supported"] for r in kept) / len(kept), 3) if kept else None,
                    "recall": round(sum(r["supported"] for r in kept) / supported, 3) if supported else None,
                }
                for name, kept in rules.items()
            },
        }
    return report


def rule_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Summary citations against sentences labelled by hand, {report['split']} split "
        f"(`evals/labels/`), commit {report.get('commit', '?')}; goal: precision ≥ 0.90",
        "",
        "| language | labelled | borne out by hand | rule | cited | precision | recall |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for language, row in report["languages"].items():
        for name, r in row["rules"].items():
            lines.append(
                f"| {language} | {row['labelled']} | {row['supported_by_hand']} | {name} | {r['cited']} "
                f"| {r['precision']} | {r['recall']} |"
            )
    return "\n".join(lines)


def sample_for_labels(report: dict[str, Any], per_language: int = 50, seed: int = 5) -> dict[str, list[dict]]:
    """Sentences and their quotes from a summaries report, `per_language` of each language drawn
    with a fixed seed, for a person to mark `supported` (the proxy's verdict is kept beside it)."""
    import random

    rng = random.Random(seed)
    by_language: dict[str, list[dict]] = {}
    for row in report["documents"]:
        for pair in row.get("support", {}).get("pairs", []):
            by_language.setdefault(row["language"], []).append(
                {"doc": row["id"], "text": pair["text"], "quote": pair["quote"], "proxy": pair["supported"]}
            )
    return {lang: rng.sample(rows, min(per_language, len(rows))) for lang, rows in by_language.items()}
