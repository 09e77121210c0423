"""Sign-in through an LDAP directory (OpenLDAP, Active Directory) with python-ldap.

A sign-in binds as the service account, finds the person with `LDAP_USER_FILTER`, checks the
password with a bind of its own as that person, and reads their groups; a refresh (`lookup`) asks
again without the password. Every call opens its own connections and closes them: nothing is
shared between the threads that call, and a directory that went away and came back needs nothing
reset. Whatever the reason a sign-in fails — wrong password, unknown, ambiguous or disabled
account — the answer and the work done are the same, so neither tells whether the person exists.
"""

from __future__ import annotations

import queue
import secrets
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from docassist.pipelines.environment import ConfigError, FromEnvironment
from docassist.pipelines.errors import IdentityProviderUnavailable, InvalidCredentials
from docassist.pipelines.identity.people import Person

try:  # the optional `ldap` extra: the settings read without it, a directory needs it
    import ldap
    from ldap.controls import SimplePagedResultsControl
    from ldap.filter import escape_filter_chars
except ImportError:  # pragma: no cover - only where the extra is not installed
    ldap = None

WRONG = "the username or password is wrong"
MAX_USERNAME = 256  # characters: longer is no one's username (and never reaches the directory)
GROUP_PAGE = 500  # groups per page (RFC 2696): below the server limits (OpenLDAP 500, AD 1000)
T = TypeVar("T")
IDLE_CONNECTIONS = 4  # the directory lane's threads
IDLE_S = 60.0  # a kept connection older than this is closed: directories drop idle ones (AD after 15 min)
_ACCOUNTDISABLE = 0x2  # Active Directory's userAccountControl bit of a disabled account
# what a person's entry is read for: the name shown, and the marks of a disabled account
_PERSON_ATTRS = ["displayName", "cn", "userAccountControl", "pwdAccountLockedTime"]


class LdapSettings(FromEnvironment):
    """Where the directory is and how people are found in it; LDAP sign-in is off without LDAP_URL."""

    url: str | None = Field(None, validation_alias="LDAP_URL")  # ldap://host:389 or ldaps://host:636
    bind_dn: str | None = Field(None, validation_alias="LDAP_BIND_DN")  # the service account; None: anonymous
    bind_password: str | None = Field(None, validation_alias="LDAP_BIND_PASSWORD")
    user_base: str | None = Field(None, validation_alias="LDAP_USER_BASE")
    user_filter: str = Field("(uid={username})", validation_alias="LDAP_USER_FILTER")
    group_base: str | None = Field(None, validation_alias="LDAP_GROUP_BASE")  # None: user_base
    group_filter: str = Field("(member={dn})", validation_alias="LDAP_GROUP_FILTER")
    ca_file: str | None = Field(None, validation_alias="LDAP_CA_FILE")  # verifies ldaps:// and StartTLS
    start_tls: bool = Field(False, validation_alias="LDAP_START_TLS")  # ldap:// upgraded, verified
    timeout_s: float = Field(5, gt=0, le=120, validation_alias="LDAP_TIMEOUT_S")  # connect, and each operation

    @property
    def configured(self) -> bool:
        return self.url is not None

    @model_validator(mode="after")
    def _usable(self) -> Self:
        """Refuse a start with settings that cannot work, saying what to write instead."""
        if self.url is None:
            return self
        url = urlsplit(self.url)
        if url.scheme.lower() not in ("ldap", "ldaps") or not url.hostname or any(c.isspace() for c in self.url):
            raise ValueError(
                "LDAP_URL must be one ldap:// or ldaps:// URL with a host, e.g. ldaps://dc.example.com:636"
            )
        if not self.user_base:
            raise ValueError("LDAP_USER_BASE must be set with LDAP_URL: the DN people are searched under")
        if "{username}" not in self.user_filter or not _parenthesized(self.user_filter):
            raise ValueError(
                "LDAP_USER_FILTER must be a filter in parentheses with {username} where the sign-in name goes, "
                "e.g. (uid={username}) or, for Active Directory, (sAMAccountName={username})"
            )
        if "{dn}" not in self.group_filter or not _parenthesized(self.group_filter):
            raise ValueError(
                "LDAP_GROUP_FILTER must be a filter in parentheses with {dn} where the person's DN goes, "
                "e.g. (member={dn}) or, for Active Directory's nested groups, (member:1.2.840.113556.1.4.1941:={dn})"
            )
        if bool(self.bind_dn) != bool(self.bind_password):
            # a bind with a DN and no password is an "unauthenticated bind": anonymous, or refused
            raise ValueError("LDAP_BIND_DN and LDAP_BIND_PASSWORD go together: set both, or neither (anonymous)")
        if self.start_tls and self.url.lower().startswith("ldaps://"):
            raise ValueError("LDAP_START_TLS is for an ldap:// URL: an ldaps:// connection is encrypted already")
        if self.ca_file and not Path(self.ca_file).is_file():
            raise ValueError(f"LDAP_CA_FILE {self.ca_file!r} is not a file: give the PEM bundle of the directory's CA")
        return self

    @property
    def tls(self) -> bool:
        return self.start_tls or (self.url or "").lower().startswith("ldaps://")


