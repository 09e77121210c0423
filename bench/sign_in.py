"""People: what a session and a directory sign-in cost.

A `docassist serve` with LDAP sign-in against a real OpenLDAP slapd (`bench/directory.py`) and an
API key for the same space.

- **Session vs key** — `GET /documents/{id}` on a session cookie against the same request with an
  API key, alternating, each side on its own keep-alive connection: the cookie's request looks up
  the session and its person in the database (the key is checked in memory). Goal: median
  cookie / median key ≤ 1.1.
- **Sign-in vs the directory** — `POST /auth/login` against what the directory itself takes for
  the same work, measured by this process with python-ldap in the same run, as cheaply as a client
  can do it: a service connection bound once and kept (as the service keeps its own), a search for
  the person, their bind on a connection of its own, a search for their groups. Goal: p50 sign-in
  / p50 directory ≤ 2. On loopback the directory answers in about half a millisecond, less than an
  HTTP round trip takes by itself, so the run also times the same request refused by its schema
  before anything is asked (same connection: the HTTP part alone) and reports what sign-in adds
  beyond it against the directory's work; and it measures both again with the directory behind a
  port that delays each exchange 0.5 ms each way (`delay_proxy.py`: a directory one switch away),
  for a second service and the baseline alike.
"""

from __future__ import annotations

import time

import httpx

from docassist.bench.core import Context, Result
from docassist.bench.delay_proxy import DelayProxy
from docassist.bench.directory import Slapd
from docassist.bench.service import Service, start_service
from docassist.bench.stats import percentile, spread, summary

SPACE = "bench_people"
KEY = "bench-people-key-0000000001"
NETWORK_DELAY_MS = 0.5  # each way: a directory one switch away (a millisecond's round trip)
TEXT = "Проект «Сокол» сдаётся в марте. The Falcon project ships in March."


def _timed(client: httpx.Client, method: str, url: str, **kwargs: object) -> float:
    started = time.perf_counter()
    r = client.request(method, url, **kwargs)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    r.raise_for_status()
    return seconds


def _refused(client: httpx.Client) -> float:
    """The same request as a sign-in, refused by its schema before anything is asked: the HTTP part."""
    started = time.perf_counter()
    r = client.post("/auth/login", json={"username": "", "password": ""})
    seconds = time.perf_counter() - started
    assert r.status_code == 422, r.text
    return seconds


def _logins(
    client: httpx.Client, directory: _Directory, n: int, login: dict[str, str]
) -> tuple[list[float], list[float], list[float]]:
    """`n` sign-ins, the directory's own work for each and the same request refused, alternating."""
    logins, direct, refused = [], [], []
    with client:
        for i in range(n):
            client.cookies.clear()
            for side in ("login", "direct", "refused") if i % 2 == 0 else ("refused", "direct", "login"):
                if side == "login":
                    logins.append(_timed(client, "POST", "/auth/login", json=login))
                elif side == "direct":
                    direct.append(directory.sign_in(login["username"], login["password"]))
                else:
                    refused.append(_refused(client))
    return logins, direct, refused


class _Directory:
    """The directory's own work for a sign-in, done by this process with python-ldap as cheaply as
    a client can: a service connection bound once and kept, a search for the person, the person's
    bind on a connection of its own, a search for their groups."""

    def __init__(self, url: str, slapd: Slapd) -> None:
        import ldap

        self.url, self.slapd = url, slapd
        self.service = ldap.initialize(url)
        self.service.set_option(ldap.OPT_REFERRALS, 0)
        self.service.simple_bind_s(slapd.bind_dn, slapd.bind_password)

    def sign_in(self, username: str, password: str) -> float:
        import ldap
        from ldap.filter import escape_filter_chars

        started = time.perf_counter()
        base, person_filter = self.slapd.user_base, f"(uid={escape_filter_chars(username)})"
        dn = self.service.search_s(base, ldap.SCOPE_SUBTREE, person_filter, ["cn", "displayName"])[0][0]
        person = ldap.initialize(self.url)
        person.simple_bind_s(dn, password)
        person.unbind_s()
        self.service.search_s(self.slapd.group_base, ldap.SCOPE_SUBTREE, f"(member={escape_filter_chars(dn)})", ["cn"])
        return time.perf_counter() - started

    def close(self) -> None:
        self.service.unbind_s()


