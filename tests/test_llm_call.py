"""The one LLM call path, against the real llama.cpp server the service started (SPEC.md 4, 7)."""

from __future__ import annotations

import asyncio

import pytest

from pipelines.endpoints import build_endpoints
from pipelines.errors import ContextOverflow, LLMUnavailable
from pipelines.llm import LLMCaller, Prompt, plan_budget
from pipelines.logs import configure_logging
from pipelines.settings import load_settings


@pytest.fixture
def endpoint(http):
    url = http.get("/model-config").json()["endpoints"]["local"]["base_url"]
    return build_endpoints(load_settings({"LLAMA_SERVER_URL": url}), {})["local"]


def test_budget_formula_and_refusal():
    b = plan_budget(8192, 3000, 2048, 64, 64)
    assert (b.available, b.max_tokens) == (5128, 2048)
    assert plan_budget(8192, 7000, 2048, 64, 64).max_tokens == 1128
    with pytest.raises(ContextOverflow):
        plan_budget(8192, 8100, 2048, 64, 64)


def test_completion_respects_the_dynamic_budget_and_logs_it(endpoint, capsys):
    configure_logging()
    prompt = Prompt(user="Озеро Байкал — самое глубокое озеро на планете.\n\nКраткое содержание (1 предложение):")
    result = asyncio.run(LLMCaller(max_tokens=24).complete(endpoint, prompt, purpose="test"))
    assert result.text
    assert 0 < result.completion_tokens <= 24
    assert result.budget.max_tokens == 24 and result.budget.context_window == 8192
    out = capsys.readouterr().out
    assert "[DYNAMIC MAX_TOKENS CALCULATION]" in out and "context_window  = 8,192" in out
    assert "[LLM REQUEST → llama.cpp] Model: gemma-3-270m-q4_k_m" in out
    assert "[LLM RESPONSE ← llama.cpp]" in out and "tokens/sec" in out


def test_prompt_tokens_come_from_the_servers_tokenizer(endpoint):
    text = "Пётр Первый основал Санкт-Петербург в 1703 году."
    count = asyncio.run(endpoint.count_tokens(text))
    assert endpoint._tokenizer_ok is True
    assert 5 < count < endpoint.estimate_tokens(text), "the real count is below the conservative estimate"


def test_overflowing_prompt_is_never_sent(endpoint, capsys):
    configure_logging()
    prompt = Prompt(user="слово " * 9000)
    with pytest.raises(ContextOverflow):
        asyncio.run(LLMCaller(max_tokens=256).complete(endpoint, prompt, purpose="test"))
    assert "[LLM REQUEST" not in capsys.readouterr().out


def test_streaming_yields_deltas_then_the_completion(endpoint):
    async def collect():
        parts = []
        async for item in LLMCaller(max_tokens=16).stream(endpoint, Prompt(user="The sky is"), purpose="test"):
            parts.append(item)
        return parts

    parts = asyncio.run(collect())
    deltas, final = parts[:-1], parts[-1]
    assert deltas and all(isinstance(d, str) for d in deltas)
    assert final.text == "".join(deltas).strip() and final.completion_tokens <= 17


def test_endpoint_down_is_llm_unavailable_naming_it():
    s = load_settings({"LLM_MODE": "vllm", "VLLM_MEDIUM_URL": "http://127.0.0.1:9/v1"})
    medium = build_endpoints(s, {})["medium"]
    with pytest.raises(LLMUnavailable) as err:
        asyncio.run(LLMCaller(max_tokens=32).complete(medium, Prompt(user="hi"), purpose="test"))
    assert "medium" in str(err.value) and "127.0.0.1:9" in str(err.value)
    health = asyncio.run(medium.health())
    assert health["ok"] is False and health["model"] == "openai/gpt-oss-20b"
