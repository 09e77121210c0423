"""Ingestion: chunks/s through `POST /ingest` vs embedding the very same chunks in this
process (same model class, same `get_text_embedding_batch` call the service makes), the
service's peak memory, and a new version of a long document (1% changed) vs its first upload.

Each document is ingested and its chunks (the service's extractor and splitter settings,
so the same texts) embedded here, in alternating order. Goal: API chunks/s ≥ 0.9 × pure
embedding. Memory: the service process's resident set sampled every 100 ms during the
ingests (llama.cpp's child process separately, as context). The documents land in the
corpus space the retrieval benchmark fills further.
"""

from __future__ import annotations

import time
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.node_parser import SentenceSplitter

from docassist.bench.core import Context, Result, count_chunks, mb, service_embed_s, timed_ingest
from docassist.bench.corpus import DocFactory
from docassist.bench.service import RssSampler
from docassist.bench.stats import ratio
from docassist.pipelines.documents.extract import extract_text
from docassist.pipelines.documents.ingestion import CHUNK_OVERLAP, CHUNK_TOKENS
from docassist.pipelines.search.embeddings import build_embedding
from docassist.pipelines.settings import load_settings

CORPUS_SPACE = "bench_corpus"
VERSION_SPACE = "bench_versions"


def corpus(ctx: Context) -> dict[str, Any]:
    """The shared corpus space's bookkeeping: documents made, chunks and seconds ingested."""
    return ctx.memo.setdefault("corpus", {"factory": DocFactory(), "docs": [], "chunks": 0, "ingest_s": 0.0})


def add_document(ctx: Context) -> tuple[str, str, float, dict[str, Any]]:
    """Ingest one new corpus document: (filename, text, seconds, response)."""
    c = corpus(ctx)
    filename, text = c["factory"].next(ctx.sizes.ingestion_paragraphs)
    seconds, body = timed_ingest(ctx.http, CORPUS_SPACE, filename, text)
    c["docs"].append(body["doc_id"])
    c["chunks"] += body["chunks"]
    c["ingest_s"] += seconds
    return filename, text, seconds, body


def embed_model(ctx: Context) -> BaseEmbedding:
    if "embed_model" not in ctx.memo:
        settings = load_settings(ctx.service.env)
        ctx.memo["embed_model"] = build_embedding(settings.profile.embedding)
    return ctx.memo["embed_model"]


