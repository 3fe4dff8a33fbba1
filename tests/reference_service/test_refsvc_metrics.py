"""/metrics: names, types, labels, buckets, negotiation, SLO gauges."""

from __future__ import annotations

from _refsvc_support import InProcessService
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families
from reference_service.metrics import DURATION_BUCKETS

EXPECTED_FAMILIES = {
    "http_requests": ("counter", {"method", "endpoint", "status_code"}),
    "http_request_duration_seconds": ("histogram", {"method", "endpoint"}),
    "http_requests_in_progress": ("gauge", {"method", "endpoint"}),
    "http_errors": ("counter", {"method", "endpoint", "error_type"}),
    "chat_completions": ("counter", {"provider", "model"}),
    "chat_completion_tokens": ("counter", {"provider", "model", "token_type"}),
    "chat_completion_errors": ("counter", {"provider", "error_type"}),
    "provider_latency_seconds": ("histogram", {"provider", "operation"}),
    "service_health_status": ("gauge", {"service_name"}),
    "slo_chat_response_time_compliance_ratio": ("gauge", {"target"}),
    "slo_auth_success_rate_compliance_ratio": ("gauge", {"target"}),
    "slo_api_availability_compliance_ratio": ("gauge", {"target"}),
    "sli_chat_response_time_sli_good_events": ("counter", set()),
    "sli_chat_response_time_sli_total_events": ("counter", set()),
    "rate_limit_hits": ("counter", {"endpoint"}),
}


def _exercise(service: InProcessService) -> None:
    service.get("/health")
    service.get("/users/98765")
    service.get("/error")
    service.post("/auth/login", json={"email": "a@b.co", "password": "x"})
    service.post(
        "/chat/completions", json={"model": "fake-small", "messages": [{"role": "user", "content": "hi"}]}
    )
    service.post("/chat/completions", json={"model": "nope", "messages": []})
    for _ in range(10):  # with the login above: the 11th is refused
        service.post("/auth/login")


def test_every_seed_metric_is_exposed_with_its_type_and_labels(service: InProcessService) -> None:
    _exercise(service)

    text = service.get("/metrics").text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    for name, (kind, labels) in EXPECTED_FAMILIES.items():
        family = families[name]
        assert family.type == kind, name
        sample_labels = {key for sample in family.samples for key in sample.labels} - {"le"}
        assert sample_labels == labels, name


def test_endpoint_label_is_the_route_template_never_the_raw_path(service: InProcessService) -> None:
    _exercise(service)
    service.get("/no/such/thing")

    text = service.get("/metrics").text
    assert "98765" not in text
    assert "/no/such/thing" not in text
    assert (
        service.sample(
            "http_requests_total", {"method": "GET", "endpoint": "/users/{user_id}", "status_code": "200"}
        )
        == 1
    )
    assert (
        service.sample(
            "http_requests_total", {"method": "GET", "endpoint": "<unmatched>", "status_code": "404"}
        )
        == 1
    )
    assert (
        service.sample(
            "http_requests_total", {"method": "POST", "endpoint": "/auth/login", "status_code": "429"}
        )
        == 1
    )
    assert service.sample("rate_limit_hits_total", {"endpoint": "/auth/login"}) == 1


def test_duration_buckets_are_the_seed_buckets(service: InProcessService) -> None:
    service.get("/health")

    text = service.get("/metrics").text
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "http_request_duration_seconds"]
    bounds = [float(s.labels["le"]) for s in family.samples if s.name.endswith("_bucket")]
    assert bounds == [*map(float, DURATION_BUCKETS), float("inf")]


def test_metrics_requests_are_not_counted(service: InProcessService) -> None:
    for _ in range(3):
        service.get("/metrics")

    assert "/metrics" not in service.get("/metrics").text


def test_in_progress_gauge_returns_to_zero(service: InProcessService) -> None:
    service.get("/health")

    assert service.sample("http_requests_in_progress", {"method": "GET", "endpoint": "/health"}) == 0


def test_slo_gauges_start_compliant_and_follow_the_sli_counters(service: InProcessService) -> None:
    for name, target in [
        ("slo_chat_response_time_compliance_ratio", "0.99"),
        ("slo_auth_success_rate_compliance_ratio", "0.999"),
        ("slo_api_availability_compliance_ratio", "0.999"),
    ]:
        assert service.sample(name, {"target": target}) == 1.0

    for _ in range(3):
        service.get("/health")
    service.get("/error")

    assert service.sample("sli_api_availability_sli_total_events_total") == 4
    assert service.sample("slo_api_availability_compliance_ratio", {"target": "0.999"}) == 0.75


def test_openmetrics_is_served_when_asked_for(service: InProcessService) -> None:
    service.get("/health")

    response = service.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})

    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")
    names = {family.name for family in parse_openmetrics(response.text)}
    assert {"http_requests", "http_request_duration_seconds"} <= names


def test_plain_text_by_default(service: InProcessService) -> None:
    response = service.get("/metrics")

    assert response.headers["Content-Type"].startswith("text/plain")
