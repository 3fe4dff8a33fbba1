"""Server spans, W3C trace-context continuation, the provider child span, the resource."""

from __future__ import annotations

from _refsvc_support import InProcessService, ServiceFactory
from opentelemetry.trace import SpanKind

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


def test_server_span_continues_an_incoming_traceparent_and_keeps_tracestate(
    service: InProcessService,
) -> None:
    service.get("/users/9", headers={"traceparent": TRACEPARENT, "tracestate": "vendor=opaque,other=1"})

    (span,) = service.server_spans()
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert span.parent.is_remote
    assert format(span.parent.span_id, "016x") == PARENT_ID
    assert span.context.trace_state.to_header() == "vendor=opaque,other=1"
    assert span.context.trace_flags.sampled
    assert span.name == "GET /users/{user_id}"
    (record,) = service.records("request_completed")
    assert record["trace_id"] == TRACE_ID
    assert record["span_id"] == format(span.context.span_id, "016x")


def test_without_traceparent_a_new_root_trace_starts(service: InProcessService) -> None:
    service.get("/health")
    service.get("/health")

    first, second = service.server_spans()
    assert first.parent is None
    assert second.parent is None
    assert first.context.trace_id != second.context.trace_id


def test_invalid_traceparent_is_ignored(service: InProcessService) -> None:
    service.get("/health", headers={"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"})

    (span,) = service.server_spans()
    assert span.parent is None


def test_duplicated_traceparent_restarts_the_trace_and_drops_tracestate(service: InProcessService) -> None:
    """W3C test suite ``test_traceparent_duplicated``: two traceparent field lines are invalid."""
    other = f"00-{TRACE_ID[:-1]}1-{PARENT_ID}-01"
    service.get(
        "/health",
        headers=[("traceparent", other), ("traceparent", TRACEPARENT), ("tracestate", "vendor=opaque")],
    )

    (span,) = service.server_spans()
    assert span.parent is None
    assert format(span.context.trace_id, "032x") not in (TRACE_ID, other[3:35])
    assert span.context.trace_state.to_header() == ""


def test_only_server_and_provider_spans_no_send_receive_noise(service: InProcessService) -> None:
    service.get("/health")

    assert [span.kind for span in service.finished_spans()] == [SpanKind.SERVER]


def test_metrics_scrapes_are_not_traced(service: InProcessService) -> None:
    service.get("/metrics")

    assert service.finished_spans() == []


def test_chat_creates_a_provider_child_span_without_the_prompt(service: InProcessService) -> None:
    prompt = "secret plans for bob@example.com"
    service.post(
        "/chat/completions",
        json={"model": "fake-large", "messages": [{"role": "user", "content": prompt}]},
        headers={"traceparent": TRACEPARENT},
    )

    (child,) = [span for span in service.finished_spans() if span.name == "fake_provider.chat"]
    (server,) = service.server_spans()
    assert child.kind == SpanKind.CLIENT
    assert child.parent is not None
    assert child.parent.span_id == server.context.span_id
    assert format(child.context.trace_id, "032x") == TRACE_ID
    assert dict(child.attributes or {}) == {"llm.provider": "fake", "llm.model": "fake-large"}
    for span in service.finished_spans():
        for value in (span.attributes or {}).values():
            assert "secret plans" not in str(value)
            assert "bob@example.com" not in str(value)


def test_resource_names_the_service(make_service: ServiceFactory) -> None:
    service = make_service(env={"OTEL_SERVICE_NAME": "svc-under-test", "REFSVC_ENVIRONMENT": "ci"})

    service.get("/health")

    (span,) = service.server_spans()
    attributes = span.resource.attributes
    assert attributes["service.name"] == "svc-under-test"
    assert attributes["service.version"] == "1.0.0"
    assert attributes["deployment.environment"] == "ci"
