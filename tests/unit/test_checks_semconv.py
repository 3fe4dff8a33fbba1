"""SEM-001…SEM-005: the OpenTelemetry HTTP semantic conventions, on spans and metric names.

The span attributes below are what OpenTelemetry's Python FastAPI instrumentation
(0.66b2) writes with and without OTEL_SEMCONV_STABILITY_OPT_IN=http.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from conformance.checks import semconv
from conformance.telemetry import Span

STABLE = {
    "url.scheme": "http", "network.protocol.version": "1.1", "http.request.method": "GET",
    "client.address": "127.0.0.1", "http.route": "/users/{user_id}", "url.path": "/users/42",
    "user_agent.original": "probe", "http.response.status_code": 200,
}  # fmt: skip
OLD = {
    "http.scheme": "http", "http.flavor": "1.1", "http.method": "GET", "http.server_name": "127.0.0.1",
    "net.peer.ip": "127.0.0.1", "http.route": "/users/{user_id}", "http.url": "http://127.0.0.1/users/42",
    "http.target": "/users/42", "http.user_agent": "probe", "http.status_code": 200,
}  # fmt: skip


def span(name: str = "GET /users/{user_id}", *, kind: str = "SERVER", status: str = "UNSET",
         trace: str = "a", **attrs: Any) -> Span:  # fmt: skip
    return Span(trace * 32, "1" * 16, None, name, kind, 0, 1, attributes=attrs, status_code=status)


def stable(name: str = "GET /users/{user_id}", status: str = "UNSET", **changes: Any) -> Span:
    attrs = {**STABLE, **changes}
    return span(name, status=status, **{k: v for k, v in attrs.items() if v is not None})


# --------------------------------------------------------------------------- which spans


def test_only_http_server_spans_are_judged() -> None:
    spans = [
        stable(),
        span("SELECT", kind="CLIENT", **{"db.system": "sqlite"}),
        span("grpc.Health/Check", **{"rpc.system": "grpc"}),
        span("GET", kind="INTERNAL", **STABLE),
    ]
    assert semconv.http_server_spans(spans) == [spans[0]]


# --------------------------------------------------------------------------- SEM-001


def test_stable_attributes_pass() -> None:
    assert semconv.check_stable_attributes([stable(), stable(**{"http.route": None})]) == []


def test_dup_mode_passes() -> None:
    assert semconv.check_stable_attributes([span(**{**OLD, **STABLE})]) == []


def test_only_old_names_is_one_finding_with_the_mapping() -> None:
    spans = [span(trace=c, **OLD) for c in "abcdefg"]
    (finding,) = semconv.check_stable_attributes(spans)
    assert finding.requirement_id == "SEM-001"
    assert "7 SERVER span(s)" in finding.message
    assert "http.request.method, url.path, url.scheme, http.response.status_code" in finding.message
    assert "http.method → http.request.method" in finding.message
    assert "http.target → url.path and url.query" in finding.message
    assert "OTEL_SEMCONV_STABILITY_OPT_IN=http" in finding.message
    assert finding.evidence["trace_ids"] == [c * 32 for c in "abcde"]  # five examples, for the links
    assert finding.evidence["example"]["trace_id"] == "a" * 32


def test_missing_url_scheme_alone_is_named() -> None:
    (finding,) = semconv.check_stable_attributes([stable(**{"url.scheme": None})])
    assert "lack url.scheme" in finding.message
    assert "deprecated" not in finding.message


# --------------------------------------------------------------------------- SEM-002


@pytest.mark.parametrize(
    ("name", "changes"),
    [
        ("GET /users/{user_id}", {}),
        ("GET", {"http.route": None, "url.path": "/nope"}),
        ("HTTP /users/{user_id}", {"http.request.method": "_OTHER", "http.request.method_original": "FOO"}),
        ("GET /health", {"http.route": None, "url.path": "/health"}),  # a profile template, set by a hook
    ],
)
def test_conventional_names_pass(name: str, changes: dict[str, Any]) -> None:
    assert semconv.check_span_names([stable(name, **changes)], ["/users/{user_id}", "/health"]) == ([], 1)


def test_raw_path_with_ids_is_a_finding() -> None:
    spans = [stable(f"GET /users/{n}", **{"http.route": None, "url.path": f"/users/{n}"}) for n in (1, 2)]
    (finding,) = semconv.check_span_names(spans, ["/users/{user_id}"])[0]
    assert "the raw request path" in finding.message
    assert "'GET /users/1', 'GET /users/2'" in finding.message
    assert "the convention's name is 'GET'" in finding.message


def test_method_only_when_a_route_is_known_is_a_finding() -> None:
    (finding,) = semconv.check_span_names([stable("GET")], [])[0]
    assert "'GET /users/{user_id}'" in finding.message


def test_operation_names_are_findings() -> None:
    """otelhttp.NewHandler(h, "albums") names every span "albums"."""
    (finding,) = semconv.check_span_names([stable("albums", **{"http.route": None})], [])[0]
    assert "not of the form '{method} …'" in finding.message


def test_old_names_are_judged_by_their_method_too() -> None:
    assert semconv.check_span_names([span(**OLD)], []) == ([], 1)
    (finding,) = semconv.check_span_names([span("HTTP GET", **OLD)], [])[0]
    assert finding.requirement_id == "SEM-002"


def test_micrometer_names_are_judged_by_their_method_key() -> None:
    """Spring's server observation: span "http get /api/items/{id}", keys method/uri/status, http.url."""
    micrometer = {"method": "GET", "uri": "/api/items/{id}", "status": "200", "http.url": "/api/items/2"}
    findings, examined = semconv.check_span_names([span("http get /api/items/{id}", **micrometer)], [])
    assert examined == 1
    assert "not of the form '{method} …' (method 'GET')" in findings[0].message


