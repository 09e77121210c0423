"""Conversations: what a follow-up costs before its first citation and its first answer token.

A follow-up through `POST /conversations/{id}/messages-stream` (the history condensed into a
standalone question by one LLM call, then retrieval and the answer as `/ask-stream` does them)
against the same question — the follow-up's standalone form, as the service rewrote it, asked
alone — through `POST /ask-stream`: same space, same `top_k`, same mode, each after a KV-cache
flush, in alternating order, several rounds. Goal: median of the pairwise ratios ≤ 1.2 for the
first `answer` delta and for the first `citation` event (citations are chosen once the answer is
written, so the latter is close to the whole answer). The first message of a conversation (no
condense step) against `/ask-stream` with the same question shows what the conversation path
costs by itself. The condense step's own seconds come from the service's `[CONDENSE]` log
events, as context: they are where a follow-up's extra time goes.

The benchmark service decodes greedily, so every round rewrites the follow-up the same way; the
rewrites seen are reported.
"""

from __future__ import annotations

import time
from typing import Any

from docassist.bench.core import Context, Result, ingest
from docassist.bench.service import sse
from docassist.bench.stats import median, spread, summary

SPACE = "bench_conversations"
MODE = "auto"
TOP_K = 3
FIRST = "Which river flows out of Lake Baikal?"
FOLLOW_UP = "How deep is it?"
DOCUMENTS = {
    "baikal.txt": (
        "Lake Baikal is a rift lake in Siberia, in Russia. It is the deepest lake on Earth: its deepest point "
        "is 1,642 metres below the surface. Baikal holds about a fifth of the world's fresh surface water. "
        "The Angara is the only river that flows out of Lake Baikal; more than three hundred rivers flow into it."
    ),
    "ladoga.txt": (
        "Lake Ladoga lies in Karelia, north-east of Saint Petersburg. It is the largest lake in Europe, with an "
        "average depth of 51 metres. The Neva flows out of Lake Ladoga into the Gulf of Finland."
    ),
    "volga.txt": (
        "The Volga is the longest river in Europe, about 3,530 kilometres long. It rises in the Valdai Hills "
        "and flows into the Caspian Sea; its largest tributary is the Kama."
    ),
}


