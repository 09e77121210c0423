"""A generation that loops is stopped at a sentence's third copy and asked once more with the
model's stronger penalties; a reader never sees a sentence three times. The texts below are what
Gemma 3 270M wrote on meeting transcripts of the evaluation data. The servers that loop here are
protocol-level STUBS of vLLM and Ollama (tests/stubs/): those servers need a GPU and weights that
these machines lack; the stubs follow the documented penalties (vLLM `repetition_penalty`,
Ollama `options.repeat_penalty`). The embedded llama.cpp server's side is in tests/test_llm_call.py.
"""

from __future__ import annotations

import asyncio

import pytest

from docassist.pipelines.llm.backends import Ollama, backend_for
from docassist.pipelines.llm.budget import Limits
from docassist.pipelines.llm.caller import Completion, LLMCaller
from docassist.pipelines.llm.endpoints import build_endpoints
from docassist.pipelines.llm.prompts import Prompt
from docassist.pipelines.llm.repetition import RepetitionWatch, Restart, most_copies
from docassist.pipelines.logs import configure_logging
from docassist.pipelines.sampling import Sampling
from docassist.pipelines.settings import load_settings
from tests.stubs.vllm_stub import REPLY, VllmStub
from tests.test_vllm_ollama_stubs import StubServer

# qmsum-ES2011d's summary before the guard: one sentence until the budget ran out
ONE_SENTENCE = (
    "Overall, the document reports that the project manager is a good leader and team member .\n"
    "The text reports that the project manager was a good leader and team member .\n"
    "The document reports that the project manager was a good leader and team member .\n"
    "The text reports that the project manager was a good leader and team member .\n"
    "The document reports that the project manager was a good leader and team member .\n"
    "The text reports that the project manager was a good leader and team member .\n"
    "The text reports that the project manager was a good leader and team member .\n"
    "The text reports that"
)
# qmsum-IS1003a's: a cycle of three sentences
CYCLE = (
    "The text reports that the project manager is a person who has to do with the design of an object or a product .\n"
    "The text reports that the project manager is a person who has to do with the production of the product .\n"
    "The text reports that the project manager is a person who has to do with the marketing of the product .\n"
    "The text reports that the project manager is a person who has to do with the technical design of an object "
    "or a product .\n"
    "The text reports that the project manager is a person who has to do with the production of the product .\n"
    "The text reports that the project manager is a person who has to do with the marketing of the product .\n"
    "The text reports that the project manager is a person who has to do with the technical design of an object "
    "or a product .\n"
    "The text reports that the project manager is a person who has to do with the production of the product .\n"
)
# qmsum-ES2011a's (dev): short transcript lines going round
SHORT_LINES = (
    "The text reports that we've covered so far .\n"
    + (
        "Project Manager: {disfmarker}\nUser Interface: {vocalsound}\nIndustrial Designer: {vocalsound}\n"
        "Marketing: {disfmarker}\n"
    )
    * 4
)
# SummEval summaries that do not loop, one with a sentence the article itself repeats
CLEAN = (
    "The text reports that a teacher has been banned from the classroom after he let pupils change their exam "
    "answers. Ian Guffick asked pupils at Mitton Manor Primary School to make the changes. The 31-year-old also "
    "altered a number of the pupil's exam answers himself. Ian Guffick asked pupils at Mitton Manor Primary School "
    "to make the changes. Yes. Yes. The school was told."
)


def watched(text: str, step: int) -> tuple[RepetitionWatch, list[str]]:
    """`text` fed `step` characters at a time, as tokens arrive; what a reader saw after each."""
    watch, seen, shown = RepetitionWatch(), [], ""
    for i in range(0, len(text), step):
        shown += watch.feed(text[i : i + step])
        seen.append(shown)
        if watch.loop:
            break
    else:
        shown += watch.finish()
        seen.append(shown)
    return watch, seen


