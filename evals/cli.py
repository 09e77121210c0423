"""The command line every eval script shares: split, data, limit, and where the report goes."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path

EVALDATA = Path(os.environ.get("DOCASSIST_EVALDATA") or Path(__file__).resolve().parents[2] / "shared" / "evaldata")


def run_eval(
    doc: str | None,
    evaluate: Callable[[str, Path, int | None], dict],
    to_markdown: Callable[[dict], str],
    limit_help: str = "first N rows",
) -> None:
    """Parse the shared flags, run `evaluate`, print markdown, and write JSON + .md with `--out`."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", default="dev", choices=["dev", "test"], help="tune on dev, report on test")
    parser.add_argument("--evaldata", type=Path, default=EVALDATA)
    parser.add_argument("--limit", type=int, default=None, help=limit_help)
    parser.add_argument("--out", type=Path, default=None, help="write the JSON report here (and .md beside it)")
    args = parser.parse_args()
    report = evaluate(args.split, args.evaldata, args.limit)
    print(to_markdown(report))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
        args.out.with_suffix(".md").write_text(to_markdown(report) + "\n", encoding="utf-8")
