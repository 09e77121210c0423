"""A folder kept in sync: `docassist sync DIR --space S` against a running service, as a user runs
it — what lands in the space, what a second run does, versions, deletion only with --delete,
tags, bad input reported and skipped — and `POST /sync/diff`, the one request a pass asks."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from docassist.api import folder_sync
from docassist.api.folder_walk import read_folder
from docassist.pipelines.documents.folder_diff import FolderFile, Held, diff_folder
from docassist.pipelines.documents.names import stored_name
from docassist.pipelines.errors import InvalidInput
from tests.inprocess import InProcessService, start_in_process

DOCASSIST = str(Path(sys.executable).parent / "docassist")
KEY = "sync-key-for-every-space"
OTHER = "sync-key-of-another-space"
AUTH = {"Authorization": f"Bearer {KEY}"}
BAIKAL = "Lake Baikal is the deepest lake on Earth. It lies in Siberia, and the Angara flows out of it."
TEA = "Green tea is picked in spring. The leaves are steamed, rolled and dried within hours."
PLAN = "The quarterly plan: hire two engineers, ship the folder sync, and close the office in July."


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory, llama_env: dict[str, str]) -> Iterator[InProcessService]:
    """A keyed service: the CLI sends DOCASSIST_API_KEY, and a key of another space is refused."""
    service = start_in_process(tmp_path_factory.mktemp("sync"), API_KEYS=f"{KEY}:*,{OTHER}:elsewhere", **llama_env)
    yield service
    service.stop()


def sync(svc: InProcessService, folder: Path, space: str, *args: str, key: str = KEY) -> subprocess.CompletedProcess:
    env = {**os.environ, "DOCASSIST_URL": svc.url, "DOCASSIST_API_KEY": key, "HF_HUB_OFFLINE": "1"}
    command = [DOCASSIST, "sync", str(folder), "--space", space, *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def last_line(done: subprocess.CompletedProcess) -> str:
    return done.stdout.strip().splitlines()[-1]


def documents(svc: InProcessService, space: str, **params: str) -> dict[str, dict]:
    r = httpx.get(f"{svc.url}/documents", headers=AUTH, params={"space_id": space, **params}, timeout=30)
    assert r.status_code == 200, r.text
    return {d["filename"]: d for d in r.json()["documents"]}


def uploads(svc: InProcessService, space: str) -> int:
    r = httpx.get(f"{svc.url}/audit", headers=AUTH, params={"space_id": space, "action": "upload"}, timeout=30)
    assert r.status_code == 200, r.text
    return len(r.json()["entries"])


def write(folder: Path, files: dict[str, str]) -> Path:
    for path, text in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text, encoding="utf-8")
    return folder


# ---------------------------------------------------------------- the command, end to end
@pytest.mark.slow
def test_a_first_sync_uploads_the_folder_and_a_second_sends_nothing(svc, space, tmp_path):
    folder = write(tmp_path, {"a.txt": BAIKAL, "notes/tea.md": TEA, "other/a.txt": PLAN, "photo.bin": "x"})
    write(tmp_path, {".hidden/secret.txt": "not sent", "~$lock.docx": "an Office lock file"})
    first = sync(svc, folder, space)
    assert first.returncode == 0, first.stderr
    assert last_line(first) == "added 3, updated 0, deleted 0, unchanged 0, failed 0"
    listed = documents(svc, space)
    assert set(listed) == {"a.txt", "notes/tea.md", "other/a.txt"}, "two a.txt in two folders stay two documents"
    found = httpx.post(f"{svc.url}/search", headers=AUTH, json={"q": "Siberia lake Angara", "space_id": space})
    assert found.json()["sources"][0]["filename"] == "a.txt"
    sent = uploads(svc, space)
    second = sync(svc, folder, space)
    assert second.returncode == 0, second.stderr
    assert last_line(second) == "added 0, updated 0, deleted 0, unchanged 3, failed 0"
    assert uploads(svc, space) == sent, "nothing was uploaded the second time"
    assert {d["doc_id"] for d in documents(svc, space).values()} == {d["doc_id"] for d in listed.values()}


@pytest.mark.slow
def test_a_changed_file_is_a_new_version_and_a_gone_one_is_deleted_only_with_delete(svc, space, tmp_path):
    folder = write(tmp_path, {"a.txt": BAIKAL, "tea.md": TEA})
    assert sync(svc, folder, space).returncode == 0
    before = documents(svc, space)
    write(folder, {"a.txt": BAIKAL + " In winter the lake freezes."})
    (folder / "tea.md").unlink()
    kept = sync(svc, folder, space)
    assert last_line(kept) == "added 0, updated 1, deleted 0, unchanged 0, failed 0", kept.stderr
    assert f"1 document(s) of space {space!r} not in the folder, kept (--delete removes them)" in kept.stderr
    after = documents(svc, space)
    assert after["a.txt"]["doc_id"] == before["a.txt"]["doc_id"] and after["a.txt"]["version"] == 2
    assert "tea.md" in after, "no --delete: the document stays"
    text = httpx.get(f"{svc.url}/documents/{after['a.txt']['doc_id']}/text", headers=AUTH, params={"space_id": space})
    assert "freezes" in text.text
    deleted = sync(svc, folder, space, "--delete")
    assert last_line(deleted) == "added 0, updated 0, deleted 1, unchanged 1, failed 0", deleted.stderr
    assert set(documents(svc, space)) == {"a.txt"}


@pytest.mark.slow
def test_tags_land_on_each_document_the_sync_sends(svc, space, tmp_path):
    folder = write(tmp_path, {"a.txt": BAIKAL, "b/tea.md": TEA})
    done = sync(svc, folder, space, "--tags", "Finance", "q3 report")
    assert done.returncode == 0, done.stderr
    tagged = documents(svc, space, tag="finance")
    assert set(tagged) == {"a.txt", "b/tea.md"}
    assert tagged["b/tea.md"]["tags"] == ["Finance", "q3 report"]
    refused = sync(svc, folder, space, "--tags", "bad\ttag")
    assert refused.returncode == 2 and "control characters" in refused.stderr


@pytest.mark.slow
def test_bad_input_is_reported_and_skipped_and_the_good_files_still_sync(svc, space, tmp_path):
    folder = write(tmp_path / "folder", {"good.txt": BAIKAL, "sub/tea.md": TEA})
    os.mkfifo(folder / "pipe.txt")
    os.symlink(folder / "b.txt", folder / "a.txt")  # a -> b -> a
    os.symlink(folder / "a.txt", folder / "b.txt")
    os.symlink(folder / "nowhere.txt", folder / "broken.txt")
    os.symlink(folder, folder / "sub" / "up")  # a folder's link to the folder above it
    done = sync(svc, folder, space)
    assert done.returncode == 1, "bad input counts as failed"
    assert last_line(done) == "added 2, updated 0, deleted 0, unchanged 0, failed 5"
    for path, why in (
        ("pipe.txt", "not a regular file (a FIFO)"),
        ("a.txt", "a symbolic link loop"),
        ("b.txt", "a symbolic link loop"),
        ("broken.txt", "a broken symbolic link"),
        ("sub/up", "a link to a folder above it (a loop)"),
    ):
        assert f"skipped {path}: {why}" in done.stderr, done.stderr
    assert set(documents(svc, space)) == {"good.txt", "sub/tea.md"}


def test_an_unreadable_file_is_reported_and_skipped(tmp_path, monkeypatch):
    write(tmp_path, {"good.txt": BAIKAL, "locked.txt": TEA})
    real_open = os.open

    def refusing(path, flags, *args):  # root reads any file: what a user without the right meets
        if str(path).endswith("locked.txt"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refusing)
    folder = read_folder(tmp_path)
    assert [f.path for f in folder.files] == ["good.txt"]
    assert [(s.path, s.reason) for s in folder.skipped] == [("locked.txt", "cannot be read: permission denied")]


def wait_for(svc: InProcessService, space: str, filename: str, seconds: float = 60) -> set[str]:
    deadline = time.monotonic() + seconds
    while filename not in (names := set(documents(svc, space))) and time.monotonic() < deadline:
        time.sleep(0.5)
    return names


@pytest.mark.slow
def test_watch_keeps_the_folder_in_sync(svc, space, tmp_path):
    folder = write(tmp_path, {"a.txt": BAIKAL})
    env = {**os.environ, "DOCASSIST_URL": svc.url, "DOCASSIST_API_KEY": KEY, "HF_HUB_OFFLINE": "1"}
    command = [DOCASSIST, "sync", str(folder), "--space", space, "--watch"]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert wait_for(svc, space, "a.txt") == {"a.txt"}
            write(folder, {"later/tea.md": TEA})
            assert wait_for(svc, space, "later/tea.md") == {"a.txt", "later/tea.md"}
        finally:
            proc.terminate()
            out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, f"SIGTERM ends the watch as a pass ends: {err}"
    lines = out.strip().splitlines()
    assert lines[0] == "added 1, updated 0, deleted 0, unchanged 0, failed 0"
    assert "added 1, updated 0, deleted 0, unchanged 1, failed 0" in lines[1:], out


def test_a_busy_service_is_asked_again_after_its_retry_after():
    answers = iter([(503, {"Retry-After": "0"}), (429, {"Retry-After": "1"}), (200, {})])
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    def handler(request: httpx.Request) -> httpx.Response:
        status, headers = next(answers)
        return httpx.Response(status, headers=headers, json={})

    async def ask() -> tuple[int, int]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://svc") as client:
            busy = await folder_sync._send(client, "POST", "/ingest", pause=sleep)
            gone = httpx.MockTransport(lambda _: httpx.Response(503, json={}))  # no Retry-After: not asked again
            async with httpx.AsyncClient(transport=gone, base_url="http://svc") as other:
                return busy.status_code, (await folder_sync._send(other, "POST", "/ingest", pause=sleep)).status_code

    # the pause is the client's own: patching asyncio.sleep would also catch the service's loop in this process
    assert asyncio.run(ask()) == (200, 503)
    assert slept == [0.1, 1.0]


def test_the_progress_bar_counts_what_is_done(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    bar = folder_sync.Progress(4, enabled=True)
    bar.step()
    bar.note("docassist sync: b.txt: 422 invalid_input: no text")
    bar.step()
    bar.close()
    shown = err.getvalue()
    assert "syncing [-----" in shown and "] 0/4" in shown and "] 1/4" in shown and shown.endswith("\r\033[K")
    assert "\r\033[Kdocassist sync: b.txt: 422 invalid_input: no text\n" in shown and "] 2/4" in shown
    quiet = io.StringIO()
    monkeypatch.setattr(sys, "stderr", quiet)
    folder_sync.Progress(4, enabled=False).step()
    assert quiet.getvalue() == ""


# ---------------------------------------------------------------- POST /sync/diff
def sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def entry(path: str, text: str) -> dict:
    return {"path": path, "sha256": sha(text), "size": len(text.encode())}


def diff(svc: InProcessService, body: dict, key: str = KEY) -> httpx.Response:
    """The body as JSON with non-ASCII escaped (`\\ud800` as a client may send it)."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return httpx.post(f"{svc.url}/sync/diff", headers=headers, content=json.dumps(body), timeout=60)


