"""`/summarize-stream` on uncached documents: time to `start`, and to the first summary token.

`start` must go out before any tokenizer or LLM work (goal < 20 ms from the request). The
first model token is compared with the very final-pass request the service sent (captured from
an untimed run of the same document) streamed straight to llama.cpp, both after a KV-cache
flush, in alternating order. With a completion-style model the service's first `summary` delta
is the prompt's primer (the answer's first words, part of the prompt), sent as soon as
llama.cpp answers the request; the first *generated* delta is the one after it.
"""

from __future__ import annotations

import time

from docassist.bench.capture import Request
from docassist.bench.core import Context, Result, ingest, server_ms
from docassist.bench.corpus import text_of_tokens, xquad_article
from docassist.bench.service import sse
from docassist.bench.stats import median, ratio, spread, summary
from docassist.pipelines.llm.prompts import render

SPACE = "bench_stream"
CAPTURE_SPACE = "bench_stream_capture"


def _stream_once(ctx: Context, doc_id: str, primer: str) -> dict[str, float]:
    """Open the stream, note when each milestone arrives, disconnect after the first generated token."""
    times: dict[str, float] = {}
    started = time.perf_counter()
    with ctx.http.stream("POST", "/summarize-stream", json={"doc_id": doc_id, "space_id": SPACE}) as r:
        times["headers_ms"] = (time.perf_counter() - started) * 1000
        times["server_headers_ms"] = server_ms(r)
        for name, data in sse(r):
            now = (time.perf_counter() - started) * 1000
            if name == "start":
                times["start_ms"] = now
                times["start_cached"] = float(bool(data.get("cached")))
            elif name == "summary" and "first_delta_ms" not in times:
                times["first_delta_ms"] = now
                if data["delta"].strip() != primer.strip():
                    times["first_token_ms"] = now
                    break
            elif name == "summary":
                times["first_token_ms"] = now
                break
            elif name in ("complete", "error"):
                times.setdefault("first_token_ms", now)
                break
    return times


def _captured_final_pass(ctx: Context, name: str, text: str) -> Request:
    """Summarize the same text in a space of its own, untimed, and return the final-pass request it
    sent: the timed document stays uncached, and its prompt is the same."""
    doc = ingest(ctx.http, CAPTURE_SPACE, name, text)
    mark = ctx.capture.mark()
    body = {"doc_id": doc["doc_id"], "space_id": CAPTURE_SPACE}
    with ctx.http.stream("POST", "/summarize-stream", json=body) as r:
        for _ in sse(r):
            pass
    return [req for req in ctx.capture.since(mark) if req.stream][-1]


def run(ctx: Context) -> Result:
    res = Result("streaming", "Streaming /summarize-stream")
    style = ctx.service.config["endpoints"][ctx.service.config["endpoint"]]["prompt_style"]
    rows = []
    # One untimed stream first: the service's first /summarize-stream after start-up pays one-off costs
    # (imports, first workflow run) that are not what a warm service's users see; reported as context.
    warm = ingest(ctx.http, SPACE, "warm_up.txt", xquad_article("en", 30)[:600])
    ctx.llama.flush()
    cold = _stream_once(ctx, warm["doc_id"], render("summarize", style, warm["language"], text="").primer)
    ctx.llama.wait_idle()
    for i in range(ctx.sizes.streaming_repeats):
        lang = "en" if i % 2 == 0 else "ru"
        text, tokens = text_of_tokens(xquad_article(lang, 10 + i), ctx.sizes.streaming_tokens, ctx.llama.count)
        doc = ingest(ctx.http, SPACE, f"stream_{i}.txt", text)
        primer = render("summarize", style, doc["language"], text="").primer
        final_pass = _captured_final_pass(ctx, f"stream_{i}.txt", text)
        row: dict[str, float] = {"tokens": tokens}
        order = ("api", "direct") if i % 2 == 0 else ("direct", "api")
        for side in order:
            ctx.llama.flush()
            if side == "api":
                row.update(_stream_once(ctx, doc["doc_id"], primer))
            else:
                first = ctx.llama.send(final_pass, first_token_only=True).first_token_s
                row["direct_first_token_ms"] = (first or 0.0) * 1000
            ctx.llama.wait_idle()
        started = time.perf_counter()
        ctx.http.get(f"/documents/{doc['doc_id']}", params={"space_id": SPACE}).raise_for_status()
        row["document_route_ms"] = (time.perf_counter() - started) * 1000
        rows.append(row)
        ctx.log(
            f"stream {i}: start {row['start_ms']:.1f} ms, first token {row['first_token_ms']:.0f} ms "
            f"(direct {row['direct_first_token_ms']:.0f} ms)"
        )
    start = summary([r["start_ms"] for r in rows], 1)
    first = summary([r["first_token_ms"] for r in rows], 1)
    direct = summary([r["direct_first_token_ms"] for r in rows], 1)
    route = summary([r["document_route_ms"] for r in rows], 1)
    res.add(
        "start_ms",
        "time to `start` event (worst of runs)",
        start["max"],
        "ms",
        goal=("<", 20.0),
        context=f"median {start['p50']} ms over {start['n']} uncached documents; the service's first stream "
        f"after start-up (untimed warm-up): {cold.get('start_ms', 0):.1f} ms",
    )
    res.add(
        "start_over_document_route",
        "time to `start` vs GET /documents/{id}",
        ratio(start["p50"], route["p50"]),
        baseline=f"GET /documents/{{id}} {route['p50']} ms (median)",
    )
    pair = [r["first_token_ms"] / r["direct_first_token_ms"] for r in rows if r.get("direct_first_token_ms")]
    res.add(
        "first_token_over_direct",
        f"time to first generated token vs llama.cpp direct, median of {len(pair)}",
        round(median(pair), 3),
        baseline=f"the same final-pass request streamed straight to llama.cpp: {direct['p50']} ms (median)",
        goal=("<=", 1.10),
        context=f"pairwise {spread(pair)}; service median {first['p50']} ms; first `summary` delta (the primer) "
        f"median {summary([r['first_delta_ms'] for r in rows], 1)['p50']} ms",
    )
    res.data = {
        "first_stream_after_start": cold,
        "runs": rows,
        "start_ms": start,
        "first_token_ms": first,
        "direct_first_token_ms": direct,
    }
    return res
