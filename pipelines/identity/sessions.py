"""Sessions of signed-in browsers, and OpenID Connect sign-ins under way, in the shared database
so that every backend of a deployment knows them.

A session's cookie holds a random 256-bit id; the database holds only its SHA-256, so a copy of
the database opens no session. A session ends on sign-out (its row is deleted: the cookie no
longer works on any backend), after `SESSION_IDLE_S` without a request, or `SESSION_MAX_S` after
sign-in, whichever comes first. `last_seen_at` is written at most once a minute per session, so a
request does not cost a write.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Connection, delete, select, update

from docassist.pipelines.identity.oidc import PendingLogin
from docassist.pipelines.storage.database import Database
from docassist.pipelines.storage.tables import sessions, sign_in_attempts

SEEN_EVERY_S = 60  # how stale `last_seen_at` may be before a request writes it again
ATTEMPT_TTL_S = 600  # an OpenID Connect sign-in must come back from the provider within this


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    session_hash: str
    person_id: str
    created_at: float
    last_seen_at: float
    expires_at: float  # absolute: created_at + SESSION_MAX_S


class SessionStore:
    def __init__(self, db: Database, idle_s: float, max_s: float) -> None:
        self.db, self.idle_s, self.max_s = db, idle_s, max_s

    def start(self, person_id: str, client: str | None, conn: Connection | None = None) -> tuple[str, Session]:
        """A new session for `person_id`: the cookie's value (shown once) and the session; in
        `conn`'s transaction if given."""
        secret = secrets.token_urlsafe(32)
        now = time.time()
        session = Session(digest(secret), person_id, now, now, now + self.max_s)
        with self.db.within(conn) as conn:
            conn.execute(
                sessions.insert().values(
                    session_hash=session.session_hash,
                    person_id=person_id,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=session.expires_at,
                    client=(client or "")[:200],
                )
            )
        return secret, session

    def find(self, secret: str) -> Session | None:
        """The live session the cookie names, its idle clock reset; None when it is unknown, ended
        or expired (an expired one is deleted)."""
        if not secret or len(secret) > 128:
            return None
        key, now = digest(secret), time.time()
        with self.db.begin() as conn:
            row = conn.execute(select(sessions).where(sessions.c.session_hash == key)).first()
            if row is None:
                return None
            if now >= row.expires_at or now - row.last_seen_at >= self.idle_s:
                conn.execute(delete(sessions).where(sessions.c.session_hash == key))
                return None
            if now - row.last_seen_at >= SEEN_EVERY_S:
                conn.execute(update(sessions).where(sessions.c.session_hash == key).values(last_seen_at=now))
        return Session(key, row.person_id, row.created_at, max(row.last_seen_at, now), row.expires_at)

    def end(self, secret: str) -> str | None:
        """Sign-out: the session is gone on every backend. The person it was, if it existed."""
        key = digest(secret)
        with self.db.begin() as conn:
            person = conn.execute(select(sessions.c.person_id).where(sessions.c.session_hash == key)).scalar()
            conn.execute(delete(sessions).where(sessions.c.session_hash == key))
        return person

    def end_all(self, person_id: str) -> int:
        """Every session of a person the source no longer knows."""
        with self.db.begin() as conn:
            return conn.execute(delete(sessions).where(sessions.c.person_id == person_id)).rowcount

    def prune(self) -> int:
        """Expired sessions and abandoned sign-ins; run in the background."""
        now = time.time()
        with self.db.begin() as conn:
            gone = conn.execute(
                delete(sessions).where((sessions.c.expires_at <= now) | (sessions.c.last_seen_at <= now - self.idle_s))
            ).rowcount
            conn.execute(delete(sign_in_attempts).where(sign_in_attempts.c.created_at <= now - ATTEMPT_TTL_S))
        return gone

    # ------------------------------------------------------------ OpenID Connect sign-ins under way
    def keep_attempt(self, pending: PendingLogin, return_to: str) -> None:
        with self.db.begin() as conn:
            conn.execute(
                sign_in_attempts.insert().values(
                    state_hash=digest(pending.state),
                    nonce=pending.nonce,
                    code_verifier=pending.code_verifier,
                    return_to=return_to,
                    created_at=pending.created_at,
                )
            )

    def take_attempt(self, state: str) -> tuple[PendingLogin, str] | None:
        """The sign-in `state` names, removed so that it is used once (a replayed callback finds
        nothing); None when unknown or older than ATTEMPT_TTL_S."""
        if not state or len(state) > 512:
            return None
        key = digest(state)
        with self.db.begin() as conn:
            row = conn.execute(select(sign_in_attempts).where(sign_in_attempts.c.state_hash == key)).first()
            if (
                row is None
                or conn.execute(delete(sign_in_attempts).where(sign_in_attempts.c.state_hash == key)).rowcount != 1
            ):
                return None  # another backend took it first
        if time.time() - row.created_at > ATTEMPT_TTL_S:
            return None
        return PendingLogin(state, row.nonce, row.code_verifier, row.created_at), row.return_to
