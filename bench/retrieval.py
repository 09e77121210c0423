"""Retrieval on a space of N chunks (10,000 full, 60 quick): the service vs the bare parts, and
Qdrant Edge vs Qdrant local mode on the same points, at N and on a large space.

The corpus space is filled through `POST /ingest` (XQuAD paragraphs in distinct shuffles;
the fill's own throughput is reported: it is embedding-bound). Then each query (XQuAD
questions, Russian and English) goes to `POST /search` and, right after, to the baseline in
this process: the same e5 query embedding and the bare Edge query (`EdgeVectorStore.hybrid`:
dense + BM25 prefetch, DBSF fusion, the request `Store.search` makes) on a copy of the
service's shard — a shard admits one process. The same points are then copied into Qdrant
local mode (the embedded store of earlier releases, `bench/local_mode.py`) and queried the
same way. The large space (100,000 chunks full, 600 quick) is made in the copy from the
space's real chunk embeddings, replicated with small Gaussian noise (their BM25 terms and
payloads unchanged): no embedding run of that size fits a benchmark. `/search` on it goes to a
second service started on the copy (the first one's data directory, its large space added). A few `/ask` calls (mode
`direct`) give the retrieval stage inside `/ask` as a user meets it; their LLM answers make
them too slow for a p99, which `/search` provides.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe
from qdrant_client import models

from docassist.bench.core import Context, Result, mb
from docassist.bench.corpus import xquad_questions
from docassist.bench.ingestion import CORPUS_SPACE, add_document, corpus, embed_model
from docassist.bench.local_mode import LocalModeStore
from docassist.bench.service import start_service
from docassist.bench.stats import ratio, summary
from docassist.pipelines.search import sparse
from docassist.pipelines.search.edge_store import DENSE, SPACE_KEY, SPARSE, EdgeVectorStore, edge_filter
from docassist.pipelines.search.embeddings import embedding_dim
from docassist.pipelines.search.scope import Scope
from docassist.pipelines.search.store import PREFETCH_DEPTH

TOP_K = 5
LARGE_SPACE = "bench_large"
HALF = "bench-half"  # the tag every other corpus document gets: what the scoped searches ask for
NOISE = 0.02  # per-dimension Gaussian noise on the unit-length embeddings of the replicas


def fill(ctx: Context, target: int) -> dict[str, float]:
    """Ingest corpus documents until the space holds `target` chunks; the fill's throughput."""
    held = corpus(ctx)
    started, before = time.perf_counter(), held["chunks"]
    last_report = started
    while held["chunks"] < target:
        add_document(ctx)
        if time.perf_counter() - last_report > 30:
            last_report = time.perf_counter()
            rate = (held["chunks"] - before) / (last_report - started)
            ctx.log(f"fill: {held['chunks']:,}/{target:,} chunks, {rate:.2f} chunks/s")
    seconds = time.perf_counter() - started
    added = held["chunks"] - before
    rate = added / seconds if seconds else 0.0
    return {"chunks": held["chunks"], "added": added, "seconds": round(seconds, 1), "rate": rate}


def queries(n: int) -> list[str]:
    ru, en = xquad_questions("ru"), xquad_questions("en")
    mixed = [q for pair in zip(ru, en, strict=False) for q in pair]
    return [mixed[i % len(mixed)] for i in range(n)]


def edge_query(
    edge: EdgeVectorStore, dense: list[float], question: str, space: str, scope: Scope | None = None
) -> list:
    """The bare Edge query: the request `Store.search` makes, nothing around it."""
    found = edge_filter(space, scope=scope)
    return edge.hybrid(dense, sparse.encode_query(question), found, TOP_K, max(PREFETCH_DEPTH, TOP_K))


def replicate(edge: EdgeVectorStore, source: str, target: str, n: int, seed: int = 0) -> int:
    """Fill `target` with `n` points made from `source`'s: dense vectors plus noise, same terms and payload."""
    rng = np.random.default_rng(seed)
    originals = list(edge.scroll(edge_filter(source), with_vector=True))
    made, batch = 0, []
    while made < n:
        for point in originals[: n - made]:
            dense = np.asarray(point.vector[DENSE]) + rng.normal(0.0, NOISE, len(point.vector[DENSE]))
            payload = {**point.payload, SPACE_KEY: target}
            batch.append(qe.Point(str(uuid.uuid4()), {DENSE: dense.tolist(), SPARSE: point.vector[SPARSE]}, payload))
            made += 1
            if len(batch) == 1024:
                edge.upsert(batch)
                batch = []
    edge.upsert(batch)
    return made


