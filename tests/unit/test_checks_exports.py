"""TRC-001 (SERVER spans exported) and the route matching it rests on."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from conformance.checks.exports import (
    check_metrics_scraped,
    check_server_spans_after_pipeline,
    check_server_spans_exported,
    route_key,
    span_route,
)
from conformance.telemetry import HttpExchange, Span

TRACE_A, TRACE_B = "a" * 32, "b" * 32


def span(name: str = "GET /items/{id}", trace_id: str = TRACE_A, kind: str = "SERVER", **attrs: Any) -> Span:
    return Span(trace_id, "1" * 16, None, name, kind, 0, 1, attributes=attrs)


def exchange(path: str = "/items/7", trace_id: str = TRACE_A, method: str = "GET") -> HttpExchange:
    return HttpExchange(
        endpoint="item", method=method, url=f"http://127.0.0.1{path}", path=path, request_headers=(),
        status_code=200, sent_traceparent=f"00-{trace_id}-{'2' * 16}-01",
    )  # fmt: skip


def check(exchanges: list[HttpExchange], spans: list[Span]) -> list[Any]:
    return check_server_spans_exported(
        exchanges, spans, templates={"/items/7": "/items/{id}"}, traced_endpoints={"item"}, store="store"
    )


@pytest.mark.parametrize(
    ("route", "key"),
    [("/items/:id", "/items/{}"), ("/items/<int:item_id>", "/items/{}"), ("/items/{item_id}", "/items/{}"),
     ("/items/7", "/items/7"), ("/", "/")],
)  # fmt: skip
def test_route_keys_unname_parameters(route: str, key: str) -> None:
    assert route_key(route) == key


@pytest.mark.parametrize(
    ("the_span", "expected"),
    [
        (span(**{"http.request.method": "GET", "http.route": "/items/{id}"}), ("GET", "/items/{id}")),
        (span(**{"http.method": "GET", "http.target": "/items/7?x=1"}), ("GET", "/items/7")),
        (span("http get /items/{id}", method="GET", uri="/items/{id}"), ("GET", "/items/{id}")),  # Micrometer
        (span("GET", **{"http.method": "GET", "http.url": "http://h:1/items/7?q"}), ("GET", "/items/7")),
        (span("GET /items/:id"), ("GET", "/items/:id")),  # only the name, express style
    ],
)
def test_span_route_reads_every_spelling(the_span: Span, expected: tuple[str, str]) -> None:
    assert span_route(the_span) == expected


def test_a_span_in_the_sent_trace_matches_whatever_its_attributes() -> None:
    assert check([exchange()], [span("anything")]) == []


def test_without_the_trace_the_route_matches_in_any_parameter_style() -> None:
    assert check([exchange(trace_id=TRACE_B)], [span("GET /items/:id", trace_id="c" * 32)]) == []


def test_a_missing_span_is_a_finding_per_route() -> None:
    (finding,) = check([exchange(), exchange(trace_id=TRACE_B)], [span()])
    assert finding.requirement_id == "TRC-001" and finding.message.startswith(
        "GET /items/{id}: 1 of the answered"
    )


def test_internal_spans_do_not_count() -> None:
    assert len(check([exchange()], [span(kind="INTERNAL")])) == 1


UP = {"health": "up", "scrapeUrl": "http://127.0.0.1:1/metrics"}


@pytest.mark.parametrize(
    ("status", "content_type", "parse_error", "families", "target", "message"),
    [
        (200, "text/plain; version=0.0.4", "", 3, UP, None),
        (404, "application/json", "", 0, None, "answered 404"),
        (200, "text/html; charset=utf-8", "", 0, None, "a web page, not a metrics exposition"),
        (200, "text/plain", "bad line", 0, UP, "does not parse"),
        (200, "text/plain", "", 0, UP, "no metric family"),
        (200, "text/plain", "", 3, {"health": "down", "lastError": "EOF"}, "target health is 'down'"),
    ],
)
def test_met_001(
    status: int, content_type: str, parse_error: str, families: int, target: Any, message: str | None
) -> None:
    findings = check_metrics_scraped(
        url="http://127.0.0.1:1/metrics", status_code=status, content_type=content_type,
        parse_error=parse_error, family_count=families, target=target,
    )  # fmt: skip
    if message is None:
        assert findings == []
    else:
        assert findings and all(f.requirement_id == "MET-001" for f in findings)
        assert message in findings[0].message or message in findings[-1].message


def test_spans_the_team_pipeline_drops_are_a_finding_of_their_own() -> None:
    exchanges = [exchange(), exchange(trace_id=TRACE_B)]
    at_service = check(exchanges, [span(), replace(span(trace_id=TRACE_B), span_id="2" * 16)])
    assert at_service == []
    after = check(exchanges, [])
    (finding,) = check_server_spans_after_pipeline(at_service, after, pipeline="the team's pipeline (filter)")
    assert finding.requirement_id == "TRC-001"
    assert finding.message == (
        "GET /items/{id}: the service exported the SERVER span of 2 answered request(s) that "
        "the team's pipeline (filter) drops; they have none after it"
    )
    assert finding.evidence["dropped_by_pipeline"] == 2
    assert finding.evidence["view"] == "after the team's collector pipeline"


def test_spans_missing_at_the_service_are_not_blamed_on_the_pipeline() -> None:
    exchanges = [exchange(), exchange(trace_id=TRACE_B)]
    at_service = check(exchanges, [span()])
    assert check_server_spans_after_pipeline(at_service, check(exchanges, [span()]), pipeline="p") == []
    (finding,) = check_server_spans_after_pipeline(at_service, check(exchanges, []), pipeline="p")
    assert finding.evidence["dropped_by_pipeline"] == 1
