"""Sessions across backends: two services on one PostgreSQL and one Redis (each its own data
directory), people signed in through a real slapd. A session made on one backend works on the
other; signing out on one ends it on both at once, though each remembers callers for a second
(`caller_cache.py`): the other hears of it through Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.directory import Slapd
from tests.inprocess import InProcessService, start_in_process
from tests.servers import fresh_postgres_database, fresh_redis


@pytest.fixture(scope="module")
def backends(
    tmp_path_factory: pytest.TempPathFactory, slapd: Slapd, llama_env: dict[str, str]
) -> Iterator[tuple[InProcessService, InProcessService]]:
    with fresh_postgres_database() as database, fresh_redis() as redis:
        shared = {
            **slapd.env(),
            "ACCESS_RULES": "readers:pub:reader",
            "DATABASE_URL": database,
            "REDIS_URL": redis,
            **llama_env,
        }
        workdir: Path = tmp_path_factory.mktemp("people-scaleout")
        a = start_in_process(workdir / "a", **shared)
        b = start_in_process(workdir / "b", **shared)
        try:
            yield a, b
        finally:
            a.stop()
            b.stop()


def test_a_session_made_on_one_backend_ends_on_both_at_sign_out(backends: tuple[InProcessService, InProcessService]):
    a, b = backends
    with httpx.Client(base_url=a.url) as on_a:
        assert on_a.post("/auth/login", json={"username": "bob", "password": "bob-password"}).status_code == 200
        cookie = {"docassist_session": on_a.cookies["docassist_session"]}
        with httpx.Client(base_url=b.url, cookies=cookie) as on_b:
            for _ in range(3):  # b now remembers bob's session
                assert on_b.get("/documents", params={"space_id": "pub"}).status_code == 200
            assert on_a.post("/auth/logout").status_code == 204
            deadline = time.monotonic() + 0.5  # well inside the second b would otherwise remember it
            while (r := on_b.get("/documents", params={"space_id": "pub"})).status_code == 200:
                assert time.monotonic() < deadline, "b still takes the signed-out cookie"
                time.sleep(0.02)
            assert r.status_code == 401 and r.json()["error"]["code"] == "session_expired"


def test_a_token_revoked_on_one_backend_stops_on_the_other(backends: tuple[InProcessService, InProcessService]):
    a, b = backends
    with httpx.Client(base_url=a.url) as on_a:
        assert on_a.post("/auth/login", json={"username": "bob", "password": "bob-password"}).status_code == 200
        made = on_a.post("/auth/tokens", json={"name": "ci", "expires_in_days": 1}).json()
        with httpx.Client(base_url=b.url, headers={"Authorization": f"Bearer {made['token']}"}) as script:
            assert script.get("/documents", params={"space_id": "pub"}).status_code == 200
            assert on_a.delete(f"/auth/tokens/{made['token_id']}").status_code == 204
            deadline = time.monotonic() + 0.5
            while script.get("/documents", params={"space_id": "pub"}).status_code == 200:
                assert time.monotonic() < deadline, "b still takes the revoked token"
                time.sleep(0.02)