def local_copy(edge: EdgeVectorStore, folder: Path, collection: str, dim: int) -> LocalModeStore:
    """Every point of the shard, unchanged, in a Qdrant local-mode folder."""
    local = LocalModeStore(folder, collection, dim)
    batch = []
    for point in edge.scroll(with_vector=True):
        terms = models.SparseVector(indices=point.vector[SPARSE].indices, values=point.vector[SPARSE].values)
        batch.append(
            models.PointStruct(
                id=str(point.id), vector={DENSE: point.vector[DENSE], SPARSE: terms}, payload=point.payload
            )
        )
        if len(batch) == 512:
            local.client.upsert(collection, batch)
            batch = []
    if batch:
        local.client.upsert(collection, batch)
    return local


def _not_logs(data_dir: Path) -> Callable[[str, list[str]], list[str]]:
    """Copy a data directory without its `logs/`: the pid files there would make the copy's
    service kill this service's llama.cpp and workers as strays."""
    return lambda folder, names: ["logs"] if Path(folder) == data_dir else []


def search_large(ctx: Context, data_dir: Path, questions: list[str]) -> tuple[list[float], list[float]]:
    """`/search` on the large space, through a second service started on the copied data
    directory (the first one's shard admits no other writer); its total and query timings."""
    service = start_service(ctx.workdir / "large-service", DATA_DIR=str(data_dir), LOG_FORMAT="json")
    total, search = [], []
    try:
        with service.client() as http:
            for question in questions:
                answer = http.post("/search", json={"q": question, "space_id": LARGE_SPACE, "top_k": TOP_K})
                answer.raise_for_status()
                if len(answer.json()["sources"]) != TOP_K:
                    raise RuntimeError(f"/search on {LARGE_SPACE} found {len(answer.json()['sources'])} chunks")
                timing = answer.json()["timing"]
                total.append(timing["total_ms"])
                search.append(timing["search_ms"])
    finally:
        service.stop()
    return total, search


def scoped_ms(ctx: Context, question: str) -> float:
    """The hybrid query time of `/search` scoped by a tag half the corpus documents have."""
    body = {"q": question, "space_id": CORPUS_SPACE, "top_k": TOP_K, "tags": [HALF]}
    scoped = ctx.http.post("/search", json=body)
    scoped.raise_for_status()
    return scoped.json()["timing"]["search_ms"]


def timed_ms(fn: Callable[..., Any], *args: Any) -> float:
    started = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - started) * 1000