def test_the_diff_says_what_to_send_in_one_answer(svc, space):
    docs = {}
    for name, text in (("a.txt", BAIKAL), ("sub/tea.md", TEA), ("gone.txt", PLAN)):
        r = httpx.post(
            f"{svc.url}/ingest", headers=AUTH, files={"file": (name, text.encode())},
            data={"space_id": space, "wait": "true"}, timeout=120,
        )  # fmt: skip
        assert r.status_code == 200 and r.json()["filename"] == name, r.text
        docs[name] = r.json()["doc_id"]
    files = [entry("a.txt", BAIKAL), entry("sub/tea.md", TEA + " Changed."), entry("new.txt", "New.")]
    files.append(entry("copy/a.txt", BAIKAL))
    r = diff(svc, {"space_id": space, "files": files, "delete": False})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "space_id": space,
        "upload": ["new.txt"],
        "update": [{"path": "sub/tea.md", "doc_id": docs["sub/tea.md"]}],
        "delete": [{"doc_id": docs["gone.txt"], "filename": "gone.txt"}],
        "duplicate": [{"path": "copy/a.txt", "doc_id": docs["a.txt"], "filename": "a.txt"}],
        "unchanged": 1,
    }
    renamed = diff(svc, {"space_id": space, "files": [entry("renamed.txt", PLAN)], "delete": True}).json()
    assert renamed["upload"] == ["renamed.txt"], "its document is being deleted: the file makes its own"


