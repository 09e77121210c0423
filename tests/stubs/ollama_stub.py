"""A protocol-level STUB of the Ollama server — not Ollama. It speaks Ollama's documented REST
API so docassist's Ollama client side can be tested without a GPU or model weights:
`GET /api/tags`, `POST /api/show`, `POST /api/chat` (one JSON object, or NDJSON lines when
streaming), and the 404 `{"error": "model ... not found"}` Ollama returns for a model it has
not pulled. It records each request's `options` (num_ctx, num_predict). A stub made with
`loop_below` stands for a model that loops: while a request's `options.repeat_penalty` is below
it (Ollama's default is 1.1), the reply writes one sentence over and over."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

REPLY = {
    "Russian": "Документ описывает основные события и выводы; ключевые факты сохранены.",
    "English": "The document describes the main events and conclusions; the key facts are kept.",
}
LOOP = "The document describes the main events. " + "The key facts of the meeting are kept. " * 40
OLLAMA_REPEAT_PENALTY = 1.1  # what Ollama uses when a request does not say


@dataclass
class OllamaStub:
    pulled: set[str]
    context_length: int = 32768
    loop_below: float | None = None  # a model that loops while options.repeat_penalty is below this
    requests: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()
        now = lambda: datetime.now(UTC).isoformat()  # noqa: E731

        def missing(model: str) -> JSONResponse:
            return JSONResponse(status_code=404, content={"error": f"model '{model}' not found"})

        @app.get("/api/tags")
        async def tags() -> dict:
            return {
                "models": [
                    {
                        "name": m,
                        "model": m,
                        "modified_at": now(),
                        "size": 4_113_301_824,
                        "digest": "f974a74358d6" + "0" * 52,
                        "details": {
                            "format": "gguf",
                            "family": "llama",
                            "parameter_size": "7.2B",
                            "quantization_level": "Q4_0",
                        },
                    }
                    for m in sorted(self.pulled)
                ]
            }

        @app.post("/api/show")
        async def show(request: Request) -> Response:
            model = (await request.json()).get("model", "")
            if model not in self.pulled:
                return missing(model)
            return JSONResponse(
                {
                    "modelfile": "FROM " + model,
                    "parameters": "",
                    "template": "{{ .Prompt }}",
                    "details": {"format": "gguf", "family": "llama"},
                    "model_info": {"llama.context_length": self.context_length},
                }
            )

        @app.post("/api/chat")
        async def chat(request: Request) -> Response:
            body = await request.json()
            self.requests.append(body)
            if body["model"] not in self.pulled:
                return missing(body["model"])
            prompt = " ".join(m.get("content", "") for m in body["messages"])
            text = REPLY["Russian" if "Russian" in prompt else "English"]
            penalty = (body.get("options") or {}).get("repeat_penalty", OLLAMA_REPEAT_PENALTY)
            if self.loop_below is not None and penalty < self.loop_below:
                text = LOOP
            stats = {
                "total_duration": 1_200_000_000,
                "load_duration": 1_000_000,
                "prompt_eval_count": len(prompt) // 4,
                "prompt_eval_duration": 100_000_000,
                "eval_count": len(text) // 4,
                "eval_duration": 900_000_000,
            }
            if not body.get("stream", True):
                return JSONResponse(
                    {
                        "model": body["model"],
                        "created_at": now(),
                        "message": {"role": "assistant", "content": text},
                        "done_reason": "stop",
                        "done": True,
                        **stats,
                    }
                )

            async def lines():
                for word in text.split(" "):
                    yield (
                        json.dumps(
                            {
                                "model": body["model"],
                                "created_at": now(),
                                "message": {"role": "assistant", "content": word + " "},
                                "done": False,
                            },
                            ensure_ascii=False,
                        )
                        + "\n"
                    )
                    time.sleep(0)
                yield (
                    json.dumps(
                        {
                            "model": body["model"],
                            "created_at": now(),
                            "message": {"role": "assistant", "content": ""},
                            "done_reason": "stop",
                            "done": True,
                            **stats,
                        }
                    )
                    + "\n"
                )

            return StreamingResponse(lines(), media_type="application/x-ndjson")

        return app
