"""Sign-in through an LDAP directory, against a real OpenLDAP slapd (tests/directory.py): who signs
in and with which groups, one answer for every failed sign-in, filters that user input cannot
bend, TLS that verifies the server, and a directory that is down or silent answered in time."""

from __future__ import annotations

import re
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from docassist.pipelines.environment import ConfigError
from docassist.pipelines.errors import IdentityProviderUnavailable, InvalidCredentials
from docassist.pipelines.identity import ldap_directory
from docassist.pipelines.identity.ldap_directory import LdapDirectory, LdapSettings
from docassist.pipelines.identity.people import Person
from tests.directory import Slapd

WRONG = "the username or password is wrong"


def directory(slapd: Slapd, **env: str) -> LdapDirectory:
    """docassist's view of the test directory, LDAP_* variables overriding its defaults."""
    return LdapDirectory(LdapSettings.from_env({**slapd.env(), **env}))


def refused(sign_in: Callable[[], Person]) -> str:
    """The message of the InvalidCredentials that `sign_in` must raise."""
    with pytest.raises(InvalidCredentials) as caught:
        sign_in()
    return caught.value.message


def within(seconds: float, call: Callable[[], Person]) -> Person:
    """`call`'s outcome, from a daemon thread given `seconds`: a hang fails the test, not the run."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["person"] = call()
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"no answer within {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["person"]


@pytest.fixture(scope="module")
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def test_sign_in_gives_the_person_with_name_and_groups(slapd):
    alice = directory(slapd).authenticate("alice", "alice-password")
    assert alice == Person(
        person_id="ldap:uid=alice,ou=people,dc=example,dc=org",
        login="alice",
        name="Alice Liddell",
        groups=("engineering", "readers"),
        source="ldap",
    )
    typed = directory(slapd).authenticate("  ALICE ", "alice-password")
    assert (typed.person_id, typed.login) == (alice.person_id, "ALICE"), "the same person, the login as typed"
    bob = directory(slapd).authenticate("bob", "bob-password")
    assert (bob.name, bob.groups) == ("Bob Builder", ("readers",)), "no displayName: the cn"


def test_a_cyrillic_username_signs_in(slapd):
    ivan = directory(slapd).authenticate("иван", "иван-password")
    assert (ivan.person_id, ivan.name, ivan.groups) == (
        "ldap:uid=иван,ou=people,dc=example,dc=org",
        "Иван Петров",
        ("engineering",),
    )
    assert directory(slapd).authenticate("ИВАН", "иван-password").person_id == ivan.person_id


def test_every_failed_sign_in_gets_the_same_answer(slapd):
    ldap = directory(slapd)
    messages = {
        refused(lambda: ldap.authenticate("alice", "bob-password")),  # wrong password
        refused(lambda: ldap.authenticate("nobody", "alice-password")),  # unknown user
        refused(lambda: ldap.authenticate("carol", "carol-password")),  # ppolicy-locked (slapd would let her bind)
        refused(lambda: ldap.authenticate("sam", "sam-password")),  # two entries answer to "sam"
        refused(lambda: ldap.authenticate("alice", "")),  # empty: an "unauthenticated bind" would succeed
        refused(lambda: ldap.authenticate("", "alice-password")),
        refused(lambda: ldap.authenticate("alice", "alice-password\x00")),
    }
    assert messages == {WRONG}


def test_an_empty_password_never_reaches_the_directory(silent_port):
    settings = LdapSettings(url=f"ldap://127.0.0.1:{silent_port}", user_base="ou=people,dc=example,dc=org")
    started = time.monotonic()
    assert refused(lambda: LdapDirectory(settings).authenticate("alice", "")) == WRONG
    assert time.monotonic() - started < 0.5, "answered without waiting for the (silent) directory"


def test_an_unknown_user_costs_the_time_of_a_wrong_password(slapd):
    """Timed in turns, so a slower moment of this shared machine falls on both. On this loopback,
    an unknown user answered without the decoy bind takes 0.5-0.7 of a wrong password's time."""
    ldap = directory(slapd)

    def seconds(username: str) -> float:
        started = time.perf_counter()
        refused(lambda: ldap.authenticate(username, "not-the-password"))
        return time.perf_counter() - started

    seconds("alice"), seconds("nobody-at-all")  # warm-up
    wrong, unknown = zip(*((seconds("alice"), seconds("nobody-at-all")) for _ in range(15)), strict=True)
    ratio = statistics.median(unknown) / statistics.median(wrong)
    assert 0.75 <= ratio <= 1.5, ratio


