"""Tenants that cannot see each other: with keys limited to spaces, nothing of space B — a document,
a summary, a cached result's age, a running summary, a job — is visible, changeable or deletable
through a key of space A, on any route. The same text uploaded to both spaces is two tenants' data."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from docassist.bench.service import Service, sse
from tests.conftest import xquad_article
from tests.inprocess import start_in_process
from tests.route_sweep import Theirs, sweep

A = {"Authorization": "Bearer key-a"}
B = {"Authorization": "Bearer key-b"}
ADMIN = {"X-API-Key": "key-admin"}
TEXT = "Секретный отчёт.\nВыручка компании выросла на 17 процентов.\nДиректор — Иван Петров."


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory, llama_env: dict[str, str]) -> Iterator[Service]:
    svc = start_in_process(
        tmp_path_factory.mktemp("tenants"),
        API_KEYS="key-admin:*,key-a:space_a,key-b:space_b",
        LLM_CONTEXT_WINDOW="1024",
        **llama_env,
    )
    yield svc
    svc.stop()


def upload(svc: Service, headers: dict, space: str, name: str, data: bytes, **form: str) -> dict:
    files, fields = {"file": (name, data)}, {"space_id": space, "wait": "true", **form}
    r = httpx.post(f"{svc.url}/ingest", headers=headers, files=files, data=fields, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def summarize(svc: Service, headers: dict, space: str, doc_id: str, **extra) -> dict:
    r = httpx.post(
        f"{svc.url}/summarize", headers=headers, json={"doc_id": doc_id, "space_id": space, **extra}, timeout=300
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_the_same_text_in_two_spaces_shares_no_cached_summary(tenants: Service):
    b_doc = upload(tenants, B, "space_b", "report.txt", TEXT.encode())
    b_summary = summarize(tenants, B, "space_b", b_doc["doc_id"])
    # A guesses the text, with a BOM and CRLF line ends (the same extracted text)
    a_doc = upload(tenants, A, "space_a", "guess.txt", b"\xef\xbb\xbf" + TEXT.replace("\n", "\r\n").encode())
    first = summarize(tenants, A, "space_a", a_doc["doc_id"])
    assert first["cached"] is False and "cached_at" not in first["timing"], "nothing of B's cache shows in A"
    forced = summarize(tenants, A, "space_a", a_doc["doc_id"], force=True)
    assert forced["cached"] is False
    again_b = summarize(tenants, B, "space_b", b_doc["doc_id"])
    assert again_b["cached"] is True and again_b["summary"] == b_summary["summary"], "A's force left B's summary"
    assert (
        httpx.delete(
            f"{tenants.url}/documents/{a_doc['doc_id']}", headers=A, params={"space_id": "space_a"}
        ).status_code
        == 200
    )
    assert summarize(tenants, B, "space_b", b_doc["doc_id"])["cached"] is True, "A's delete left B's summary"


@pytest.mark.slow
def test_a_stream_in_one_space_never_joins_a_run_of_another(tenants: Service):
    text = xquad_article("ru", 3).encode()
    b_doc = upload(tenants, B, "space_b", "long.txt", text)
    a_doc = upload(tenants, A, "space_a", "long.txt", text)
    seen: dict[str, list] = {}

    def stream(name: str, headers: dict, space: str, doc_id: str) -> None:
        with (
            httpx.Client(base_url=tenants.url, headers=headers, timeout=300) as c,
            c.stream("POST", "/summarize-stream", json={"doc_id": doc_id, "space_id": space}) as r,
        ):
            seen[name] = list(sse(r))

    threads = [
        threading.Thread(target=stream, args=("b", B, "space_b", b_doc["doc_id"])),
        threading.Thread(target=stream, args=("a", A, "space_a", a_doc["doc_id"])),
    ]
    threads[0].start()
    time.sleep(1.0)  # B's run is under way when A asks for the same text
    threads[1].start()
    for t in threads:
        t.join()
    start_a, complete_a = seen["a"][0][1], seen["a"][-1][1]
    assert start_a["doc_id"] == a_doc["doc_id"] and b_doc["doc_id"] not in str(seen["a"])
    assert complete_a["cached"] is False and complete_a["usage"]["llm_calls"] >= 1, "A ran its own summary"
    log = tenants.log()
    assert f"doc_id={a_doc['doc_id']} strategy=" in log and f"doc_id={b_doc['doc_id']} strategy=" in log


def test_every_route_refuses_a_key_of_another_space_without_telling_what_exists(tenants: Service):
    b_doc = upload(tenants, B, "space_b", "b.txt", "Документ пространства B.".encode(), generate_summary="true")
    conversation = httpx.post(f"{tenants.url}/conversations", headers=B, json={"space_id": "space_b"}, timeout=30)
    assert conversation.status_code == 201, conversation.text
    theirs = Theirs("space_b", b_doc["doc_id"], b_doc["job_id"], conversation.json()["conversation_id"])
    sweep(tenants.url, theirs, headers=A)
    kept = httpx.get(f"{tenants.url}/conversations/{theirs.conversation_id}", headers=B, params={"space_id": "space_b"})
    assert kept.status_code == 200, "B's conversation was not touched"
    unknown = httpx.get(f"{tenants.url}/jobs/{'0' * 32}", headers=A)
    of_b = httpx.get(f"{tenants.url}/jobs/{theirs.job_id}", headers=A)
    assert unknown.status_code == of_b.status_code == 404, "a job of another space looks like no job at all"
    assert unknown.json()["error"]["code"] == of_b.json()["error"]["code"] == "not_found"
    assert httpx.get(f"{tenants.url}/jobs/{theirs.job_id}", headers=B).status_code == 200, "B sees its own job"
    assert (
        httpx.get(f"{tenants.url}/documents/{b_doc['doc_id']}", headers=B, params={"space_id": "space_b"}).status_code
        == 200
    ), "B's document was not touched"


@pytest.mark.slow
def test_deleting_a_document_stops_its_running_summary_and_nothing_is_written_later(tenants: Service):
    text = xquad_article("en", 11).encode()
    doc = upload(tenants, ADMIN, "space_a", "long.txt", text, generate_summary="true")
    with httpx.Client(base_url=tenants.url, headers=ADMIN, timeout=60) as c:
        deadline = time.monotonic() + 120
        while c.get(f"/jobs/{doc['job_id']}").json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert c.delete(f"/documents/{doc['doc_id']}", params={"space_id": "space_a"}).status_code == 200
        assert c.get(f"/jobs/{doc['job_id']}").status_code == 404
        time.sleep(5)
        again = upload(tenants, ADMIN, "space_a", "long.txt", text)
        assert again["doc_id"] == doc["doc_id"]
        assert c.get(f"/documents/{doc['doc_id']}", params={"space_id": "space_a"}).json()["summary_status"] == "none"
        fresh = c.post("/summarize", json={"doc_id": doc["doc_id"], "space_id": "space_a"}, timeout=300).json()
    assert fresh["cached"] is False and fresh["usage"]["resumed_calls"] == 0, "nothing of the deleted run was kept"


@pytest.mark.slow
def test_force_recomputes_instead_of_reusing_an_interrupted_runs_partial_results(tenants: Service):
    doc = upload(tenants, ADMIN, "space_a", "partial.txt", xquad_article("ru", 9).encode())
    request = {"doc_id": doc["doc_id"], "space_id": "space_a"}
    with httpx.Client(base_url=tenants.url, headers=ADMIN, timeout=300) as c:
        with c.stream("POST", "/summarize-stream", json=request) as r:
            for name, data in sse(r):
                if name == "processing" and data["stage"] == "map":
                    break  # leave after the first map output was stored: the run is cancelled
        time.sleep(2)
        forced = c.post("/summarize", json={**request, "force": True}).json()
    assert forced["cached"] is False and forced["usage"]["resumed_calls"] == 0