def test_a_span_without_any_method_is_not_examined() -> None:
    assert semconv.check_span_names([span("handler", **{"url.path": "/x"})], []) == ([], 0)


# --------------------------------------------------------------------------- SEM-003


def test_status_rules() -> None:
    spans = [
        stable(status="ERROR", **{"http.response.status_code": 500}),
        stable(**{"http.response.status_code": 404}),
        stable(**{"http.response.status_code": 200}),  # not examined: below 400
        stable(status="ERROR", **{"http.response.status_code": 200}),  # not judged (a dropped connection may)
    ]
    assert semconv.check_span_status(spans) == ([], 2)


def test_unset_on_5xx_and_error_on_4xx_are_findings() -> None:
    spans = [
        stable(**{"http.response.status_code": 503}),
        stable(status="OK", **{"http.response.status_code": 500}),
        stable(status="ERROR", **{"http.response.status_code": 429}),
        span(status="ERROR", **{**OLD, "http.status_code": "400"}),  # old name, string value
    ]
    findings, examined = semconv.check_span_status(spans)
    assert examined == 4
    messages = sorted(f.message for f in findings)
    assert len(messages) == 4
    assert any("answered 503 with span status UNSET, not ERROR" in m for m in messages)
    assert any("answered 500 with span status OK" in m for m in messages)
    assert any("answered 429 with span status ERROR" in m for m in messages)
    assert any("answered 400 with span status ERROR" in m for m in messages)


# --------------------------------------------------------------------------- SEM-004

SERIES = ("_bucket", "_count", "_sum")


def names(base: str, job: str = "service", suffixes: tuple[str, ...] = SERIES) -> dict[str, set[str]]:
    return {base + s: {job} for s in suffixes}


def test_stable_histogram_in_seconds_passes() -> None:
    prometheus = {**names("http_server_request_duration_seconds", "otel-collector"),
                  "http_server_active_requests": {"otel-collector"}}  # fmt: skip
    assert semconv.check_server_duration_metric(prometheus, ["http.server.request.duration"]) == ([], 2)


def test_old_milliseconds_metric_is_a_finding() -> None:
    findings, examined = semconv.check_server_duration_metric(names("http_server_duration_milliseconds"))
    assert examined == 1
    (finding,) = findings
    assert "deprecated http.server.duration" in finding.message
    assert finding.evidence["family"] == "http_server_duration_milliseconds"


@pytest.mark.parametrize(
    ("base", "said"),
    [("http_server_request_duration_milliseconds", "unit suffix 'milliseconds'"),
     ("http_server_request_duration", "no unit suffix")],
)  # fmt: skip
def test_other_units_are_findings(base: str, said: str) -> None:
    (finding,) = semconv.check_server_duration_metric(names(base))[0]
    assert said in finding.message


def test_a_gauge_is_not_the_histogram() -> None:
    (finding,) = semconv.check_server_duration_metric(
        names("http_server_request_duration_seconds", suffixes=("",))
    )[0]
    assert "no _bucket series" in finding.message


def test_otlp_metrics_without_the_duration_are_findings() -> None:
    (old,) = semconv.check_server_duration_metric(
        {}, ["http.server.duration", "http.server.active_requests"]
    )[0]
    assert "deprecated metric, in milliseconds" in old.message
    (missing,) = semconv.check_server_duration_metric({}, ["orders.created"])[0]
    assert "not http.server.request.duration" in missing.message


