"""People: what a session and a directory sign-in cost.

A `docassist serve` with LDAP sign-in against a real OpenLDAP slapd (`bench/directory.py`) and an
API key for the same space.

- **Session vs key** — `GET /documents/{id}` on a session cookie against the same request with an
  API key, alternating, each side on its own keep-alive connection: the cookie's request looks up
  the session and its person in the database (the key is checked in memory). Goal: median
  cookie / median key ≤ 1.1.
- **Sign-in vs the directory** — `POST /auth/login` against what the directory itself takes for
  the same work, measured by this process with python-ldap in the same run: a service bind and a
  search for the person, their own bind, a search for their groups, each bind on a fresh
  connection as the service makes them. Goal: p50 sign-in / p50 directory ≤ 2. On loopback the
  directory answers in under a millisecond, less than any HTTP round trip takes, so the same run
  also times the same request refused by its schema before anything is asked (same connection:
the HTTP part alone) and reports what
  sign-in adds beyond it against the directory's work (goal ≤ 2 as well): against a directory
  across a network (milliseconds per bind) the first ratio approaches the second.
"""

from __future__ import annotations

import time

import httpx

from docassist.bench.core import Context, Result
from docassist.bench.directory import Slapd
from docassist.bench.service import start_service
from docassist.bench.stats import percentile, spread, summary

SPACE = "bench_people"
KEY = "bench-people-key-0000000001"
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


def _directory_sign_in(slapd: Slapd, username: str, password: str) -> float:
    """The directory's own cost of one sign-in, as the service asks for it."""
    import ldap
    from ldap.filter import escape_filter_chars

    started = time.perf_counter()
    service = ldap.initialize(slapd.url)
    service.set_option(ldap.OPT_REFERRALS, 0)
    service.simple_bind_s(slapd.bind_dn, slapd.bind_password)
    found = service.search_s(slapd.user_base, ldap.SCOPE_SUBTREE, f"(uid={escape_filter_chars(username)})", ["cn"])
    dn = found[0][0]
    person = ldap.initialize(slapd.url)
    person.simple_bind_s(dn, password)
    person.unbind_s()
    service.search_s(slapd.group_base, ldap.SCOPE_SUBTREE, f"(member={escape_filter_chars(dn)})", ["cn"])
    service.unbind_s()
    return time.perf_counter() - started


def run(ctx: Context) -> Result:
    res = Result("sign_in", "People: sessions and sign-in")
    llama = {"LLAMA_SERVER_URL": ctx.service.llama_url, "LLAMA_SERVER_API_KEY": ctx.service.llama_key}
    slapd = Slapd(ctx.workdir / "slapd")
    slapd.start()
    service = start_service(
        ctx.workdir / "sign_in",
        **slapd.env(),
        ACCESS_RULES=f"readers:{SPACE}:editor",
        API_KEYS=f"{KEY}:{SPACE}",
        **llama,
    )
    try:
        with service.client(Authorization=f"Bearer {KEY}") as keyed, service.client() as browser:
            r = keyed.post(
                "/ingest", files={"file": ("note.txt", TEXT.encode())}, data={"space_id": SPACE, "wait": "true"}
            )
            r.raise_for_status()
            doc = f"/documents/{r.json()['doc_id']}?space_id={SPACE}"
            browser.post("/auth/login", json={"username": "bob", "password": "bob-password"}).raise_for_status()
            for client in (keyed, browser):  # warm both connections and the routes
                for _ in range(20):
                    _timed(client, "GET", doc)
            cookie, key = [], []
            for n in range(ctx.sizes.sign_in_requests):
                for side in ("cookie", "key") if n % 2 == 0 else ("key", "cookie"):
                    (cookie if side == "cookie" else key).append(
                        _timed(browser if side == "cookie" else keyed, "GET", doc)
                    )
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

            logins, direct, floor = [], [], []
            login = {"username": "bob", "password": "bob-password"}
            with service.client() as fresh:
                for n in range(ctx.sizes.sign_in_logins):
                    fresh.cookies.clear()
                    for side in ("login", "direct", "floor") if n % 2 == 0 else ("floor", "direct", "login"):
                        if side == "login":
                            logins.append(_timed(fresh, "POST", "/auth/login", json=login))
                        elif side == "direct":
                            direct.append(_directory_sign_in(slapd, "bob", "bob-password"))
                        else:
                            floor.append(_refused(fresh))
            l50, d50, f50 = percentile(logins, 50), percentile(direct, 50), percentile(floor, 50)
            res.add(
                "login_over_directory",
                f"POST /auth/login p50 / the directory's own binds and searches p50, {len(logins)} each",
                round(l50 / d50, 3),
                baseline=f"python-ldap in this process, service bind + search + the person's bind + group search: "
                f"p50 {d50 * 1000:.2f} ms",
                goal=("<=", 2.0),
                context=f"sign-in p50 {l50 * 1000:.2f} ms, p90 {percentile(logins, 90) * 1000:.2f} ms; the same "
                f"request refused by its schema (nothing asked) p50 {f50 * 1000:.2f} ms, "
                f"{f50 / d50:.1f}× the directory's work on loopback by itself",
            )
            res.add(
                "login_work_over_directory",
                "POST /auth/login p50 less the same request refused by its schema (same connection) "
                "/ the directory's own binds and searches p50",
                round((l50 - f50) / d50, 3),
                baseline=f"the directory's work p50 {d50 * 1000:.2f} ms; the HTTP round trip p50 {f50 * 1000:.2f} ms",
                goal=("<=", 2.0),
                context="what signing in adds beside the directory: the throttle check, the person and session "
                "written, the audit entry, the cookie",
            )
            res.data["login_vs_directory"] = {
                "login_s": summary(logins, 5),
                "directory_s": summary(direct, 5),
                "http_floor_s": summary(floor, 5),
                "directory_spread": spread(direct),
            }
    finally:
        service.stop()
        slapd.stop()
    return res
