"""The OpenAI-compatible API, driven by the official `openai` SDK against a real keyed
`docassist serve`: one model per space, a completion with its sources, a streamed completion
after earlier messages with its usage chunk, and OpenAI's errors for a wrong key, another
space's model and a model that is no space."""

from __future__ import annotations

import openai
import pytest
from openai import OpenAI

from tests.conftest import Integrations


def client(it: Integrations, key: str) -> OpenAI:
    return OpenAI(base_url=f"{it.service.url}/v1", api_key=key, timeout=300, max_retries=0)


def test_models_are_the_spaces_a_key_reaches(integrations: Integrations):
    it = integrations
    assert [m.id for m in client(it, it.team_key).models.list()] == ["space:team"]
    every = [m.id for m in client(it, it.admin_key).models.list()]
    assert "space:team" in every and all(m.startswith("space:") for m in every)


def test_a_completion_answers_over_the_space_with_its_sources(integrations: Integrations):
    it = integrations
    done = client(it, it.team_key).chat.completions.create(
        model="space:team", messages=[{"role": "user", "content": "Which river flows out of Lake Baikal?"}]
    )
    assert done.object == "chat.completion" and done.model == "space:team"
    content = done.choices[0].message.content
    assert done.choices[0].finish_reason == "stop"
    answer, sources = content.split("\n\nSources:\n")
    assert answer.strip() and "baikal.txt [1" in sources
    extra = done.model_extra["sources"]
    assert (
        extra[0]["doc_id"] == it.doc_id
        and extra[0]["filename"] == "baikal.txt"
        and "Angara" in " ".join(s["text"] for s in extra)
    )
    # the embedded model answers with the passage, quoted (answer=extractive): no model tokens are spent
    assert done.usage.prompt_tokens == done.usage.completion_tokens == 0
    assert done.model_extra["citations"] and done.model_extra["support"][0]["citation"] == 0
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens


