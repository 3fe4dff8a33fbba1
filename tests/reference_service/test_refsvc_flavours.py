"""REFSVC_FLAVOUR: each seed flavour starts, and differs from the others where its seed does."""

from __future__ import annotations

import pytest
from _refsvc_support import InProcessService, ServiceFactory
from reference_service.flavours import FLAVOUR_NAMES, get_flavour
from reference_service.settings import Settings, SettingsError


def _request_record(service: InProcessService, message: str, key: str = "message") -> dict[str, object]:
    return next(r for r in service.log_records() if r.get(key) == message)


def test_unknown_flavour_is_a_settings_error_naming_the_known_ones() -> None:
    with pytest.raises(SettingsError, match=r"REFSVC_FLAVOUR: unknown flavour 'nope'.*promptforge"):
        Settings.from_env({"REFSVC_FLAVOUR": "nope"})


def test_fail_dependency_must_be_one_of_the_flavours() -> None:
    with pytest.raises(SettingsError, match="baliblissed flavour; use one of database, redis, disk"):
        Settings.from_env({"REFSVC_FLAVOUR": "baliblissed", "REFSVC_FAIL_DEPENDENCY": "chroma"})


@pytest.mark.parametrize("name", FLAVOUR_NAMES)
def test_every_flavour_answers_health_and_metrics(make_service: ServiceFactory, name: str) -> None:
    service = make_service(env={"REFSVC_FLAVOUR": name})
    assert service.get("/health").status_code == 200
    assert service.get("/metrics").status_code == 200
    assert get_flavour(name).name == name


def test_baliblissed_logs_structlog_style_with_request_id(make_service: ServiceFactory) -> None:
    service = make_service(env={"REFSVC_FLAVOUR": "baliblissed"})
    response = service.get("/models")

    record = _request_record(service, "request_completed", key="event")
    assert record["level"] == "info" and "message" not in record and "logger" not in record
    assert record["request_id"] == response.headers["X-Request-ID"]
    assert (
        service.sample("http_requests_total", {"method": "GET", "handler": "/models", "status": "2xx"}) == 1
    )


def test_promptforge_logs_seed_004_fields_without_trace_context(make_service: ServiceFactory) -> None:
    service = make_service(env={"REFSVC_FLAVOUR": "promptforge", "REFSVC_ENVIRONMENT": "production"})
    response = service.post("/api/v1/prompts", json={"prompt": "hello there"})

    record = _request_record(service, "HTTP request processed")
    assert record["service"] == "PromptForge" and record["environment"] == "production"
    assert isinstance(record["process_time_seconds"], float) and "duration_ms" not in record
    assert "client_ip" in record and "trace_id" not in record and "correlation_id" not in record
    assert "X-Correlation-ID" not in response.headers
    assert service.sample("prompts_analyzed_total") == 1


def test_generation_backend_does_not_count_excluded_handlers(make_service: ServiceFactory) -> None:
    service = make_service(env={"REFSVC_FLAVOUR": "generation-backend"})
    service.get("/health")
    service.get("/sla/status")

    assert (
        service.sample("http_requests_total", {"method": "GET", "handler": "/health", "status": "200"})
        is None
    )
    assert (
        service.sample("http_requests_total", {"method": "GET", "handler": "/sla/status", "status": "200"})
        == 1
    )


def test_goblin_assistant_has_four_slo_gauges_and_its_health_checks(make_service: ServiceFactory) -> None:
    service = make_service(env={"REFSVC_FLAVOUR": "goblin-assistant", "REFSVC_FAIL_DEPENDENCY": "sandbox"})

    assert service.get("/health/chroma").status_code == 200
    assert service.get("/health/sandbox").status_code == 503
    assert service.get("/health/all").status_code == 503
    assert service.sample("slo_llm_provider_availability_compliance_ratio", {"target": "0.995"}) == 1.0
    assert service.get("/test-error").status_code == 500
