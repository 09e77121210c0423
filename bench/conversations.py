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

Two dialogues, one English and one Russian, taken in turn. The benchmark service decodes
greedily, so every round rewrites a follow-up the same way; the rewrites are reported, and how
many answers on each side carried a citation (a rewrite the documents do not answer is declined
at once, with none).
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
# (first question, follow-up): one English and one Russian dialogue, taken in turn by the rounds
DIALOGUES = (
    ("Which river flows out of Lake Baikal?", "How deep is it?"),
    ("Какая река вытекает из Байкала?", "А какова его глубина?"),
)
DOCUMENTS = {
    "baikal.txt": (
        "Lake Baikal is a rift lake in Siberia, in Russia. It is the deepest lake on Earth: its deepest point "
        "is 1,642 metres below the surface. Baikal holds about a fifth of the world's fresh surface water. "
        "The Angara is the only river that flows out of Lake Baikal; more than three hundred rivers flow into it."
    ),
    "baikal_ru.txt": (
        "Байкал — рифтовое озеро в Восточной Сибири. Это самое глубокое озеро на планете: его наибольшая глубина "
        "составляет 1642 метра. Из Байкала вытекает единственная река — Ангара, а впадают в него более трёхсот рек."
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
    # standalone form the service rewrites each follow-up into (greedy decoding: the same each round).
    standalone: dict[str, str] = {}
    for first_q, follow_up in DIALOGUES:
        _ask(ctx, first_q)
        warm = _conversation(ctx)
        _message(ctx, warm, first_q)
        standalone[follow_up] = _message(ctx, warm, follow_up)["standalone_question"]
    condense_before = len(ctx.service.events("[CONDENSE]"))
    first_rows: list[dict[str, Any]] = []
    follow_rows: list[dict[str, Any]] = []
    for i in range(ctx.sizes.conversations_rounds):
        first_q, follow_up = DIALOGUES[(i // 2) % len(DIALOGUES)]
        order = ("conv", "ask") if i % 2 == 0 else ("ask", "conv")
        cid = _conversation(ctx)
        first: dict[str, Any] = {"q": first_q}
        follow: dict[str, Any] = {"q": follow_up, "standalone": standalone[follow_up]}
        # the first message of a conversation (no condense) against /ask-stream with the same question
        for side in order:
            first[side] = _timed(ctx, _message, cid, first_q) if side == "conv" else _timed(ctx, _ask, first_q)
        # the follow-up against its standalone form asked alone
        for side in order:
            follow[side] = (
                _timed(ctx, _message, cid, follow_up) if side == "conv" else _timed(ctx, _ask, standalone[follow_up])
            )
        first_rows.append(first)
        follow_rows.append(follow)
        ctx.log(
            f"round {i}: follow-up first token {follow['conv']['first_token_ms']:.0f} ms "
            f"(/ask-stream {follow['ask']['first_token_ms']:.0f} ms), first citation "
            f"{follow['conv']['first_citation_ms']:.0f} ms (/ask-stream {follow['ask']['first_citation_ms']:.0f} ms); "
            f"{follow['conv']['condensed']}: {follow_up!r} → {follow['conv']['standalone_question']!r}"
        )
    condense = ctx.service.events("[CONDENSE]")[condense_before:]
    condense_s = [float(e.get("seconds", 0.0)) for e in condense]
    how = sorted({str(e.get("how", "")) for e in condense})
    cited = sum(1 for r in follow_rows if r["conv"]["citations"]), sum(1 for r in follow_rows if r["ask"]["citations"])
    condense_ctx = (
        f"; the condense step ([CONDENSE] log events: {len(condense_s)}, {', '.join(how)}): median "
        f"{median(condense_s):.2f} s"
        if condense_s
        else "; no [CONDENSE] event logged"
    )
    n = len(follow_rows)
    condense_ctx += f"; answers with a citation: conversation {cited[0]}/{n}, /ask-stream {cited[1]}/{n}"
    _ratio_figures(res, "follow_up", "follow-up", follow_rows, "its standalone form", condense_ctx)
    _ratio_figures(res, "first_message", "first message (no condense)", first_rows, "the same question", "")
    rewrites = {r["conv"]["standalone_question"] for r in follow_rows}
    if not rewrites <= set(standalone.values()):
        res.notes.append(f"a follow-up was rewritten differently from its warm-up: {sorted(rewrites)}")
    res.notes.append("standalone forms: " + "; ".join(f"{k!r} → {v!r}" for k, v in standalone.items()))
    res.data = {
        "dialogues": [list(d) for d in DIALOGUES],
        "standalone": standalone,
        "mode": MODE,
        "top_k": TOP_K,
        "condense_s": condense_s,
        "condense_how": how,
        "first_message_rounds": first_rows,
        "follow_up_rounds": follow_rows,
    }
    return res
