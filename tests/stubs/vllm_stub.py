"""A protocol-level STUB of vLLM's OpenAI-compatible server — not vLLM. vLLM needs a GPU,
which these machines lack; this speaks its documented wire format so docassist's client side
can be tested: `GET /health`, `GET /v1/models` (with `max_model_len`), `POST /tokenize`,
`POST /v1/chat/completions` (JSON and SSE streaming, `reasoning_content` beside `content` as
vLLM's reasoning parser returns it for gpt-oss), and the 400 error vLLM gives for prompts over
the context length. Replies are canned text in the language the prompt asks for. A stub made
with `loop_below` stands for a model that loops: while a request's `repetition_penalty` (vLLM's
sampling parameter, 1.0 when absent) is below it, the reply writes one sentence over and over.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

TEMPLATE_TOKENS_PER_MESSAGE = 5  # role markers a chat template adds around each message
REPLY = {
    "Russian": "Документ описывает основные события и выводы; ключевые факты сохранены.",
    "English": "The document describes the main events and conclusions; the key facts are kept.",
}
LOOP = "The document describes the main events. " + "The key facts of the meeting are kept. " * 40


@dataclass
class VllmStub:
    model: str
    max_model_len: int = 8192
    reasoning: bool = False  # gpt-oss: reasoning_content beside content
    # As vLLM documents for reasoning models: max_tokens covers reasoning and answer together, so a
    # budget the reasoning uses up ends with finish_reason "length" and no content; a lower
    # reasoning_effort makes the reasoning shorter (here a quarter at "low").
    think_tokens: int = 0
    delay_s: float = 0.0  # a slow server: wait this long before answering a completion
    fail_when: str | None = None  # a faulty server: 500 for every prompt that contains this text
    loop_below: float | None = None  # a model that loops while repetition_penalty is below this
    reply: str | None = None  # a model's reply as it gave it, in place of the canned text (whitespace, say)
    requests: list[dict[str, Any]] = field(default_factory=list)
    tokenize_calls: int = 0

    @staticmethod
    def count(text: str) -> int:
        return len(text) // 4 + 1

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/health")
        async def health() -> Response:
            return Response(status_code=200)

        @app.get("/v1/models")
        async def models() -> dict:
            return {
                "object": "list",
                "data": [
                    {
                        "id": self.model,
                        "object": "model",
                        "created": int(time.time()),
                        "owned_by": "vllm",
                        "root": self.model,
                        "parent": None,
                        "max_model_len": self.max_model_len,
                        "permission": [{"id": f"modelperm-{uuid.uuid4().hex}", "object": "model_permission"}],
                    }
                ],
            }

        @app.post("/tokenize")
        async def tokenize(request: Request) -> dict:
            body = await request.json()
            self.tokenize_calls += 1
            if "messages" in body:  # the messages form renders the chat template first, as vLLM does
                n = sum(self.count(m.get("content", "")) + TEMPLATE_TOKENS_PER_MESSAGE for m in body["messages"])
                n += TEMPLATE_TOKENS_PER_MESSAGE if body.get("add_generation_prompt") else 0
            else:
                n = self.count(body.get("prompt", ""))
            return {"count": n, "max_model_len": self.max_model_len, "tokens": list(range(n)), "token_strs": None}

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Response:
            body = await request.json()
            self.requests.append(body)
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            prompt = " ".join(str(m.get("content", "")) for m in body["messages"])
            if self.fail_when and self.fail_when in prompt:
                return JSONResponse(status_code=500, content={"object": "error", "message": "internal error"})
            prompt_tokens = sum(self.count(str(m.get("content", ""))) for m in body["messages"])
            max_tokens = body.get("max_tokens") or 256
            if prompt_tokens + max_tokens > self.max_model_len:
                return JSONResponse(
                    status_code=400,
                    content={
                        "object": "error",
                        "type": "BadRequestError",
                        "param": None,
                        "code": 400,
                        "message": f"This model's maximum context length is {self.max_model_len} tokens. However, you "
                        f"requested {prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, "
                        f"{max_tokens} in the completion). Please reduce the length of the messages or completion.",
                    },
                )
            language = "Russian" if "Russian" in prompt else "English"
            effort = (body.get("reasoning_effort") or "medium").lower()
            thinking = self.think_tokens if effort != "low" else self.think_tokens // 4
            starved = self.reasoning and max_tokens <= thinking
            looping = self.loop_below is not None and (body.get("repetition_penalty") or 1.0) < self.loop_below
            canned = REPLY[language] if self.reply is None else self.reply
            content = "" if starved else LOOP if looping else canned
            reasoning = "Let me think about the text step by step. " * 8 if self.reasoning else None
            finish = "length" if starved else "stop"
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": min(max_tokens, thinking + 20),
                "total_tokens": prompt_tokens + min(max_tokens, thinking + 20),
            }
            cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
            if not body.get("stream"):
                message: dict[str, Any] = {"role": "assistant", "content": content, "tool_calls": []}
                if reasoning is not None:
                    message["reasoning_content"] = reasoning
                return JSONResponse(
                    {
                        "id": cid,
                        "object": "chat.completion",
                        "created": created,
                        "model": self.model,
                        "choices": [
                            {
                                "index": 0,
                                "message": message,
                                "logprobs": None,
                                "finish_reason": finish,
                                "stop_reason": None,
                            }
                        ],
                        "usage": usage,
                    }
                )

            def chunk(delta: dict, finish_reason: str | None = None) -> str:
                return (
                    "data: "
                    + json.dumps(
                        {
                            "id": cid,
                            "object": "chat.completion.chunk",
                            "created": created,
                            "model": self.model,
                            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
                        },
                        ensure_ascii=False,
                    )
                    + "\n\n"
                )

            async def events():
                yield chunk({"role": "assistant", "content": ""})
                if reasoning:
                    for word in reasoning.split(" ")[:12]:
                        yield chunk({"reasoning_content": word + " "})
                for word in content.split(" ") if content else []:
                    yield chunk({"content": word + " "})
                yield chunk({}, finish)
                if (body.get("stream_options") or {}).get("include_usage"):  # one last chunk: no choices, the usage
                    yield (
                        "data: "
                        + json.dumps(
                            {
                                "id": cid,
                                "object": "chat.completion.chunk",
                                "created": created,
                                "model": self.model,
                                "choices": [],
                                "usage": usage,
                            }
                        )
                        + "\n\n"
                    )
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")

        return app
