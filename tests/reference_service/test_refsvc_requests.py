"""Through the app in-process: routes, the request log, correlation ids, errors."""

from __future__ import annotations

import re
import uuid

import pytest
from _refsvc_support import InProcessService, ServiceFactory

RFC3339_MILLIS_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
HEX32 = re.compile(r"[0-9a-f]{32}")
HEX16 = re.compile(r"[0-9a-f]{16}")
JWT_SHAPE = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+")


def _is_uuid4(value: str) -> bool:
    try:
        return uuid.UUID(value).version == 4
    except ValueError:
        return False


# --- request_completed ---------------------------------------------------------


def test_one_request_completed_record_with_the_contract_fields(service: InProcessService) -> None:
    response = service.get("/users/12345")

    (record,) = service.records("request_completed")
    assert record.keys() == {
        "timestamp", "level", "logger", "message", "correlation_id", "trace_id", "span_id",
        "method", "path", "status_code", "duration_ms",
    }  # fmt: skip
    assert RFC3339_MILLIS_Z.fullmatch(record["timestamp"])
    assert record["level"] == "INFO"
    assert record["correlation_id"] == response.headers["X-Correlation-ID"]
    assert HEX32.fullmatch(record["trace_id"])
    assert HEX16.fullmatch(record["span_id"])
    assert (record["method"], record["path"], record["status_code"]) == ("GET", "/users/{user_id}", 200)
    assert isinstance(record["duration_ms"], float)
    assert record["duration_ms"] >= 0
    assert "12345" not in service.log_stream.getvalue()


def test_log_trace_context_is_the_server_span(service: InProcessService) -> None:
    service.get("/health")

    (record,) = service.records("request_completed")
    (span,) = service.server_spans()
    assert record["trace_id"] == format(span.context.trace_id, "032x")
    assert record["span_id"] == format(span.context.span_id, "016x")


def test_unmatched_route_is_logged_as_unmatched(service: InProcessService) -> None:
    response = service.get("/no/such/page/42")

    assert response.status_code == 404
    (record,) = service.records("request_completed")
    assert (record["path"], record["status_code"]) == ("<unmatched>", 404)


def test_method_mismatch_keeps_the_route_template(service: InProcessService) -> None:
    response = service.post("/users/7")

    assert response.status_code == 405
    (record,) = service.records("request_completed")
    assert record["path"] == "/users/{user_id}"


def test_metrics_scrapes_are_not_logged(service: InProcessService) -> None:
    response = service.get("/metrics")

    assert response.status_code == 200
    assert "X-Correlation-ID" in response.headers
    assert service.records("request_completed") == []


# --- correlation id ------------------------------------------------------------


@pytest.mark.parametrize("incoming", ["abc", "550e8400-e29b-41d4-a716-446655440000", "A.b_c-9", "x" * 128])
def test_valid_correlation_id_is_echoed_and_logged(service: InProcessService, incoming: str) -> None:
    response = service.get("/health", headers={"X-Correlation-ID": incoming})

    assert response.headers["X-Correlation-ID"] == incoming
    (record,) = service.records("request_completed")
    assert record["correlation_id"] == incoming


@pytest.mark.parametrize("incoming", ["", "x" * 129, "has space", "semi;colon", "émoji", "a/b"])
def test_malformed_correlation_id_is_replaced_by_a_uuid4(service: InProcessService, incoming: str) -> None:
    response = service.get("/health", headers={"X-Correlation-ID": incoming.encode()})

    generated = response.headers["X-Correlation-ID"]
    assert generated != incoming
    assert _is_uuid4(generated)
    (record,) = service.records("request_completed")
    assert record["correlation_id"] == generated


def test_missing_correlation_id_is_generated_per_request(service: InProcessService) -> None:
    first = service.get("/health").headers["X-Correlation-ID"]
    second = service.get("/health").headers["X-Correlation-ID"]

    assert _is_uuid4(first)
    assert _is_uuid4(second)
    assert first != second


@pytest.mark.parametrize(("path", "status"), [("/nope", 404), ("/error", 500), ("/health/ready", 200)])
def test_correlation_header_on_every_status(service: InProcessService, path: str, status: int) -> None:
    response = service.get(path, headers={"X-Correlation-ID": "trace-me"})

    assert response.status_code == status
    assert response.headers["X-Correlation-ID"] == "trace-me"


# --- /error --------------------------------------------------------------------


def test_error_route_returns_json_500_logs_the_traceback_and_counts(service: InProcessService) -> None:
    response = service.get("/error", headers={"X-Correlation-ID": "err-1"})

    assert response.status_code == 500
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "error": "internal_server_error",
        "message": "The server failed to handle the request.",
        "correlation_id": "err-1",
    }
    assert "X-RateLimit-Limit" in response.headers
    (error,) = service.records("unhandled_exception")
    assert error["level"] == "ERROR"
    assert error["correlation_id"] == "err-1"
    assert "DeliberateFailure: deliberate failure from GET /error" in error["exc_info"]
    (completed,) = service.records("request_completed")
    assert completed["status_code"] == 500
    labels = {"method": "GET", "endpoint": "/error"}
    assert service.sample("http_errors_total", {**labels, "error_type": "DeliberateFailure"}) == 1
    assert service.sample("http_requests_total", {**labels, "status_code": "500"}) == 1
    (span,) = service.server_spans()
    assert span.status.status_code.name == "ERROR"
    assert [event.name for event in span.events] == ["exception"]