def test_the_diff_needs_the_uploading_role_in_the_space(svc, space):
    body = {"space_id": space, "files": [entry("a.txt", BAIKAL)], "delete": True}
    refused = diff(svc, body, key=OTHER)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert diff(svc, body, key="no-such-key").status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"space_id": "s", "files": [{"path": "a.txt", "sha256": "xyz", "size": 1}]},
        {"space_id": "s", "files": [{"path": "a.txt", "sha256": "A" * 64, "size": 1}]},
        {"space_id": "s", "files": [{"path": "a" * 1025, "sha256": "0" * 64, "size": 1}]},
        {"space_id": "s", "files": [{"path": "", "sha256": "0" * 64, "size": 1}]},
        {"space_id": "s", "files": [{"path": "a\ud800.txt", "sha256": "0" * 64, "size": 1}]},
        {"space_id": "s", "files": [{"path": "a.txt", "sha256": "0" * 64, "size": -1}]},
        {"space_id": "s", "files": [{"path": "a.txt", "sha256": "0" * 64, "size": "1"}]},
        {"space_id": "s", "files": [], "delete": "yes"},
        {"space_id": "s", "files": [], "extra": 1},
        {"space_id": "../etc", "files": []},
        {"space_id": "s"},
        {"space_id": "s", "files": [{"path": "a.txt", "sha256": "0" * 64, "size": 1}] * 2},
        {"space_id": "s", "files": [{"path": p, "sha256": "0" * 64, "size": 1} for p in ("a.txt", "./a.txt")]},
    ],
)
def test_a_bad_body_is_422(svc, body):
    r = diff(svc, body)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input", r.text


