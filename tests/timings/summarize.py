"""Where the suite's time goes, from pytest's JUnit XML: wall time, tests per tier (`slow` or
not), each file's share and the ten slowest tests — the summaries committed beside it.

    python -m pytest --junitxml=tests/timings/<name>.xml ...
    python tests/timings/summarize.py tests/timings/<name>.xml "<what ran, on what>" > tests/timings/<name>.md

The tier of a test is read from the collection (`pytest --collect-only -q -m slow`), not from
the XML, which does not keep markers: pass it as a file of node ids with `--slow FILE`.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Case:
    node: str  # tests/test_x.py::test_y
    seconds: float
    outcome: str  # passed, failed, error, skipped


def cases(xml: Path) -> tuple[list[Case], float]:
    """Every test case and the suite's own wall time (the XML's `time`: the run, fixtures included)."""
    root = ET.parse(xml).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert suite is not None, f"{xml}: no <testsuite>"
    found = []
    for case in suite.iter("testcase"):
        parts = case.get("classname", "").split(".")
        classes = []  # a test class's name follows its module's in `classname`
        while len(parts) > 1 and not (ROOT / ("/".join(parts) + ".py")).exists():
            classes.insert(0, parts.pop())
        file = "/".join(parts) + ".py"
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            if case.find(tag) is not None:
                outcome = {"failure": "failed"}.get(tag, tag)
        node = "::".join([file, *classes, case.get("name", "")])
        found.append(Case(node, float(case.get("time", 0)), outcome))
    return found, float(suite.get("time", 0))


def summary(xml: Path, title: str, slow: set[str] | None) -> str:
    found, wall = cases(xml)
    by_outcome: dict[str, int] = defaultdict(int)
    by_file: dict[str, float] = defaultdict(float)
    for c in found:
        by_outcome[c.outcome] += 1
        by_file[c.node.split("::")[0]] += c.seconds
    lines = [
        f"# {title}",
        "",
        f"Wall time {wall:,.0f} s ({wall / 60:.1f} min) for {len(found)} tests: "
        + ", ".join(f"{n} {k}" for k, n in sorted(by_outcome.items())),
        "",
    ]
    if slow is not None:
        fast = [c for c in found if c.node not in slow]
        lines += [
            f"Tiers: {len(fast)} tests not marked `slow` ({sum(c.seconds for c in fast):,.0f} s of test time), "
            f"{len(found) - len(fast)} marked `slow` ({sum(c.seconds for c in found if c.node in slow):,.0f} s).",
            "",
        ]
    lines += ["| file | seconds | share |", "|---|---:|---:|"]
    total = sum(by_file.values()) or 1.0
    for file, seconds in sorted(by_file.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {file} | {seconds:,.0f} | {seconds / total:.0%} |")
    lines += ["", "The ten slowest tests (setup, call and teardown together):", "", "| test | seconds |", "|---|---:|"]
    for c in sorted(found, key=lambda c: -c.seconds)[:10]:
        lines.append(f"| {c.node} | {c.seconds:,.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("xml", type=Path)
    p.add_argument("title")
    p.add_argument("--slow", type=Path, help="node ids of the tests marked slow, one per line")
    args = p.parse_args(argv)
    slow = None
    if args.slow:
        slow = {line.strip() for line in args.slow.read_text().splitlines() if "::" in line}
    sys.stdout.write(summary(args.xml, args.title, slow))
    return 0


if __name__ == "__main__":
    sys.exit(main())
