"""OpenTelemetry: a real `docassist serve` with `OTEL_EXPORTER_OTLP_ENDPOINT` sends its spans over
OTLP/HTTP to a local receiver; one `/ask` is one trace holding the HTTP request, the retrieval
and the LLM call with its endpoint, kind and token counts; a background summary is a trace of
its claim and run with the run's LLM calls. Without the variable (every other service of the
suite) nothing is exported."""

from __future__ import annotations

from tests.conftest import Integrations, ingest


def test_one_ask_is_one_trace_with_its_retrieval_and_llm_spans(integrations: Integrations):
    it = integrations
    with it.service.client(**it.team) as client:
        # summarize: the passages condensed, then answered by the model (the embedded model quotes otherwise)
        body = {"q": "How deep is Lake Baikal?", "space_id": "team", "top_k": 2, "mode": "summarize"}
        r = client.post("/ask", json=body)
        assert r.status_code == 200, r.text

    def asked(spans) -> bool:
        roots = [s for s in spans if s.name == "POST /ask" and not s.parent_id]
        return any(
            {"retrieval", "llm.call"} <= {s.name for s in spans if s.trace_id == root.trace_id} for root in roots
        )

    spans = it.traces.wait_for(asked)
    assert asked(spans), sorted({s.name for s in spans})
    root = next(
        s
        for s in spans
        if s.name == "POST /ask" and not s.parent_id and asked([x for x in spans if x.trace_id == s.trace_id])
    )
    trace = [s for s in spans if s.trace_id == root.trace_id]
    assert root.service == "docassist"
    assert root.attributes.get("http.route") == "/ask" or root.attributes.get("http.target") == "/ask"
    retrieval = next(s for s in trace if s.name == "retrieval")
    assert retrieval.attributes["retrieval.top_k"] == 2 and retrieval.attributes["retrieval.hits"] >= 1
    llm = next(s for s in trace if s.name == "llm.call" and s.attributes["llm.kind"] == "answer")
    assert llm.attributes["llm.endpoint"] and llm.attributes["llm.model"]
    assert llm.attributes["llm.prompt_tokens"] > 0 and llm.attributes["llm.completion_tokens"] > 0
    assert not [s for s in trace if s.name.endswith((" http send", " http receive"))], "no span per ASGI message"
    ids = {s.span_id for s in trace}
    assert all(s.parent_id in ids for s in trace if s is not root), "every span of the trace hangs under the request"


def test_a_background_summary_is_a_trace_of_its_steps(integrations: Integrations):
    it = integrations
    text = b"The Angara flows north from Lake Baikal to the Yenisei. Irkutsk stands on its banks, near the lake."
    with it.service.client(**it.team) as client:
        r = ingest(client, "team", "angara.txt", text, generate_summary="true", wait="true")
        assert r.status_code == 200 and r.json()["job_id"], r.text
        job_id = r.json()["job_id"]

    def summarized(spans) -> bool:
        jobs = [s for s in spans if s.name == "job" and s.attributes.get("job.id") == job_id]
        return any("llm.call" in {s.name for s in spans if s.trace_id == j.trace_id} for j in jobs)

    spans = it.traces.wait_for(summarized, timeout=120)
    assert summarized(spans), sorted({s.name for s in spans})
    root = next(s for s in spans if s.name == "job" and s.attributes.get("job.id") == job_id)
    trace = {s.span_id: s for s in spans if s.trace_id == root.trace_id}
    claim = next(s for s in trace.values() if s.name == "job.claim")
    run = next(s for s in trace.values() if s.name == "job.summarize")
    assert claim.parent_id == run.parent_id == root.span_id and not root.parent_id
    calls = [s for s in trace.values() if s.name == "llm.call"]
    assert {c.attributes["llm.kind"] for c in calls} <= {"map", "reduce", "final"} and calls

    def under(span, ancestor) -> bool:
        while span.parent_id in trace:
            span = trace[span.parent_id]
            if span is ancestor:
                return True
        return False

    assert all(under(c, run) for c in calls), "the summary's LLM calls hang under the job's run"