def run(ctx: Context) -> Result:
    res = Result("retrieval", "Retrieval")
    target = ctx.sizes.retrieval_chunks
    ctx.log(f"filling the corpus space to {target:,} chunks")
    filled = fill(ctx, target)
    ctx.log(f"filled: {filled['chunks']:,} chunks ({filled['added']:,} added at {filled['rate']:.2f} chunks/s)")
    rss_after_fill = ctx.service.rss_kb()
    tagged = tag_half(ctx)

    copy = ctx.workdir / "retrieval-copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(ctx.service.data_dir, copy / "data", ignore=_not_logs(ctx.service.data_dir))
    [shard] = [d for d in (copy / "data" / "qdrant-edge").iterdir() if d.is_dir()]
    model = embed_model(ctx)
    dim = ctx.in_worker(embedding_dim, model)
    edge = EdgeVectorStore(shard, dim)
    local: LocalModeStore | None = None
    try:
        chunks_in_store = edge.count(CORPUS_SPACE)
        svc_total, svc_client, svc_embed, svc_search, base_total, base_embed, base_search = ([] for _ in range(7))
        scoped_search: list[float] = []
        dense_of: dict[str, list[float]] = {}
        for i, question in enumerate(queries(ctx.sizes.retrieval_searches)):
            scoped_first = i % 2 == 0  # the second of two searches runs warmer: which goes first alternates
            if scoped_first:
                scoped_search.append(scoped_ms(ctx, question))
            started = time.perf_counter()
            answer = ctx.http.post("/search", json={"q": question, "space_id": CORPUS_SPACE, "top_k": TOP_K})
            svc_client.append((time.perf_counter() - started) * 1000)
            answer.raise_for_status()
            timing = answer.json()["timing"]
            svc_total.append(timing["total_ms"])
            svc_embed.append(timing["embed_ms"])
            svc_search.append(timing["search_ms"])
            if not scoped_first:
                scoped_search.append(scoped_ms(ctx, question))
            t0 = time.perf_counter()
            dense = dense_of[question] = ctx.in_worker(model.get_query_embedding, question)
            t1 = time.perf_counter()
            ctx.in_worker(edge_query, edge, dense, question, CORPUS_SPACE)
            t2 = time.perf_counter()
            base_embed.append((t1 - t0) * 1000)
            base_search.append((t2 - t1) * 1000)
            base_total.append((t2 - t0) * 1000)
        ctx.log(f"replicating {chunks_in_store:,} chunk embeddings into {ctx.sizes.retrieval_replicated_chunks:,}")
        large = replicate(edge, CORPUS_SPACE, LARGE_SPACE, ctx.sizes.retrieval_replicated_chunks)
        edge.optimize()  # as the service does when it opens a shard (`store.open_edge`)
        probe = list(dense_of.items())
        edge_large, edge_large_scoped = [], []
        for i, (question, dense) in enumerate(probe):  # alternating which goes first, as above
            pair = [(edge_large, None), (edge_large_scoped, Scope(tags=(HALF,)))]
            for timings, scope in pair if i % 2 else pair[::-1]:
                timings.append(timed_ms(edge_query, edge, dense, question, LARGE_SPACE, scope))
        ctx.log(f"copying {edge.count():,} points into Qdrant local mode")
        local = local_copy(edge, copy / "local", shard.name, dim)
        few = probe[: ctx.sizes.retrieval_local_searches]
        local_small = [timed_ms(local.search, dense, question, CORPUS_SPACE, TOP_K) for question, dense in few]
        local_large = [timed_ms(local.search, dense, question, LARGE_SPACE, TOP_K) for question, dense in few]
        edge.close()
        ctx.log(f"/search on the {large:,}-chunk space: a second service on the copy")
        large_total, large_search = search_large(ctx, copy / "data", [question for question, _ in probe])
    finally:
        edge.close()
        if local is not None:
            local.close()
        shutil.rmtree(copy, ignore_errors=True)

    ask_stage, ask_inner = [], []
    for question in queries(ctx.sizes.retrieval_asks):
        answer = ctx.http.post("/ask", json={"q": question, "space_id": CORPUS_SPACE, "mode": "direct", "top_k": 3})
        answer.raise_for_status()
        timing = answer.json()["timing"]
        ask_stage.append(timing["retrieval_s"] * 1000)
        ask_inner.append(timing["retrieval_embed_ms"] + timing["retrieval_search_ms"])

    st, bt, sc = summary(svc_total, 1), summary(base_total, 1), summary(svc_client, 1)
    se, ss, be, bs = summary(svc_embed, 1), summary(svc_search, 1), summary(base_embed, 1), summary(base_search, 1)
    ak, ai = summary(ask_stage, 1), summary(ask_inner, 1)
    el, ls, ll = summary(edge_large, 2), summary(local_small, 1), summary(local_large, 1)
    lt, lq = summary(large_total, 1), summary(large_search, 1)
    space = f"{chunks_in_store:,} chunks"
    sq, eq = summary(scoped_search, 1), summary(edge_large_scoped, 2)
    res.add(
        "scoped_search_p50_over_unscoped",
        "/search scoped by a tag (half the documents) vs the whole space, hybrid query p50",
        ratio(sq["p50"], ss["p50"]),
        baseline=f"unscoped {ss['p50']} ms",
        goal=("<=", 1.1),
        context=f"scoped {sq['p50']} ms p50, {sq['p90']} ms p90; {space}, {tagged} documents tagged",
    )
    res.add(
        "scoped_edge_p50_over_unscoped_large",
        f"bare Edge query scoped by a tag (half the points) vs unscoped, {large:,}-chunk space",
        ratio(eq["p50"], el["p50"]),
        baseline=f"unscoped p50 {el['p50']} ms",
        goal=("<=", 1.1),
        context=f"scoped p50 {eq['p50']} ms, p99 {eq['p99']} ms (n={eq['n']}); the replicated points keep their tags",
    )
    res.add(
        "search_p50_over_in_process",
        f"/search retrieval p50 vs query embedding + bare Edge query ({space})",
        ratio(st["p50"], bt["p50"]),
        baseline=f"in-process p50 {bt['p50']} ms (embed {be['p50']} + Edge query {bs['p50']})",
        goal=("<=", 1.3),
        context=f"service p50 {st['p50']} ms (embed {se['p50']} + query {ss['p50']}); client p50 {sc['p50']} ms",
    )
    res.add(
        "search_p50_ms",
        f"/search retrieval p50 ({space})",
        st["p50"],
        "ms",
        goal=("<=", 40.0),
        context=f"its query part p50 {ss['p50']} ms; the bare Edge query p50 {bs['p50']} ms",
    )
    res.add(
        "search_p99_over_in_process",
        f"/search retrieval p99 vs query embedding + bare Edge query ({space})",
        ratio(st["p99"], bt["p99"]),
        baseline=f"in-process p99 {bt['p99']} ms",
        context=f"service p99 {st['p99']} ms, client p99 {sc['p99']} ms; n={st['n']}",
    )
    res.add(
        "local_mode_over_edge_query",
        f"Qdrant local mode query p50 vs Qdrant Edge, same points ({space})",
        ratio(ls["p50"], bs["p50"]),
        baseline=f"Edge query p50 {bs['p50']} ms",
        context=f"local mode p50 {ls['p50']} ms (n={ls['n']}): the embedded store of earlier releases",
    )
    res.add(
        "large_space_edge_query_p50",
        f"bare Edge query p50 on a {large:,}-chunk space (replicated embeddings)",
        el["p50"],
        "ms",
        baseline=f"Qdrant local mode on the same points p50 {ll['p50']} ms (n={ll['n']})",
        context=f"Edge p99 {el['p99']} ms (n={el['n']}); the space's vectors are the {chunks_in_store:,} real chunk "
        f"embeddings replicated with Gaussian noise σ={NOISE} per dimension, BM25 terms unchanged",
    )
    res.add(
        "large_space_search_p50_ms",
        f"/search retrieval p50 on a {large:,}-chunk space (replicated embeddings)",
        lt["p50"],
        "ms",
        goal=("<=", 60.0),
        baseline=f"the bare Edge query on the same points p50 {el['p50']} ms",
        context=f"its query part p50 {lq['p50']} ms, p99 {lq['p99']} ms; /search p99 {lt['p99']} ms (n={lt['n']}); "
        "a second service on a copy of the first one's data directory with the large space added",
    )
    res.add(
        "ask_retrieval_p50_over_in_process",
        "/ask retrieval stage p50 vs query embedding + bare Edge query",
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
        "local_mode_ms": {"corpus": ls, "large": ll},
        "large_space": {"chunks": large, "edge_query_ms": el, "search_ms": {"total": lt, "search": lq}, "noise": NOISE},
        "ask_retrieval_stage_ms": ak,
        "ask_embed_plus_search_ms": ai,
        "rss_after_fill_mb": mb(rss_after_fill),
    }
    return res


def tag_half(ctx: Context) -> int:
    """Tag every other document of the corpus space (`PATCH /documents/{id}`); how many were."""
    listed = ctx.http.get("/documents", params={"space_id": CORPUS_SPACE, "limit": 1000}).json()["documents"]
    for doc in listed[::2]:
        r = ctx.http.patch(f"/documents/{doc['doc_id']}", params={"space_id": CORPUS_SPACE}, json={"tags": [HALF]})
        r.raise_for_status()
    return len(listed[::2])
