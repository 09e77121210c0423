"""Remote embeddings: chunks/s through `POST /ingest` when an embedding server embeds them
(`EMBEDDING_KIND=openai`) vs the same server called alone on the same texts.

The server is the vLLM-protocol stub (`embedding_stub.py`: multilingual-e5-small's real vectors on
this machine's CPU — no GPU here), started as a process of its own as a real server runs. A
service of its own (fresh DATA_DIR, the main service's llama.cpp server) sends its passages there.
For each document, in alternating order: the service ingests it (`wait=true`), and the same
chunks — the service's extractor and splitter, the `passage: ` prefix it writes — are posted to
the server directly, `EMBEDDING_BATCH_SIZE` texts to a request and `EMBEDDING_CONCURRENCY`
requests at once, as the service sends them. Goal: /ingest chunks/s ≥ 0.9 × the server alone:
what the service adds (extraction, chunking, BM25, the writes) stays small beside embedding.
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from llama_index.core.node_parser import SentenceSplitter

from docassist.bench.core import Context, Result, count_chunks, service_embed_s, timed_ingest
from docassist.bench.corpus import DocFactory
from docassist.bench.embedding_stub import E5_SMALL, PASSAGE
from docassist.bench.service import Service, start_service
from docassist.bench.stats import ratio
from docassist.pipelines.documents.extract import extract_text
from docassist.pipelines.documents.ingestion import CHUNK_OVERLAP, CHUNK_TOKENS
from docassist.pipelines.llm.llama_server import free_port

SPACE = "bench_remote"
BATCH, CONCURRENCY = 32, 4  # the service's defaults (EMBEDDING_BATCH_SIZE, EMBEDDING_CONCURRENCY)
# the stub embeds on this machine's CPU, one request after another: the fourth of a round waits for
# the three before it, far past the default 30 s a GPU server is given on a busy machine
TIMEOUT_S = 300


def start_server(port: int) -> subprocess.Popen[bytes]:
    """The stub as a server of its own, ready once `/health` answers (its model loaded)."""
    proc = subprocess.Popen([sys.executable, "-m", "docassist.bench.embedding_stub", "--port", str(port)])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the embedding stub did not start")


def embed_alone(client: httpx.Client, url: str, texts: list[str], pool: ThreadPoolExecutor) -> float:
    """Seconds the server takes for `texts` asked as the service asks: batches, in flight at once."""
    batches = [texts[i : i + BATCH] for i in range(0, len(texts), BATCH)]

    def post(batch: list[str]) -> None:
        body = {"model": E5_SMALL, "input": [PASSAGE + t for t in batch], "encoding_format": "base64"}
        client.post(url, json=body).raise_for_status()

    started = time.perf_counter()
    list(pool.map(post, batches))
    return time.perf_counter() - started


def run(ctx: Context) -> Result:
    res = Result("remote_embeddings", "Remote embeddings (an OpenAI-compatible /v1/embeddings server)")
    port = free_port()
    server = start_server(port)
    url = f"http://127.0.0.1:{port}/v1"
    service: Service | None = None
    try:
        llama = {"LLAMA_SERVER_URL": ctx.service.llama_url, "LLAMA_SERVER_API_KEY": ctx.service.llama_key}
        service = start_service(
            ctx.workdir / "remote-embeddings", LOG_FORMAT="json", EMBEDDING_KIND="openai", EMBEDDING_URL=url,
            EMBEDDING_MODEL=E5_SMALL, EMBEDDING_BATCH_SIZE=str(BATCH), EMBEDDING_CONCURRENCY=str(CONCURRENCY),
            EMBEDDING_TIMEOUT_S=str(TIMEOUT_S), **llama,
        )  # fmt: skip
        measure(ctx, res, service, url)
    finally:
        if service is not None:
            service.stop()
        server.kill()
        server.wait()
    return res


def measure(ctx: Context, res: Result, service: Service, url: str) -> None:
    splitter = SentenceSplitter(chunk_size=CHUNK_TOKENS, chunk_overlap=CHUNK_OVERLAP)
    factory = DocFactory(seed=11)
    api_s, alone_s, chunks = [], [], []
    with service.client() as http, httpx.Client(timeout=300) as client, ThreadPoolExecutor(CONCURRENCY) as pool:
        timed_ingest(http, SPACE, "warm-up.txt", "Warm up. " * 50)
        embed_alone(client, f"{url}/embeddings", ["warm up"], pool)
        for i in range(ctx.sizes.ingestion_docs):
            filename, text = factory.next(ctx.sizes.ingestion_paragraphs)
            pieces = splitter.split_text(extract_text(filename, text.encode("utf-8")))
            for side in ("api", "alone") if i % 2 == 0 else ("alone", "api"):
                if side == "api":
                    seconds, body = timed_ingest(http, SPACE, filename, text)
                    api_s.append(seconds)
                else:
                    alone_s.append(embed_alone(client, f"{url}/embeddings", pieces, pool))
            count_chunks(res, chunks, filename, body, pieces)
            ctx.log(f"{filename}: {body['chunks']} chunks, API {api_s[-1]:.2f}s, the server alone {alone_s[-1]:.2f}s")
    embed_step_s = service_embed_s(service, len(chunks))
    api_rate, alone_rate = sum(chunks) / sum(api_s), sum(chunks) / sum(alone_s)
    res.add(
        "api_chunks_per_s_over_server_alone",
        "chunks/s through /ingest with remote embeddings vs the same server called alone",
        ratio(api_rate, alone_rate),
        baseline=f"the server alone, {BATCH} texts a request, {CONCURRENCY} at once: {alone_rate:.2f} chunks/s",
        goal=(">=", 0.9),
        context=f"/ingest {api_rate:.2f} chunks/s over {sum(chunks)} chunks in {len(chunks)} documents; the service's "
        f"embed step {sum(chunks) / embed_step_s:.2f} chunks/s"
        if embed_step_s
        else "",
    )
    res.data = {
        "chunks": chunks,
        "api_s": [round(x, 3) for x in api_s],
        "alone_s": [round(x, 3) for x in alone_s],
        "service_embed_s": round(embed_step_s, 3),
        "server": "bench/embedding_stub.py (vLLM's protocol, multilingual-e5-small on this CPU)",
        "workdir": str(Path(ctx.workdir) / "remote-embeddings"),
    }
