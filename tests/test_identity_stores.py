"""What sign-in keeps in the database, on a real SQLite file and a real PostgreSQL: sessions that
end when idle or too old and are never stored in clear, sign-ins under way used once, tokens kept
as hashes, the audit trail paged, exported for a SIEM by `docassist audit export` and cut at its
retention; and the sign-in throttle, per username and per address."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select, update

from docassist.pipelines.errors import SignInThrottled
from docassist.pipelines.identity.audit import AuditEntry, AuditFilter, AuditLog
from docassist.pipelines.identity.oidc import PendingLogin
from docassist.pipelines.identity.sessions import SessionStore
from docassist.pipelines.identity.throttle import LIMIT, SignInThrottle
from docassist.pipelines.identity.tokens import TokenStore
from docassist.pipelines.storage.database import Database
from docassist.pipelines.storage.tables import audit, sessions


def test_a_session_ends_when_idle_or_too_old_and_its_id_is_never_stored(db: Database):
    store = SessionStore(db, idle_s=100, max_s=1000)
    secret, session = store.start("ldap:uid=alice", "127.0.0.1")
    assert store.find(secret) is not None and store.find(secret + "x") is None
    with db.begin() as conn:
        kept = conn.execute(select(sessions.c.session_hash)).scalars().all()
    assert secret not in kept and session.session_hash in kept
    with db.begin() as conn:  # 101 s without a request
        conn.execute(update(sessions).values(last_seen_at=time.time() - 101))
    assert store.find(secret) is None
    secret, _ = store.start("ldap:uid=alice", None)
    with db.begin() as conn:  # used a second ago, but signed in past SESSION_MAX_S
        conn.execute(update(sessions).values(expires_at=time.time() - 1))
    assert store.find(secret) is None
    secret, _ = store.start("ldap:uid=alice", None)
    assert store.end(secret) == "ldap:uid=alice" and store.find(secret) is None


def test_a_sign_in_under_way_is_taken_once(db: Database):
    store = SessionStore(db, idle_s=100, max_s=1000)
    pending = PendingLogin("state-123", "nonce-1", "verifier-1", time.time())
    store.keep_attempt(pending, "/?space=a")
    assert store.take_attempt("state-123") == (pending, "/?space=a")
    assert store.take_attempt("state-123") is None  # a replayed callback finds nothing
    store.keep_attempt(PendingLogin("old", "n", "v", time.time() - 3600), "/")
    assert store.take_attempt("old") is None


def test_tokens_are_kept_as_hashes_and_revoked_by_their_owner_only(db: Database):
    tokens = TokenStore(db)
    token, info = tokens.create("oidc:olga", "script", 30)
    found = tokens.find(token)
    assert token.startswith("dat_") and found is not None and found.token_id == info.token_id
    assert token not in repr(tokens.of("oidc:olga"))
    with pytest.raises(Exception, match="no such token"):
        tokens.revoke("oidc:pete", info.token_id)
    assert tokens.find(token) is not None
    tokens.revoke("oidc:olga", info.token_id)
    assert tokens.find(token) is None


def _entries(log: AuditLog, n: int, at: float, space: str = "eng") -> None:
    for i in range(n):
        log.record(
            AuditEntry("search", at=at + i, user_id="ldap:uid=bob", user_name="Bob", space_id=space, detail=f"q{i}")
        )


def test_the_audit_trail_pages_newest_first_and_drops_what_is_past_its_retention(db: Database):
    log = AuditLog(db)
    now = time.time()
    _entries(log, 3, now - 400 * 86400)  # past a 365-day retention
    _entries(log, 5, now - 10)
    _entries(log, 2, now - 5, space="hr")
    first = log.page(AuditFilter(spaces=frozenset({"eng"})), 3, None)
    assert [e.detail for e in first.entries] == ["q4", "q3", "q2"] and first.next_cursor
    rest = log.page(AuditFilter(spaces=frozenset({"eng"})), 10, first.next_cursor)
    assert [e.detail for e in rest.entries] == ["q1", "q0", "q2", "q1", "q0"] and rest.next_cursor is None
    assert all(e.space_id == "eng" for e in first.entries + rest.entries)
    assert log.prune(365) == 3
    assert len(log.page(AuditFilter(), 100, None).entries) == 7
    with pytest.raises(Exception, match="action must be one of"):
        log.page(AuditFilter(action="drop table"), 10, None)
    with db.begin() as conn:
        assert conn.execute(select(audit.c.entry_id)).all()


@pytest.mark.slow  # the CLI, a process of its own
def test_docassist_audit_export_writes_json_lines_for_a_siem(tmp_path: Path):
    database = Database.for_data_dir(None, tmp_path / "data")
    database.migrate()
    log = AuditLog(database)
    _entries(log, 2, time.mktime((2026, 11, 30, 12, 0, 0, 0, 0, 0)))
    _entries(log, 3, time.mktime((2026, 12, 2, 12, 0, 0, 0, 0, 0)))
    database.close()
    out = tmp_path / "audit.jsonl"
    env = {**os.environ, "DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-m", "docassist.api.cli", "audit", "export", "--since", "2026-12-01", "-o", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [e["detail"] for e in lines] == ["q0", "q1", "q2"] and "3 audit entries" in done.stderr
    assert {"at", "action", "user_id", "space_id", "client", "request_id"} <= set(lines[0])
    bad = subprocess.run(
        [sys.executable, "-m", "docassist.api.cli", "audit", "export", "--since", "yesterday"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "not a date" in bad.stderr


def test_failed_sign_ins_are_throttled_per_username_and_per_address():
    async def check() -> None:
        throttle = SignInThrottle()
        for n in range(LIMIT):  # one username, from five addresses
            await throttle.check("Alice", f"10.0.0.{n}")
            await throttle.failed("Alice", f"10.0.0.{n}")
        with pytest.raises(SignInThrottled) as refused:
            await throttle.check("alice", "10.0.0.99")  # another address, the same person
        assert 1 <= refused.value.retry_after_s <= 60
        await throttle.check("bob", "10.0.0.99")  # someone else is not held up by alice's failures
        for n in range(LIMIT):  # one address, five usernames
            await throttle.failed(f"user{n}", "192.0.2.1")
        with pytest.raises(SignInThrottled):
            await throttle.check("carol", "192.0.2.1")

    asyncio.run(check())
