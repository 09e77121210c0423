"""OpenTelemetry traces: spans around retrieval, every LLM call and every background job step.

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set: then `configure` installs the SDK's tracer
provider with an OTLP/HTTP exporter (the standard `OTEL_*` variables — headers, service name,
batch delays — apply as the SDK reads them). Without it no provider is installed and `span`
goes to the API's no-op tracer: nothing is recorded, nothing is sent.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
_tracer = trace.get_tracer("docassist")


def enabled() -> bool:
    return bool(os.environ.get(ENDPOINT_ENV))


def configure(service_name: str = "docassist") -> bool:
    """Install the OTLP exporter when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; True when it did.
    Once per process (the SDK refuses a second provider)."""
    if not enabled() or isinstance(trace.get_tracer_provider(), _sdk_provider_class()):
        return enabled()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME", service_name)
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True


def shutdown() -> None:
    """Send what is still buffered (the service is stopping)."""
    provider = trace.get_tracer_provider()
    if hasattr(provider, "shutdown"):
        provider.shutdown()


def _sdk_provider_class() -> type:
    try:
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:  # pragma: no cover - the SDK is a dependency
        return type(None)
    return TracerProvider


def start(name: str, **attributes: str | int | float | bool) -> Span:
    """A span under the current one that is not made current: for async generators (an LLM
    call's stream), whose consumer would otherwise run inside it between yields. End it with
    `finish`."""
    return _tracer.start_span(name, attributes=attributes)


def finish(current: Span, error: BaseException | None = None, **attributes: str | int | float | bool) -> None:
    current.set_attributes(attributes)
    if error is not None:
        current.record_exception(error)
        current.set_status(Status(StatusCode.ERROR, type(error).__name__))
    current.end()


@contextmanager
def span(name: str, **attributes: str | int | float | bool) -> Iterator[Span]:
    """A span, current for what runs inside; an exception marks it failed and passes on."""
    with _tracer.start_as_current_span(name, attributes=attributes, record_exception=True) as current:
        try:
            yield current
        except BaseException as exc:
            if not isinstance(exc, GeneratorExit):
                current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
