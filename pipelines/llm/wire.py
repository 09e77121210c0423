"""What a streamed call sends and reads: the stream opened in the prompt's form, the usage and
finish reason each server puts in its chunks, and reasoning text a server left in the content."""

from __future__ import annotations

import re
from typing import Any

from llama_index.core.llms import LLM

from docassist.pipelines.llm.prompts import Prompt

_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL)
_HARMONY_FINAL = ("<|channel|>final<|message|>", "assistantfinal")


def strip_reasoning(text: str) -> str:
    """Drop reasoning a server left in the content: `<think>` blocks, or gpt-oss's analysis
    channel when no reasoning parser split it off (everything before the final channel)."""
    for marker in _HARMONY_FINAL:
        if marker in text:
            text = text.rsplit(marker, 1)[1]
    return _THINK.sub("", text).replace("<|end|>", "").replace("<|return|>", "")


def separator(generated: str) -> str:
    """A space between the primer and its continuation unless the model wrote one (or punctuation)."""
    return "" if not generated or generated[:1].isspace() or generated[:1] in ",.;:!?" else " "


def usage_of(raw: object) -> dict:
    """Token usage a server reported in a streamed chunk (vLLM's last chunk with include_usage,
    Ollama's final chunk), or {}."""
    usage = getattr(raw, "usage", None) if raw is not None else None
    if usage is None and isinstance(raw, dict):
        usage = raw.get("usage")
        if usage is None and raw.get("eval_count") is not None:
            return {"prompt_tokens": raw.get("prompt_eval_count"), "completion_tokens": raw.get("eval_count")}
    if usage is None:
        return {}
    if isinstance(usage, dict):
        return {k: usage.get(k) for k in ("prompt_tokens", "completion_tokens")}
    return {
        "prompt_tokens": getattr(usage, "prompt_tokens", None),
        "completion_tokens": getattr(usage, "completion_tokens", None),
    }


def finish_reason_of(raw: object) -> str | None:
    choices = getattr(raw, "choices", None) or (raw.get("choices") if isinstance(raw, dict) else None)
    if choices:
        first = choices[0]
        return getattr(first, "finish_reason", None) or (
            first.get("finish_reason") if isinstance(first, dict) else None
        )
    if isinstance(raw, dict) and raw.get("done_reason"):
        return raw["done_reason"]
    return None


async def open_stream(llm: LLM, prompt: Prompt, chat: bool, kwargs: dict[str, Any]) -> Any:
    """The server's stream: chat messages, or the completion form's text with its stops."""
    if chat:
        return await llm.astream_chat(prompt.as_messages(), **kwargs)
    stop = {"stop": prompt.stop} if prompt.stop else {}
    return await llm.astream_complete(prompt.as_text(), formatted=True, **kwargs, **stop)
