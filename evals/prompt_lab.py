"""Prompt tuning, side by side: run a pattern with the previous prompts and with the edited
ones on a few dev documents, and score both the same way. The notebooks in `notebooks/` are
thin front ends to this module.

The previous prompts are `prompts/` as committed (`git show HEAD:prompts/…`); the candidate
is the working copy, so "edit `prompts/v1.toml`, re-run the notebook" is the whole loop.
Templates are re-read on every switch and summaries are forced, so no cached output of one
variant is served for the other.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docassist.prompts as prompt_files
from docassist.evals.answers import score_answer
from docassist.evals.datasets import EvalDoc
from docassist.evals.session import EvalSession
from docassist.evals.summaries import score_summary
from docassist.pipelines.llm import prompts

PROMPTS_DIR = Path(prompt_files.__file__).resolve().parent


def baseline_prompts(ref: str = "HEAD") -> Path:
    """The prompt files as of git `ref`, in a temporary folder (the working copy without git)."""
    out = Path(tempfile.mkdtemp(prefix="prompts-baseline-"))
    for path in PROMPTS_DIR.glob("*.toml"):
        shown = subprocess.run(
            ["git", "show", f"{ref}:prompts/{path.name}"], cwd=PROMPTS_DIR.parent, capture_output=True, text=True
        )
        if shown.returncode == 0:
            (out / path.name).write_text(shown.stdout, encoding="utf-8")
        else:
            shutil.copy(path, out / path.name)
    return out


def candidate_prompts(edit: Callable[[str], str] | None = None) -> Path:
    """The working copy of the prompts, optionally with `edit` applied to the current version's file."""
    out = Path(tempfile.mkdtemp(prefix="prompts-candidate-"))
    for path in PROMPTS_DIR.glob("*.toml"):
        text = path.read_text(encoding="utf-8")
        if edit and path.stem == prompts.prompt_version():
            text = edit(text)
        (out / path.name).write_text(text, encoding="utf-8")
    return out


def differs(a: Path, b: Path) -> bool:
    return any((a / p.name).read_text(encoding="utf-8") != p.read_text(encoding="utf-8") for p in b.glob("*.toml"))


@contextmanager
def prompts_from(directory: Path) -> Iterator[None]:
    """Render every prompt from `directory` while inside."""
    previous = os.environ.get("DOCASSIST_PROMPTS_DIR")
    os.environ["DOCASSIST_PROMPTS_DIR"] = str(directory)
    prompts.reload()
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("DOCASSIST_PROMPTS_DIR", None)
        else:
            os.environ["DOCASSIST_PROMPTS_DIR"] = previous
        prompts.reload()


async def compare_summaries(
    session: EvalSession, docs: list[EvalDoc], variants: dict[str, Path]
) -> list[dict[str, Any]]:
    """Each document summarized under each prompt variant, scored like `docassist eval summaries`."""
    embed = session.embed_model
    rows = []
    for doc in docs:
        record = await session.ingest(f"lab-{doc.set}", f"{doc.id}.txt", doc.text)
        for name, directory in variants.items():
            with prompts_from(directory):
                started = time.perf_counter()
                result = await session.summarize(record, force=True)
            scores = score_summary(result.summary, doc, embed)
            rows.append(
                {
                    "doc": f"{doc.set}/{doc.id}"[:40],
                    "prompt": name,
                    "strategy": result.strategy,
                    "seconds": round(time.perf_counter() - started, 1),
                    "summary": result.summary,
                    **{
                        k: scores[k]
                        for k in ("summary_language", "language_ok", "rougeL", "e5_similarity", "faithfulness")
                    },
                }
            )
    return rows


async def compare_answers(
    session: EvalSession, questions: list[dict[str, Any]], variants: dict[str, Path], top_k: int = 3
) -> list[dict[str, Any]]:
    """XQuAD questions asked under each prompt variant (their paragraphs ingested into one space per language)."""
    for q in questions:
        await session.ingest(f"lab-xquad-{q['lang']}", f"{abs(hash(q['context']))}.txt", q["context"])
    rows = []
    for q in questions:
        golds = [a["text"] for a in q["answers"]]
        for name, directory in variants.items():
            with prompts_from(directory):
                started = time.perf_counter()
                result = await session.ask(q["question"], f"lab-xquad-{q['lang']}", "auto", top_k)
            rows.append(
                {
                    "question": q["question"][:60],
                    "prompt": name,
                    "seconds": round(time.perf_counter() - started, 1),
                    "answer": result.answer,
                    "gold": " | ".join(golds),
                    **score_answer(result.answer, golds),
                }
            )
    return rows


def side_by_side(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A markdown table (newlines in cells flattened) for `IPython.display.Markdown`."""

    def cell(value: Any) -> str:
        text = f"{value:.3f}" if isinstance(value, float) else str(value)
        return text.replace("\n", " ").replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def means(rows: list[dict[str, Any]], keys: list[str]) -> dict[str, dict[str, float]]:
    """Per prompt variant, the mean of each score."""
    out: dict[str, dict[str, float]] = {}
    for name in dict.fromkeys(r["prompt"] for r in rows):
        mine = [r for r in rows if r["prompt"] == name]
        out[name] = {k: round(sum(float(r[k] or 0) for r in mine) / len(mine), 3) for k in keys}
    return out