@pytest.mark.parametrize("username", ["*)(uid=*", "alice)(|(uid=*", "*", "admin*", "al*", "alice)", "(uid=alice)"])
def test_filter_characters_in_a_username_match_no_one(slapd, username):
    ldap = directory(slapd)
    for password in ("alice-password", "bob-password"):
        assert refused(lambda password=password: ldap.authenticate(username, password)) == WRONG
    assert ldap.lookup(username) is None


def test_a_10_kb_username_is_refused(slapd):
    ldap = directory(slapd)
    assert refused(lambda: ldap.authenticate("a" * 10_000, "alice-password")) == WRONG
    assert refused(lambda: ldap.authenticate("ж" * 10_000, "alice-password")) == WRONG
    assert ldap.lookup("a" * 10_000) is None


def test_lookup_follows_group_changes_deletion_and_locking(slapd):
    ldap = directory(slapd)
    slapd.add_user("fay", "fay-password", name="Fay Wray", groups=("readers",))
    slapd.add_user("gil", "gil-password", groups=("readers",))
    fay = ldap.authenticate("fay", "fay-password")
    assert (fay.name, fay.groups) == ("Fay Wray", ("readers",))

    slapd.add_to_group("fay", "engineering")
    assert ldap.lookup("fay") == Person(fay.person_id, "fay", "Fay Wray", ("engineering", "readers"), "ldap")
    slapd.remove_from_group("fay", "readers")
    assert ldap.lookup("fay").groups == ("engineering",)

    slapd.lock_user("fay")
    assert ldap.lookup("fay") is None
    assert refused(lambda: ldap.authenticate("fay", "fay-password")) == WRONG

    assert ldap.lookup("gil") is not None
    slapd.delete_user("gil")
    assert ldap.lookup("gil") is None
    assert refused(lambda: ldap.authenticate("gil", "gil-password")) == WRONG


def test_active_directory_filter_and_disabled_accounts(slapd):
    ldap = directory(slapd, LDAP_USER_FILTER="(sAMAccountName={username})")
    dora = ldap.authenticate("dora.ad", "dora-password")
    assert (dora.person_id, dora.login, dora.groups) == (
        "ldap:uid=dora,ou=people,dc=example,dc=org",
        "dora.ad",
        ("engineering",),
    )
    # eve's userAccountControl has ACCOUNTDISABLE (514): slapd would let her bind, docassist does not
    assert refused(lambda: ldap.authenticate("eve.ad", "eve-password")) == WRONG
    assert ldap.lookup("eve.ad") is None


def test_groups_are_read_a_page_at_a_time(slapd, monkeypatch):
    monkeypatch.setattr(ldap_directory, "GROUP_PAGE", 1)
    assert directory(slapd).lookup("alice").groups == ("engineering", "readers")


def test_an_anonymous_service_bind_works_where_the_directory_allows_it(slapd):
    ldap = directory(slapd, LDAP_BIND_DN="", LDAP_BIND_PASSWORD="")
    assert ldap.authenticate("bob", "bob-password").groups == ("readers",)


def test_sign_ins_from_many_threads_at_once(slapd):
    ldap = directory(slapd)
    people = ["alice", "bob", "иван"] * 8
    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda uid: ldap.authenticate(uid, f"{uid}-password").login, people))
    assert found == people


def test_ldaps_verifies_the_server_with_the_ca_file(slapd):
    assert directory(slapd, LDAP_URL=slapd.ldaps_url).authenticate("alice", "alice-password").name == "Alice Liddell"
    with pytest.raises(IdentityProviderUnavailable, match=slapd.ldaps_url) as caught:
        directory(slapd, LDAP_URL=slapd.ldaps_url, LDAP_CA_FILE=slapd.other_ca_file).authenticate(
            "alice", "alice-password"
        )
    assert "LDAP_CA_FILE" in caught.value.message and "alice-password" not in caught.value.message


def test_start_tls_upgrades_and_verifies(slapd):
    assert directory(slapd, LDAP_START_TLS="true").authenticate("alice", "alice-password").login == "alice"
    with pytest.raises(IdentityProviderUnavailable, match=slapd.url):
        directory(slapd, LDAP_START_TLS="true", LDAP_CA_FILE=slapd.other_ca_file).lookup("alice")


