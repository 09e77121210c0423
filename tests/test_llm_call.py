"""The one LLM call path, against the real llama.cpp server the service started (SPEC.md 4, 7)."""

from __future__ import annotations

import asyncio

import pytest

from docassist.pipelines.errors import ContextOverflow, LLMUnavailable
from docassist.pipelines.llm.caller import LLMCaller, Prompt, plan_budget
from docassist.pipelines.llm.endpoints import build_endpoints
from docassist.pipelines.logs import configure_logging
from docassist.pipelines.settings import load_settings


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


def test_primer_and_continuation_are_joined_by_exactly_one_space():
    from docassist.pipelines.llm.caller import _joined

    assert _joined("Согласно тексту,", " Ангара.") == "Согласно тексту, Ангара."
    assert _joined("Согласно тексту,", "Ангара.") == "Согласно тексту, Ангара."
    assert _joined("The text reports that", ", in short, rain.") == "The text reports that, in short, rain."
    assert _joined("", "Ангара.") == "Ангара."


def test_completion_answers_stop_before_the_model_writes_the_next_question():
    from docassist.pipelines.llm.prompts import render

    for lang, cue in (("en", "Question:"), ("ru", "Вопрос:")):
        prompt = render("answer", "completion", lang, context="…", question="?")
        assert "\n\n" in prompt.stop and f"\n{cue}" in prompt.stop and cue in prompt.stop
    assert render("summarize", "completion", "en", text="…").stop == ["\n\n"], "summaries keep their own stops"


def test_streamed_completion_puts_a_space_after_the_primer(endpoint):
    async def collect():
        prompt = Prompt(
            user="Lake Baikal is in Siberia.\n\nQuestion: Where is Lake Baikal?\nAnswer: According to the text,",
            primer="According to the text,",
            stop=["\n"],
        )
        return [p async for p in LLMCaller(max_tokens=12).stream(endpoint, prompt, purpose="test")]

    parts = asyncio.run(collect())
    text = "".join(p for p in parts if isinstance(p, str))
    assert text.startswith("According to the text, ") and not text.startswith("According to the text,  ")
    assert parts[-1].text == text.strip()
