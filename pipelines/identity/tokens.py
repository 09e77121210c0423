"""Personal tokens: what a person gives a script, an editor or Open WebUI to act as them. A token
is shown once, when it is made; the database keeps its SHA-256. It acts with its owner's rights
as they are now (the owner's groups, refreshed as a session's are), never with a copy of them."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from sqlalchemy import delete, select, update

from docassist.pipelines.errors import InvalidInput, NotFound
from docassist.pipelines.identity.sessions import SEEN_EVERY_S, digest
from docassist.pipelines.storage.database import Database
from docassist.pipelines.storage.tables import personal_tokens

PREFIX = "dat_"  # tells a personal token from an API key at a glance (and in secret scanners)
MAX_TOKENS = 100  # per person


def is_personal_token(value: str) -> bool:
    return value.startswith(PREFIX)


@dataclass(frozen=True)
class TokenInfo:
    token_id: str
    person_id: str
    name: str
    created_at: float
    expires_at: float
    last_used_at: float | None


class TokenStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, person_id: str, name: str, days: int) -> tuple[str, TokenInfo]:
        """A new token: its value (shown once) and what is kept of it."""
        token = PREFIX + secrets.token_urlsafe(32)
        now = time.time()
        info = TokenInfo(secrets.token_hex(8), person_id, name, now, now + days * 86400, None)
        with self.db.begin() as conn:
            held = conn.execute(
                select(personal_tokens.c.token_id).where(personal_tokens.c.person_id == person_id)
            ).all()
            if len(held) >= MAX_TOKENS:
                raise InvalidInput(f"a person holds at most {MAX_TOKENS} tokens; revoke one first")
            conn.execute(
                personal_tokens.insert().values(
                    token_id=info.token_id,
                    token_hash=digest(token),
                    person_id=person_id,
                    name=name,
                    created_at=now,
                    expires_at=info.expires_at,
                )
            )
        return token, info

    def find(self, token: str) -> TokenInfo | None:
        """The live token `token` is, or None (unknown, revoked or expired)."""
        if not is_personal_token(token) or len(token) > 128:
            return None
        now = time.time()
        with self.db.begin() as conn:
            row = conn.execute(select(personal_tokens).where(personal_tokens.c.token_hash == digest(token))).first()
            if row is None or row.expires_at <= now:
                return None
            if row.last_used_at is None or now - row.last_used_at >= SEEN_EVERY_S:
                conn.execute(
                    update(personal_tokens).where(personal_tokens.c.token_id == row.token_id).values(last_used_at=now)
                )
        return _info(row)

    def of(self, person_id: str) -> list[TokenInfo]:
        with self.db.begin() as conn:
            rows = conn.execute(
                select(personal_tokens)
                .where(personal_tokens.c.person_id == person_id)
                .order_by(personal_tokens.c.created_at.desc())
            ).all()
        return [_info(r) for r in rows]

    def revoke(self, person_id: str, token_id: str) -> TokenInfo:
        """Remove one of the person's own tokens; `NotFound` for anyone else's, as for none."""
        with self.db.begin() as conn:
            row = conn.execute(
                select(personal_tokens).where(
                    personal_tokens.c.token_id == token_id, personal_tokens.c.person_id == person_id
                )
            ).first()
            if row is None:
                raise NotFound("no such token of yours", token_id=token_id[:64])
            conn.execute(delete(personal_tokens).where(personal_tokens.c.token_id == token_id))
        return _info(row)


def _info(row) -> TokenInfo:
    return TokenInfo(row.token_id, row.person_id, row.name, row.created_at, row.expires_at, row.last_used_at)
