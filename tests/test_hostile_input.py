"""Input that cannot hurt the service: refused before it costs anything, with a clear error that
names the limit, and without a trace left behind. A real `docassist serve` with its limits set low
(and API keys on) takes each attack over real HTTP, some of them over a raw socket."""

from __future__ import annotations

import io
import json
import random
import socket
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from docassist.bench.service import Service
from tests.conftest import FIXTURES, start_service

pytestmark = pytest.mark.slow  # a service of its own (its temporary folder is watched)

KEY = {"X-API-Key": "k"}
LIMITS = {
    "API_KEYS": "k:*",
    "MAX_UPLOAD_MB": "20",
    "MAX_PARSE_MB": "16",
    "MAX_PDF_PAGES": "5",
    "MAX_DOCUMENT_CHARS": "100000",
    "EXTRACT_MEMORY_MB": "256",
}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, llama_env: dict[str, str]) -> Iterator[tuple[Service, Path]]:
    root = tmp_path_factory.mktemp("guarded")
    spool = root / "spool"  # the service's temporary folder: where an upload would be spooled to disk
    spool.mkdir()
    svc = start_service(root, TMPDIR=str(spool), **LIMITS, **llama_env)
    yield svc, spool
    svc.stop()


@pytest.fixture
def client(guarded) -> Iterator[httpx.Client]:
    with guarded[0].client(**KEY) as c:
        yield c


def upload(c: httpx.Client, name: str, data: bytes) -> httpx.Response:
    return c.post("/ingest", files={"file": (name, data)}, data={"space_id": "hostile", "wait": "true"})


def raw_request(svc: Service, head: str, body: bytes = b"", read_timeout: float = 5) -> tuple[bytes, float]:
    """Send `head` and `body` over a plain socket; (the first bytes of the answer, seconds until they came)."""
    host, port = svc.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=read_timeout) as s:
        started = time.monotonic()
        s.sendall(head.encode("utf-8") + body)
        answer = s.recv(65536)
        seconds = time.monotonic() - started
        headers, _, content = answer.partition(b"\r\n\r\n")
        length = next(
            (int(h.split(b":")[1]) for h in headers.split(b"\r\n") if h.lower().startswith(b"content-length")), 0
        )
        while len(content) < length and (more := s.recv(65536)):
            content += more
        return headers + b"\r\n\r\n" + content, seconds


def spooled(spool: Path) -> list[Path]:
    return [p for p in spool.rglob("*") if p.is_file()]


def test_a_2_gb_upload_is_refused_from_its_headers_within_a_second_and_nothing_is_written(guarded):
    svc, spool = guarded
    head = (
        "POST /ingest HTTP/1.1\r\nHost: x\r\nX-API-Key: k\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 2147483648\r\n\r\n"
    )
    answer, seconds = raw_request(svc, head, b"--b\r\n" + b"x" * 65536)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"too_large"' in answer and b"MAX_UPLOAD_MB" in answer
    assert seconds < 1.0
    assert spooled(spool) == []


def test_without_a_key_the_body_is_never_read(guarded):
    svc, spool = guarded
    head = (
        "POST /ingest HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 400000000\r\n\r\n"
    )
    answer, seconds = raw_request(svc, head, b"x" * 65536)
    assert answer.startswith(b"HTTP/1.1 401") and seconds < 1.0
    assert spooled(spool) == []


