"""vLLM- and Ollama-specific behaviour against protocol-level STUB servers (tests/stubs/), which
speak the servers' documented wire formats; vLLM and Ollama themselves need a GPU and model
weights that these machines lack. The OpenAI-compatible path itself is covered for real by the
llama.cpp tests. docassist runs for real, in the test process (`tests/inprocess.py`: uvicorn, Qdrant
Edge, real embeddings); the servers' windows are small, so a tree needs only a short document."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from docassist.pipelines.errors import ContextOverflow
from docassist.pipelines.llm.budget import Limits
from docassist.pipelines.llm.caller import LLMCaller
from docassist.pipelines.llm.endpoints import build_endpoints
from docassist.pipelines.llm.prompts import Prompt
from docassist.pipelines.settings import load_settings
from tests.conftest import ingest, sse_events, xquad_article
from tests.inprocess import start_in_process
from tests.stubs.ollama_stub import OllamaStub
from tests.stubs.vllm_stub import REPLY as VLLM_REPLY
from tests.stubs.vllm_stub import VllmStub


class StubServer:
    """Runs a stub's FastAPI app on a free loopback port in a thread."""

    def __init__(self, app) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def vllm(tmp_path_factory) -> Iterator[tuple]:
    medium = VllmStub("openai/gpt-oss-20b", max_model_len=4096, reasoning=True, think_tokens=1600)
    small = VllmStub("mistralai/Mistral-7B-Instruct-v0.3", max_model_len=2048)
    m, s = StubServer(medium.app()), StubServer(small.app())
    svc = start_in_process(
        tmp_path_factory.mktemp("vllm"),
        LLM_MODE="vllm",
        VLLM_MEDIUM_URL=f"{m.url}/v1",
        VLLM_SMALL_URL=f"{s.url}/v1",
        VLLM_MEDIUM_REASONING_EFFORT="medium",  # long enough reasoning to use up a summary's budget
        QDRANT_URL="",
    )
    yield svc, medium, small, m, s
    svc.stop()
    m.stop()
    s.stop()


def test_context_window_is_discovered_from_v1_models(vllm):
    svc, *_ = vllm
    with svc.client() as c:
        cfg = c.get("/model-config").json()
    assert cfg["model_name"] == "openai/gpt-oss-20b" and cfg["provider"] == "vllm"
    assert cfg["context_window"] == 4096, "the server's max_model_len beats config/llm_models.json's 8192"
    assert "max_model_len" in cfg["endpoints"]["medium"]["context_window_source"]
    assert cfg["endpoints"]["small"]["context_window"] == 2048
    with svc.client() as c:
        health = c.get("/health").json()
    assert health["status"] == "ok" and health["checks"]["llm"]["medium"]["failover_to"] == "small"