@pytest.mark.parametrize("step", [1, 4, 13])
def test_a_looping_summary_is_stopped_at_the_third_copy_and_no_reader_ever_sees_it(step):
    for text, sentence in (
        (ONE_SENTENCE, "The text reports that the project manager was a good leader and team member ."),
        (CYCLE, "The text reports that the project manager is a person who has to do with the production of the"),
        (SHORT_LINES, "Project Manager: {disfmarker}\nUser Interface: {vocalsound}"),
    ):
        watch, seen = watched(text, step)
        assert watch.loop is not None and watch.loop.sentence.startswith(sentence)
        assert all(most_copies(shown) < 3 for shown in seen), "no third copy, not even while it is written"
        assert most_copies(watch.shown) == 2 and text.startswith(watch.shown) and len(watch.shown) < len(text)


def test_a_third_copy_cut_off_by_the_budget_counts_and_is_not_shown():
    watch, seen = watched("The cat sat on the mat. The cat sat on the mat. The cat sat on", 3)
    assert watch.loop is not None and watch.loop.sentence == "The cat sat on the mat."
    assert seen[-1] == "The cat sat on the mat. The cat sat on the mat. "


@pytest.mark.parametrize("step", [1, 5])
def test_text_without_a_loop_passes_whole(step):
    watch, seen = watched(CLEAN, step)
    assert watch.loop is None and seen[-1] == CLEAN
    assert most_copies(CLEAN) == 2


def test_each_backend_sends_the_penalties_under_its_servers_names():
    penalties = Sampling(repeat_penalty=1.3, repeat_last_n=256, frequency_penalty=0.5, dry_multiplier=0.8)
    _, llama = backend_for("llama.cpp").sampling(None, penalties)  # type: ignore[arg-type]
    assert llama == {
        "frequency_penalty": 0.5,
        "extra_body": {"repeat_penalty": 1.3, "repeat_last_n": 256, "dry_multiplier": 0.8},
    }
    _, vllm = backend_for("vLLM").sampling(None, penalties)  # type: ignore[arg-type]
    assert vllm == {"frequency_penalty": 0.5, "extra_body": {"repetition_penalty": 1.3}}
    assert backend_for("OpenAI-compatible").sampling(None, penalties)[1] == {"frequency_penalty": 0.5}
    ollama = load_settings({"LLM_MODE": "ollama", "OLLAMA_MODEL": "mistral:7b-instruct"})
    llm = build_endpoints(ollama, {})["ollama"].llm
    copy, kwargs = Ollama().sampling(llm, penalties)
    assert kwargs == {} and copy.additional_kwargs == {
        **llm.additional_kwargs,
        "repeat_penalty": 1.3,
        "repeat_last_n": 256,
        "frequency_penalty": 0.5,
    }


def test_a_vllm_model_that_loops_is_asked_again_with_its_retry_penalty_and_the_reader_sees_no_third_copy(capsys):
    configure_logging("text")
    stub = VllmStub("mistralai/Mistral-7B-Instruct-v0.3", max_model_len=4096, loop_below=1.1)
    server = StubServer(stub.app())
    try:
        small = build_endpoints(load_settings({"LLM_MODE": "vllm", "VLLM_SMALL_URL": f"{server.url}/v1"}), {})["small"]
        retry = small.spec.repetition.retry.repeat_penalty
        assert retry is not None and retry >= 1.1, "a model without settings of its own still retries stronger"

        async def read() -> tuple[list[str], Completion]:
            shown, seen, prompt = "", [], Prompt(user="Summarize the meeting.")
            async for item in LLMCaller(Limits(max_tokens=400)).stream(small, prompt, purpose="final"):
                if isinstance(item, Completion):
                    return seen, item
                shown = "" if isinstance(item, Restart) else shown + item  # a reader drops text at a restart
                seen.append(shown)
            raise AssertionError("no completion")

        seen, final = asyncio.run(read())
    finally:
        server.stop()
    assert [req.get("repetition_penalty") for req in stub.requests] == [None, retry]
    assert all(most_copies(shown) < 3 for shown in seen), "the reader never saw a sentence a third time"
    assert final.text == REPLY["English"] and seen[-1].strip() == final.text
    assert len(final.loops) == 1 and final.loops[0].sentence == "The key facts of the meeting are kept."
    log = capsys.readouterr().out
    assert "[REPETITION] A sentence came a third time" in log
    assert f"repeat_penalty={retry}" in log and "'The key facts of the meeting are kept.' ×3" in log
