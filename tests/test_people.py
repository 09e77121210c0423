"""People signed in through a real OpenLDAP directory (`tests/directory.py`), over real HTTP: the
session cookie, roles from `ACCESS_RULES`, personal tokens, private conversations, the audit
trail, rights that follow the directory, and what a wrong password, a forged request or a
directory that went away get. The service runs in this process with the session's llama.cpp
server; the directory is a real slapd.

Rules here: engineering → eng admin; readers → eng reader and pub editor. alice is in both
(eng admin, pub editor), bob in readers (eng reader, pub editor), иван in engineering.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from tests.directory import Slapd
from tests.inprocess import InProcessService, start_in_process
from tests.route_sweep import Theirs, sweep

RULES = "engineering:eng:admin,readers:eng:reader,readers:pub:editor"
KEY = "people-service-key-000001"
ADMIN_KEY = "people-admin-key-00000002"
NOTE = "Проект «Сокол» сдаётся в марте. The Falcon project ships in March."


@pytest.fixture(scope="module")
def people(
    tmp_path_factory: pytest.TempPathFactory, slapd: Slapd, llama_env: dict[str, str]
) -> Iterator[InProcessService]:
    svc = start_in_process(
        tmp_path_factory.mktemp("people"),
        **slapd.env(),
        ACCESS_RULES=RULES,
        API_KEYS=f"{KEY}:eng,{ADMIN_KEY}:*",
        AUTH_REFRESH_S="1",
        LLM_CONTEXT_WINDOW="1024",
        **llama_env,
    )
    yield svc
    svc.stop()


def sign_in(svc: InProcessService, username: str, password: str | None = None) -> httpx.Client:
    client = svc.client()
    r = client.post("/auth/login", json={"username": username, "password": password or f"{username}-password"})
    assert r.status_code == 200, r.text
    return client


def roles(me: dict) -> dict[str, str]:
    return {s["space_id"]: s["role"] for s in me["spaces"]}


def test_signing_in_gives_a_secure_cookie_and_the_persons_spaces_with_their_roles(people: InProcessService):
    with people.client() as client:
        r = client.post("/auth/login", json={"username": "alice", "password": "alice-password"})
        assert r.status_code == 200, r.text
        cookie = r.headers["set-cookie"]
        assert "docassist_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
        assert "Secure" not in cookie  # PUBLIC_URL is not https here
        me = r.json()
        assert me["user"]["name"] == "Alice Liddell" and sorted(me["user"]["groups"]) == ["engineering", "readers"]
        assert roles(me) == {"eng": "admin", "pub": "editor"} and me["via"] == "session"
        again = client.get("/auth/me").json()
        assert again["user"]["id"] == me["user"]["id"] and roles(again) == roles(me)
    # the database holds no session id in clear
    secret = cookie.split("docassist_session=")[1].split(";")[0]
    db = (people.data_dir / "docassist.sqlite3").read_bytes()
    assert secret.encode() not in db


def test_a_non_latin_username_signs_in(people: InProcessService):
    with closing(sign_in(people, "иван")) as client:
        me = client.get("/auth/me").json()
        assert me["user"]["name"] == "Иван Петров" and roles(me) == {"eng": "admin"}


def test_each_role_does_what_it_may_and_is_told_what_it_may_not(people: InProcessService):
    with closing(sign_in(people, "bob")) as bob, closing(sign_in(people, "alice")) as alice:
        files = {"file": ("note.txt", NOTE.encode())}
        refused = bob.post("/ingest", files=files, data={"space_id": "eng", "wait": "true"})
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "forbidden" and "editor" in refused.json()["error"]["message"]
        done = bob.post("/ingest", files=files, data={"space_id": "pub", "wait": "true"})
        assert done.status_code == 200, done.text
        up = alice.post("/ingest", files=files, data={"space_id": "eng", "wait": "true"})
        assert up.status_code == 200, up.text
        doc = up.json()["doc_id"]
        found = bob.post("/search", json={"q": "Сокол", "space_id": "eng", "top_k": 3})
        assert found.status_code == 200 and found.json()["sources"][0]["doc_id"] == doc
        assert bob.delete(f"/documents/{doc}", params={"space_id": "eng"}).status_code == 403
        assert bob.get("/audit", params={"space_id": "eng"}).status_code == 403
        assert bob.get("/documents", params={"space_id": "hr"}).status_code == 403
        trail = alice.get("/audit", params={"space_id": "eng"})
        assert trail.status_code == 200, trail.text
        actions = [(e["action"], e["user_name"]) for e in trail.json()["entries"]]
        assert ("search", "Bob Builder") in actions and ("upload", "Alice Liddell") in actions
        assert ("access_denied", "Bob Builder") in actions
        search = next(e for e in trail.json()["entries"] if e["action"] == "search")
        assert search["detail"] == "Сокол" and search["client"] == "127.0.0.1" and search["request_id"]
        # only the admins of every space read the whole trail
        assert alice.get("/audit").status_code == 403


def test_signing_out_ends_the_session_everywhere(people: InProcessService):
    client = sign_in(people, "bob")
    secret = client.cookies["docassist_session"]
    assert client.post("/auth/logout").status_code == 204
    with people.client() as other:  # the old cookie, from anywhere
        r = other.get("/auth/me", cookies={"docassist_session": secret})
        assert r.status_code == 401 and r.json()["error"]["code"] == "session_expired"
    # a tampered cookie is no session either
    with people.client() as other:
        r = other.get("/documents", params={"space_id": "eng"}, cookies={"docassist_session": secret[:-2] + "xx"})
        assert r.status_code == 401
    client.close()


def test_a_request_that_changes_something_from_another_site_is_refused(people: InProcessService):
    with closing(sign_in(people, "alice")) as alice:
        evil = alice.post("/search", json={"q": "x", "space_id": "eng"}, headers={"Origin": "https://evil.example"})
        assert evil.status_code == 403 and evil.json()["error"]["code"] == "cross_site_request"
        own = alice.post("/search", json={"q": "x", "space_id": "eng"}, headers={"Origin": people.url})
        assert own.status_code == 200
        assert alice.get("/auth/me", headers={"Origin": "https://evil.example"}).status_code == 200  # reads pass
    with people.client() as browser:  # a sign-in posted by another site's form: the attacker's account
        r = browser.post(
            "/auth/login",
            json={"username": "bob", "password": "bob-password"},
            headers={"Origin": "https://evil.example"},
        )
        assert r.status_code == 403 and "docassist_session" not in browser.cookies
    with people.client(Authorization=f"Bearer {KEY}") as script:  # keys in headers are not affected
        r = script.post("/search", json={"q": "x", "space_id": "eng"}, headers={"Origin": "https://evil.example"})
        assert r.status_code == 200


def test_a_personal_token_acts_as_its_owner_until_revoked(people: InProcessService):
    with closing(sign_in(people, "alice")) as alice:
        made = alice.post("/auth/tokens", json={"name": "laptop script", "expires_in_days": 30})
        assert made.status_code == 201, made.text
        token, token_id = made.json()["token"], made.json()["token_id"]
        listed = alice.get("/auth/tokens").json()["tokens"]
        assert [t["token_id"] for t in listed] == [token_id] and "token" not in listed[0]
        with people.client(Authorization=f"Bearer {token}") as script:
            me = script.get("/auth/me").json()
            assert me["via"] == "token" and me["user"]["name"] == "Alice Liddell"
            assert script.get("/documents", params={"space_id": "eng"}).status_code == 200
            assert script.get("/documents", params={"space_id": "hr"}).status_code == 403
            models = {m["id"] for m in script.get("/v1/models").json()["data"]}
            assert models <= {"space:eng", "space:pub"} and "space:eng" in models
            assert alice.delete(f"/auth/tokens/{token_id}").status_code == 204
            assert script.get("/documents", params={"space_id": "eng"}).status_code == 401
        with people.client(Authorization=f"Bearer {KEY}") as key:
            assert key.post("/auth/tokens", json={"name": "x"}).status_code == 403  # a key is nobody's
        trail = alice.get("/audit", params={"action": "token_created", "user": "Alice Liddell"})
        assert trail.status_code == 403  # not every space's admin; the token is not in any space's trail
    assert token not in (people.data_dir / "docassist.sqlite3").read_bytes().decode("latin-1")


def test_a_conversation_is_its_starters_alone(people: InProcessService):
    with closing(sign_in(people, "alice")) as alice, closing(sign_in(people, "иван")) as ivan:
        mine = alice.post("/conversations", json={"space_id": "eng"}).json()["conversation_id"]
        assert ivan.get(f"/conversations/{mine}", params={"space_id": "eng"}).status_code == 404  # an admin too
        assert mine not in json.dumps(ivan.get("/conversations", params={"space_id": "eng"}).json())
        assert ivan.delete(f"/conversations/{mine}", params={"space_id": "eng"}).status_code == 404
        assert alice.get(f"/conversations/{mine}", params={"space_id": "eng"}).status_code == 200
        listed = alice.get("/conversations", params={"space_id": "eng"}).json()["conversations"]
        assert [c["conversation_id"] for c in listed] == [mine]
        with people.client(Authorization=f"Bearer {KEY}") as key:
            keyed = key.post("/conversations", json={"space_id": "eng"}).json()["conversation_id"]
            assert key.get(f"/conversations/{mine}", params={"space_id": "eng"}).status_code == 404
            assert key.get(f"/conversations/{keyed}", params={"space_id": "eng"}).status_code == 200
        assert alice.get(f"/conversations/{keyed}", params={"space_id": "eng"}).status_code == 404
        assert alice.delete(f"/conversations/{mine}", params={"space_id": "eng"}).status_code == 204


def test_rights_follow_the_directory(people: InProcessService, slapd: Slapd):
    slapd.add_user("frank", "frank-password", name="Frank Lee", groups=("readers",))
    frank = sign_in(people, "frank")
    made = frank.post("/auth/tokens", json={"name": "ci", "expires_in_days": 1}).json()
    assert frank.get("/documents", params={"space_id": "pub"}).status_code == 200
    slapd.remove_from_group("frank", "readers")
    time.sleep(1.2)  # AUTH_REFRESH_S=1
    lost = frank.get("/documents", params={"space_id": "pub"})
    assert lost.status_code == 403, lost.text
    assert frank.get("/auth/me").json()["spaces"] == []
    slapd.add_to_group("frank", "readers")
    time.sleep(1.2)
    assert frank.get("/documents", params={"space_id": "pub"}).status_code == 200
    slapd.delete_user("frank")
    time.sleep(1.2)
    gone = frank.get("/documents", params={"space_id": "pub"})
    assert gone.status_code == 401 and gone.json()["error"]["code"] == "session_expired"
    with people.client(Authorization=f"Bearer {made['token']}") as script:
        assert script.get("/auth/me").status_code == 401
    frank.close()


def test_a_directory_that_goes_away(people: InProcessService, slapd: Slapd):
    bob = sign_in(people, "bob")
    slapd.stop()
    try:
        r = people.client().post("/auth/login", json={"username": "alice", "password": "alice-password"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "identity_provider_unavailable"
        assert int(r.headers["retry-after"]) > 0
        time.sleep(1.2)  # the first refresh fails: the last rights hold
        assert bob.get("/documents", params={"space_id": "pub"}).status_code == 200
        time.sleep(1.2)  # the second in a row fails: the session is refused until the directory answers
        assert bob.get("/documents", params={"space_id": "pub"}).status_code == 401
    finally:
        slapd.start()
    time.sleep(1.2)
    assert bob.get("/documents", params={"space_id": "pub"}).status_code == 200
    bob.close()


def test_wrong_credentials_get_one_answer_then_a_throttle(tmp_path: Path, slapd: Slapd):
    """A service of its own (its failure counts start at zero), behind an https PUBLIC_URL."""
    svc = start_in_process(tmp_path, **slapd.env(), ACCESS_RULES=RULES, PUBLIC_URL="https://docs.example.com")
    try:
        with svc.client() as client:
            signed = client.post("/auth/login", json={"username": "bob", "password": "bob-password"})
            assert signed.status_code == 200 and "Secure" in signed.headers["set-cookie"]  # PUBLIC_URL is https
            client.cookies.clear()
            answers = []
            for username, password in [
                ("alice", "wrong"),
                ("nobody-at-all", "wrong"),
                ("*)(uid=*", "x"),
                ("alice)(|(uid=*", "x"),
            ]:
                r = client.post("/auth/login", json={"username": username, "password": password})
                assert r.status_code == 401, r.text
                answers.append(r.json())
            assert all(a == answers[0] for a in answers) and answers[0]["error"]["code"] == "invalid_credentials"
            assert "docassist_session" not in client.cookies
            long = client.post("/auth/login", json={"username": "a" * 10_000, "password": "x"})
            assert long.status_code == 422
            assert client.post("/auth/login", json={"username": "bob", "password": "wrong"}).status_code == 401
            # five failures from this address in a minute: even the right password waits
            r = client.post("/auth/login", json={"username": "bob", "password": "bob-password"})
            assert r.status_code == 429 and r.json()["error"]["code"] == "sign_in_throttled"
            assert 1 <= int(r.headers["retry-after"]) <= 60
        trail = svc.assistant.identity.audit.page
        from docassist.pipelines.identity.audit import AuditFilter

        failed = trail(AuditFilter(action="sign_in_failed"), 50, None).entries
        assert len(failed) == 5
        assert not any("wrong" in (e.detail or "") for e in failed)  # never a password
    finally:
        svc.stop()


def test_every_route_refuses_a_person_the_space_their_groups_do_not_give(people: InProcessService):
    """bob reaches eng and pub: by his session and by his token, nothing of space hr shows on any route."""
    with people.client(Authorization=f"Bearer {ADMIN_KEY}") as admin:
        files = {"file": ("hr.txt", "Зарплатная ведомость отдела кадров.".encode())}
        up = admin.post("/ingest", files=files, data={"space_id": "hr", "wait": "true", "generate_summary": "true"})
        assert up.status_code == 200, up.text
        conversation = admin.post("/conversations", json={"space_id": "hr"}).json()["conversation_id"]
    theirs = Theirs("hr", up.json()["doc_id"], up.json()["job_id"], conversation)
    with closing(sign_in(people, "bob")) as bob:
        token = bob.post("/auth/tokens", json={"name": "sweep", "expires_in_days": 1}).json()["token"]
        sweep(people.url, theirs, cookies={"docassist_session": bob.cookies["docassist_session"]})
        sweep(people.url, theirs, headers={"Authorization": f"Bearer {token}"})
        assert bob.get("/metrics").status_code == 403  # figures of every space: operators only
    with people.client(Authorization=f"Bearer {ADMIN_KEY}") as admin:
        kept = admin.get(f"/documents/{theirs.doc_id}", params={"space_id": "hr"})
        assert kept.status_code == 200, "hr's document was not touched"


def test_a_personal_token_works_in_an_mcp_client_with_its_owners_rights(people: InProcessService):
    """The official MCP client, as an editor or agent is configured: the token as its bearer."""
    import asyncio

    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    with closing(sign_in(people, "bob")) as bob:
        token = bob.post("/auth/tokens", json={"name": "editor", "expires_in_days": 1}).json()["token"]

    async def calls() -> list:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(60)) as http,
            Client(streamable_http_client(f"{people.url}/mcp", http_client=http)) as client,
        ):
            return [
                await client.call_tool("list_documents", {"space_id": "pub"}),
                await client.call_tool("search", {"space_id": "hr", "q": "ведомость"}),
            ]

    mine, theirs = asyncio.run(calls())
    assert not mine.is_error
    assert theirs.is_error and "forbidden" in theirs.content[0].text
    with people.client(Authorization=f"Bearer {ADMIN_KEY}") as admin:
        trail = admin.get("/audit", params={"space_id": "hr", "action": "access_denied"}).json()["entries"]
    assert any(e["user_name"] == "Bob Builder" and e["route"] == "MCP search" for e in trail)
