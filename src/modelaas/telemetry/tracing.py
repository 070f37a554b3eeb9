"""Traces with OpenTelemetry (the ``otel`` extra), configured by the standard ``OTEL_*`` variables.

Off unless :func:`enable` was called in the process (``modelaas serve`` calls it when
``--tracing`` is on and OpenTelemetry is installed). Until then every helper here costs
a global lookup.
"""

from __future__ import annotations

from typing import Any

_tracer: Any = None
_provider: Any = None


def enabled() -> bool:
    return _tracer is not None


def current_ids() -> tuple[str | None, str | None]:
    """The trace and span ids (hex) of the current span, if tracing is on and a span is current."""
    if _tracer is None:
        return None, None
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None, None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def enable_from_environment(service: str) -> bool:
    """Send traces as the standard ``OTEL_*`` variables say, if OpenTelemetry is installed and one is set.

    ``OTEL_TRACES_EXPORTER`` (``otlp``, ``console``; ``none`` turns tracing off) or an
    ``OTEL_EXPORTER_OTLP[_TRACES]_ENDPOINT`` turns it on; ``OTEL_SERVICE_NAME`` names the
    service (default ``modelaas``). Returns whether tracing is on.
    """
    import os

    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "")
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if exporter == "none" or not (exporter or endpoint):
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError:
        import logging

        logging.getLogger("modelaas.telemetry").warning(
            "OTEL_* variables ask for traces, but OpenTelemetry is not installed: pip install 'modelaas[otel]'."
        )
        return False
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service)})
    provider = TracerProvider(resource=resource)
    if exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    use(provider)
    return True


def use(provider: Any) -> None:
    """Trace with ``provider`` (an OpenTelemetry ``TracerProvider``; tests give one with an in-memory exporter)."""
    global _tracer, _provider
    _provider = provider
    _tracer = provider.get_tracer("modelaas")


def flush() -> None:
    """Export the spans that ended (before a process exits)."""
    if _provider is not None and hasattr(_provider, "force_flush"):
        _provider.force_flush()


def tracer() -> Any:
    return _tracer


def start_request_span(name: str, headers: list[tuple[bytes, bytes]], attributes: dict[str, Any]) -> Any:
    """A server span for a request, continuing the trace of its W3C ``traceparent`` header if it has one.

    Returns a context manager (use ``with``); only call when :func:`enabled`.
    """
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers if k in (b"traceparent", b"tracestate")}
    parent = TraceContextTextMapPropagator().extract(carrier) if carrier else None
    return _tracer.start_as_current_span(name, context=parent, kind=trace.SpanKind.SERVER, attributes=attributes)


def span(name: str, **attributes: Any) -> Any:
    """A child span of the current one (a do-nothing context manager when tracing is off)."""
    if _tracer is None:
        import contextlib

        return contextlib.nullcontext()
    return _tracer.start_as_current_span(name, attributes=attributes)


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span (to link a training job to its request)."""
    trace_id, span_id = current_ids()
    return f"00-{trace_id}-{span_id}-01" if trace_id and span_id else None


def record_spans(spans: list[tuple[str, float, float]], **attributes: Any) -> None:
    """Child spans of the current one for what already happened: ``(name, start, end)`` in ``time.monotonic()``."""
    import time

    if _tracer is None:
        return
    wall, mono = time.time_ns(), time.monotonic()
    for name, start, end in spans:
        span = _tracer.start_span(name, start_time=wall - int((mono - start) * 1e9), attributes=attributes)
        span.end(end_time=wall - int((mono - end) * 1e9))


TRACEPARENT_FILE = "traceparent"
"""In a job's folder: the ``traceparent`` of the request that submitted it (with tracing on)."""


def training_span(model: str, job_id: str, traceparent: str | None) -> Any:
    """The span of a training: a trace of its own, linked to the request that submitted it."""
    if _tracer is None:
        import contextlib

        return contextlib.nullcontext()
    from opentelemetry import trace
    from opentelemetry.context import Context
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    links = []
    if traceparent:
        parent = trace.get_current_span(TraceContextTextMapPropagator().extract({"traceparent": traceparent}))
        if parent.get_span_context().is_valid:
            links.append(trace.Link(parent.get_span_context(), {"modelaas.link": "submitted by"}))
    attributes = {"modelaas.job_id": job_id, "modelaas.model": model}
    return _tracer.start_as_current_span(f"train {model}", context=Context(), links=links, attributes=attributes)