def test_no_claim_is_nothing_examined() -> None:
    """Micrometer's http_server_requests_seconds and seed-style names are another convention."""
    prometheus = {**names("http_server_requests_seconds"), **names("http_request_duration_seconds")}
    assert semconv.check_server_duration_metric(prometheus, []) == ([], 0)


# --------------------------------------------------------------------------- SEM-005


def test_known_methods_and_int_status_pass() -> None:
    spans = [stable(), stable(**{"http.request.method": "QUERY"}),
             stable(**{"http.request.method": "_OTHER", "http.request.method_original": "FOO"})]  # fmt: skip
    assert semconv.check_attribute_values(spans) == ([], 3)


def test_bad_values_are_findings() -> None:
    spans = [
        stable(**{"http.request.method": "get"}),
        stable(**{"http.request.method": "FOO"}),
        stable(**{"http.request.method": "_OTHER"}),
        stable(**{"http.response.status_code": "200"}),
    ]
    findings, examined = semconv.check_attribute_values(spans)
    assert examined == 4
    text = " | ".join(f.message for f in findings)
    assert "'get' is not a known method" in text
    assert "'FOO' is not a known method" in text
    assert "_OTHER without http.request.method_original" in text
    assert "http.response.status_code is a str ('200'), not an int" in text


def test_old_names_only_are_not_examined() -> None:
    assert semconv.check_attribute_values([span(**OLD)]) == ([], 0)


def test_requirements_cite_the_version() -> None:
    for req in (semconv.SEM_001, semconv.SEM_002, semconv.SEM_003, semconv.SEM_004, semconv.SEM_005):
        assert req.level.value == "SHOULD"
        assert f"OpenTelemetry semantic conventions for HTTP {semconv.SEMCONV_VERSION}" in req.source
        assert req.area == "Semantic conventions"


# --------------------------------------------------------------------------- after the team's pipeline

PIPELINE = "the team's collector pipeline (team.yaml; processors: attributes/strip)"


def with_ids(s: Span, span_id: str) -> Span:
    return replace(s, span_id=span_id)


def test_a_pipeline_that_deletes_a_stable_attribute_is_blamed() -> None:
    sent = [with_ids(stable(), "a" * 16), with_ids(stable(), "b" * 16)]
    stripped = {k: v for k, v in sent[0].attributes.items() if k != "http.request.method"}
    after = [replace(sent[0], attributes=stripped), sent[1]]
    findings, counts = semconv.check_after_pipeline(
        semconv.check_stable_attributes, sent, after, pipeline=PIPELINE
    )
    assert [f.requirement_id for f in findings] == ["SEM-001"]
    assert findings[0].message.startswith(f"{PIPELINE} breaks what the service sends conforming: ")
    assert "http.request.method" in findings[0].message
    assert findings[0].evidence["view"] == semconv.AFTER_PIPELINE_VIEW
    assert findings[0].evidence["spans"] == 1
    assert counts == {
        "paired_spans": 2,
        "changed_by_pipeline": 1,
        "broken_by_pipeline": 1,
        "fixed_by_pipeline": 0,
    }


def test_a_pipeline_that_fixes_a_span_is_counted_never_a_finding_of_its_own() -> None:
    raw = with_ids(stable("GET /users/42"), "a" * 16)
    fixed = replace(raw, name="GET /users/{user_id}")

    def names(spans: Any) -> Any:
        return semconv.check_span_names(spans, ["/users/{user_id}"])[0]

    findings, counts = semconv.check_after_pipeline(names, [raw], [fixed], pipeline=PIPELINE)
    assert findings == [] and counts["fixed_by_pipeline"] == 1
    # The service's own finding is judged on what it sent, elsewhere: it stands.
    assert names([raw])


def test_unchanged_and_unpaired_spans_are_not_judged_again() -> None:
    bad = with_ids(stable("GET /users/42"), "a" * 16)
    alien = with_ids(stable("GET /users/7"), "c" * 16)  # only after (made by the pipeline)
    findings, counts = semconv.check_after_pipeline(
        lambda spans: semconv.check_span_names(spans, ["/users/{user_id}"])[0], [bad], [bad, alien],
        pipeline=PIPELINE,
    )  # fmt: skip
    assert findings == []
    assert counts == {
        "paired_spans": 1,
        "changed_by_pipeline": 0,
        "broken_by_pipeline": 0,
        "fixed_by_pipeline": 0,
    }
