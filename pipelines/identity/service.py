"""Identity: signing people in and out, what a session cookie or a personal token acts as, and the
audit trail — the feature the HTTP layer asks on every request that carries either.

Rights follow the directory. A person's groups are read from their source at sign-in and again at
least every `AUTH_REFRESH_S` while a session or token of theirs is used (one refresh at a time per
person, whichever request comes first): removed from a group, they lose its spaces at that
refresh; deleted or disabled, every session of theirs ends and their tokens act as nobody. When the
source does not answer, the last rights hold until two refreshes in a row have failed; then the
session answers 401 until a refresh succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Literal, TypeVar

from redis.asyncio import Redis

from docassist.pipelines.errors import (
    IdentityProviderUnavailable,
    InvalidCredentials,
    NotFound,
    SessionExpired,
    SignInFailed,
)
from docassist.pipelines.identity.audit import AuditEntry, AuditFilter, AuditLog, AuditPage
from docassist.pipelines.identity.caller_cache import CallerCache
from docassist.pipelines.identity.config import IdentityConfig
from docassist.pipelines.identity.ldap_directory import LdapDirectory
from docassist.pipelines.identity.oidc import Grant, OidcClient
from docassist.pipelines.identity.people import Person
from docassist.pipelines.identity.people_store import Known, PeopleStore
from docassist.pipelines.identity.revocations import Revocations
from docassist.pipelines.identity.rules import Rights
from docassist.pipelines.identity.sessions import Session, SessionStore, digest
from docassist.pipelines.identity.throttle import SignInThrottle
from docassist.pipelines.identity.tokens import TokenInfo, TokenStore
from docassist.pipelines.lanes import Lanes
from docassist.pipelines.logs import event
from docassist.pipelines.storage.database import Database

T = TypeVar("T")
FAILED_REFRESHES_ALLOWED = 1  # the last rights hold through one failed refresh; the second ends them
MAINTAIN_EVERY_S = 3600


@dataclass(frozen=True)
class Caller:
    """A person acting through a session or one of their tokens, with their rights as of now."""

    person: Person
    rights: Rights
    via: Literal["session", "token"]
    credential: str  # the session's hash prefix or the token's id: which of theirs it was


@dataclass(frozen=True)
class SignedIn:
    secret: str  # the session cookie's value, shown once
    caller: Caller
    expires_at: float
    return_to: str = "/"


class Identity:
    def __init__(
        self, config: IdentityConfig, db: Database, lanes: Lanes, redis: Redis | None, alone: bool = True
    ) -> None:
        """`alone`: this is the deployment's only serving process (no other can end a session
        behind its back), so it may remember callers without Redis to hear the others."""
        self.config = config
        self.rules = config.rules
        self.ldap = LdapDirectory(config.ldap) if config.ldap.configured else None
        self.oidc = OidcClient(config.oidc) if config.oidc.configured else None
        limits = config.limits
        self.people = PeopleStore(db)
        self.sessions = SessionStore(db, limits.session_idle_s, limits.session_max_s)
        self.tokens = TokenStore(db)
        self.audit = AuditLog(db)
        self.throttle = SignInThrottle(redis)
        self._storage, self._directory = lanes.storage, lanes.directory
        self._refreshing: dict[str, asyncio.Lock] = {}
        self._maintainer: asyncio.Task[None] | None = None
        self._cache: CallerCache[Caller] = CallerCache()
        self._cache.enabled = alone or redis is not None
        self._revocations = Revocations(redis, self._heard, self._deaf) if redis is not None else None

    @property
    def sign_in(self) -> bool:
        return self.config.sign_in

    # ------------------------------------------------------------------ signing in and out
    async def sign_in_ldap(self, username: str, password: str, client: str | None, audit: AuditEntry) -> SignedIn:
        """A session for the person whose directory password this is, `audit` (the request's
        `sign_in` entry) written with it. Wrong password and unknown username alike:
        `InvalidCredentials`; too many failures: `SignInThrottled` before the directory is asked;
        the directory down: `IdentityProviderUnavailable`."""
        if self.ldap is None:
            raise NotFound("sign-in with a username and password is not configured here (LDAP_URL is not set)")
        await self.throttle.check(username, client)
        try:  # the directory's answer and the session's writes in one trip to a thread
            return await self._directory.run(self._sign_in_ldap, username, password, client, audit)
        except InvalidCredentials:
            await self.throttle.failed(username, client)
            raise

    def _sign_in_ldap(self, username: str, password: str, client: str | None, audit: AuditEntry) -> SignedIn:
        assert self.ldap is not None
        return self._session_for(self.ldap.authenticate(username, password), None, client, audit)

    async def oidc_begin(self, return_to: str) -> tuple[str, str]:
        """The provider's address to send the browser to, and the sign-in's `state`, which the
        browser keeps (a cookie) to show at the callback; the sign-in is kept until then."""
        if self.oidc is None:
            raise NotFound("sign-in through an OpenID provider is not configured here (OIDC_ISSUER is not set)")
        url, pending = await self.oidc.begin()
        await self._storage.run(self.sessions.keep_attempt, pending, return_to)
        return url, pending.state

    async def oidc_complete(
        self,
        code: str | None,
        state: str | None,
        error: str | None,
        browser_state: str | None,
        client: str | None,
        audit: AuditEntry,
    ) -> SignedIn:
        """The provider's callback: a session for the person its ID token names. A callback that
        reports an error, lacks its code or state, arrives in another browser than the one that
        started the sign-in (`browser_state`: what that browser kept — so nobody can sign someone
        else in as themselves with a callback of their own), or names a sign-in unknown or already
        used here starts nothing (`SignInFailed`), nor does a code or ID token that does not hold."""
        if self.oidc is None:
            raise NotFound("sign-in through an OpenID provider is not configured here (OIDC_ISSUER is not set)")
        if error is not None or not code or not state:
            raise SignInFailed(f"the provider did not sign you in ({error or 'no code or state in its answer'})")
        if not browser_state or not hmac.compare_digest(state.encode(), browser_state.encode()):
            raise SignInFailed("this sign-in was started in another browser (or its cookie is gone); start again")
        taken = await self._storage.run(self.sessions.take_attempt, state)
        if taken is None:
            raise SignInFailed("this sign-in is unknown, was already used, or took longer than 10 minutes; start again")
        pending, return_to = taken
        person, grant = await self.oidc.complete(code, pending)
        signed = await self._start_session(person, grant, client, audit)
        return SignedIn(signed.secret, signed.caller, signed.expires_at, return_to)

    async def _start_session(
        self, person: Person, grant: Grant | None, client: str | None, audit: AuditEntry
    ) -> SignedIn:
        return await self._storage.run(self._session_for, person, grant, client, audit)

    def _session_for(self, person: Person, grant: Grant | None, client: str | None, audit: AuditEntry) -> SignedIn:
        """Blocking: the person as the source described them, their new session and the audit
        entry, in one commit."""
        entry = replace(audit, user_id=person.person_id, user_name=person.name)
        secret, session = self._record_sign_in(person, grant, client, entry)
        caller = Caller(person, self.rules.rights_for(person.groups), "session", session.session_hash[:12])
        return SignedIn(secret, caller, session.expires_at)

    def _record_sign_in(
        self, person: Person, grant: Grant | None, client: str | None, entry: AuditEntry
    ) -> tuple[str, Session]:
        """The person as the source described them, their new session and the audit entry: one commit."""
        with self.audit.db.begin() as conn:
            self.people.signed_in(person, grant, conn)
            started = self.sessions.start(person.person_id, client, conn)
            self.audit.record(entry, conn)
        return started

    async def sign_out(self, secret: str) -> Person | None:
        person_id = await self._storage.run(self.sessions.end, secret)
        if person_id is None:
            return None
        await self._forget(person_id)
        known = await self._storage.run(self.people.get, person_id)
        return known.person if known else None

    # ------------------------------------------------------------------ who calls
    async def by_session(self, secret: str) -> Caller:
        """The person a session cookie signs in, with their current rights; `SessionExpired` when
        the session is unknown, over, or its person lost their account or every refresh failed."""
        key = "session:" + digest(secret)
        if (cached := self._cache.get(key)) is not None:
            return cached
        found = await self._storage.run(self._session_and_person, secret)
        person = await self._current(found[1]) if found is not None else None
        if found is None or person is None:
            raise SessionExpired("your session has ended; sign in again")
        caller = Caller(person, self.rules.rights_for(person.groups), "session", found[0].session_hash[:12])
        self._cache.put(key, person.person_id, caller)
        return caller

    def _session_and_person(self, secret: str) -> tuple[Session, Known | None] | None:
        session = self.sessions.find(secret)
        return None if session is None else (session, self.people.get(session.person_id))

    async def by_token(self, token: str) -> Caller | None:
        """The person a personal token acts as, with their current rights; None when the token is
        unknown, revoked or expired, or its owner is gone."""
        key = "token:" + digest(token)
        if (cached := self._cache.get(key)) is not None:
            return cached
        found = await self._storage.run(self._token_and_person, token)
        person = await self._current(found[1]) if found is not None else None
        if found is None or person is None:
            return None
        caller = Caller(person, self.rules.rights_for(person.groups), "token", found[0].token_id)
        self._cache.put(key, person.person_id, caller)
        return caller

    def _token_and_person(self, token: str) -> tuple[TokenInfo, Known | None] | None:
        info = self.tokens.find(token)
        return None if info is None else (info, self.people.get(info.person_id))

    async def _current(self, known: Known | None) -> Person | None:
        """The person as of now: refreshed from their source when due (`AUTH_REFRESH_S`)."""
        if known is None or not known.active:
            return None
        person_id = known.person.person_id
        if time.time() - known.refreshed_at < self.config.limits.auth_refresh_s:
            return known.person if known.refresh_failures <= FAILED_REFRESHES_ALLOWED else None
        lock = self._refreshing.setdefault(person_id, asyncio.Lock())
        async with lock:  # one refresh per person: the requests behind it read its outcome
            known = await self._storage.run(self.people.get, person_id)
            if known is None or not known.active:
                return None
            if time.time() - known.refreshed_at >= self.config.limits.auth_refresh_s:
                known = await self._refresh(known)
            self._refreshing.pop(person_id, None)
        if known is None or known.refresh_failures > FAILED_REFRESHES_ALLOWED:
            return None
        return known.person

    async def _refresh(self, known: Known) -> Known | None:
        """Ask the person's source again. None: the source no longer knows them."""
        person = known.person
        try:
            if person.source == "ldap" and self.ldap is not None:
                fresh = await self._directory.run(self.ldap.lookup, person.login)
                grant = None
            elif person.source == "oidc" and self.oidc is not None and known.grant is not None:
                refreshed = await self.oidc.refresh(person, known.grant)
                fresh, grant = refreshed if refreshed is not None else (None, None)
            else:  # the source was switched off, or a provider gave nothing to ask again with
                fresh, grant = None, None
        except IdentityProviderUnavailable as exc:
            failures = await self._storage.run(self.people.refresh_failed, person.person_id)
            event(
                "[AUTH] Refresh failed",
                f"{person.person_id}: {exc.message} ({failures} in a row; "
                f"{'rights kept' if failures <= FAILED_REFRESHES_ALLOWED else 'sessions refused until it answers'})",
                level=logging.WARNING,
            )
            if failures > FAILED_REFRESHES_ALLOWED:
                await self._forget(person.person_id)
            return Known(person, time.time(), failures, True, known.grant)
        if fresh is None:
            await self._forget(person.person_id)
            await self._storage.run(self.people.gone, person.person_id)
            ended = await self._storage.run(self.sessions.end_all, person.person_id)
            event(
                "[AUTH] Person gone",
                f"{person.person_id}: unknown to or disabled by the source; {ended} session(s) ended",
            )
            return None
        await self._storage.run(self.people.refreshed, fresh, grant)
        if fresh.groups != person.groups:
            event("[AUTH] Groups changed", f"{person.person_id}: {list(person.groups)} → {list(fresh.groups)}")
        return Known(fresh, time.time(), 0, True, grant or known.grant)

    # ------------------------------------------------------------------ personal tokens
    async def create_token(self, person: Person, name: str, days: int) -> tuple[str, TokenInfo]:
        return await self._storage.run(self.tokens.create, person.person_id, name, days)

    async def tokens_of(self, person: Person) -> list[TokenInfo]:
        return await self._storage.run(self.tokens.of, person.person_id)

    async def revoke_token(self, person: Person, token_id: str) -> TokenInfo:
        info = await self._storage.run(self.tokens.revoke, person.person_id, token_id)
        await self._forget(person.person_id)
        return info

    # ------------------------------------------------------------------ what every process forgets
    async def _forget(self, person_id: str) -> None:
        """A session or token of the person ended, or their rights did: no process acts on what
        it remembered of them."""
        self._cache.forget_person(person_id)
        if self._revocations is not None:
            await self._revocations.tell("person:" + person_id)

    def _heard(self, what: str) -> None:
        if what.startswith("person:"):
            self._cache.forget_person(what.removeprefix("person:"))

    def _deaf(self, deaf: bool) -> None:
        self._cache.enabled = not deaf
        if deaf:
            self._cache.clear()

    # ------------------------------------------------------------------ audit
    async def record(self, entry: AuditEntry) -> None:
        await self._storage.run(self.audit.record, entry)

    async def audit_page(self, where: AuditFilter, limit: int, cursor: str | None) -> AuditPage:
        return await self._storage.run(self.audit.page, where, limit, cursor)

    # ------------------------------------------------------------------ background
    def start(self) -> None:
        """Expired sessions and sign-ins removed, audit entries past their retention deleted: now and hourly."""
        self._maintainer = asyncio.get_running_loop().create_task(self._maintain())
        if self._revocations is not None:
            self._revocations.start()

    async def stop(self) -> None:
        if self._revocations is not None:
            await self._revocations.stop()
        if self._maintainer is not None:
            self._maintainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintainer
        if self.oidc is not None:
            await self.oidc.close()

    async def _maintain(self) -> None:
        while True:
            await self._quietly(self._storage.run, self.sessions.prune)
            days = self.config.limits.audit_retention_days
            pruned = await self._quietly(self._storage.run, self.audit.prune, days)
            if pruned:
                event("[AUDIT] Retention", f"{pruned} entries older than {days} days removed")
            await asyncio.sleep(MAINTAIN_EVERY_S)

    @staticmethod
    async def _quietly(fn: Callable[..., Awaitable[T]], *args: object) -> T | None:
        try:
            return await fn(*args)
        except Exception as exc:  # the database away for a while: the next round tries again
            event("[AUTH] Maintenance failed", f"{type(exc).__name__}: {exc}", level=logging.WARNING)
            return None
