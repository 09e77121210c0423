"""Property-based fuzzing of every route with schemathesis, from the service's own OpenAPI description,
against a real `docassist serve`: no 5xx, and every response — its status, content type and body —
is one the description documents for that route. Routes that call the LLM get a few examples
each (the embedded model is slow on these CPUs); the rest get more. Bounded in examples and time.

The operations are driven with Hypothesis directly (`operation.as_strategy()`), one after another,
so a failure names its route and its example."""

from __future__ import annotations

import re
import time
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.inprocess import start_in_process

LLM_ROUTES = re.compile(r"^/(summarize|summarize-stream|ask|ask-stream|v1/chat/completions)$")
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]
EXAMPLES = {"llm": 4, "other": 25}


def fuzz(operation, examples: int) -> str | None:
    @given(case=operation.as_strategy())
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        case.call_and_validate(checks=CHECKS, timeout=120)

    try:
        run()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # schemathesis reports failures as an exception group
        return f"{operation.method.upper()} {operation.path}: {exc}"[:3000]
    return None


def test_every_route_answers_as_documented_to_generated_requests(tmp_path: Path, llama_env: dict[str, str]):
    svc = start_in_process(tmp_path, LLM_MAX_TOKENS="16", MAX_UPLOAD_MB="1", **llama_env)
    try:
        schema = schemathesis.openapi.from_url(f"{svc.url}/openapi.json")
        failures, covered, started = [], [], time.monotonic()
        for result in schema.get_all_operations():
            operation = result.ok()
            llm = bool(LLM_ROUTES.match(operation.path))
            covered.append(f"{operation.method.upper()} {operation.path}")
            if failure := fuzz(operation, EXAMPLES["llm" if llm else "other"]):
                failures.append(failure)
        assert {"POST /ingest", "POST /summarize-stream", "GET /jobs/{job_id}", "POST /ask"} <= set(covered)
        assert not failures, "\n\n".join(failures)
        assert time.monotonic() - started < 600
    finally:
        svc.stop()
