"""One space cannot hold up another: another space's p99 for a read, a search and a one-line upload
while one key runs each of five attacks, against the same p99 with no
attack measured just before it, in the same run. Goal: ≤ 2× for each.

The benchmark starts a service of its own with two keys: `attacker` reaches space `evil` only,
`victim` space `calm` only. The victim's probes arrive at fixed rates whatever the service is doing
(open loop: each request is sent when it is due, from a pool, and its latency counts from that
moment, so a stalled service cannot hide behind a client that waits). Each phase runs for the same
time; the attacks run alongside:

- `mcp_idle_streams`: 512 `GET /mcp` event streams held open (the service answers 405 now; the
  attacker opens each again `REOPEN_S` after it ends).
- `page_renders`: eight clients render, without pause, a PDF page of 40,000 full-page fills
  (a few KB on disk, seconds of drawing: past `PAGE_RENDER_TIMEOUT_S`).
- `mcp_abandoned`: two clients (the key's `ANSWERS_PER_KEY`) call the MCP `ask` tool in summarize
  mode over and over and hang up after 1.5 s each time. Its reference, `asks_within_limits`, is no
  attack: the same asks waited for to the end — what any key may do, and on the CPU-only default
  the LLM's threads then share the two cores with everyone's searches and uploads.
- `upload_flood`: the attacker keeps posting slow uploads (about 60 chunks each) without waiting.
- `metric_labels`: one client sends requests with made-up methods and paths without pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import string
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx

from docassist.bench.core import Context, Result
from docassist.bench.corpus import DocFactory, xquad_paragraphs, xquad_questions
from docassist.bench.pdfs import slow_vector_pdf
from docassist.bench.service import Service, start_service
from docassist.bench.stats import percentile, ratio, summary

ATTACKER, VICTIM = "bench-attacker-key-000000000001", "bench-victim-key-00000000000002"
EVIL, CALM = "evil", "calm"
# what the victim does, and how often (seconds between arrivals)
PROBES = {"read": 0.25, "search": 0.5, "upload": 1.0}
Attack = Callable[[Service, str, threading.Event], None]
REOPEN_S = 10  # an idle stream the service ended is opened again this long after: holding, not flooding
ASKERS = 2  # the attacker's clients that ask: ANSWERS_PER_KEY's default, the most it may have in flight


def _headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Victim:
    """Requests of space `calm` sent at fixed rates from a pool; latency from when each was due."""

    def __init__(self, service: Service, doc_id: str, questions: list[str]) -> None:
        self.service, self.doc_id, self.questions = service, doc_id, questions
        self._n = 0

    def _send(self, http: httpx.Client, probe: str) -> httpx.Response:
        self._n += 1
        if probe == "read":
            return http.get(f"/documents/{self.doc_id}", params={"space_id": CALM})
        if probe == "search":
            q = self.questions[self._n % len(self.questions)]
            return http.post("/search", json={"q": q, "space_id": CALM, "top_k": 5})
        line = f"Calm note {self._n} {random.random():.12f}: the reading room opens at nine.".encode()
        return http.post(
            "/ingest", files={"file": (f"note-{self._n}.txt", line)}, data={"space_id": CALM, "wait": "true"}
        )

    def run(self, seconds: float) -> dict[str, dict[str, list[float] | int]]:
        """Each probe at its rate for `seconds`: latencies (ms) of its answers and how many failed."""
        out: dict[str, dict[str, list[float] | int]] = {p: {"ms": [], "failed": 0} for p in PROBES}
        lock = threading.Lock()
        t0 = time.perf_counter()
        due = sorted((t0 + i * every, probe) for probe, every in PROBES.items() for i in range(int(seconds / every)))

        def one(http: httpx.Client, at: float, probe: str) -> None:
            try:
                r = self._send(http, probe)
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            with lock:
                entry = out[probe]
                entry["ms"].append((time.perf_counter() - at) * 1000)  # type: ignore[union-attr]
                if not ok:
                    entry["failed"] += 1  # type: ignore[operator]

        with self.service.client(timeout=120, **_headers(VICTIM)) as http, ThreadPoolExecutor(24) as pool:
            for at, probe in due:
                time.sleep(max(0.0, at - time.perf_counter()))
                pool.submit(one, http, at, probe)
        return out


# ---------------------------------------------------------------- the attacks
def mcp_idle_streams(service: Service, _doc: str, stop: threading.Event) -> None:
    async def hold(http: httpx.AsyncClient) -> None:
        while not stop.is_set():
            with contextlib.suppress(httpx.HTTPError):
                async with http.stream("GET", "/mcp", headers={"Accept": "text/event-stream"}) as r:
                    async for _ in r.aiter_raw():
                        if stop.is_set():
                            break
            await asyncio.sleep(REOPEN_S)

    async def main() -> None:
        limits = httpx.Limits(max_connections=600, max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=service.url, headers=_headers(ATTACKER), timeout=None, limits=limits
        ) as http:
            tasks = [asyncio.create_task(hold(http)) for _ in range(512)]
            while not stop.is_set():
                await asyncio.sleep(0.2)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


def page_renders(service: Service, pdf_doc: str, stop: threading.Event) -> None:
    def loop() -> None:
        with service.client(timeout=300, **_headers(ATTACKER)) as http:
            while not stop.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    r = http.get(f"/documents/{pdf_doc}/pages/1", params={"space_id": EVIL})
                    if r.status_code == 429:
                        time.sleep(float(r.headers.get("Retry-After", "1")))

    _threads(8, loop, stop)


def mcp_abandoned(service: Service, _doc: str, stop: threading.Event) -> None:
    _mcp_asks(service, stop, hang_up_s=1.5)


def asks_within_limits(service: Service, _doc: str, stop: threading.Event) -> None:
    """Not an attack: the reference for `mcp_abandoned` — the same asks, waited for to the end."""
    _mcp_asks(service, stop, hang_up_s=300)


def _mcp_asks(service: Service, stop: threading.Event, hang_up_s: float) -> None:
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "ask", "arguments": {"space_id": EVIL, "q": "Summarize everything", "mode": "summarize"}},
    }
    headers = {**_headers(ATTACKER), "Accept": "application/json, text/event-stream"}

    def loop() -> None:
        while not stop.is_set():
            # a client of its own each time: hanging up closes the connection
            with contextlib.suppress(httpx.HTTPError), httpx.Client(base_url=service.url, timeout=hang_up_s) as http:
                http.post("/mcp", json=call, headers=headers)

    _threads(ASKERS, loop, stop)


def upload_flood(service: Service, _doc: str, stop: threading.Event) -> None:
    """Slow uploads posted without waiting; deleted when the attack ends (which stops those still
    running), so the next phase starts on a quiet service."""
    factory = DocFactory(seed=40)
    posted: list[str] = []
    with service.client(timeout=60, **_headers(ATTACKER)) as http:
        while not stop.is_set():
            name, text = factory.next(90)
            with contextlib.suppress(httpx.HTTPError):
                r = http.post("/ingest", files={"file": (name, text.encode())}, data={"space_id": EVIL})
                if r.status_code in (200, 202):
                    posted.append(r.json()["doc_id"])
                elif r.status_code == 429:
                    stop.wait(float(r.headers.get("Retry-After", "1")))
        for doc_id in posted:
            with contextlib.suppress(httpx.HTTPError):
                http.delete(f"/documents/{doc_id}", params={"space_id": EVIL})


def metric_labels(service: Service, _doc: str, stop: threading.Event) -> None:
    rnd = random.Random(6)
    with service.client(timeout=30, **_headers(ATTACKER)) as http:
        while not stop.is_set():
            method = "".join(rnd.choices(string.ascii_uppercase, k=rnd.randint(3, 9)))
            path = "/" + "".join(rnd.choices(string.ascii_lowercase, k=12))
            with contextlib.suppress(httpx.HTTPError):
                http.request(method, path)


ATTACKS: dict[str, Attack] = {
    "mcp_idle_streams": mcp_idle_streams,
    "page_renders": page_renders,
    "mcp_abandoned": mcp_abandoned,
    "asks_within_limits": asks_within_limits,
    "upload_flood": upload_flood,
    "metric_labels": metric_labels,
}


def _threads(n: int, loop: Callable[[], None], stop: threading.Event) -> None:
    threads = [threading.Thread(target=loop, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    stop.wait()
    for t in threads:
        t.join(timeout=5)


@contextlib.contextmanager
def attacking(attack: Attack, service: Service, doc: str, seconds: float) -> Iterator[None]:
    """`attack` under way for a while (up to 2 s) before the victim measures; after it, a pause
    (up to 3 s) so that what it left running (an LLM call, an upload's last step) ends."""
    stop = threading.Event()
    thread = threading.Thread(target=attack, args=(service, doc, stop), daemon=True)
    thread.start()
    time.sleep(min(2.0, seconds / 2))
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)
        time.sleep(min(3.0, seconds))