@pytest.mark.slow
def test_routing_reasoning_and_the_servers_tokenizer(vllm):
    svc, medium, small, *_ = vllm
    with svc.client() as c:
        doc = ingest(c, "v", "doc.txt", (xquad_article("ru", 4) * 2).encode()).json()
        before_small, before_medium = len(small.requests), len(medium.requests)
        r = c.post("/summarize", json={"doc_id": doc["doc_id"], "space_id": "v"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["strategy"] == "tree" and body["language"] == "ru"
    assert body["summary"] == VLLM_REPLY["Russian"], "reasoning text never reaches the summary"
    assert len(small.requests) > before_small, "map calls go to the small slice"
    assert len(medium.requests) > before_medium, "the final pass goes to the medium slice"
    assert all(req["model"] == "mistralai/Mistral-7B-Instruct-v0.3" for req in small.requests)
    # gpt-oss reads its instructions at the top of the user message; Mistral gets a system message
    for req in medium.requests:
        assert [m["role"] for m in req["messages"]] == ["user"]
        assert "Write only in Russian" in req["messages"][0]["content"]
    assert all(req["messages"][0]["role"] == "system" for req in small.requests)
    assert small.tokenize_calls > 0 and medium.tokenize_calls > 0, "prompts are counted by vLLM's /tokenize"
    log = svc.log()
    assert "[REASONING] Empty" in log, "the starved first answer was detected and retried"
    assert "[LLM REQUEST → vLLM] Model: openai/gpt-oss-20b" in log
    assert all(req["stream_options"] == {"include_usage": True} for req in medium.requests)
    efforts = [req.get("reasoning_effort") for req in medium.requests]
    assert "medium" in efforts, "the configured effort goes out"
    assert efforts[efforts.index("medium") + 1] == "low", "the starved call is repeated with low effort"


def test_context_length_error_from_vllm_is_a_resplit_signal():
    """The LLM call path against a stub alone: no `docassist serve` needed."""
    m = StubServer(VllmStub("openai/gpt-oss-20b", max_model_len=16384).app())
    try:
        env = {"LLM_MODE": "vllm", "VLLM_MEDIUM_URL": f"{m.url}/v1", "LLM_CONTEXT_WINDOW": "100000"}
        medium = build_endpoints(load_settings(env), {})["medium"]
        medium.fallback = None
        prompt = Prompt(user="слово " * 20000)
        with pytest.raises(ContextOverflow):
            asyncio.run(LLMCaller(Limits(max_tokens=256)).complete(medium, prompt, purpose="test"))
    finally:
        m.stop()


def test_failover_to_the_other_slice_when_one_is_down(vllm):
    svc, _, _, m, _ = vllm
    m.stop()
    with svc.client() as c:
        doc = ingest(c, "v", "short.txt", "Казань — столица Татарстана.".encode()).json()
        r = c.post("/summarize", json={"doc_id": doc["doc_id"], "space_id": "v"})
        assert r.status_code == 200, r.text
        health = c.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    assert health.json()["checks"]["llm"]["medium"]["ok"] is False
    assert "[FAILOVER] 'medium' is unavailable → 'small'" in svc.log()


def test_an_endpoint_that_times_out_is_a_503_naming_it(tmp_path):
    slow = StubServer(VllmStub("openai/gpt-oss-20b", delay_s=5).app())
    small = StubServer(VllmStub("mistralai/Mistral-7B-Instruct-v0.3", delay_s=5).app())
    svc = start_in_process(
        tmp_path,
        LLM_MODE="vllm",
        VLLM_MEDIUM_URL=f"{slow.url}/v1",
        VLLM_SMALL_URL=f"{small.url}/v1",
        QDRANT_URL="",
        LLM_TIMEOUT_S="1",
    )
    try:
        with svc.client() as c:
            doc = ingest(c, "t", "a.txt", "Казань — столица Татарстана.".encode()).json()
            r = c.post("/summarize", json={"doc_id": doc["doc_id"], "space_id": "t"})
        assert r.status_code == 503
        err = r.json()["error"]
        assert err["code"] == "llm_unavailable" and "timed out" in err["message"] and "'medium'" in err["message"]
    finally:
        svc.stop()
        slow.stop()
        small.stop()


def test_a_model_that_answers_only_whitespace_leaves_the_quote_as_the_answer(tmp_path):
    """Both vLLM slices reply "  \n\t " (finish_reason stop): the reader gets the passage that
    answers, introduced in the question's language and marked as its support — not an empty answer."""
    medium = StubServer(VllmStub("openai/gpt-oss-20b", reply="  \n\t ").app())
    small = StubServer(VllmStub("mistralai/Mistral-7B-Instruct-v0.3", reply="  \n\t ").app())
    svc = start_in_process(
        tmp_path, LLM_MODE="vllm", VLLM_MEDIUM_URL=f"{medium.url}/v1", VLLM_SMALL_URL=f"{small.url}/v1", QDRANT_URL=""
    )
    try:
        with svc.client() as c:
            ingest(c, "w", "report.txt", "Читальный зал закрыли в марте, потому что протекала крыша.".encode())
            r = c.post("/ask", json={"q": "Почему закрывали читальный зал?", "space_id": "w"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["answer"].startswith("В документе сказано: «") and "крыша" in body["answer"], body["answer"]
        assert body["grounded"] is True and body["support"] and body["support"][0]["citation"] == 0, body
    finally:
        svc.stop()
        medium.stop()
        small.stop()


@pytest.fixture(scope="module")
def ollama(tmp_path_factory):
    stub = OllamaStub(pulled={"mistral:7b-instruct"}, loop_below=1.12)  # loops at Ollama's default 1.1
    server = StubServer(stub.app())
    yield stub, server
    server.stop()


def test_ollama_always_sends_num_ctx_and_a_per_call_num_predict_and_a_loop_is_asked_again(ollama, tmp_path):
    """The stub's model loops at Ollama's default repeat_penalty: each call is asked once more with
    Mistral's retry penalty, and the summary is the retry's text."""
    stub, server = ollama
    svc = start_in_process(
        tmp_path, LLM_MODE="ollama", OLLAMA_URL=server.url, OLLAMA_MODEL="mistral:7b-instruct", QDRANT_URL=""
    )
    try:
        with svc.client() as c:
            assert c.get("/health").json()["checks"]["llm"]["ollama"]["ok"] is True
            doc = ingest(c, "o", "en.txt", xquad_article("en", 2).encode()).json()
            body = c.post("/summarize", json={"doc_id": doc["doc_id"], "space_id": "o"}).json()
            streamed = c.post("/summarize-stream", json={"doc_id": doc["doc_id"], "space_id": "o", "force": True})
        assert body["summary"] == "The document describes the main events and conclusions; the key facts are kept."
        assert "event: complete" in streamed.text
        shown = ""  # what a reader shows, applying each `reset`
        for name, data in sse_events(streamed.text):
            if name == "summary":
                shown = data["delta"] if data["reset"] else shown + data["delta"]
        assert shown.strip() == body["summary"], "the looping attempt's text is taken back before the retry's"
        assert stub.requests and all(req["options"]["num_ctx"] == 8192 for req in stub.requests)
        assert all(0 < req["options"]["num_predict"] <= 1024 for req in stub.requests)
        assert "[LLM REQUEST → Ollama] Model: mistral:7b-instruct" in svc.log()
        penalties = [req["options"].get("repeat_penalty") for req in stub.requests]
        assert penalties == [None, 1.15] * 2, "each looping call asked once more, with the retry's repeat_penalty"
        assert svc.log().count("[REPETITION] A sentence came a third time") == 2
    finally:
        svc.stop()


def test_ollama_model_not_pulled_is_a_clear_503(ollama, tmp_path):
    _, server = ollama
    svc = start_in_process(
        tmp_path,
        LLM_MODE="ollama",
        OLLAMA_URL=server.url,
        OLLAMA_MODEL="mistral:7b-instruct-v0.3",
        QDRANT_URL="",
    )
    try:
        with svc.client() as c:
            health = c.get("/health")
            assert health.status_code == 200, "ingest and search still work"
            assert health.json()["capabilities"] == {
                "ingest": "ok",
                "search": "ok",
                "summaries": "down",
                "answers": "down",
            }
            assert "not pulled" in health.json()["checks"]["llm"]["ollama"]["error"]
            assert c.get("/health", params={"require": "summaries"}).status_code == 503
            doc = ingest(c, "o", "a.txt", b"Some English text about rivers and lakes.").json()
            r = c.post("/summarize", json={"doc_id": doc["doc_id"], "space_id": "o"})
        assert r.status_code == 503
        err = r.json()["error"]
        assert err["code"] == "llm_unavailable" and "ollama pull mistral:7b-instruct-v0.3" in err["message"]
    finally:
        svc.stop()