def run(ctx: Context) -> Result:
    res = Result("ingestion", "Ingestion")
    model = embed_model(ctx)
    splitter = SentenceSplitter(chunk_size=CHUNK_TOKENS, chunk_overlap=CHUNK_OVERLAP)
    splitter.split_text("Warm up. " * 400)
    ctx.in_worker(model.get_text_embedding_batch, ["warm up"])
    rss_before = ctx.service.rss_kb()
    api_s, embed_s, chunks = [], [], []
    with RssSampler(ctx.service.pid) as rss:
        for i in range(ctx.sizes.ingestion_docs):
            c = corpus(ctx)
            filename, text = c["factory"].next(ctx.sizes.ingestion_paragraphs)
            pieces = splitter.split_text(extract_text(filename, text.encode("utf-8")))
            for side in ("api", "embed") if i % 2 == 0 else ("embed", "api"):
                if side == "api":
                    seconds, body = timed_ingest(ctx.http, CORPUS_SPACE, filename, text)
                    c["docs"].append(body["doc_id"])
                    c["chunks"] += body["chunks"]
                    c["ingest_s"] += seconds
                    api_s.append(seconds)
                else:
                    started = time.perf_counter()
                    ctx.in_worker(model.get_text_embedding_batch, pieces)
                    embed_s.append(time.perf_counter() - started)
            count_chunks(res, chunks, filename, body, pieces)
            ctx.log(f"{filename}: {body['chunks']} chunks, API {api_s[-1]:.2f}s, embedding alone {embed_s[-1]:.2f}s")
    embed_step_s = service_embed_s(ctx.service, len(chunks))
    api_rate, embed_rate = sum(chunks) / sum(api_s), sum(chunks) / sum(embed_s)
    res.add(
        "api_chunks_per_s_over_embedding",
        "chunks/s through /ingest vs embedding alone",
        ratio(api_rate, embed_rate),
        baseline=f"embedding alone, in-process: {embed_rate:.2f} chunks/s",
        goal=(">=", 0.9),
        context=f"/ingest {api_rate:.2f} chunks/s over {sum(chunks)} chunks in {len(chunks)} documents; "
        f"the service's own embed step {sum(chunks) / embed_step_s:.2f} chunks/s"
        if embed_step_s
        else "",
    )
    res.add(
        "peak_rss_mb",
        "service peak resident memory during ingestion",
        mb(rss.peak_kb),
        "MB",
        context=f"before {mb(rss_before)} MB; process high-water mark so far {mb(ctx.service.hwm_kb())} MB; "
        f"llama.cpp server {mb(ctx.service.llama_rss_kb())} MB",
    )
    res.add(
        "peak_rss_over_before",
        "peak memory during ingestion vs before",
        ratio(rss.peak_kb, rss_before),
        baseline=f"{mb(rss_before)} MB before",
    )
    version = new_version(ctx, res)
    res.data = {
        "new_version": version,
        "chunks": chunks,
        "api_s": [round(x, 3) for x in api_s],
        "embed_s": [round(x, 3) for x in embed_s],
        "service_embed_s": round(embed_step_s, 3),
        "rss_before_mb": mb(rss_before),
        "rss_peak_mb": mb(rss.peak_kb),
        "hwm_mb": mb(ctx.service.hwm_kb()),
    }
    return res


def new_version(ctx: Context, res: Result) -> dict[str, Any]:
    """A long document uploaded, then again with one paragraph in a hundred changed as its next
    version (`PUT /documents/{id}`): the second upload's time against the first's, the same
    extraction and chunking, only the changed chunks embedded again."""
    factory: DocFactory = corpus(ctx)["factory"]
    paragraphs: list[str] = []
    while len(paragraphs) < ctx.sizes.version_paragraphs:
        paragraphs += factory.next(ctx.sizes.ingestion_paragraphs)[1].split("\n\n")[1:]
    paragraphs = paragraphs[: ctx.sizes.version_paragraphs]
    first_s, body = timed_ingest(ctx.http, VERSION_SPACE, "long_report.txt", "\n\n".join(paragraphs))
    changed = max(1, len(paragraphs) // 100)
    for k in range(changed):  # spread through the document
        at = (k + 1) * len(paragraphs) // (changed + 1)
        paragraphs[at] = paragraphs[at].replace(" the ", " this ", 2) + " This paragraph was revised."
    started = time.perf_counter()
    r = ctx.http.put(
        f"/documents/{body['doc_id']}",
        files={"file": ("long_report.txt", "\n\n".join(paragraphs).encode("utf-8"))},
        data={"space_id": VERSION_SPACE, "wait": "true"},
    )
    r.raise_for_status()
    version_s, again = time.perf_counter() - started, r.json()
    res.add(
        "new_version_over_first_ingest",
        "a new version with 1% of its paragraphs changed vs the document's first upload",
        ratio(version_s, first_s),
        baseline=f"first upload {first_s:.2f}s, {body['chunks']} chunks",
        goal=("<=", 0.15),
        context=f"new version {version_s:.2f}s: {again['reused_chunks']} of {again['chunks']} chunks kept their "
        f"vectors, {changed} of {len(paragraphs)} paragraphs changed",
    )
    ctx.log(f"new version: {version_s:.2f}s vs {first_s:.2f}s; {again['reused_chunks']} of {again['chunks']} reused")
    return {"first_s": round(first_s, 3), "version_s": round(version_s, 3), "reused": again["reused_chunks"],
            "chunks": again["chunks"], "paragraphs": len(paragraphs), "changed": changed}  # fmt: skip
