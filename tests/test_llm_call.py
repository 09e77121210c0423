"""The one LLM call path, against the real llama.cpp server the service started."""

from __future__ import annotations

import asyncio
import json

import pytest

from docassist.pipelines.errors import ContextOverflow, LLMUnavailable
from docassist.pipelines.llm.budget import Limits
from docassist.pipelines.llm.caller import LLMCaller
from docassist.pipelines.llm.endpoints import build_endpoints
from docassist.pipelines.llm.prompts import Prompt
from docassist.pipelines.llm.repetition import most_copies
from docassist.pipelines.logs import configure_logging
from docassist.pipelines.sampling import RepetitionGuard, Sampling
from docassist.pipelines.settings import load_settings


@pytest.fixture
def endpoint(http, service):
    """The service's llama.cpp server as an endpoint we do not run: counted by its tokenizer endpoint."""
    url = http.get("/model-config").json()["endpoints"]["local"]["base_url"]
    env = {"LLAMA_SERVER_URL": url, "LLAMA_SERVER_API_KEY": service.llama_key}
    return build_endpoints(load_settings(env), {})["local"]


def caller(max_tokens: int) -> LLMCaller:
    return LLMCaller(Limits(max_tokens=max_tokens))


def test_budget_formula_and_refusal():
    limits = Limits(max_tokens=2048, safety_margin=64, min_useful_output=64)
    b = limits.call(8192, 3000)
    assert (b.available, b.max_tokens) == (5128, 2048)
    assert limits.call(8192, 7000).max_tokens == 1128
    assert limits.call(8192, 3000, max_output=100).max_tokens == 100
    with pytest.raises(ContextOverflow):
        limits.call(8192, 8100)


def test_part_sizes_leave_room_for_prompt_and_output():
    limits = Limits(max_tokens=2048, safety_margin=64, min_useful_output=64)
    assert limits.part_output(4096, 96, 512) == 512, "capped by the model's maximum output"
    assert limits.part_output(1024, 96, 512) == (1024 - 96 - 64) // 4, "a quarter of what the window leaves"
    assert limits.part_capacity(1024, 96, 512) == 1024 - 96 - 216 - 64
    assert limits.fits(1024, 96, 800, 64) and not limits.fits(1024, 96, 801, 64)


def test_completion_respects_the_dynamic_budget_and_logs_it(endpoint, capsys):
    configure_logging()
    prompt = Prompt(user="Озеро Байкал — самое глубокое озеро на планете.\n\nКраткое содержание (1 предложение):")
    result = asyncio.run(caller(24).complete(endpoint, prompt, purpose="test"))
    assert result.text
    assert 0 < result.completion_tokens <= 24
    assert result.budget.max_tokens == 24 and result.budget.context_window == 8192
    out = capsys.readouterr().out
    assert "[DYNAMIC MAX_TOKENS CALCULATION]" in out and "context_window  = 8,192" in out
    assert "[LLM REQUEST → llama.cpp] Model: gemma-3-270m-q4_k_m" in out
    assert "[LLM RESPONSE ← llama.cpp]" in out and "tokens/sec" in out


def test_prompt_tokens_come_from_the_servers_tokenizer_and_the_local_vocabulary_agrees(endpoint):
    from docassist.pipelines.lanes import Lane
    from docassist.pipelines.llm.llama_server import gguf_path
    from docassist.pipelines.llm.tokens import CHARS_PER_TOKEN_BOUND, GgufVocabulary

    text = "Пётр Первый основал Санкт-Петербург в 1703 году. " * 7
    counted = asyncio.run(endpoint.tokens.exact(text))
    assert endpoint.tokens.source == "llama.cpp tokenizer endpoint"
    assert 20 < counted < len(text) / CHARS_PER_TOKEN_BOUND, "a real count, below the conservative bound"
    vocabulary = GgufVocabulary(gguf_path(), Lane("tokens", 1))
    assert asyncio.run(vocabulary.exact(text)) == counted, "in-process vocabulary = the server's"


