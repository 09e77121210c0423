"""Retrieval on a space of N chunks (10,000 full, 200 quick): the service vs the bare parts.

The corpus space is filled through `POST /ingest` (XQuAD paragraphs in distinct shuffles;
the fill's own throughput is reported: it is embedding-bound). Then each query (XQuAD
questions, Russian and English) goes to `POST /search` and, right after, to the baseline in
this process: the same e5 query embedding and the same Qdrant Query API call
(`Store.search` in `pipelines/search/store.py`: dense + BM25 prefetch, DBSF fusion) on a copy of the
service's Qdrant folder — Qdrant local mode admits one client per folder. A few `/ask`
calls (mode `direct`) give the retrieval stage inside `/ask` as a user meets it; their LLM
answers make them too slow for a p99, which `/search` provides.
"""

from __future__ import annotations

import shutil
import time

from docassist.bench.core import Context, Result, mb
from docassist.bench.corpus import xquad_questions
from docassist.bench.ingestion import CORPUS_SPACE, add_document, corpus, embed_model
from docassist.bench.stats import ratio, summary
from docassist.pipelines.search.embeddings import embedding_dim
from docassist.pipelines.search.store import Store
from docassist.pipelines.settings import load_settings

TOP_K = 5


def fill(ctx: Context, target: int) -> dict[str, float]:
    """Ingest corpus documents until the space holds `target` chunks; the fill's throughput."""
    c = corpus(ctx)
    started, before = time.perf_counter(), c["chunks"]
    last_report = started
    while c["chunks"] < target:
        add_document(ctx)
        if time.perf_counter() - last_report > 30:
            last_report = time.perf_counter()
            rate = (c["chunks"] - before) / (last_report - started)
            ctx.log(f"fill: {c['chunks']:,}/{target:,} chunks, {rate:.2f} chunks/s")
    seconds = time.perf_counter() - started
    added = c["chunks"] - before
    rate = added / seconds if seconds else 0.0
    return {"chunks": c["chunks"], "added": added, "seconds": round(seconds, 1), "rate": rate}


def queries(n: int) -> list[str]:
    ru, en = xquad_questions("ru"), xquad_questions("en")
    mixed = [q for pair in zip(ru, en, strict=False) for q in pair]
    return [mixed[i % len(mixed)] for i in range(n)]


def run(ctx: Context) -> Result:
    res = Result("retrieval", "Retrieval")
    target = ctx.sizes.retrieval_chunks
    ctx.log(f"filling the corpus space to {target:,} chunks")
    filled = fill(ctx, target)
    ctx.log(f"filled: {filled['chunks']:,} chunks ({filled['added']:,} added at {filled['rate']:.2f} chunks/s)")
    rss_after_fill = ctx.service.rss_kb()

    copy = ctx.workdir / "qdrant-copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(ctx.service.data_dir / "qdrant", copy / "qdrant")
    settings = load_settings({**ctx.service.env, "DATA_DIR": str(copy)})
    model = embed_model(ctx)
    store = Store(settings, ctx.in_worker(embedding_dim, model), settings.profile.embedding.kind)
    try:
        chunks_in_store = store.count(CORPUS_SPACE)
        svc_total, svc_client, svc_embed, svc_search, base_total, base_embed, base_search = ([] for _ in range(7))
        for q in queries(ctx.sizes.retrieval_searches):
            started = time.perf_counter()
            r = ctx.http.post("/search", json={"q": q, "space_id": CORPUS_SPACE, "top_k": TOP_K})
            svc_client.append((time.perf_counter() - started) * 1000)
            r.raise_for_status()
            timing = r.json()["timing"]
            svc_total.append(timing["total_ms"])
            svc_embed.append(timing["embed_ms"])
            svc_search.append(timing["search_ms"])
            t0 = time.perf_counter()
            dense = ctx.in_worker(model.get_query_embedding, q)
            t1 = time.perf_counter()
            ctx.in_worker(store.search, dense, q, CORPUS_SPACE, TOP_K)
            t2 = time.perf_counter()
            base_embed.append((t1 - t0) * 1000)
            base_search.append((t2 - t1) * 1000)
            base_total.append((t2 - t0) * 1000)
    finally:
        store.close()
        shutil.rmtree(copy, ignore_errors=True)

    ask_stage, ask_inner = [], []
    for q in queries(ctx.sizes.retrieval_asks):
        r = ctx.http.post("/ask", json={"q": q, "space_id": CORPUS_SPACE, "mode": "direct", "top_k": 3})
        r.raise_for_status()
        timing = r.json()["timing"]
        ask_stage.append(timing["retrieval_s"] * 1000)
        ask_inner.append(timing["retrieval_embed_ms"] + timing["retrieval_search_ms"])

    st, bt, sc = summary(svc_total, 1), summary(base_total, 1), summary(svc_client, 1)
    se, ss, be, bs = summary(svc_embed, 1), summary(svc_search, 1), summary(base_embed, 1), summary(base_search, 1)
    ak, ai = summary(ask_stage, 1), summary(ask_inner, 1)
    space = f"{chunks_in_store:,} chunks"
    res.add(
        "search_p50_over_in_process",
        f"/search retrieval p50 vs bare embedding + Qdrant query ({space})",
        ratio(st["p50"], bt["p50"]),
        baseline=f"in-process p50 {bt['p50']} ms (embed {be['p50']} + query {bs['p50']})",
        context=f"service p50 {st['p50']} ms (embed {se['p50']} + query {ss['p50']}); client p50 {sc['p50']} ms",
    )
    res.add(
        "search_p99_over_in_process",
        f"/search retrieval p99 vs bare embedding + Qdrant query ({space})",
        ratio(st["p99"], bt["p99"]),
        baseline=f"in-process p99 {bt['p99']} ms",
        context=f"service p99 {st['p99']} ms, client p99 {sc['p99']} ms; n={st['n']}",
    )
    res.add(
        "ask_retrieval_p50_over_in_process",
        "/ask retrieval stage p50 vs bare embedding + Qdrant query",
        ratio(ak["p50"], bt["p50"]),
        baseline=f"in-process p50 {bt['p50']} ms",
        context=f"/ask retrieval stage p50 {ak['p50']} ms, p99 {ak['p99']} ms (n={ak['n']}; includes counting "
        f"the context's tokens on llama.cpp); its embed + query part p50 {ai['p50']} ms",
    )
    res.add(
        "fill_chunks_per_s",
        "corpus fill through /ingest",
        round(filled["rate"], 2),
        "chunks/s",
        context=f"{filled['added']:,} chunks in {filled['seconds']:.0f}s; service memory after the fill "
        f"{mb(rss_after_fill)} MB (high-water mark {mb(ctx.service.hwm_kb())} MB)",
    )
    res.data = {
        "chunks": chunks_in_store,
        "fill": filled,
        "service_ms": {"total": st, "embed": se, "search": ss, "client": sc},
        "in_process_ms": {"total": bt, "embed": be, "search": bs},
        "ask_retrieval_stage_ms": ak,
        "ask_embed_plus_search_ms": ai,
        "rss_after_fill_mb": mb(rss_after_fill),
    }
    return res