def _seed(service: Service) -> dict[str, str]:
    """The victim's document, the attacker's costly PDF and long document."""
    ids: dict[str, str] = {}
    with service.client(timeout=600, **_headers(VICTIM)) as calm:
        text = "\n\n".join(xquad_paragraphs("ru")[:6])
        r = calm.post("/ingest", files={"file": ("calm.txt", text.encode())}, data={"space_id": CALM, "wait": "true"})
        r.raise_for_status()
        ids["calm"] = r.json()["doc_id"]
    with service.client(timeout=600, **_headers(ATTACKER)) as evil:
        r = evil.post(
            "/ingest",
            files={"file": ("costly.pdf", slow_vector_pdf("A page of forty thousand fills."))},
            data={"space_id": EVIL, "wait": "true"},
        )
        r.raise_for_status()
        ids["pdf"] = r.json()["doc_id"]
        text = "\n\n".join(xquad_paragraphs("en")[:40])
        r = evil.post("/ingest", files={"file": ("long.txt", text.encode())}, data={"space_id": EVIL, "wait": "true"})
        r.raise_for_status()
        ids["long"] = r.json()["doc_id"]
    return ids


def run(ctx: Context) -> Result:
    res = Result("attacks", "Another space's p99 while one key attacks, against no attack")
    seconds = ctx.sizes.attacks_seconds
    # the bench's llama.cpp server: the same two cores, without a second server to start
    llama = {"LLAMA_SERVER_URL": ctx.service.llama_url, "LLAMA_SERVER_API_KEY": ctx.service.llama_key}
    service = start_service(
        ctx.workdir / "attacks",
        LOG_FORMAT="json",
        API_KEYS=f"{ATTACKER}:{EVIL},{VICTIM}:{CALM}",
        **dict(ctx.sizes.service_env),
        **llama,
    )
    try:
        ids = _seed(service)
        victim = Victim(service, ids["calm"], list(xquad_questions("ru")[:40]))
        victim.run(min(5, seconds))  # warm: the first searches and uploads load what they need
        for name, attack in ATTACKS.items():
            doc = ids["pdf"] if name == "page_renders" else ids["long"]  # the others ignore it
            ctx.log(f"attack {name}: the victim alone, then under attack")
            quiet = victim.run(seconds)  # the baseline of this attack, just before it
            with attacking(attack, service, doc, seconds):
                under = victim.run(seconds)
            res.data[name] = {
                when: {p: {**summary(v["ms"]), "failed": v["failed"]} for p, v in probes.items()}
                for when, probes in (("quiet", quiet), ("attacked", under))
            }
            for probe in PROBES:
                p99, base = percentile(under[probe]["ms"], 99), percentile(quiet[probe]["ms"], 99)
                res.add(
                    f"{name}_{probe}_p99",
                    f"{probe} p99 of another space during {name}",
                    ratio(p99, base),
                    baseline="the same probe with no attack, just before",
                    goal=("<=", 2.0),
                    context=f"{p99:.0f} ms against {base:.0f} ms; {under[probe]['failed']} failed",
                )
        res.data["service_log_tail"] = json.dumps(service.log()[-2000:])
    finally:
        service.stop()
    return res