def test_overflowing_prompt_is_never_sent(endpoint, capsys):
    configure_logging()
    prompt = Prompt(user="слово " * 9000)
    with pytest.raises(ContextOverflow):
        asyncio.run(caller(256).complete(endpoint, prompt, purpose="test"))
    assert "[LLM REQUEST" not in capsys.readouterr().out


def test_streaming_yields_deltas_then_the_completion(endpoint):
    async def collect():
        parts = []
        async for item in caller(16).stream(endpoint, Prompt(user="The sky is"), purpose="test"):
            parts.append(item)
        return parts

    parts = asyncio.run(collect())
    deltas, final = parts[:-1], parts[-1]
    assert deltas and all(isinstance(d, str) for d in deltas)
    assert final.text == "".join(deltas).strip() and final.completion_tokens <= 17


def test_endpoint_down_is_llm_unavailable_naming_it_and_its_address_only_in_the_log(capsys):
    configure_logging("text")
    s = load_settings({"LLM_MODE": "vllm", "VLLM_MEDIUM_URL": "http://127.0.0.1:9/v1"})
    medium = build_endpoints(s, {})["medium"]
    with pytest.raises(LLMUnavailable) as err:
        asyncio.run(caller(32).complete(medium, Prompt(user="hi"), purpose="test"))
    assert "medium" in str(err.value) and "127.0.0.1" not in str(err.value)
    assert "127.0.0.1:9" in capsys.readouterr().out
    health = asyncio.run(medium.health())
    assert health.state == "down" and not health.ok and health.model == "openai/gpt-oss-20b"


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
        return [p async for p in caller(12).stream(endpoint, prompt, purpose="test")]

    parts = asyncio.run(collect())
    text = "".join(p for p in parts if isinstance(p, str))
    assert text.startswith("According to the text, ") and not text.startswith("According to the text,  ")
    assert parts[-1].text == text.strip()


def test_a_loop_on_the_embedded_server_is_stopped_and_asked_again_with_the_retry_penalties(http, service, tmp_path):
    """Each request carries the model's penalties under llama.cpp's names, DRY's included (llama.cpp's
    own server reads them; the embedded llama-cpp-python server accepts and leaves them unread), and
    a call that writes a sentence a third time is asked again with the retry's. Greedy sampling and
    no penalty on the first call make Gemma loop on this prompt."""
    url = http.get("/model-config").json()["endpoints"]["local"]["base_url"]
    capture = tmp_path / "requests.jsonl"
    env = {
        "LLAMA_SERVER_URL": url,
        "LLAMA_SERVER_API_KEY": service.llama_key,
        "LLM_TEMPERATURE": "0",
        "LLM_CAPTURE_FILE": str(capture),
    }
    local = build_endpoints(load_settings(env), {})["local"]
    first = Sampling(repeat_penalty=1.0, repeat_last_n=64, dry_multiplier=0.8, dry_base=1.75, dry_allowed_length=2)
    retry = Sampling(repeat_penalty=1.3, frequency_penalty=0.5, dry_multiplier=1.5)
    local.spec = local.spec.model_copy(update={"repetition": RepetitionGuard(call=first, retry=retry)})
    prompt = Prompt(user="Write the same sentence ten times.\nThe meeting is over.\nThe meeting is over.\n")
    result = asyncio.run(caller(48).complete(local, prompt, purpose="test"))
    bodies = [json.loads(line)["body"] for line in capture.read_text(encoding="utf-8").splitlines()]
    assert len(bodies) == 2, "the looping call and its retry"
    assert {k: bodies[0][k] for k in first.given()} == first.given()
    assert {k: bodies[1][k] for k in retry.given()} == retry.given()
    assert result.loops and result.loops[0].sentence == "The meeting is over."
    assert most_copies(result.text) < 3
