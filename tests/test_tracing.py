"""OpenTelemetry: a real `docassist serve` with `OTEL_EXPORTER_OTLP_ENDPOINT` sends its spans over
OTLP/HTTP to a local receiver; one `/ask` is one trace holding the HTTP request, the retrieval
and the LLM call with its endpoint, kind and token counts. Without the variable (every other
service of the suite) nothing is exported."""

from __future__ import annotations

from tests.conftest import Integrations


def test_one_ask_is_one_trace_with_its_retrieval_and_llm_spans(integrations: Integrations):
    it = integrations
    with it.service.client(**it.team) as client:
        r = client.post("/ask", json={"q": "How deep is Lake Baikal?", "space_id": "team", "top_k": 2})
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
    llm = next(s for s in trace if s.name == "llm.call")
    assert llm.attributes["llm.kind"] == "answer"
    assert llm.attributes["llm.endpoint"] and llm.attributes["llm.model"]
    assert llm.attributes["llm.prompt_tokens"] > 0 and llm.attributes["llm.completion_tokens"] > 0
    ids = {s.span_id for s in trace}
    assert all(s.parent_id in ids for s in trace if s is not root), "every span of the trace hangs under the request"
