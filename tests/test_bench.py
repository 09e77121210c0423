"""`python -m bench --quick` runs end to end on the embedded default and writes its report:
JSON with a ratio per benchmark (against a baseline from the same run) and a markdown table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHEAP = ("cached", "overhead", "ingestion")


@pytest.mark.slow
def test_quick_bench_writes_ratios_and_a_table(tmp_path: Path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", ",".join(CHEAP), "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    reports = list(tmp_path.glob("*.json"))
    assert len(reports) == 1
    report = json.loads(reports[0].read_text(encoding="utf-8"))
    assert report["mode"] == "quick" and sorted(report["benchmarks_run"]) == sorted(CHEAP)
    for name in CHEAP:
        result = report["benchmarks"][name]
        assert result["error"] is None
        assert result["ratios"] and all(isinstance(v, float) and v > 0 for v in result["ratios"].values()), name
    assert 0 < report["benchmarks"]["overhead"]["ratios"]["api_over_llama_direct"] < 5
    assert report["benchmarks"]["ingestion"]["ratios"]["api_chunks_per_s_over_embedding"] > 0
    assert report["benchmarks"]["cached"]["figures"][0]["goal"] == "< 5"
    table = reports[0].with_suffix(".md").read_text(encoding="utf-8")
    assert "| benchmark | figure | value | baseline | goal | context |" in table
    assert table.count("\n| Pipeline overhead |") == 1 and "| Ingestion |" in table and "| Cached /summarize |" in table