# ---------------------------------------------------------------- the rules, without a service
def held(doc_id: str, filename: str, text: str, at: float = 1.0) -> Held:
    return Held(doc_id, filename, sha(text), at)


def test_a_path_keeps_its_folders_unless_it_could_name_a_place_outside():
    assert stored_name("sub/dir/report.pdf") == "sub/dir/report.pdf"
    for outside in ("../report.pdf", "/etc/report.pdf", "a//report.pdf", "./report.pdf", "a/../report.pdf"):
        assert stored_name(outside) == "report.pdf", outside


def test_the_newest_document_of_a_name_is_the_one_a_file_maps_to():
    docs = [held("old", "a.txt", "one", 1.0), held("new", "a.txt", "two", 2.0)]
    same = diff_folder([FolderFile("a.txt", sha("two"), 3)], docs, delete=True)
    assert same.unchanged == 1 and same.update == [] and same.delete == []
    changed = diff_folder([FolderFile("a.txt", sha("three"), 5)], docs, delete=False)
    assert [(c.path, c.doc_id) for c in changed.update] == [("a.txt", "new")]


def test_bytes_held_by_a_document_given_a_new_version_are_uploaded_again():
    docs = [held("d1", "a.txt", "one")]
    files = [FolderFile("a.txt", sha("two"), 3), FolderFile("b.txt", sha("one"), 3)]
    result = diff_folder(files, docs, delete=False)
    assert result.upload == ["b.txt"] and result.duplicate == []


def test_two_paths_kept_as_one_name_are_refused():
    with pytest.raises(InvalidInput):
        diff_folder([FolderFile("a.txt", sha("x"), 1), FolderFile("./a.txt", sha("y"), 1)], [], delete=False)