def test_a_streamed_completion_after_earlier_messages(integrations: Integrations):
    it = integrations
    stream = client(it, it.team_key).chat.completions.create(
        model="space:team",
        messages=[
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Tell me about Lake Baikal."},
            {"role": "assistant", "content": "It is a lake in Siberia."},
            {"role": "user", "content": [{"type": "text", "text": "How deep is Lake Baikal?"}]},
        ],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    # the quote, then the Sources list, each its own chunk (the embedded model quotes: answer=extractive)
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 2
    assert "\n\nSources:\n- baikal.txt" in text and text.split("\n\nSources:\n")[0].strip()
    finished = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert len(finished) == 1 and finished[0].model_extra["sources"][0]["doc_id"] == it.doc_id
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert finished[0].model_extra["support"] and "1,600" in text, "the follow-up is answered as it was asked"


def test_errors_are_openais(integrations: Integrations):
    it = integrations
    ask = [{"role": "user", "content": "Which river?"}]
    with pytest.raises(openai.AuthenticationError) as wrong_key:
        client(it, "not-a-key").chat.completions.create(model="space:team", messages=ask)
    assert wrong_key.value.body["type"] == "authentication_error" and wrong_key.value.code == "invalid_api_key"
    with pytest.raises(openai.PermissionDeniedError) as other:
        client(it, it.team_key).chat.completions.create(model="space:ops", messages=ask)
    assert "ops" in other.value.message and other.value.body["type"] == "permission_error"
    with pytest.raises(openai.NotFoundError) as unknown:
        client(it, it.team_key).chat.completions.create(model="gpt-4o", messages=ask)
    assert unknown.value.code == "model_not_found"
    with pytest.raises(openai.UnprocessableEntityError) as empty:
        client(it, it.team_key).chat.completions.create(model="space:team", messages=[])
    assert empty.value.body["type"] == "invalid_request_error" and "messages" in empty.value.message


def test_past_the_keys_answers_in_flight_it_is_openais_rate_limit_error(integrations: Integrations):
    it = integrations
    ask = [{"role": "user", "content": "Describe Lake Baikal in detail."}]
    openai_client = client(it, it.admin_key)  # a key no other test asks with: its places are this test's own
    held = [openai_client.chat.completions.create(model="space:team", messages=ask, stream=True) for _ in range(2)]
    try:  # ANSWERS_PER_KEY (2) answers in flight: the third is refused at once
        with pytest.raises(openai.RateLimitError) as refused:
            openai_client.chat.completions.create(model="space:team", messages=ask)
        assert refused.value.body["type"] == "rate_limit_error" and "ANSWERS_PER_KEY" in refused.value.message
        assert refused.value.response.headers["retry-after"].isdigit()
    finally:
        for stream in held:
            stream.close()


def test_a_follow_up_is_condensed_from_the_earlier_messages(integrations: Integrations):
    it = integrations
    done = client(it, it.team_key).chat.completions.create(
        model="space:team",
        messages=[
            {"role": "user", "content": "Which river flows out of Lake Baikal?"},
            {"role": "assistant", "content": "The Angara.\n\nSources:\n- baikal.txt [1]"},
            {"role": "user", "content": "And how deep is it?"},
        ],
    )
    answer = done.choices[0].message.content.split("\n\nSources:\n")[0]
    assert "do not answer this question" not in answer, "the follow-up was understood as about the lake"
    assert done.model_extra["sources"][0]["doc_id"] == it.doc_id
    log = it.service.log()
    condensed = [
        line for line in log.splitlines() if "'And how deep is it?' →" in line or "retrieval gets 'Which river" in line
    ]
    assert condensed, "the follow-up was condensed from the history before retrieval"


def test_what_cannot_be_honoured_is_refused_naming_the_parameter(integrations: Integrations):
    """Several choices, a forced tool call and JSON output are refused with OpenAI's 400 naming the
    parameter, before any answer: an SDK user hears it, where they used to be ignored."""
    it = integrations
    ask = [{"role": "user", "content": "Which river flows out of Lake Baikal?"}]
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]
    refused = {
        "n": {"n": 2},
        "tool_choice": {"tools": tools, "tool_choice": "required"},
        "response_format": {"response_format": {"type": "json_object"}},
    }
    named_tool = {"tools": tools, "tool_choice": {"type": "function", "function": {"name": "lookup"}}}
    schema = {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}
    cases = [*refused.items(), ("tool_choice", named_tool), ("response_format", {"response_format": schema})]
    calls_before = it.service.log().count("[LLM REQUEST")
    for param, fields in cases:
        with pytest.raises(openai.BadRequestError) as bad:
            client(it, it.team_key).chat.completions.create(model="space:team", messages=ask, **fields)
        error = bad.value
        assert error.status_code == 400 and error.param == param, (param, error.body)
        assert error.body["type"] == "invalid_request_error" and error.code == "unsupported_value"
        assert param in error.message
    assert it.service.log().count("[LLM REQUEST") == calls_before, "refused before any LLM call"


def test_max_tokens_cuts_the_answer_with_finish_reason_length(integrations: Integrations):
    """`max_tokens` (and `max_completion_tokens`) caps the answer: the quote the embedded model
    answers with is cut at a word to fit, `finish_reason: "length"`. `tools` with `tool_choice`
    left to the model ("auto") are accepted: a text answer is what "auto" allows."""
    it = integrations
    ask = [{"role": "user", "content": "Describe Lake Baikal: its depth, its rivers and its ice."}]
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]
    done = client(it, it.team_key).chat.completions.create(
        model="space:team", messages=ask, max_tokens=5, tools=tools, tool_choice="auto"
    )
    assert done.choices[0].finish_reason == "length"
    answer = done.choices[0].message.content.split("\n\nSources:\n")[0]
    assert answer.strip().endswith("…") and len(answer.split()) <= 5, answer
    stream = client(it, it.team_key).chat.completions.create(
        model="space:team", messages=ask, max_completion_tokens=5, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    finished = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finished == ["length"]
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).split("\n\nSources:\n")[0]
    assert streamed == answer


def test_a_model_name_with_a_trailing_newline_is_no_space(integrations: Integrations):
    """`space:team\\n` names no space, even for a key for every space: it is OpenAI's 404, never an
    answer over a space `team\\n` (a regex's `$` matches before a trailing newline)."""
    it = integrations
    ask = [{"role": "user", "content": "Which river flows out of Lake Baikal?"}]
    for key in (it.admin_key, it.team_key):
        with pytest.raises(openai.NotFoundError) as unknown:
            client(it, key).chat.completions.create(model="space:team\n", messages=ask)
        assert unknown.value.code == "model_not_found" and unknown.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.NotFoundError):
        client(it, it.admin_key).chat.completions.create(model="space:pb\n", messages=ask)
