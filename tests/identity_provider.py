"""A real OpenID Connect provider for the tests of sign-in: the certified `oidc-provider` package on
Node (tests/oidc/provider.mjs), on a free port of 127.0.0.1, with one confidential client.

Its redirect URIs are registered at start: `start(redirect_uris)` starts it, or restarts it on the
same port when a URI is new to it (a restart forgets the provider's sessions and grants, and signs
with a new key). Accounts live in a JSON file the provider reads at every lookup, so a test changes
a person's groups, disables or deletes them while it runs (`set_account`, `delete_account`).
`login` drives the provider's own sign-in and consent forms with plain httpx, as a browser would,
and returns where the provider sends the browser back: the app's callback with `code` and `state`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

from docassist.pipelines.llm.llama_server import free_port

OIDC_DIR = Path(__file__).parent / "oidc"
PROVIDER = OIDC_DIR / "provider.mjs"
CLIENT_ID = "docassist"
CLIENT_SECRET = "docassist-test-secret"  # the test provider's own client
SCOPES = "openid profile email groups"
START_TIMEOUT_S = 20
_PR_SET_PDEATHSIG = 1
_install_lock = threading.Lock()


def ensure_node_modules() -> None:
    """`npm ci` once, where tests/oidc/node_modules is missing (a fresh clone): the lock file's versions."""
    with _install_lock:
        if (OIDC_DIR / "node_modules" / "oidc-provider" / "package.json").is_file():
            return
        subprocess.run(
            ["npm", "ci", "--prefix", str(OIDC_DIR), "--no-audit", "--no-fund"],
            check=True,
            capture_output=True,
            timeout=300,
        )


class OidcProvider:
    """tests/oidc/provider.mjs as a process; `issuer` is http://127.0.0.1:<port>."""

    def __init__(self, folder: Path, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET) -> None:
        self.folder = folder
        self.client_id, self.client_secret = client_id, client_secret
        self.accounts_file = folder / "accounts.json"
        self.log_file = folder / "provider.log"
        self.port = free_port()
        self.redirect_uris: list[str] = []
        self._process: subprocess.Popen[bytes] | None = None
        if not self.accounts_file.exists():
            self._write_accounts({})

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, redirect_uris: list[str]) -> None:
        """Running with `redirect_uris` registered (besides those it had): started, or restarted
        on the same port when one is new to it."""
        wanted = list(dict.fromkeys([*self.redirect_uris, *redirect_uris]))
        if self.running and wanted == self.redirect_uris:
            return
        self.stop()
        ensure_node_modules()
        self.redirect_uris = wanted
        env = {
            **os.environ,
            "OIDC_TEST_PORT": str(self.port),
            "OIDC_TEST_CLIENT_ID": self.client_id,
            "OIDC_TEST_CLIENT_SECRET": self.client_secret,
            "OIDC_TEST_REDIRECT_URIS": " ".join(wanted),
            "OIDC_TEST_ACCOUNTS": str(self.accounts_file),
        }
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                ["node", str(PROVIDER)], env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"oidc-provider exited at start:\n{self.log_file.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"oidc-provider did not answer within {START_TIMEOUT_S} s:\n{self.log_file.read_text()[-2000:]}"
        )

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def env(self, public_url: str) -> dict[str, str]:
        """docassist's OIDC_* settings (and PUBLIC_URL) for this provider and client."""
        return {
            "OIDC_ISSUER": self.issuer,
            "OIDC_CLIENT_ID": self.client_id,
            "OIDC_CLIENT_SECRET": self.client_secret,
            "OIDC_SCOPES": SCOPES,
            "PUBLIC_URL": public_url,
        }

    # ------------------------------------------------------------------ accounts
    def set_account(
        self,
        sub: str,
        name: str | None = None,
        groups: list[str] | None = None,
        *,
        email: str | None = None,
        groups_in_id_token: bool = True,
        disabled: bool = False,
    ) -> None:
        """Add or replace an account. `groups` None: no groups claim at all; `groups_in_id_token`
        False: the groups only at userinfo, not in the ID token."""
        accounts = self._accounts()
        account: dict[str, object] = {"name": name, "email": email or f"{sub}@example.org"}
        if groups is not None:
            account["groups"] = list(groups)
        account["groups_in_id_token"] = groups_in_id_token
        account["disabled"] = disabled
        accounts[sub] = account
        self._write_accounts(accounts)

    def delete_account(self, sub: str) -> None:
        accounts = self._accounts()
        accounts.pop(sub, None)
        self._write_accounts(accounts)

    def _accounts(self) -> dict[str, dict[str, object]]:
        return json.loads(self.accounts_file.read_text())

    def _write_accounts(self, accounts: dict[str, dict[str, object]]) -> None:
        partial = self.accounts_file.with_suffix(".tmp")  # renamed: the provider never reads half a file
        partial.write_text(
            json.dumps({sub: {k: v for k, v in a.items() if v is not None} for sub, a in accounts.items()})
        )
        partial.replace(self.accounts_file)

    # ------------------------------------------------------------------ a browser's part
    def login(self, client: httpx.Client, authorization_url: str, sub: str, password: str = "any") -> str:
        """Sign in as `sub` on the provider's forms (login, then consent) and return the URL it
        redirects to outside itself — the app's callback with code and state — without following it.
        `client` plays the browser: its cookies are the provider's session (use a fresh one per person)."""
        method, url, form = "GET", authorization_url, None
        for _ in range(12):
            response = client.request(method, url, data=form, follow_redirects=False)
            if response.is_redirect:
                target = urljoin(str(response.url), response.headers["location"])
                if not target.startswith(self.issuer + "/"):
                    return target
                method, url, form = "GET", target, None
                continue
            if response.status_code != 200:
                raise AssertionError(f"the provider answered {response.status_code}: {response.text[:500]}")
            page = _Form.read(response.text)
            if page.fields.get("prompt") == "login":
                form = {**page.fields, "login": sub, "password": password}
            elif page.fields.get("prompt") == "consent":
                form = page.fields
            else:
                raise AssertionError(f"no sign-in or consent form on the provider's page: {response.text[:500]}")
            method, url = "POST", urljoin(str(response.url), page.action)
        raise AssertionError(f"the provider never sent {sub!r} back to the app (is the account set?)")


class _Form(HTMLParser):
    """The first form of a page: its action and the values its inputs carry."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}
        self._in_form = self._done = False

    @classmethod
    def read(cls, html: str) -> _Form:
        form = cls()
        form.feed(html)
        return form

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and not self._done:
            self._in_form, self.action = True, values.get("action", "")
        elif tag == "input" and self._in_form and values.get("name"):
            self.fields[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._in_form:
            self._in_form, self._done = False, True


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the test process dies, so no provider outlives it."""
    import ctypes

    ctypes.CDLL("libc.so.6").prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OidcProvider]:
    """The provider, not yet started: a test (or a fixture of its) calls `start(redirect_uris)`."""
    folder = Path(tempfile.mkdtemp(prefix="docassist-oidc-"))
    provider = OidcProvider(folder)
    try:
        yield provider
    finally:
        provider.stop()
        shutil.rmtree(folder, ignore_errors=True)


__all__ = ["CLIENT_ID", "CLIENT_SECRET", "SCOPES", "OidcProvider", "ensure_node_modules", "oidc_provider"]