def _session_vs_key(ctx: Context, res: Result, service: Service) -> None:
    with service.client(Authorization=f"Bearer {KEY}") as keyed, service.client() as browser:
        r = keyed.post("/ingest", files={"file": ("note.txt", TEXT.encode())}, data={"space_id": SPACE, "wait": "true"})
        r.raise_for_status()
        doc = f"/documents/{r.json()['doc_id']}?space_id={SPACE}"
        browser.post("/auth/login", json={"username": "bob", "password": "bob-password"}).raise_for_status()
        for client in (keyed, browser):  # warm both connections and the routes
            for _ in range(20):
                _timed(client, "GET", doc)
        cookie, key = [], []
        for n in range(ctx.sizes.sign_in_requests):
            for side in ("cookie", "key") if n % 2 == 0 else ("key", "cookie"):
                (cookie if side == "cookie" else key).append(_timed(browser if side == "cookie" else keyed, "GET", doc))
    c50, k50 = percentile(cookie, 50), percentile(key, 50)
    res.add(
        "session_over_key",
        f"GET /documents/{{id}} on a session cookie / with an API key, median of {len(cookie)} each",
        round(c50 / k50, 3),
        baseline=f"the same request with an API key: median {k50 * 1000:.2f} ms",
        goal=("<=", 1.1),
        context=f"cookie median {c50 * 1000:.2f} ms, p90 {percentile(cookie, 90) * 1000:.2f} ms; "
        f"key p90 {percentile(key, 90) * 1000:.2f} ms",
    )
    res.data["session_vs_key"] = {"cookie_s": summary(cookie, 5), "key_s": summary(key, 5)}


def _login_vs_directory(ctx: Context, res: Result, service: Service, directory: _Directory, where: str) -> None:
    login = {"username": "bob", "password": "bob-password"}
    logins, direct, refused = _logins(service.client(), directory, ctx.sizes.sign_in_logins, login)
    l50, d50, r50 = percentile(logins, 50), percentile(direct, 50), percentile(refused, 50)
    suffix = "" if where == "loopback" else "_network"
    res.add(
        f"login_over_directory{suffix}",
        f"POST /auth/login p50 / the directory's own work p50, directory on {where}, {len(logins)} each",
        round(l50 / d50, 3),
        baseline=f"python-ldap in this process, a kept service connection: search, the person's bind, group "
        f"search: p50 {d50 * 1000:.2f} ms",
        goal=("<=", 2.0),
        context=f"sign-in p50 {l50 * 1000:.2f} ms, p90 {percentile(logins, 90) * 1000:.2f} ms; the same request "
        f"refused by its schema (nothing asked) p50 {r50 * 1000:.2f} ms, {r50 / d50:.1f}× the directory's work",
    )
    if not suffix:
        res.add(
            "login_work_over_directory",
            "POST /auth/login p50 less the same request refused by its schema (same connection) / the "
            "directory's own work p50, directory on loopback",
            round((l50 - r50) / d50, 3),
            baseline=f"the directory's work p50 {d50 * 1000:.2f} ms; the HTTP round trip p50 {r50 * 1000:.2f} ms",
            goal=("<=", 2.0),
            context="what signing in adds beside the directory: the throttle check, the person, session and audit "
            "entry written, the cookie",
        )
    res.data[f"login_vs_directory{suffix}"] = {
        "login_s": summary(logins, 5),
        "directory_s": summary(direct, 5),
        "refused_s": summary(refused, 5),
        "directory_spread": spread(direct),
    }


def _service(ctx: Context, name: str, env: dict[str, str]) -> Service:
    llama = {"LLAMA_SERVER_URL": ctx.service.llama_url, "LLAMA_SERVER_API_KEY": ctx.service.llama_key}
    return start_service(
        ctx.workdir / name, **env, ACCESS_RULES=f"readers:{SPACE}:editor", API_KEYS=f"{KEY}:{SPACE}", **llama
    )


def run(ctx: Context) -> Result:
    res = Result("sign_in", "People: sessions and sign-in")
    slapd = Slapd(ctx.workdir / "slapd")
    slapd.start()
    proxy = DelayProxy("127.0.0.1", slapd.port, NETWORK_DELAY_MS / 1000)
    try:
        service = _service(ctx, "sign_in", slapd.env())
        directory = _Directory(slapd.url, slapd)
        try:
            _session_vs_key(ctx, res, service)
            _login_vs_directory(ctx, res, service, directory, "loopback")
        finally:
            directory.close()
            service.stop()
        if not ctx.sizes.sign_in_network:
            return res
        far = f"ldap://127.0.0.1:{proxy.port}"
        service = _service(ctx, "sign_in_network", {**slapd.env(), "LDAP_URL": far})
        directory = _Directory(far, slapd)
        try:
            _login_vs_directory(ctx, res, service, directory, f"{NETWORK_DELAY_MS:g} ms each way")
        finally:
            directory.close()
            service.stop()
    finally:
        proxy.close()
        slapd.stop()
    return res