def _parenthesized(search_filter: str) -> bool:
    return search_filter.startswith("(") and search_filter.endswith(")")


class LdapDirectory:
    """The directory's answers as `Person`s; blocking calls, each on connections of its own."""

    def __init__(self, settings: LdapSettings) -> None:
        if ldap is None:
            raise ConfigError("environment", "LDAP_URL", "needs python-ldap: pip install 'docassist[ldap]'")
        if not settings.configured or settings.user_base is None:
            raise ConfigError("environment", "LDAP_URL", "LDAP sign-in is not configured")
        self._settings = settings
        self._url: str = settings.url or ""
        self._user_base: str = settings.user_base
        # bound service connections between calls: a sign-in then costs the searches and the
        # person's bind, not a connection, a TLS handshake and a bind of the service account too
        self._idle: queue.LifoQueue[tuple[Any, float]] = queue.LifoQueue(maxsize=IDLE_CONNECTIONS)

    def authenticate(self, username: str, password: str) -> Person:
        """The person whose password this is, or InvalidCredentials (the same for every reason)."""
        login = username.strip()
        # An empty password makes a bind an "unauthenticated bind", which AD (among others) answers
        # with success: refused here, before any bind.
        if not login or not password or len(login) > MAX_USERNAME:
            raise InvalidCredentials(WRONG)

        def check(conn: Any) -> Person:
            found = self._find(conn, login)
            if found is None:
                # Nobody to check the password of: a bind that fails all the same costs the time a
                # wrong password costs. Under user_base and random, it names no one, so it locks no one out.
                self._password_holds(f"cn=docassist-nobody-{secrets.token_hex(8)},{self._user_base}", password)
                raise InvalidCredentials(WRONG)
            dn, attrs = found
            if not self._password_holds(dn, password):
                raise InvalidCredentials(WRONG)
            return self._person(conn, login, dn, attrs)

        with self._unavailable():
            return self._as_service(check)

    def lookup(self, login: str) -> Person | None:
        """The person as the directory has them now (groups read again), None once gone or disabled."""
        login = login.strip()
        if not login or len(login) > MAX_USERNAME:
            return None

        def read(conn: Any) -> Person | None:
            found = self._find(conn, login)
            return None if found is None else self._person(conn, login, *found)

        with self._unavailable():
            return self._as_service(read)

    @contextmanager
    def _unavailable(self) -> Iterator[None]:
        """A directory that is down, slow, busy or fails TLS: IdentityProviderUnavailable, naming it."""
        try:
            yield
        except ldap.LDAPError as exc:
            raise IdentityProviderUnavailable(f"the LDAP directory at {self._url} {self._why(exc)}") from exc

    def _why(self, exc: Exception) -> str:
        """What went wrong, for whoever reads the log: libldap's words, and where to look."""
        info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
        reason = f"is unavailable: {info.get('desc') or type(exc).__name__}"
        if isinstance(exc, ldap.INVALID_CREDENTIALS):  # only the service bind gets here
            return "refuses the service account: check LDAP_BIND_DN and LDAP_BIND_PASSWORD"
        if isinstance(exc, ldap.NO_SUCH_OBJECT):
            return f"{reason} (LDAP_USER_BASE or LDAP_GROUP_BASE names no entry there)"
        if self._settings.tls and isinstance(exc, ldap.SERVER_DOWN | ldap.CONNECT_ERROR):
            return f"{reason}, or its certificate is not one LDAP_CA_FILE verifies"
        return reason

    def _connect(self) -> Any:
        """A connection with timeouts and TLS set (connected on its first operation)."""
        timeout = self._settings.timeout_s
        if self._url.lower().startswith("ldaps://"):
            self._tls_answers()
        conn = ldap.initialize(self._url)
        conn.set_option(ldap.OPT_PROTOCOL_VERSION, ldap.VERSION3)
        conn.set_option(ldap.OPT_REFERRALS, 0)  # AD's referrals would be followed anonymously
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, timeout)
        conn.set_option(ldap.OPT_TIMEOUT, timeout)
        conn.timeout = timeout  # python-ldap's wait for the answer of a synchronous call (OPT_TIMEOUT bounds it too)
        if self._settings.tls:
            if self._settings.ca_file:
                conn.set_option(ldap.OPT_X_TLS_CACERTFILE, self._settings.ca_file)
            conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
            conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)  # last: a TLS context of this connection's own
        if self._settings.start_tls:
            try:
                conn.start_tls_s()
            except ldap.LDAPError:
                _close(conn)
                raise
        return conn

    def _tls_answers(self) -> None:
        """IdentityProviderUnavailable unless the server answers a TLS handshake within timeout_s.

        libldap 2.5 with GnuTLS (Debian 12) spins on a CPU forever in an ldaps:// handshake that the
        server accepted and never answers (a slapd whose threads are all busy does this), whatever
        the network timeout. So a handshake of Python's own goes first, bounded: any answer, even
        a refusal, will do — libldap's handshake that follows verifies the certificate and says
        what is wrong. Nothing is sent over it.
        """
        url = urlsplit(self._url)
        host, port = url.hostname or "", url.port or 636
        probe = ssl.create_default_context()
        probe.check_hostname, probe.verify_mode = False, ssl.CERT_NONE
        try:
            with (
                socket.create_connection((host, port), timeout=self._settings.timeout_s) as raw,
                suppress(ssl.SSLError),  # an answer all the same
            ):
                probe.wrap_socket(raw, server_hostname=host).close()
        except OSError as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or type(exc).__name__
            raise IdentityProviderUnavailable(f"the LDAP directory at {self._url} is unavailable: {reason}") from exc

    def _as_service(self, work: Callable[[Any], T]) -> T:
        """`work` on a connection bound as the service account (anonymously without LDAP_BIND_DN):
        an idle one kept from an earlier call, else a new one. A kept one the directory has closed
        meanwhile (restarted, or idle too long for it) fails at once: the work runs again on a new
        connection. The connection is kept again only when the work went through (a wrong password
        counts: it is the answer); a person's own bind never uses it."""
        conn = self._idle_service()
        if conn is not None:
            try:
                return self._kept_after(conn, work)
            except (ldap.SERVER_DOWN, ldap.CONNECT_ERROR):
                pass  # closed while idle: once more, on a new connection
        return self._kept_after(self._bound_service(), work)

    def _kept_after(self, conn: Any, work: Callable[[Any], T]) -> T:
        try:
            result = work(conn)
        except InvalidCredentials:
            self._keep_service(conn)
            raise
        except BaseException:
            _close(conn)
            raise
        self._keep_service(conn)
        return result

    def _bound_service(self) -> Any:
        conn = self._connect()
        try:
            conn.simple_bind_s(self._settings.bind_dn or "", self._settings.bind_password or "")
        except BaseException:
            _close(conn)
            raise
        return conn

    def _idle_service(self) -> Any | None:
        """A kept connection younger than IDLE_S; None when there is none."""
        while True:
            try:
                conn, kept_at = self._idle.get_nowait()
            except queue.Empty:
                return None
            if time.monotonic() - kept_at < IDLE_S:
                return conn
            _close(conn)

    def _keep_service(self, conn: Any) -> None:
        try:
            self._idle.put_nowait((conn, time.monotonic()))
        except queue.Full:
            _close(conn)

    def _password_holds(self, dn: str, password: str) -> bool:
        """Whether a bind as `dn` with `password` succeeds, on a connection of its own."""
        conn = self._connect()
        try:
            conn.simple_bind_s(dn, password)
            return True
        # wrong password, no such DN, a disabled or expired account (AD answers invalidCredentials
        # with a reason code in its message; OpenLDAP's ppolicy may refuse with these too)
        except (ldap.INVALID_CREDENTIALS, ldap.INAPPROPRIATE_AUTH, ldap.UNWILLING_TO_PERFORM, ldap.INVALID_DN_SYNTAX):
            return False
        finally:
            _close(conn)

    def _find(self, conn: Any, login: str) -> tuple[str, dict[str, list[bytes]]] | None:
        """The one enabled entry `login` names; None for none, several, or a disabled one."""
        search = self._settings.user_filter.replace("{username}", escape_filter_chars(login))
        timeout = self._settings.timeout_s
        try:
            found = conn.search_ext_s(
                self._user_base, ldap.SCOPE_SUBTREE, search, _PERSON_ATTRS, timeout=timeout, sizelimit=2
            )
        except ldap.SIZELIMIT_EXCEEDED:  # more than two: ambiguous all the same
            return None
        entries = [(dn, _lowered(attrs)) for dn, attrs in found if dn is not None]  # AD's references have no DN
        if len(entries) != 1 or _disabled(entries[0][1]):
            return None
        return entries[0]

    def _person(self, conn: Any, login: str, dn: str, attrs: dict[str, list[bytes]]) -> Person:
        name = _first(attrs, "displayname") or _first(attrs, "cn") or login
        return Person(
            person_id="ldap:" + dn.lower(), login=login, name=name, groups=self._groups(conn, dn), source="ldap"
        )

    def _groups(self, conn: Any, dn: str) -> tuple[str, ...]:
        """The cn of every group `group_filter` finds for `dn`, read a page at a time."""
        base = self._settings.group_base or self._user_base
        search = self._settings.group_filter.replace("{dn}", escape_filter_chars(dn))
        timeout = self._settings.timeout_s
        page = SimplePagedResultsControl(criticality=False, size=GROUP_PAGE, cookie=b"")
        names: set[str] = set()
        while True:
            msgid = conn.search_ext(base, ldap.SCOPE_SUBTREE, search, ["cn"], serverctrls=[page], timeout=timeout)
            _, found, _, controls = conn.result3(msgid, timeout=timeout)
            for group_dn, attrs in found:
                if group_dn is not None:
                    names.update(value.decode("utf-8", "replace") for value in _lowered(attrs).get("cn", []))
            page.cookie = next(
                (c.cookie for c in controls if c.controlType == SimplePagedResultsControl.controlType), b""
            )
            if not page.cookie:  # the last page, or a server that does not page
                return tuple(sorted(names))


def _close(conn: Any) -> None:
    with suppress(ldap.LDAPError):  # a connection that never opened, or a server already gone
        conn.unbind_s()


def _lowered(attrs: dict[str, list[bytes]]) -> dict[str, list[bytes]]:
    """Attribute names as one case: servers answer with the schema's spelling, not the request's."""
    return {name.lower(): values for name, values in attrs.items()}


def _first(attrs: dict[str, list[bytes]], name: str) -> str:
    values = attrs.get(name)
    return values[0].decode("utf-8", "replace").strip() if values else ""


def _disabled(attrs: dict[str, list[bytes]]) -> bool:
    """AD's ACCOUNTDISABLE bit, or an OpenLDAP ppolicy lock of any kind."""
    if attrs.get("pwdaccountlockedtime"):
        return True
    control = _first(attrs, "useraccountcontrol")
    return control.lstrip("-").isdigit() and bool(int(control) & _ACCOUNTDISABLE)
