"""Each broken variant shows its defect, and the conforming service does not.

A detector exercises the service and returns True when it sees the defect
the variant is meant to cause. Running every detector against the conforming
service too proves the detectors are not trivially true.
``crash-at-start`` needs a real process; see test_refsvc_process.py.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable

import httpx
import pytest
from _refsvc_support import InProcessService, ServiceFactory
from reference_service import breakage as brk

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
CARD = "4111 1111 1111 1111"
EMAIL = "jane.doe@example.com"


def _parses_as(line: str, kind: type) -> bool:
    try:
        return isinstance(json.loads(line), kind)
    except ValueError:
        return False


def _request_completed(service: InProcessService) -> dict[str, object]:
    (record,) = service.records("request_completed")
    return record


def _plain_text_log(service: InProcessService) -> bool:
    service.get("/health")
    return [line for line in service.log_lines() if not _parses_as(line, object)] != []


def _timestamp_no_tz(service: InProcessService) -> bool:
    service.get("/health")
    return (
        re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", str(_request_completed(service)["timestamp"]))
        is not None
    )


def _bad_level(service: InProcessService) -> bool:
    service.get("/health")
    return _request_completed(service)["level"] == "VERBOSE"


def _bad_trace_id(service: InProcessService) -> bool:
    service.get("/health", headers={"traceparent": TRACEPARENT})
    return _request_completed(service)["trace_id"] == TRACE_ID.upper()


def _missing_correlation_in_log(service: InProcessService) -> bool:
    response = service.get("/health")
    return "X-Correlation-ID" in response.headers and "correlation_id" not in _request_completed(service)


def _raw_path_in_log(service: InProcessService) -> bool:
    service.get("/users/42")
    return _request_completed(service)["path"] == "/users/42"


def _no_request_log(service: InProcessService) -> bool:
    service.get("/health")
    return service.records("request_completed") == []


def _never_ready(service: InProcessService) -> bool:
    response = service.get("/health/ready")
    return response.status_code == 503 and response.json()["status"] == "not_ready"


def _non_object_json(service: InProcessService) -> bool:
    service.get("/health")
    return any(_parses_as(line, list) for line in service.log_lines())


def _ignore_traceparent(service: InProcessService) -> bool:
    service.get("/health", headers={"traceparent": TRACEPARENT})
    (span,) = service.server_spans()
    return span.parent is None and format(span.context.trace_id, "032x") != TRACE_ID


def _wrong_log_trace_id(service: InProcessService) -> bool:
    service.get("/health")
    (span,) = service.server_spans()
    logged = str(_request_completed(service)["trace_id"])
    return re.fullmatch(r"[0-9a-f]{32}", logged) is not None and logged != format(
        span.context.trace_id, "032x"
    )


def _no_correlation_header(service: InProcessService) -> bool:
    response = service.get("/health", headers={"X-Correlation-ID": "abc"})
    return (
        "X-Correlation-ID" not in response.headers and _request_completed(service)["correlation_id"] == "abc"
    )


def _no_correlation_echo(service: InProcessService) -> bool:
    returned = service.get("/health", headers={"X-Correlation-ID": "abc"}).headers["X-Correlation-ID"]
    return returned != "abc" and uuid.UUID(returned).version == 4


def _continue_first_traceparent(service: InProcessService) -> bool:
    first = f"00-{TRACE_ID[:-1]}1-00f067aa0ba902b7-01"
    service.get("/health", headers=[("traceparent", first), ("traceparent", TRACEPARENT)])
    (span,) = service.server_spans()
    return format(span.context.trace_id, "032x") == first[3:35]


def _echo_any_correlation_id(service: InProcessService) -> bool:
    oversized = "a" * 300
    return bool(
        service.get("/health", headers={"X-Correlation-ID": oversized}).headers["X-Correlation-ID"]
        == oversized
    )


def _sequential_correlation_id(service: InProcessService) -> bool:
    ids = [service.get("/health").headers["X-Correlation-ID"] for _ in range(2)]
    return ids == ["req-1", "req-2"]


def _recycled_correlation_id(service: InProcessService) -> bool:
    ids = [service.get("/health/live").headers["X-Correlation-ID"] for _ in range(257)]
    return len(set(ids[:256])) == 256 and ids[256] == ids[0] and uuid.UUID(ids[0]).version == 4


def _log_raw_email(service: InProcessService) -> bool:
    service.post("/auth/login", json={"email": EMAIL, "password": "x"})
    (attempt,) = service.records("login_attempt")
    return bool(attempt["email"] == EMAIL)


def _log_authorization(service: InProcessService) -> bool:
    service.get("/health", headers={"Authorization": "Bearer abc.def-123"})
    return "Bearer abc.def-123" in service.log_stream.getvalue()


def _log_card_in_prompt(service: InProcessService) -> bool:
    content = f"card {CARD} for {EMAIL}"
    service.post(
        "/chat/completions",
        json={"model": "fake-small", "messages": [{"role": "user", "content": content}]},
    )
    (logged,) = service.records("chat_completion_requested")
    return bool(logged["prompt"] == f"card {CARD} for [REDACTED_EMAIL]")


def _email_span_attribute(service: InProcessService) -> bool:
    service.post("/auth/login", json={"email": EMAIL, "password": "x"})
    (span,) = service.server_spans()
    return (span.attributes or {}).get("user.email") == EMAIL


def _user_id_label(service: InProcessService) -> bool:
    service.get("/users/42")
    return service.sample("user_requests_total", {"user_id": "42"}) == 1


def _raw_path_label(service: InProcessService) -> bool:
    service.get("/users/42")
    return (
        service.sample(
            "http_requests_total", {"method": "GET", "endpoint": "/users/42", "status_code": "200"}
        )
        == 1
    )


def _counter_no_total(service: InProcessService) -> bool:
    service.get("/health")
    lines = service.get("/metrics").text.splitlines()
    return "# TYPE http_request_count counter" in lines and any(
        line.startswith("http_request_count ") for line in lines
    )


def _histogram_ms(service: InProcessService) -> bool:
    service.get("/health")
    text = service.get("/metrics").text
    in_ms = (
        'http_request_duration_milliseconds_bucket{endpoint="/health",le="5000.0",method="GET"} 1.0' in text
    )
    return in_ms and "http_request_duration_seconds" not in text


def _missing_duration_histogram(service: InProcessService) -> bool:
    service.get("/health")
    return "http_request_duration_seconds" not in service.get("/metrics").text


def _refusal(service: InProcessService) -> httpx.Response:
    for _ in range(10):
        service.post("/auth/login")
    return service.post("/auth/login")


def _no_retry_after(service: InProcessService) -> bool:
    refused = _refusal(service)
    return refused.status_code == 429 and "Retry-After" not in refused.headers


def _plain_429(service: InProcessService) -> bool:
    refused = _refusal(service)
    return refused.status_code == 429 and str(refused.headers["Content-Type"]).startswith("text/plain")


def _no_rate_limit(service: InProcessService) -> bool:
    return _refusal(service).status_code != 429


def _loose_rate_limit(service: InProcessService) -> bool:
    statuses = [service.post("/auth/login").status_code for _ in range(21)]
    return 429 not in statuses[:20] and statuses[20] == 429


def _slow_health(service: InProcessService) -> bool:
    service.get("/health")
    return float(str(_request_completed(service)["duration_ms"])) >= 150


def _drop_counter_increments(service: InProcessService) -> bool:
    for _ in range(20):
        service.get("/health")
    return (
        service.sample("http_requests_total", {"method": "GET", "endpoint": "/health", "status_code": "200"})
        == 18
    )


def _uncounted_errors(service: InProcessService) -> bool:
    response = service.get("/error")
    labels = {"method": "GET", "endpoint": "/error", "error_type": "DeliberateFailure"}
    return response.status_code == 500 and service.sample("http_errors_total", labels) is None


def _ready_ignores_dependencies(service: InProcessService) -> bool:
    return service.get("/health/ready").status_code == 200  # with a dependency failing (DETECTOR_ENV)


def _live_checks_dependencies(service: InProcessService) -> bool:
    return service.get("/health/live").status_code != 200  # with a dependency failing (DETECTOR_ENV)


def _health_missing_field(service: InProcessService) -> bool:
    return "version" not in service.get("/health").json()


def _trace_excluded_urls(service: InProcessService) -> bool:
    service.get("/health/live")  # excluded from tracing by the baliblissed flavour (DETECTOR_ENV)
    return any(span.name.startswith("GET /health/live") for span in service.server_spans())


def _raw_path_span_name(service: InProcessService) -> bool:
    service.get("/users/4242")
    return any(span.name == "GET /users/4242" for span in service.server_spans())


#: Environment a detector needs to show its variant (also given to the conforming service).
DETECTOR_ENV: dict[str, dict[str, str]] = {
    brk.READY_IGNORES_DEPENDENCIES: {"REFSVC_FAIL_DEPENDENCY": "database"},
    brk.LIVE_CHECKS_DEPENDENCIES: {"REFSVC_FAIL_DEPENDENCY": "database"},
    brk.TRACE_EXCLUDED_URLS: {"REFSVC_FLAVOUR": "baliblissed"},
}

DETECTORS: dict[str, Callable[[InProcessService], bool]] = {
    brk.PLAIN_TEXT_LOG: _plain_text_log,
    brk.TIMESTAMP_NO_TZ: _timestamp_no_tz,
    brk.BAD_LEVEL: _bad_level,
    brk.BAD_TRACE_ID: _bad_trace_id,
    brk.MISSING_CORRELATION_IN_LOG: _missing_correlation_in_log,
    brk.RAW_PATH_IN_LOG: _raw_path_in_log,
    brk.NO_REQUEST_LOG: _no_request_log,
    brk.NEVER_READY: _never_ready,
    brk.NON_OBJECT_JSON: _non_object_json,
    brk.IGNORE_TRACEPARENT: _ignore_traceparent,
    brk.WRONG_LOG_TRACE_ID: _wrong_log_trace_id,
    brk.NO_CORRELATION_HEADER: _no_correlation_header,
    brk.NO_CORRELATION_ECHO: _no_correlation_echo,
    brk.CONTINUE_FIRST_TRACEPARENT: _continue_first_traceparent,
    brk.ECHO_ANY_CORRELATION_ID: _echo_any_correlation_id,
    brk.SEQUENTIAL_CORRELATION_ID: _sequential_correlation_id,
    brk.RECYCLED_CORRELATION_ID: _recycled_correlation_id,
    brk.LOG_RAW_EMAIL: _log_raw_email,
    brk.LOG_AUTHORIZATION: _log_authorization,
    brk.LOG_CARD_IN_PROMPT: _log_card_in_prompt,
    brk.EMAIL_SPAN_ATTRIBUTE: _email_span_attribute,
    brk.USER_ID_LABEL: _user_id_label,
    brk.RAW_PATH_LABEL: _raw_path_label,
    brk.COUNTER_NO_TOTAL: _counter_no_total,
    brk.HISTOGRAM_MS: _histogram_ms,
    brk.MISSING_DURATION_HISTOGRAM: _missing_duration_histogram,
    brk.NO_RETRY_AFTER: _no_retry_after,
    brk.PLAIN_429: _plain_429,
    brk.NO_RATE_LIMIT: _no_rate_limit,
    brk.LOOSE_RATE_LIMIT: _loose_rate_limit,
    brk.SLOW_HEALTH: _slow_health,
    brk.DROP_COUNTER_INCREMENTS: _drop_counter_increments,
    brk.UNCOUNTED_ERRORS: _uncounted_errors,
    brk.READY_IGNORES_DEPENDENCIES: _ready_ignores_dependencies,
    brk.LIVE_CHECKS_DEPENDENCIES: _live_checks_dependencies,
    brk.HEALTH_MISSING_FIELD: _health_missing_field,
    brk.TRACE_EXCLUDED_URLS: _trace_excluded_urls,
    brk.RAW_PATH_SPAN_NAME: _raw_path_span_name,
}


def test_every_variant_has_a_detector() -> None:
    assert set(DETECTORS) | {brk.CRASH_AT_START} == brk.ALL_VARIANTS


@pytest.mark.parametrize("variant", sorted(DETECTORS))
def test_variant_shows_its_defect(make_service: ServiceFactory, variant: str) -> None:
    assert DETECTORS[variant](make_service(breaks=[variant], env=DETECTOR_ENV.get(variant)))


@pytest.mark.parametrize("variant", sorted(DETECTORS))
def test_conforming_service_does_not(make_service: ServiceFactory, variant: str) -> None:
    assert not DETECTORS[variant](make_service(env=DETECTOR_ENV.get(variant)))


@pytest.mark.parametrize("variant", sorted(DETECTORS))
def test_variant_leaves_the_rest_of_the_logs_json(make_service: ServiceFactory, variant: str) -> None:
    """Only the log-shape variants may produce lines that are not JSON objects."""
    service = make_service(breaks=[variant])
    service.get("/health")
    service.post("/auth/login", json={"email": EMAIL, "password": "x"})

    odd = [line for line in service.log_lines() if not _parses_as(line, dict)]

    assert (odd != []) == (variant in {brk.PLAIN_TEXT_LOG, brk.NON_OBJECT_JSON})
