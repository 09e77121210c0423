"""Every route of the API, asked about another tenant's space by a caller who cannot reach it —
an API key of another space, or a person (by session cookie or personal token) whose groups give
them other spaces: each answers 403 or 404 and shows nothing of what is there. The routes come
from the service's own `/openapi.json`, so a route added later is swept too."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

# routes with nothing of a space in them (or the caller's own: /auth/me)
NOTHING_OF_A_SPACE = ("/health", "/model-config", "/openapi.json", "/", "/docs", "/auth/config")
NOT_ASKED = ("/auth/logout",)  # would end the very session the sweep rides on
OWN = ("/auth/me", "/auth/tokens", "/v1/models")


@dataclass(frozen=True)
class Theirs:
    """What the other tenant holds: a space, a document with a summary job, a conversation."""

    space_id: str
    doc_id: str
    job_id: str
    conversation_id: str


def sweep(url: str, theirs: Theirs, **auth: dict[str, str]) -> set[tuple[str, str]]:
    """Ask every route about `theirs` with `auth` (httpx's `headers=` or `cookies=`); the routes asked."""
    routes = httpx.get(f"{url}/openapi.json").json()["paths"]
    s = theirs.space_id
    ids = {"doc_id": theirs.doc_id, "job_id": theirs.job_id, "conversation_id": theirs.conversation_id, "page": 1}
    ids["token_id"], ids["n"] = "0" * 16, 1
    ids["message_id"], ids["request_id"] = "0" * 32, "their-request"
    covered = set()
    for path, methods in routes.items():
        if path in NOT_ASKED:
            continue
        for method in methods:
            params, body = {}, None
            if method == "get" and "space_id" in str(methods[method].get("parameters", "")):
                params = {"space_id": s}
            if method in ("delete", "patch"):
                params = {"space_id": s}
            if method == "patch":
                body = {"tags": ["x"]}
            if method == "post" and path not in ("/ingest",) and "{job_id}" not in path:
                body = {"q": "Документ", "doc_id": theirs.doc_id, "space_id": s}
                if path in ("/search", "/ask", "/ask-stream"):
                    body.pop("doc_id")
                if path.startswith("/summarize"):
                    body.pop("q")
                if path == "/v1/chat/completions":  # the model names the space
                    body = {"model": f"space:{s}", "messages": [{"role": "user", "content": "Документ"}]}
                if path.startswith("/conversations"):  # a conversation is asked for by its space alone
                    body = {"q": "Документ", "space_id": s} if "messages" in path else {"space_id": s}
                if path.startswith("/auth/"):
                    body = {"name": "x", "username": "x", "password": "x"}
                if path.endswith("/feedback"):  # a verdict on one of their answers
                    body = {"rating": "up", "space_id": s}
                if path == "/sync/diff":  # a folder's file list, to be compared with their documents
                    body = {"space_id": s, "files": [{"path": "x.txt", "sha256": "0" * 64, "size": 4}], "delete": True}
            upload = path == "/ingest" or method == "put"
            files = {"file": ("x.txt", b"text")} if upload else None
            data = {"space_id": s} if upload else None
            with httpx.Client(**auth) as client:  # type: ignore[arg-type]
                r = client.request(
                    method.upper(), f"{url}{path.format(**ids)}", params=params, json=body, files=files, data=data,
                    timeout=60, follow_redirects=False,
                )  # fmt: skip
            covered.add((method, path))
            if path in NOTHING_OF_A_SPACE or path.startswith(("/ui", "/static", "/auth/oidc", "/auth/login")):
                assert r.status_code < 500, f"{method.upper()} {path} answered {r.status_code}: {r.text[:200]}"
                continue
            if path in OWN:  # the caller's own, and nothing of the other tenant
                assert r.status_code in (200, 201, 403, 404), f"{method.upper()} {path}: {r.status_code} {r.text[:200]}"
                named = f'"{s}"' in r.text or f"space:{s}" in r.text  # quoted: a random token may hold "hr"
                assert not named and theirs.doc_id not in r.text, f"{path} revealed the other tenant: {r.text}"
                continue
            assert r.status_code in (403, 404), f"{method.upper()} {path} answered {r.status_code}: {r.text[:200]}"
            assert theirs.doc_id not in r.text or r.status_code == 403, f"{path} revealed their document"
    for route in (
        ("get", "/jobs/{job_id}"),
        ("post", "/jobs/{job_id}/retry"),
        ("delete", "/documents/{doc_id}"),
        ("post", "/summarize-stream"),
        ("post", "/v1/chat/completions"),
        ("get", "/metrics"),
        ("post", "/conversations/{conversation_id}/messages-stream"),
        ("get", "/documents/{doc_id}/pages/{page}"),
        ("get", "/audit"),
        ("post", "/sync/diff"),
        ("post", "/conversations/{conversation_id}/messages/{message_id}/feedback"),
        ("post", "/ask/{request_id}/feedback"),
    ):
        assert route in covered, route
    return covered
