"""Token counts for one endpoint: exact where the model's tokenizer is reachable, estimated where not.

Two questions, two methods, one interface:

- `exact(text)` / `exact_prompt(prompt)`: what budgets are computed from. The model's own
  tokenizer — the GGUF's vocabulary loaded in-process for the embedded llama.cpp model (no
  server round trip, so counting never waits behind a generation), vLLM's `POST /tokenize`
  (chat prompts in its messages form, so the chat template and gpt-oss's harmony preamble are
  counted), llama.cpp's `POST /extras/tokenize/count` for a server we do not run. A backend
  without a tokenizer endpoint (Ollama) gets a conservative upper bound instead.
- `estimate(text)` / `estimate_chars(n)`: previews that must not wait for anyone (the plan in
  a stream's `start` event). A cached exact count when there is one, else the length divided
  by the characters per token this endpoint's exact counts have shown so far.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import httpx

from docassist.pipelines.lanes import Lane
from docassist.pipelines.llm.prompts import Prompt

CACHE_SIZE = 4096
CHARS_PER_TOKEN_GUESS = 3.5  # a typical figure, before anything was counted
CHARS_PER_TOKEN_BOUND = 2.0  # conservative: real tokenizers give 2.5–4.5 chars/token
CHAT_TEMPLATE_TOKENS = 16  # role markers around chat messages, where the server cannot count them
IN_LOOP_BYTES = 20_000  # a text this short is tokenized in well under a millisecond
Style = Literal["chat", "completion"]


def _key(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


class TokenCounter:
    """Counts for one model; subclasses say how `_count` reaches its tokenizer."""

    source = "estimate"

    def __init__(self) -> None:
        self.chars_per_token = CHARS_PER_TOKEN_GUESS
        self._cache: OrderedDict[str, int] = OrderedDict()
        self._special: int | None = None  # tokens the tokenizer adds to any text (BOS)

    async def _count(self, text: str) -> int | None:
        """The tokenizer's count of `text` as a prompt, or None when it cannot be reached now."""
        return None

    async def _count_chat(self, prompt: Prompt) -> int | None:
        """The whole chat request as the server renders it, or None to sum the messages."""
        return None

    def _remember(self, key: str, text_len: int, count: int) -> None:
        self._cache[key] = count
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        if text_len >= 200 and count:
            self.chars_per_token += 0.3 * (text_len / count - self.chars_per_token)

    async def exact(self, text: str) -> int:
        """Tokens of `text` as a prompt; a safe upper bound when the tokenizer is unreachable."""
        key = _key(text)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        count = await self._count(text)
        if count is None:
            return math.ceil(len(text) / CHARS_PER_TOKEN_BOUND) + 1
        self._remember(key, len(text), count)
        return count

    async def exact_generated(self, text: str) -> int:
        """Tokens of generated `text` (without the tokens a tokenizer adds to every prompt)."""
        if not text:
            return 0
        if self._special is None:
            self._special = await self.exact("")
        return max(1, await self.exact(text) - self._special)

    async def exact_prompt(self, prompt: Prompt, style: Style) -> int:
        """Tokens of the request one call sends: its text, or its chat messages and template."""
        if style == "completion":
            return await self.exact(prompt.as_text())
        key = _key(f"chat\0{prompt.system}\0{prompt.user}")
        if key in self._cache:
            return self._cache[key]
        rendered = await self._count_chat(prompt)
        if rendered is not None:
            self._cache[key] = rendered
            return rendered
        counts = await asyncio.gather(*(self.exact(m.content or "") for m in prompt.as_messages()))
        return sum(counts) + CHAT_TEMPLATE_TOKENS

    def estimate(self, text: str) -> int:
        """A best guess that asks no one: the cached exact count, else from the text's length."""
        return self._cache.get(_key(text)) or self.estimate_chars(len(text))

    def estimate_chars(self, chars: int) -> int:
        return math.ceil(chars / self.chars_per_token)

    def estimate_prompt(self, prompt: Prompt, style: Style) -> int:
        if style == "completion":
            return self.estimate(prompt.as_text())
        cached = self._cache.get(_key(f"chat\0{prompt.system}\0{prompt.user}"))
        if cached:
            return cached
        return sum(self.estimate(m.content or "") for m in prompt.as_messages()) + CHAT_TEMPLATE_TOKENS

    async def close(self) -> None:
        return None


class GgufVocabulary(TokenCounter):
    """The embedded model's own vocabulary, loaded from its GGUF in-process (no weights): exact
    counts without asking the llama.cpp server, which serves one request at a time. A short text
    is counted on the event loop (quicker than a hand-off); a long one on `lane`, so it neither
    stalls the loop nor takes a thread that searches or storage reads need."""

    source = "GGUF vocabulary (in-process)"

    def __init__(self, gguf: Path, lane: Lane) -> None:
        super().__init__()
        from llama_cpp import Llama

        self._vocab = Llama(model_path=str(gguf), vocab_only=True, verbose=False)
        self._lane = lane

    def _tokens(self, data: bytes) -> int:
        return len(self._vocab.tokenize(data, add_bos=True, special=True))

    async def _count(self, text: str) -> int | None:
        data = text.encode("utf-8")
        if len(data) < IN_LOOP_BYTES:
            return self._tokens(data)
        return await self._lane.run(self._tokens, data)


class ServerTokenizer(TokenCounter):
    """A tokenizer endpoint of the model server (vLLM `POST /tokenize`, llama.cpp
    `POST /extras/tokenize/count`; the backend says which, `backends.py`). Unreachable → an upper
    bound for this call; 404 → never asked again. `messages_form`: the same endpoint also counts a
    chat's messages with the model's template (vLLM)."""

    def __init__(
        self,
        server: str,
        root_url: str,
        model: str,
        timeout_s: float,
        headers: dict[str, str] | None = None,
        *,
        text_path: str,
        text_body: Callable[[str, str], dict[str, Any]],
        messages_form: bool = False,
    ) -> None:
        super().__init__()
        self.root_url, self.model = root_url, model
        self.source = f"{server} tokenizer endpoint"
        self._text_path, self._text_body = text_path, text_body
        self._client = httpx.AsyncClient(timeout=min(30.0, timeout_s), headers=headers)
        self._available = True
        self._chat_available = messages_form

    async def _post(self, path: str, body: dict, unsupported: tuple[int, ...] = (404, 405)) -> int | None:
        """The count; None when the server cannot answer now; -1 when it does not offer this form."""
        try:
            response = await self._client.post(f"{self.root_url}{path}", json=body)
        except httpx.HTTPError:
            return None
        if response.status_code in unsupported:
            return -1
        if not response.is_success:
            return None
        try:
            return int(response.json()["count"])
        except (KeyError, ValueError, TypeError):
            return None

    async def _count(self, text: str) -> int | None:
        if not self._available:
            return None
        count = await self._post(self._text_path, self._text_body(self.model, text))
        if count == -1:
            self._available = False
            return None
        return count

    async def _count_chat(self, prompt: Prompt) -> int | None:
        if not self._chat_available:
            return None
        messages = [{"role": m.role.value, "content": m.content or ""} for m in prompt.as_messages()]
        body = {"model": self.model, "messages": messages, "add_generation_prompt": True}
        count = await self._post("/tokenize", body, unsupported=(400, 404, 405, 422))
        if count == -1:
            self._chat_available = False  # a server without the messages form is not asked again
            return None
        return count

    async def close(self) -> None:
        await self._client.aclose()


class UpperBound(TokenCounter):
    """No tokenizer to ask (Ollama): budgets use a conservative bound of 2 characters per token."""

    source = "upper bound (2 characters per token)"
