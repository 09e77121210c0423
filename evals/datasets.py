"""The evaluation sets as documents to summarize, each with its expected language and references.

Russian: `ria_headlines_ru` (news, human headline as reference) and `xquad_ru_articles`
(the XQuAD-ru paragraphs of one article joined in order — long Russian documents without a
reference summary). English: `summeval_cnndm_en` (11 references), `qmsum_long_en` (the
whole-meeting summary) and `squality_long_en` (4 plot summaries), the last two long enough
to go through the tree path.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

# The evaluation data: `--evaldata` / DOCASSIST_EVALDATA, by default `../shared/evaldata` beside the checkout.
EVALDATA = Path(os.environ.get("DOCASSIST_EVALDATA") or Path(__file__).resolve().parents[2] / "shared" / "evaldata")

SUMMARY_SETS = ("ria_headlines_ru", "xquad_ru_articles", "summeval_cnndm_en", "qmsum_long_en", "squality_long_en")
LONG_SETS = ("qmsum_long_en", "squality_long_en")


@dataclass
class EvalDoc:
    set: str
    id: str
    language: str
    text: str
    references: list[str] = field(default_factory=list)


def read_jsonl(evaldata: Path, name: str, split: str) -> list[dict]:
    """The rows of one set's split: the only reader of the evaluation files."""
    with (evaldata / name / f"{split}.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _references(row: dict) -> list[str]:
    refs = row.get("reference_summaries") or [row.get("reference_summary", "")]
    return [r for r in refs if r and r.strip()]


def xquad_articles(evaldata: Path, split: str, lang: str = "ru") -> list[EvalDoc]:
    """One document per XQuAD article: its distinct paragraphs, in order."""
    articles: dict[str, list[str]] = {}
    for row in read_jsonl(evaldata, f"xquad_{lang}", split):
        paragraphs = articles.setdefault(row["title"], [])
        if row["context"] not in paragraphs:
            paragraphs.append(row["context"])
    return [
        EvalDoc("xquad_ru_articles" if lang == "ru" else "xquad_en_articles", title, lang, "\n\n".join(paras))
        for title, paras in articles.items()
    ]


def xquad_article(lang: str, index: int = 0, split: str = "dev", evaldata: Path = EVALDATA) -> str:
    """The text of XQuAD article `index` (in file order; wraps around)."""
    articles = xquad_articles(evaldata, split, lang)
    return articles[index % len(articles)].text


def summary_docs(evaldata: Path, split: str, name: str) -> list[EvalDoc]:
    if name == "xquad_ru_articles":
        return xquad_articles(evaldata, split, "ru")
    return [EvalDoc(name, r["id"], r["lang"], r["text"], _references(r)) for r in read_jsonl(evaldata, name, split)]
