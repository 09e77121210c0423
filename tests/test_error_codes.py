"""Every error code docassist answers with is documented where a client reads it: in `/openapi.json`
(the app built in-process, nothing started) and in docs/API.md, at the status it is answered with."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from docassist.api.errors import codes_by_status, status_of
from docassist.pipelines import errors as e

API_MD = Path(__file__).parents[1] / "docs" / "API.md"


def typed_errors(root: type[e.DocassistError] = e.DocassistError) -> Iterator[type[e.DocassistError]]:
    yield root
    for sub in root.__subclasses__():
        yield from typed_errors(sub)


ERRORS = sorted(typed_errors(), key=lambda cls: cls.code)


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DATA_DIR", str(tmp_path_factory.mktemp("data")))
        from docassist.api.app import create_app

        return create_app().openapi()


def error_answers(openapi: dict[str, Any]) -> Iterator[tuple[str, int, str]]:
    """(route, status, description) of every error envelope a route declares (docassist's, or
    OpenAI's under `/v1`); `/health`'s 503 is its report."""
    for path, methods in openapi["paths"].items():
        for method, operation in methods.items():
            for status, response in operation.get("responses", {}).items():
                refs = [c.get("schema", {}).get("$ref", "") for c in response.get("content", {}).values()]
                if any(ref.endswith("ErrorResponse") for ref in refs):
                    yield f"{method.upper()} {path}", int(status), response["description"]


@pytest.mark.parametrize("error", ERRORS, ids=lambda cls: cls.code)
def test_every_code_raised_is_in_the_openapi_schema_at_its_status(
    openapi: dict[str, Any], error: type[e.DocassistError]
) -> None:
    status = status_of(error("raised"))
    assert f"`{error.code}`" in openapi["components"]["schemas"]["ErrorBody"]["properties"]["code"]["description"]
    answering = [(route, text) for route, s, text in error_answers(openapi) if s == status]
    assert answering or status == 500, f"no route declares {status}, the status of {error.code}"
    for route, text in answering:
        assert f"`{error.code}`" in text, f"{route} {status} does not list {error.code}: {text}"


def test_each_route_lists_every_code_of_the_statuses_it_declares(openapi: dict[str, Any]) -> None:
    codes = codes_by_status()
    for route, status, text in error_answers(openapi):
        if status == 400 and route.endswith("/v1/chat/completions"):
            continue  # OpenAI's own 400 under /v1: a field docassist cannot honour
        missing = [code for code in codes[status] if f"`{code}`" not in text]
        assert not missing, f"{route} {status} leaves out {missing}"


def test_api_md_names_every_code_at_the_status_it_is_answered_with() -> None:
    text = API_MD.read_text(encoding="utf-8")
    statuses: dict[str, set[int]] = {}
    for status, codes in codes_by_status().items():
        for code in codes:
            statuses.setdefault(code, set()).add(status)
    assert [code for code in statuses if f"`{code}`" not in text] == []
    # where the page gives a status with a code ("413 `too_large`"), it is one the code is answered with
    wrong = [
        (int(status), code)
        for status, code in re.findall(r"\b([1-5]\d\d) `([a-z_]+)`", text)
        if code in statuses and int(status) not in statuses[code]
    ]
    assert wrong == []
