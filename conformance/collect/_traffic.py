"""Driving the profile's endpoints and recording every exchange.

Each request carries a fresh W3C ``traceparent`` made with OpenTelemetry's own
propagator, so the trace checks can look for exactly that trace.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import httpx
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from conformance._profile import Endpoint
from conformance.telemetry import HttpExchange

__all__ = ["drive_endpoints", "new_traceparent", "send"]

_ids = RandomIdGenerator()
_propagator = TraceContextTextMapPropagator()


def new_traceparent(tracestate: str = "") -> dict[str, str]:
    """Headers for a new sampled remote parent: ``traceparent`` (and ``tracestate``)."""
    ctx = SpanContext(
        trace_id=_ids.generate_trace_id(),
        span_id=_ids.generate_span_id(),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState.from_header([tracestate]) if tracestate else TraceState(),
    )
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=set_span_in_context(NonRecordingSpan(ctx)))
    return carrier


def send(
    client: httpx.Client,
    endpoint: Endpoint,
    *,
    extra_headers: Mapping[str, str] | None = None,
    traceparent: bool = True,
) -> HttpExchange:
    """Send one request to ``endpoint``; a transport error is recorded, not raised."""
    headers = dict(endpoint.headers)
    if traceparent:
        headers.update(new_traceparent())
    headers.update(extra_headers or {})
    path = endpoint.concrete_path()
    request = client.build_request(
        endpoint.method,
        path,
        params=dict(endpoint.query) or None,
        headers=headers,
        json=endpoint.json if endpoint.has_json else None,
    )
    started, started_at = time.perf_counter(), time.time()
    try:
        response = client.send(request)
        body = response.read()
    except httpx.HTTPError as exc:
        return HttpExchange(
            endpoint=endpoint.name,
            method=endpoint.method,
            url=str(request.url),
            path=path,
            request_headers=tuple(request.headers.multi_items()),
            status_code=None,
            elapsed_seconds=time.perf_counter() - started,
            started_at=started_at,
            error=f"{type(exc).__name__}: {exc}",
            sent_traceparent=headers.get("traceparent", ""),
        )
    return HttpExchange(
        endpoint=endpoint.name,
        method=endpoint.method,
        url=str(request.url),
        path=path,
        request_headers=tuple(request.headers.multi_items()),
        status_code=response.status_code,
        response_headers=tuple(response.headers.multi_items()),
        body=body,
        elapsed_seconds=time.perf_counter() - started,
        started_at=started_at,
        sent_traceparent=headers.get("traceparent", ""),
    )


def drive_endpoints(client: httpx.Client, endpoints: Iterable[Endpoint], repeats: int) -> list[HttpExchange]:
    """``repeats`` rounds over every endpoint, in profile order."""
    endpoints = list(endpoints)
    return [send(client, ep) for _ in range(repeats) for ep in endpoints]
