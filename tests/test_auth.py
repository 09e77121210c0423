"""Optional API keys: every route but /health needs one; a key may be limited to spaces."""

from __future__ import annotations

import httpx
import pytest

from tests.inprocess import start_in_process


@pytest.fixture(scope="module")
def keyed(tmp_path_factory, llama_env):
    svc = start_in_process(tmp_path_factory.mktemp("keyed"), API_KEYS="admin-key:*,team-key:team_a|team_b", **llama_env)
    yield svc
    svc.stop()


def test_health_is_open_and_everything_else_needs_a_key(keyed):
    assert httpx.get(f"{keyed.url}/health").status_code == 200
    for method, path, kwargs in (
        ("GET", "/model-config", {}),
        ("GET", "/documents", {}),
        ("POST", "/search", {"json": {"q": "x"}}),
        ("POST", "/ingest", {"files": {"file": ("a.txt", b"hello")}}),
    ):
        r = httpx.request(method, f"{keyed.url}{path}", **kwargs)
        assert r.status_code == 401, path
        assert r.json()["error"]["code"] == "unauthorized"
        r = httpx.request(method, f"{keyed.url}{path}", headers={"X-API-Key": "wrong"}, **kwargs)
        assert r.status_code == 401, path


def test_a_space_limited_key_reaches_only_its_spaces(keyed):
    team = {"Authorization": "Bearer team-key"}
    ok = httpx.post(
        f"{keyed.url}/ingest",
        headers=team,
        files={"file": ("a.txt", "Секретный план А.".encode())},
        data={"space_id": "team_a"},
    )
    assert ok.status_code == 200
    doc_id = ok.json()["doc_id"]
    denied = httpx.post(
        f"{keyed.url}/ingest", headers=team, files={"file": ("b.txt", b"plan B")}, data={"space_id": "other"}
    )
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"
    assert httpx.post(f"{keyed.url}/search", headers=team, json={"q": "план", "space_id": "other"}).status_code == 403
    assert httpx.get(f"{keyed.url}/documents/{doc_id}", headers=team, params={"space_id": "other"}).status_code == 403
    assert httpx.get(f"{keyed.url}/documents", headers=team, params={"space_id": "team_b"}).status_code == 200
    admin = {"X-API-Key": "admin-key"}
    listed = httpx.get(f"{keyed.url}/documents", headers=admin, params={"space_id": "team_a"}).json()["documents"]
    assert [d["doc_id"] for d in listed] == [doc_id]
