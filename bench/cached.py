"""Cached `/summarize`: the pre-computed pattern must answer in a few milliseconds.

After one real summary, N requests for it alternate with N requests to the cheapest
document route (`GET /documents/{id}`: one registry row, no summary), so both see the same
machine. Server time is the service's `Server-Timing` header; client time is context. A
short document, and when the growth benchmark ran before, its longest one too: the
document's size must not matter to a cache hit.
"""

from __future__ import annotations

import time

from docassist.bench.core import Context, Result, ingest, server_ms, summarize
from docassist.bench.stats import ratio, summary

SPACE = "bench_cached"
TEXT = (
    "Казань — столица Республики Татарстан, крупный порт на левом берегу Волги. "
    "Казанский кремль внесён в список всемирного наследия ЮНЕСКО в 2000 году."
)


def measure(ctx: Context, space: str, doc_id: str) -> dict[str, dict[str, float]]:
    """N cached requests alternating with N requests to the document route: distributions in ms."""
    http, body = ctx.http, {"doc_id": doc_id, "space_id": space}
    server, client, lookup, base_server, base_client = [], [], [], [], []
    for _ in range(ctx.sizes.cached_requests):
        started = time.perf_counter()
        r = http.post("/summarize", json=body)
        client.append((time.perf_counter() - started) * 1000)
        data = r.json()
        assert r.status_code == 200 and data["cached"], r.text
        server.append(server_ms(r))
        lookup.append(data["timing"]["lookup_ms"])
        started = time.perf_counter()
        r = http.get(f"/documents/{doc_id}", params={"space_id": space})
        base_client.append((time.perf_counter() - started) * 1000)
        r.raise_for_status()
        base_server.append(server_ms(r))
    return {
        "server_ms": summary(server),
        "client_ms": summary(client),
        "lookup_ms": summary(lookup),
        "document_route_server_ms": summary(base_server),
        "document_route_client_ms": summary(base_client),
    }


def run(ctx: Context) -> Result:
    res = Result("cached", "Cached /summarize")
    doc = ingest(ctx.http, SPACE, "kazan.txt", TEXT)
    computed_s, _ = summarize(ctx.http, SPACE, doc["doc_id"], force=False)
    targets = [("short", SPACE, doc["doc_id"], doc["tokens"])]
    largest = ctx.memo.get("largest_summarized")  # the growth benchmark's longest document, when it ran
    if largest:
        targets.append(("long", largest["space_id"], largest["doc_id"], largest["tokens"]))
    for label, space, doc_id, tokens in targets:
        ctx.log(f"{label} document ({tokens:,} tokens): {ctx.sizes.cached_requests} cached requests")
        m = measure(ctx, space, doc_id)
        s, b, c, lk = m["server_ms"], m["document_route_server_ms"], m["client_ms"], m["lookup_ms"]
        res.add(
            f"server_p99_ms_{label}",
            f"cached /summarize server time p99, {label} document ({tokens:,} tokens)",
            s["p99"],
            "ms",
            goal=("<", 5.0),
            context=f"p50 {s['p50']} ms, max {s['max']} ms over {s['n']} requests; client p50 {c['p50']} / "
            f"p99 {c['p99']} ms; cache lookup p50 {lk['p50']} / p99 {lk['p99']} ms",
        )
        res.add(
            f"server_p50_over_document_route_{label}",
            f"server time p50 vs GET /documents/{{id}}, {label} document",
            ratio(s["p50"], b["p50"]),
            baseline=f"GET /documents/{{id}} p50 {b['p50']} ms, p99 {b['p99']} ms",
            context=f"p99 ratio {ratio(s['p99'], b['p99'])}",
        )
        res.data[label] = {"tokens": tokens, **m}
    res.data["first_summary_s"] = round(computed_s, 2)
    return res