# --- health --------------------------------------------------------------------


def test_health(service: InProcessService) -> None:
    response = service.get("/health")

    assert response.json() == {"status": "healthy", "version": "1.0.0", "environment": "test"}


def test_health_live(service: InProcessService) -> None:
    body = service.get("/health/live").json()

    assert body.keys() == {"status", "timestamp"}
    assert body["status"] == "live"
    assert RFC3339_MILLIS_Z.fullmatch(body["timestamp"])


def test_health_ready(service: InProcessService) -> None:
    response = service.get("/health/ready")

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["version"]) == ("ready", "1.0.0")
    assert RFC3339_MILLIS_Z.fullmatch(body["timestamp"])
    assert body["checks"].keys() == {"database", "cache"}
    for check in body["checks"].values():
        assert check["status"] == "pass"
        assert check["response_ms"] >= 0
    assert service.sample("service_health_status", {"service_name": "database"}) == 1


@pytest.mark.parametrize("dependency", ["database", "cache"])
def test_failing_dependency_makes_the_service_not_ready(
    make_service: ServiceFactory, dependency: str
) -> None:
    service = make_service(env={"REFSVC_FAIL_DEPENDENCY": dependency})

    response = service.get("/health/ready")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    failed = body["checks"][dependency]
    assert failed["status"] == "fail"
    assert dependency in failed["message"]
    assert service.sample("service_health_status", {"service_name": dependency}) == 0
    detailed = service.get("/health/detailed")
    assert detailed.status_code == 503
    assert detailed.json()["checks"][dependency]["status"] == "unhealthy"


def test_health_detailed(service: InProcessService) -> None:
    body = service.get("/health/detailed").json()

    assert body.keys() == {"status", "version", "environment", "timestamp", "uptime_seconds", "checks"}
    assert body["status"] == "healthy"
    assert isinstance(body["timestamp"], float)
    assert body["uptime_seconds"] >= 0
    assert body["checks"]["database"]["status"] == "healthy"
    assert body["checks"]["database"]["response_time_ms"] >= 0


# --- auth, chat, plain reads ---------------------------------------------------


def test_login_success_returns_a_jwt_shaped_token_and_logs_a_redacted_email(
    service: InProcessService,
) -> None:
    response = service.post("/auth/login", json={"email": "jane.doe@example.com", "password": "hunter2"})

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert JWT_SHAPE.fullmatch(body["access_token"])
    (attempt,) = service.records("login_attempt")
    assert (attempt["email"], attempt["success"]) == ("[REDACTED_EMAIL]", True)
    logs = service.log_stream.getvalue()
    for secret in ("jane.doe@example.com", "hunter2", body["access_token"]):
        assert secret not in logs
    assert service.sample("sli_auth_success_rate_sli_good_events_total") == 1


@pytest.mark.parametrize(
    "payload", [{"email": "a@b.co", "password": ""}, {"email": "", "password": "x"}, None]
)
def test_login_without_both_credentials_is_401(
    service: InProcessService, payload: dict[str, str] | None
) -> None:
    response = service.post("/auth/login", json=payload) if payload else service.post("/auth/login")

    assert response.status_code == 401
    assert response.json() == {"error": "invalid_credentials"}
    assert service.sample("sli_auth_success_rate_sli_total_events_total") == 1
    assert service.sample("sli_auth_success_rate_sli_good_events_total") == 0
    assert service.sample("slo_auth_success_rate_compliance_ratio", {"target": "0.999"}) == 0


def test_chat_completion(service: InProcessService) -> None:
    prompt = "pay with 4111 1111 1111 1111, mail bob@example.com, call +14155550123, ssn 123-45-6789"
    request = {"model": "fake-small", "messages": [{"role": "user", "content": prompt}]}

    response = service.post("/chat/completions", json=request)

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "fake-small"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["usage"]["prompt_tokens"] == len(prompt.split())
    assert (
        body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )
    assert service.post("/chat/completions", json=request).json()["choices"] == body["choices"]
    (logged, _) = service.records("chat_completion_requested")
    assert logged["prompt"] == (
        "pay with [REDACTED_CC], mail [REDACTED_EMAIL], call [REDACTED_PHONE], ssn [REDACTED_SSN]"
    )
    labels = {"provider": "fake", "model": "fake-small"}
    assert service.sample("chat_completions_total", labels) == 2
    assert service.sample("chat_completion_tokens_total", {**labels, "token_type": "prompt"}) == 2 * len(
        prompt.split()
    )
    assert service.sample("sli_chat_response_time_sli_good_events_total") == 2
    assert service.sample("sli_chat_response_time_sli_total_events_total") == 2
    assert (
        service.sample("provider_latency_seconds_count", {"provider": "fake", "operation": "chat_completion"})
        == 2
    )


def test_chat_with_unknown_model_is_404_and_counted(service: InProcessService) -> None:
    response = service.post("/chat/completions", json={"model": "gpt-9", "messages": []})

    assert response.status_code == 404
    assert response.json()["error"] == "model_not_found"
    assert (
        service.sample("chat_completion_errors_total", {"provider": "fake", "error_type": "unknown_model"})
        == 1
    )


def test_plain_reads(service: InProcessService) -> None:
    models = service.get("/models").json()
    assert [model["id"] for model in models["data"]] == ["fake-small", "fake-large"]
    assert service.get("/settings").json()["default_model"] == "fake-small"
    assert service.get("/users/abc").json() == {"id": "abc", "name": "User abc"}
