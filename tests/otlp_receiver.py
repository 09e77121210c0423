"""A local OTLP/HTTP trace receiver: what an OpenTelemetry collector does with `POST /v1/traces`,
decoded with the protocol's own protobuf classes, so a test reads the spans a real exporter sent."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, object]
    service: str


@dataclass
class OtlpReceiver:
    spans: list[ReceivedSpan] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = ExportTraceServiceRequest.FromString(body)
                for resource_spans in request.resource_spans:
                    attrs = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
                    for scope_spans in resource_spans.scope_spans:
                        for s in scope_spans.spans:
                            receiver.spans.append(
                                ReceivedSpan(
                                    name=s.name,
                                    trace_id=s.trace_id.hex(),
                                    span_id=s.span_id.hex(),
                                    parent_id=s.parent_span_id.hex(),
                                    attributes={a.key: _value(a.value) for a in s.attributes},
                                    service=str(attrs.get("service.name", "")),
                                )
                            )
                payload = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def wait_for(self, predicate, timeout: float = 20) -> list[ReceivedSpan]:
        """The spans received, once `predicate(spans)` holds (or the timeout passed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not predicate(self.spans):
            time.sleep(0.1)
        return list(self.spans)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _value(v) -> object:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None
