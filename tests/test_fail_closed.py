"""The edges around authorization fail closed, against a real `docassist serve` with a key for
every space, a key given as its SHA-256 hash, and a key limited to one space: what the log
writes, what is on disk, what files and file names are taken, what a limited key is shown, what
the embedded LLM server answers, what a browser is told, and what is left when the service is
killed."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from docassist.bench.service import Service
from docassist.pipelines.health import assess
from docassist.pipelines.llm.endpoints import EndpointHealth, build_endpoints
from docassist.pipelines.search.store import StoreHealth
from docassist.pipelines.settings import load_settings
from docassist.pipelines.storage.database import DatabaseHealth
from tests.conftest import start_service

pytestmark = pytest.mark.slow  # a service of its own, with a fresh data directory and llama.cpp server

ADMIN_KEY = "admin-key-for-every-space-0001"
TEAM_KEY = "team-key-limited-to-team-0002"
HASHED_KEY = "hashed-key-known-only-as-sha256-03"
ADMIN, TEAM, HASHED = ({"X-API-Key": k} for k in (ADMIN_KEY, TEAM_KEY, HASHED_KEY))
API_KEYS = f"{ADMIN_KEY}:*,{TEAM_KEY}:team,sha256:{hashlib.sha256(HASHED_KEY.encode()).hexdigest()}:ops"
RUSSIAN = "Байкал — самое глубокое озеро на Земле. Из него вытекает река Ангара, а впадают сотни рек."


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("closed")
    data = root / "data"
    (data / "logs").mkdir(parents=True)
    loose = data / "logs" / "left-by-an-older-release.log"
    loose.write_text("old")
    os.chmod(data, 0o755)
    os.chmod(data / "logs", 0o755)
    os.chmod(loose, 0o644)
    service = start_service(root, API_KEYS=API_KEYS)  # its own llama.cpp server: its files are tested
    yield service
    service.stop()


def upload(svc: Service, name: str, data: bytes, headers: dict = ADMIN, space: str = "team") -> httpx.Response:
    return httpx.post(
        f"{svc.url}/ingest",
        headers=headers,
        files={"file": (name, data)},
        data={"space_id": space, "wait": "true"},
        timeout=120,
    )


def raw_upload(svc: Service, name: str, data: bytes) -> httpx.Response:
    """The file name exactly as given, in UTF-8 (clients such as httpx percent-encode control
    characters in it; a hostile client need not)."""
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="' + name.encode() + b'"\r\n\r\n' + data
    ) + b'\r\n--b\r\nContent-Disposition: form-data; name="space_id"\r\n\r\nteam\r\n--b--\r\n'
    headers = {**ADMIN, "Content-Type": "multipart/form-data; boundary=b"}
    return httpx.post(f"{svc.url}/ingest", content=body, headers=headers, timeout=120)


def listed(svc: Service, space: str = "team") -> list[str]:
    r = httpx.get(f"{svc.url}/documents", headers=ADMIN, params={"space_id": space}, timeout=30)
    return [d["filename"] for d in r.json()["documents"]]


def test_the_start_says_what_each_key_reaches_and_never_shows_a_key(svc: Service):
    log = svc.log()
    assert "[STARTUP] API keys: 3" in log
    assert "key 1: every space" in log and "key 2: team" in log and "key 3: ops (given as sha256)" in log
    assert ADMIN_KEY not in log and TEAM_KEY not in log and HASHED_KEY not in log


def test_keys_match_only_as_configured(svc: Service):
    ops = httpx.get(f"{svc.url}/documents", headers=HASHED, params={"space_id": "ops"})
    assert ops.status_code == 200, "a key configured by its hash is accepted"
    assert httpx.get(f"{svc.url}/documents", headers=HASHED, params={"space_id": "team"}).status_code == 403
    for sent in ("ключ".encode(), b"????", ADMIN_KEY.upper().encode(), b""):
        r = httpx.get(f"{svc.url}/documents", headers=[(b"X-API-Key", sent)], params={"space_id": "team"})
        assert r.status_code == 401, sent


def test_a_client_cannot_forge_or_colour_a_log_line(svc: Service):
    forged = "/nokey%0A05:59:59.000%20%5Badmin%5D%20%5BDELETE%5D%20Document%20removed%1B%5B31m%E2%80%AE"
    assert httpx.get(svc.url + forged).status_code == 401
    assert httpx.get(f"{svc.url}/documents/a%0Ab%E2%80%A8c", headers=ADMIN).status_code == 404
    time.sleep(0.3)
    log = svc.log()
    assert not any(line.startswith("05:59:59.000 [admin]") for line in log.splitlines()), "a forged log line"
    assert "\x1b" not in log and "\u202e" not in log and "\u2028" not in log
    assert "/nokey\\x0a05:59:59.000 [admin] [DELETE] Document removed\\x1b[31m\\u202e" in log


def test_file_names_that_show_as_something_else_are_refused(svc: Service):
    for name, char in (
        ("invoice\u202etxt.exe.txt", "U+202E"),
        ("report\u2066.txt", "U+2066"),
        ("a\u200bb.txt", "U+200B"),
        ("tab\tin-name.txt", "U+0009"),
        ("bell\x07.txt", "U+0007"),
    ):
        r = raw_upload(svc, name, RUSSIAN.encode())
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input", (name, r.text)
        assert char in r.json()["error"]["message"]
    persian = "می\u200cخواهم.txt"  # the zero-width non-joiner is how Persian is written
    assert upload(svc, persian, "Это текст с персидским именем файла.".encode()).status_code == 200
    assert not [n for n in listed(svc) if n != persian]


def test_utf16_without_a_byte_order_mark_is_read_as_text(svc: Service):
    for codec in ("utf-16-le", "utf-16-be"):
        r = upload(svc, f"baikal-{codec}.txt", (RUSSIAN + f" ({codec})").encode(codec))
        assert r.status_code == 200, r.text
        assert r.json()["language"] == "ru"
        text = httpx.get(f"{svc.url}/documents/{r.json()['doc_id']}/text", headers=ADMIN, params={"space_id": "team"})
        assert RUSSIAN in text.text
    english = "Photosynthesis turns light into chemical energy in plants, algae and some bacteria."
    r = upload(svc, "photosynthesis.txt", english.encode("utf-16-le"))
    assert r.status_code == 200 and r.json()["language"] == "en"


def test_binary_data_named_txt_is_refused_not_stored_as_garbage(svc: Service):
    before = listed(svc)
    r = upload(svc, "random.txt", bytes(range(256)) * 40)
    assert r.status_code == 422 and r.json()["error"]["code"] == "unreadable_document"
    assert "binary" in r.json()["error"]["message"]
    assert listed(svc) == before


def test_deeply_nested_html_says_so_instead_of_no_text(svc: Service):
    html = ("<html><body><p>Озеро Байкал.</p>" + "<div>" * 200_000 + "Ангара" + "</div>" * 200_000).encode()
    r = upload(svc, "deep.html", html)
    assert r.status_code == 422 and r.json()["error"]["code"] == "too_deeply_nested", r.text
    assert "256" in r.json()["error"]["message"]


def test_a_broken_file_is_described_in_words_not_exception_names(svc: Service):
    for name, data in (
        ("broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>"),
        ("broken.docx", b"PK\x03\x04 this is not a zip"),
    ):
        message = upload(svc, name, data).json()["error"]["message"]
        assert name in message and "damaged" in message
        assert not re.search(r"\b[A-Z][a-z]+(?:[A-Z][a-z]*)*(?:Error|Exception)\b", message), message


def test_a_limited_key_sees_models_and_limits_but_no_internal_address(svc: Service):
    limited = httpx.get(f"{svc.url}/model-config", headers=TEAM)
    assert limited.status_code == 200
    body = limited.json()
    assert body["model_name"] == "gemma-3-270m-q4_k_m" and body["context_window"] == 8192
    assert body["endpoints"]["local"]["base_url"] is None
    assert "127.0.0.1" not in limited.text and "http" not in limited.text
    operator = httpx.get(f"{svc.url}/model-config", headers=ADMIN).json()
    assert operator["endpoints"]["local"]["base_url"].startswith("http://127.0.0.1:")
    assert "127.0.0.1" not in httpx.get(f"{svc.url}/health").text


def test_health_shows_what_failed_where_only_to_operators():
    endpoints = build_endpoints(load_settings({"LLM_MODE": "vllm"}), {})
    llm = {
        "medium": EndpointHealth("down", "openai/gpt-oss-20b", "vLLM", error="ConnectError (http://10.9.8.6:8000/v1)"),
        "small": EndpointHealth("ok", "mistralai/Mistral-7B-Instruct-v0.3", "vLLM"),
    }
    report = assess(
        StoreHealth(False, "server", error="ConnectError: [Errno 111] Connection refused (http://10.9.8.7:6333)"),
        DatabaseHealth(True, "postgresql"),
        None,
        llm,
        {"map": endpoints["small"], "reduce": endpoints["medium"], "answer": endpoints["medium"]},
    )
    assert "10.9.8.7" in " ".join(report.reasons) and "10.9.8.6" in " ".join(report.reasons)
    public = report.without_details()
    assert public.status == report.status == "unavailable" and public.capabilities == report.capabilities
    assert public.reasons == ["vector store is down", "LLM endpoint 'medium' is down"]
    assert "10.9.8" not in str(public)


def test_the_embedded_llm_server_answers_docassist_only(svc: Service):
    url = httpx.get(f"{svc.url}/model-config", headers=ADMIN).json()["endpoints"]["local"]["base_url"]
    assert httpx.get(f"{url}/models").status_code == 401
    assert httpx.post(f"{url}/completions", json={"prompt": "Hi", "max_tokens": 1}).status_code == 401
    assert httpx.get(f"{url}/models", headers=svc.llama_headers).status_code == 200
    pid = int((svc.data_dir / "logs" / "llama-server.pid").read_text())
    assert svc.llama_key.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes(), "visible to every local user"
    assert stat.S_IMODE((svc.data_dir / "logs" / "llama-server.key").stat().st_mode) == 0o600
    assert httpx.get(f"{svc.url}/health").json()["checks"]["llm"]["local"]["state"] in ("ok", "busy")


def test_every_answer_carries_the_browser_protections(svc: Service):
    for path, headers in (("/", {}), ("/docs", {}), ("/health", {}), ("/openapi.json", {}), ("/documents", ADMIN)):
        r = httpx.get(f"{svc.url}{path}", headers=headers, params={"space_id": "team"})
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
    assert httpx.get(f"{svc.url}/redoc", headers=ADMIN).status_code == 404, "one API reference, /docs"


def test_small_edges(svc: Service):
    r = httpx.post(f"{svc.url}/documents/abc", headers=ADMIN)
    assert r.status_code == 405 and set(r.headers["allow"].split(", ")) == {"GET", "PUT", "PATCH", "DELETE"}
    head = httpx.head(f"{svc.url}/health")
    assert head.status_code == 200 and head.content == b""
    long_id = "x" * 10_000
    r = httpx.get(f"{svc.url}/documents/{long_id}", headers=ADMIN, params={"space_id": "team"})
    assert r.status_code == 404 and len(r.content) < 600 and r.text.count("x" * 80) == 1


def test_the_data_directory_is_readable_by_its_user_only(svc: Service):
    assert upload(svc, "perm.txt", "Файл для проверки прав доступа.".encode()).status_code == 200
    seen = {svc.data_dir}
    for root, dirs, files in os.walk(svc.data_dir):
        seen |= {Path(root) / d for d in dirs} | {Path(root) / f for f in files}
    for path in seen:
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {mode:o}"
    names = {p.name for p in seen}
    expected = {
        "docassist.sqlite3",
        "qdrant-edge",
        "llama-server.log",
        "llama-server.key",
        "left-by-an-older-release.log",
    }
    assert expected <= names
    assert "path(s) tightened" in svc.log() and "3 looser path(s) tightened" in svc.log()


def children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            if f"\nPPid:\t{pid}\n" in status.read_text():
                found.append(int(status.parent.name))
        except OSError:
            continue
    return found


def alive(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def test_no_child_outlives_the_service_and_a_start_kills_strays(tmp_path: Path):
    svc = start_service(tmp_path)
    pid_file = svc.data_dir / "logs" / "extract-workers.pids"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(pid_file.read_text().split() if pid_file.exists() else []) < 5:
        time.sleep(0.5)  # the service, two extraction workers, the page renderer and the resource tracker
    kids = children(svc.pid)
    cmdlines = [Path(f"/proc/{k}/cmdline").read_bytes() for k in kids]
    # two extraction workers, the page renderer and the embedder process, the resource tracker, llama.cpp
    assert sum(b"spawn_main" in c for c in cmdlines) == 4 and any(b"resource_tracker" in c for c in cmdlines)
    assert any(b"llama_cpp.server" in c for c in cmdlines)
    embedder = int((svc.data_dir / "logs" / "embedder.pid").read_text().split()[1])
    assert embedder in kids
    os.kill(svc.pid, signal.SIGKILL)
    svc.proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(k) for k in kids):
        time.sleep(0.2)
    assert not [k for k in kids if alive(k)], "children outlived the service"

    # a worker or an embedder that could not watch its parent (stopped, say) is killed by the next start
    fork = [sys.executable, "-c", "import time; time.sleep(300)", "--multiprocessing-fork"]
    stray, stray_embedder = subprocess.Popen(fork), subprocess.Popen(fork)
    pid_file.write_text(f"{svc.pid} {stray.pid}\n")
    (svc.data_dir / "logs" / "embedder.pid").write_text(f"{svc.pid} {stray_embedder.pid}\n")
    again = start_service(tmp_path)
    try:
        assert stray.wait(timeout=30) == -signal.SIGKILL and stray_embedder.wait(timeout=30) == -signal.SIGKILL
        assert "Killed extraction workers left by an earlier process" in again.log()
        assert "Killed an embedder left by an earlier service" in again.log()
    finally:
        again.stop()
        for process in (stray, stray_embedder):
            if process.poll() is None:
                process.kill()