def test_a_chunked_body_is_cut_off_when_it_passes_the_limit(guarded, client):
    _, spool = guarded

    def chunks() -> Iterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n\r\n'
        for _ in range(40):  # 40 MB, past MAX_UPLOAD_MB (20)
            yield b"y" * (1 << 20)

    r = client.post(
        "/ingest", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=b", **KEY}, timeout=60
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    assert spooled(spool) == [], "what was read is not left on disk"


def test_a_docx_that_unpacks_to_gigabytes_is_refused_before_parsing(guarded, client):
    svc, _ = guarded
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        with z.open("word/document.xml", "w", force_zip64=True) as fh:
            for _ in range(200):  # 200 MB of one text node, about 200 KB packed
                fh.write(b"a" * (1 << 20))
    before = svc.rss_kb()
    r = upload(client, "bomb.docx", buf.getvalue())
    assert r.status_code == 413 and r.json()["error"]["code"] == "markup_too_large"
    assert "MAX_PARSE_MB" in r.json()["error"]["message"]
    assert svc.rss_kb() - before < 100_000, "the service's memory did not grow with the bomb"


def test_a_docx_with_an_extreme_compression_ratio_is_refused(client):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/document.xml", "<w:t>" + "a" * (10 << 20) + "</w:t>")  # 10 MB packs ~1000:1
    r = upload(client, "ratio.docx", buf.getvalue())
    assert r.status_code == 413 and r.json()["error"]["code"] == "markup_too_large"
    assert "MAX_EXPANSION_RATIO" in r.json()["error"]["message"]


def test_a_docx_that_needs_more_memory_than_allowed_fails_alone(client):
    import docx

    document, rnd = docx.Document(), random.Random(1)
    words = ["слово", "word", "Байкал", "lake", "river", "Ангара"]
    for _ in range(20000):  # ~11 MB of XML, within MAX_PARSE_MB, ~450 MB to parse: past EXTRACT_MEMORY_MB
        document.add_paragraph(" ".join(rnd.choice(words) for _ in range(60)))
    buf = io.BytesIO()
    document.save(buf)
    r = upload(client, "heavy.docx", buf.getvalue())
    assert r.status_code == 413 and "EXTRACT_MEMORY_MB" in r.json()["error"]["message"]
    ok = upload(client, "after.txt", "После тяжёлого файла сервис работает дальше.".encode())
    assert ok.status_code == 200, "the next upload is read by a fresh worker"


def test_html_larger_than_the_parser_limit_is_refused_unread(client):
    html = b"<html><body>" + b"<p>x</p>" * (17 * 1024 * 1024 // 8) + b"</body></html>"
    r = upload(client, "huge.html", html)
    assert r.status_code == 413 and r.json()["error"]["code"] == "markup_too_large"


def test_too_many_pdf_pages_and_too_much_text_name_their_limits(client):
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    pdf = canvas.Canvas(buf)
    for i in range(6):
        pdf.drawString(72, 720, f"Page {i + 1}: Lake Baikal.")
        pdf.showPage()
    pdf.save()
    r = upload(client, "six.pdf", buf.getvalue())
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_many_pages"
    assert "MAX_PDF_PAGES" in r.json()["error"]["message"]
    r = upload(client, "long.txt", ("Байкал — глубокое озеро. " * 5000).encode())
    assert r.status_code == 413 and r.json()["error"]["code"] == "text_too_long"
    assert "MAX_DOCUMENT_CHARS" in r.json()["error"]["message"]


def encrypted_pdf(user_password: str, owner_password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(FIXTURES / "baikal_ru.pdf"))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_encrypted_pdfs_open_like_in_a_viewer_or_say_they_need_a_password(client):
    opened = upload(client, "owner-only.pdf", encrypted_pdf("", "owner-secret"))
    assert opened.status_code == 200 and opened.json()["language"] == "ru"
    locked = upload(client, "locked.pdf", encrypted_pdf("user-secret", "owner-secret"))
    assert locked.status_code == 422 and locked.json()["error"]["code"] == "encrypted_document"


def test_a_broken_file_is_unreadable_naming_it_never_a_500(client):
    for name, data in (
        ("broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>"),
        ("broken.docx", b"PK\x03\x04 this is not a zip"),
        ("truncated.pdf", (FIXTURES / "baikal_ru.pdf").read_bytes()[:2000]),
    ):
        r = upload(client, name, data)
        assert r.status_code == 422, (name, r.text)
        assert r.json()["error"]["code"] in ("unreadable_document", "no_text") and name in r.text


def test_small_defects_found_by_probing(guarded, client):
    svc, _ = guarded
    answer, _ = raw_request(
        svc, "GET /health HTTP/1.1\r\nHost: x\r\nX-Request-ID: запрос-é\r\nConnection: close\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 200"), answer[:100]
    r = client.post("/summarize", json={"doc_id": "x", "space_id": "hostile", "language": "zz"})
    assert r.status_code == 422 and "language" in r.text
    assert client.post("/search", content=b'{"q": "\xff\xfe", "space_id": "s"}').status_code == 422
    deep = "[" * 100_000 + "]" * 100_000
    r = client.post("/search", content=deep.encode())
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input"
    r = client.put("/search", json={})
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    for bad in ({"q": "x", "top_k": "5"}, {"q": "x", "top_k": True}, {"q": "x", "top_k": 5.5}):
        assert client.post("/search", json=bad).status_code == 422, bad
    assert client.post("/summarize", json={"doc_id": "x", "force": "yes"}).status_code == 422
    raw_nul = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="evil\x00.txt"\r\n\r\nsome text\r\n'
        b'--b\r\nContent-Disposition: form-data; name="space_id"\r\n\r\nhostile\r\n--b--\r\n'
    )
    r = client.post("/ingest", content=raw_nul, headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input", r.text
    r = client.post("/search", json={"q": "я" * 4001, "space_id": "s"})
    assert r.status_code == 422 and "4000" in r.text
    r = client.post("/search", content=json.dumps({"q": "x", "pad": "a" * (2 << 20)}).encode())
    assert r.status_code == 413


def test_an_unexpected_error_answers_with_a_request_id_not_its_text():
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from docassist.api.errors import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail /etc/passwd")

    r = TestClient(app, raise_server_exceptions=False).get("/boom")
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
    assert "secret" not in r.text and "request id" in r.json()["error"]["message"]