def _stream(ctx: Context, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """One streamed answer, timed from the request: the first `answer` delta and the first
    `citation` event; the whole stream is read so that nothing is cancelled mid-answer."""
    out: dict[str, Any] = {}
    started = time.perf_counter()
    with ctx.http.stream("POST", path, json=body) as r:
        r.raise_for_status()
        for name, data in sse(r):
            now = (time.perf_counter() - started) * 1000
            if name == "answer" and "first_token_ms" not in out:
                out["first_token_ms"] = now
            elif name == "citation" and "first_citation_ms" not in out:
                out["first_citation_ms"] = now
            elif name == "error":
                raise RuntimeError(f"{path}: {data}")
            elif name == "complete":
                out["complete_ms"] = now
                out["standalone_question"] = data.get("standalone_question", body["q"])
                out["condensed"] = data.get("condensed", "")
                out["citations"] = len(data.get("citations", []))
                break
    out.setdefault("first_citation_ms", out.get("complete_ms", 0.0))  # none given: the answer's end
    return out


def _ask(ctx: Context, q: str) -> dict[str, Any]:
    return _stream(ctx, "/ask-stream", {"q": q, "space_id": SPACE, "mode": MODE, "top_k": TOP_K})


def _message(ctx: Context, conversation_id: str, q: str) -> dict[str, Any]:
    body = {"q": q, "space_id": SPACE, "mode": MODE, "top_k": TOP_K}
    return _stream(ctx, f"/conversations/{conversation_id}/messages-stream", body)


def _conversation(ctx: Context) -> str:
    r = ctx.http.post("/conversations", json={"space_id": SPACE})
    r.raise_for_status()
    return r.json()["conversation_id"]


def _timed(ctx: Context, fn: Any, *args: Any) -> dict[str, Any]:
    ctx.llama.flush()
    out = fn(ctx, *args)
    ctx.llama.wait_idle()
    return out


def _ratio_figures(res: Result, key: str, what: str, rows: list[dict[str, Any]], baseline: str, context: str) -> None:
    for milestone, label in (("first_citation_ms", "first citation"), ("first_token_ms", "first answer token")):
        pairs = [r["conv"][milestone] / r["ask"][milestone] for r in rows if r["ask"].get(milestone)]
        conv = summary([r["conv"][milestone] for r in rows], 0)
        ask = summary([r["ask"][milestone] for r in rows], 0)
        res.add(
            f"{key}_{milestone.removesuffix('_ms')}_over_ask",
            f"{what}: time to {label} vs /ask-stream, same question, median of {len(pairs)}",
            round(median(pairs), 3),
            baseline=f"/ask-stream with {baseline}: median {ask['p50']:.0f} ms",
            goal=("<=", 1.2),
            context=f"pairwise {spread(pairs)}; conversation median {conv['p50']:.0f} ms{context}",
        )


def run(ctx: Context) -> Result:
    res = Result("conversations", "Conversations: follow-ups against /ask-stream")
    for name, text in DOCUMENTS.items():
        ingest(ctx.http, SPACE, name, text)
    # Untimed warm-up: the first answers after start-up pay one-off costs; it also gives the
    # standalone form the service rewrites the follow-up into (greedy decoding: the same each round).
    _ask(ctx, FIRST)
    warm = _conversation(ctx)
    _message(ctx, warm, FIRST)
    standalone = _message(ctx, warm, FOLLOW_UP)["standalone_question"]
    condense_before = len(ctx.service.events("[CONDENSE]"))
    first_rows: list[dict[str, Any]] = []
    follow_rows: list[dict[str, Any]] = []
    rewrites: list[str] = []
    for i in range(ctx.sizes.conversations_rounds):
        conv_first = i % 2 == 0
        cid = _conversation(ctx)
        first: dict[str, Any] = {}
        follow: dict[str, Any] = {}
        # the first message of a conversation (no condense) against /ask-stream with the same question
        for side in ("conv", "ask") if conv_first else ("ask", "conv"):
            first[side] = _timed(ctx, _message, cid, FIRST) if side == "conv" else _timed(ctx, _ask, FIRST)
        # the follow-up against its standalone form asked alone
        for side in ("conv", "ask") if conv_first else ("ask", "conv"):
            follow[side] = _timed(ctx, _message, cid, FOLLOW_UP) if side == "conv" else _timed(ctx, _ask, standalone)
        rewrites.append(follow["conv"]["standalone_question"])
        first_rows.append(first)
        follow_rows.append(follow)
        ctx.log(
            f"round {i}: follow-up first token {follow['conv']['first_token_ms']:.0f} ms "
            f"(/ask-stream {follow['ask']['first_token_ms']:.0f} ms), first citation "
            f"{follow['conv']['first_citation_ms']:.0f} ms (/ask-stream {follow['ask']['first_citation_ms']:.0f} ms); "
            f"{follow['conv']['condensed']}: {follow['conv']['standalone_question']!r}"
        )
    condense = ctx.service.events("[CONDENSE]")[condense_before:]
    condense_s = [float(e.get("seconds", 0.0)) for e in condense]
    how = sorted({str(e.get("how", "")) for e in condense})
    condense_ctx = (
        f"; the condense step ([CONDENSE] log events, {len(condense_s)}, {', '.join(how)}): "
        f"median {median(condense_s):.2f} s"
        if condense_s
        else "; no [CONDENSE] event logged"
    )
    _ratio_figures(
        res,
        "follow_up",
        "follow-up",
        follow_rows,
        f"its standalone form {standalone!r}",
        condense_ctx,
    )
    _ratio_figures(res, "first_message", "first message (no condense)", first_rows, f"{FIRST!r}", "")
    if len(set(rewrites) | {standalone}) > 1:
        res.notes.append(
            f"the follow-up was rewritten differently across rounds: {sorted(set(rewrites) | {standalone})}"
        )
    res.data = {
        "first": FIRST,
        "follow_up": FOLLOW_UP,
        "standalone": standalone,
        "rewrites": rewrites,
        "mode": MODE,
        "top_k": TOP_K,
        "condense_s": condense_s,
        "condense_how": how,
        "first_message_rounds": first_rows,
        "follow_up_rounds": follow_rows,
    }
    return res