def test_a_wrong_service_password_is_the_directory_unavailable(slapd):
    with pytest.raises(IdentityProviderUnavailable, match=slapd.url) as caught:
        directory(slapd, LDAP_BIND_PASSWORD="not-the-service-password").authenticate("alice", "alice-password")
    assert "refuses the service account" in caught.value.message
    assert "not-the-service-password" not in caught.value.message and "alice-password" not in caught.value.message


def test_a_stopped_directory_is_unavailable_in_time_and_back_after_start(slapd):
    ldaps = directory(slapd, LDAP_URL=slapd.ldaps_url, LDAP_TIMEOUT_S="2")
    ldap = directory(slapd, LDAP_TIMEOUT_S="2")
    slapd.stop()
    try:
        for attempt in (
            lambda: ldap.authenticate("alice", "alice-password"),
            lambda: ldap.lookup("alice"),
            lambda: ldaps.authenticate("alice", "alice-password"),
        ):
            started = time.monotonic()
            with pytest.raises(IdentityProviderUnavailable, match=r"LDAP directory at ldaps?://127\.0\.0\.1"):
                attempt()
            assert time.monotonic() - started < 2 + 1
    finally:
        slapd.start()
    assert ldap.authenticate("alice", "alice-password").groups == ("engineering", "readers")
    assert ldaps.lookup("alice") is not None


@pytest.mark.parametrize("scheme, start_tls", [("ldap", "false"), ("ldaps", "false"), ("ldap", "true")])
def test_a_silent_directory_is_unavailable_within_the_timeout(slapd, silent_port, scheme, start_tls):
    url = f"{scheme}://127.0.0.1:{silent_port}"
    ldap = directory(slapd, LDAP_URL=url, LDAP_START_TLS=start_tls, LDAP_TIMEOUT_S="1")
    with pytest.raises(IdentityProviderUnavailable, match=re.escape(url)):
        within(1 + 1, lambda: ldap.authenticate("alice", "alice-password"))


REQUIRED = {"LDAP_URL": "ldap://dc.example.com", "LDAP_USER_BASE": "ou=people,dc=example,dc=com"}


def test_settings_defaults_and_ldap_off_without_a_url():
    assert not LdapSettings.from_env({}).configured
    settings = LdapSettings.from_env({**REQUIRED, "LDAP_GROUP_BASE": ""})
    assert settings.configured and settings.group_base is None and settings.timeout_s == 5
    assert (settings.user_filter, settings.group_filter) == ("(uid={username})", "(member={dn})")


@pytest.mark.parametrize(
    "env, says",
    [
        ({"LDAP_USER_BASE": ""}, "LDAP_USER_BASE must be set"),
        ({"LDAP_URL": "https://dc.example.com"}, r"ldap:// or ldaps:// URL"),
        ({"LDAP_URL": "ldap://a ldap://b"}, r"one ldap:// or ldaps:// URL"),
        ({"LDAP_USER_FILTER": "(uid=%s)"}, r"\(uid=\{username\}\) or, for Active Directory, \(sAMAccountName="),
        ({"LDAP_USER_FILTER": "uid={username}"}, r"LDAP_USER_FILTER must be a filter in parentheses"),
        ({"LDAP_GROUP_FILTER": "(member={username})"}, r"\(member=\{dn\}\) or, for Active Directory's nested"),
        ({"LDAP_BIND_DN": "cn=svc,dc=example,dc=com"}, "LDAP_BIND_DN and LDAP_BIND_PASSWORD go together"),
        ({"LDAP_URL": "ldaps://dc.example.com", "LDAP_START_TLS": "true"}, "LDAP_START_TLS is for an ldap:// URL"),
        ({"LDAP_CA_FILE": "/nonexistent/ca.pem"}, "LDAP_CA_FILE '/nonexistent/ca.pem' is not a file"),
        ({"LDAP_TIMEOUT_S": "0"}, "greater than 0"),
    ],
)
def test_settings_that_cannot_work_refuse_the_start_saying_what_to_write(env, says):
    with pytest.raises(ConfigError, match=says):
        LdapSettings.from_env({**REQUIRED, **env})


def test_a_kept_service_connection_the_directory_closed_meanwhile_is_replaced_unseen(slapd):
    """The service account's connection is kept between sign-ins; a directory restarted in between
    has closed it, and the next sign-in runs again on a new one instead of failing."""
    kept = directory(slapd)
    assert kept.authenticate("alice", "alice-password").name == "Alice Liddell"
    slapd.stop()
    slapd.start()
    assert kept.authenticate("alice", "alice-password").name == "Alice Liddell"
    assert kept.lookup("bob") is not None
