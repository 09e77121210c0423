"""`docassist bench --quick` runs every benchmark end to end on the embedded default (tiny sizes) and
writes its report: each benchmark's figures against a baseline from the same run, and the properties
a reader relies on hold even at this size. Its documents come from the committed sample of the
evaluation data (DOCASSIST_EVALDATA set for the run)."""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from docassist.bench.__main__ import ORDER
from docassist.bench.open_loop import Route, play
from tests.conftest import EVALDATA

pytestmark = pytest.mark.slow  # `docassist bench --quick`: services and workers of its own, minutes

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "docassist"), "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "DOCASSIST_EVALDATA": str(EVALDATA)},
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    [path] = out.glob("*.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    data["_markdown"] = path.with_suffix(".md").read_text(encoding="utf-8")
    return data


def figure(report: dict, bench: str, key: str) -> dict:
    return next(f for f in report["benchmarks"][bench]["figures"] if f["key"] == key)


def test_every_benchmark_runs_and_reports_against_a_baseline(report):
    assert report["mode"] == "quick" and report["benchmarks_run"] == list(ORDER)
    for name in ORDER:
        result = report["benchmarks"][name]
        assert result["error"] is None, (name, result["error"])
        assert result["figures"], name
    table = report["_markdown"]
    assert "| benchmark | figure | value | baseline | goal | context |" in table
    assert table.count("| Pipeline overhead |") == 1


def test_replayed_requests_generate_what_the_api_generated(report):
    data = report["benchmarks"]["overhead"]["data"]["direct"]
    assert set(data["api_completion_tokens"]) == set(data["direct_completion_tokens"]), "greedy: same output"
    assert data["llm_calls"] >= 1 and all(m and m > 0 for m in data["max_tokens"])


def test_the_tree_uses_no_more_calls_than_llama_index_with_the_same_prompts(report):
    rows = report["benchmarks"]["tree"]["data"]["documents"]
    assert rows and all(r["ours"]["strategy"] == "tree" for r in rows), "the small window makes every document a tree"
    for r in rows:
        assert r["ours"]["llm_calls"] <= r["same_prompts"]["llm_calls"], r["id"]


def test_load_names_the_highest_rate_that_held_and_reports_both_p99_tables(report):
    data = report["benchmarks"]["load"]["data"]["default"]
    runs = data["runs"]
    assert 1 <= len(runs) <= 2, "quick: a couple of short rates"
    assert data["capacity"] == max((r["rate"] for r in runs if r["held"]), default=None)
    for run in runs:
        statuses = sum(n for route in run["routes"].values() for n in route["statuses"].values())
        assert statuses == run["requests"], "every request sent is counted: answered, refused or timed out"
        expected = run["rate"] * run["seconds"]  # Poisson: the count within a few standard deviations
        assert abs(run["requests"] - expected) <= 4 * math.sqrt(expected) + 2, (run["requests"], expected)
    shares, costs = data["shares"], data["cpu_ms_per_request"]
    assert set(costs) == {*shares, "POST /ask"} and all(v > 0 for v in costs.values()), costs
    mix_ms = sum(share * costs[route] for route, share in shares.items()) / sum(shares.values())
    assert data["cpu_limit"] == pytest.approx(data["cores"] / (mix_ms / 1000), rel=0.01)
    if data["capacity"]:
        assert data["overload"]["rate"] == 2 * data["capacity"]
    table = report["_markdown"]
    assert "## Load: a team's mix, open loop: p99 by rate, ms" in table
    assert ("at twice the capacity" in table) == bool(data["capacity"])


def test_a_request_counts_from_when_it_was_due_when_the_service_stalls_or_the_generator_lags():
    """A service that answers nothing for its first second: a closed loop would send one request and
    wait; the open loop sends each on time, and each waited from its due time to the stall's end. Then
    the generator itself stalls 0.3 s: the requests it sent late still count from their due times."""
    stall_s, rate = 1.0, 20.0
    opens_at: list[float] = []
    first = threading.Lock()
    made = itertools.count()

    class Stalling(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            with first:
                if not opens_at:  # the first request arrives when it is due, at 0 s
                    opens_at.append(time.monotonic() + stall_s)
            time.sleep(max(0.0, opens_at[0] - time.monotonic()))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    def request(_: random.Random) -> tuple[str, str, dict[str, object]]:
        if next(made) == 24:  # due at 1.2 s: the generator's loop blocked until 1.5 s
            time.sleep(0.3)
        return "GET", "/", {}

    server = ThreadingHTTPServer(("127.0.0.1", 0), Stalling)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    route = Route("GET /", 1.0, 100.0, request)
    due = [(i / rate, route) for i in range(40)]
    try:
        run = play(f"http://127.0.0.1:{server.server_port}", due, rate, 2.0, timeout_s=10, cpu_of=lambda: 0.0)
    finally:
        server.shutdown()
        server.server_close()
    assert [o.status for o in run.outcomes] == [200] * len(due)
    for o in run.outcomes:
        if o.due_s < stall_s:
            assert o.lag_ms < 100, (o.due_s, o.lag_ms, "sent on time, not after the answers before it")
            assert (stall_s - o.due_s) * 1000 - 50 <= o.ms <= (stall_s - o.due_s) * 1000 + 300, (o.due_s, o.ms)
        elif 1.25 <= o.due_s < 1.5:
            assert o.ms >= (1.5 - o.due_s) * 1000 - 50, (o.due_s, o.ms, "counted from its send, not its due time")
    assert run.p99_ms("GET /") > 900 and not run.holds([route]), "the stall shows in the p99"


def test_reads_are_measured_beside_six_uploads_and_beside_the_heaviest_queries(report):
    data = report["benchmarks"]["lanes"]["data"]
    assert set(data["six_uploads"]["statuses"]) <= {200, 202}, "six uploads fit UPLOAD_WORKERS + UPLOAD_QUEUE"
    assert data["six_uploads"]["during_ms"]["n"] >= 4
    assert data["heavy_queries"]["normal_ms"]["n"] >= 1 and data["heavy_queries"]["heavy_ms"]["n"] >= 1
    assert "422 in" in figure(report, "lanes", "search_max_beside_heavy_queries")["context"]


def test_the_large_space_is_searched_through_a_service_as_the_corpus_is(report):
    data = report["benchmarks"]["retrieval"]["data"]
    large = data["large_space"]
    assert large["chunks"] > data["chunks"], "the replicated space is larger than the corpus it came from"
    assert large["search_ms"]["total"]["n"] == data["service_ms"]["total"]["n"], "every query answered with hits"


def test_growth_names_the_best_fit_of_three(report):
    data = report["benchmarks"]["growth"]["data"]
    assert set(data["fits_wall_s"]) == {"linear", "n log n", "n^1.3"} and data["best_fit"] in data["fits_wall_s"]


def test_scale_out_compares_postgresql_with_sqlite_and_one_process_with_two(report):
    data = report["benchmarks"]["scaleout"]["data"]
    lookups = data["cache"]["lookup_ms"]
    assert lookups["postgresql"]["n"] == lookups["sqlite"]["n"] > 0, "both sides answered every cached request"
    assert data["search"]["one_backend"]["n"] > 0 and data["search"]["two_backends"]["n"] > 0


def test_conversations_time_a_condensed_follow_up_against_its_standalone_form(report):
    result = report["benchmarks"]["conversations"]
    data = result["data"]
    keys = {f["key"] for f in result["figures"]}
    for who in ("follow_up", "first_message"):
        assert {f"{who}_first_citation_over_ask", f"{who}_first_token_over_ask"} <= keys
    rounds = data["follow_up_rounds"]
    assert rounds and all(r["conv"]["condensed"] in ("llm", "history", "fallback") for r in rounds), (
        "a follow-up is condensed"
    )
    assert all(r["conv"]["first_token_ms"] > 0 and r["ask"]["first_token_ms"] > 0 for r in rounds)
    assert all(r["conv"]["condensed"] == "first" for r in data["first_message_rounds"]), "no condense step"
    assert len(data["condense_s"]) == len(rounds), "one [CONDENSE] event per timed follow-up"
