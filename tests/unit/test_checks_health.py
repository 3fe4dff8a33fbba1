"""HLT-* checks on hand-made answers: each requirement passes on what the seeds'
probes answer and fails, under its own id, on the defect it exists for. The
bodies are validated against the reference service's shipped schemas, so these
tests also pin what those schemas accept (the seeds' own examples) and refuse."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance import load_profile
from conformance._exceptions import HarnessError
from conformance._profile import Endpoint, schema_path
from conformance._sections.health import HealthProbe
from conformance.checks import health
from conformance.collect._health import NO_SECOND_INSTANCE, fetch_probes, probe_with_dependency_failure
from conformance.stack._external import ExternalStack
from conformance.telemetry import HttpExchange, ProbeAnswer

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = schema_path("profiles/reference")

HEALTH = Endpoint(name="health", path="/health")
LIVE = Endpoint(name="health_live", path="/health/live")
READY = Endpoint(name="health_ready", path="/health/ready")
DETAILED = Endpoint(name="health_detailed", path="/health/detailed")

# The seeds' own examples (seed 002 §Health Check Endpoints, seed 004 §Health Checks).
SEED_ROOT = {"status": "healthy", "version": "1.0.0", "environment": "production"}
SEED_LIVE = {"status": "live", "timestamp": "2025-01-01T12:00:00Z"}
SEED_READY = {
    "status": "ready",
    "timestamp": "2025-01-01T12:00:00Z",
    "version": "1.0.0",
    "checks": {
        "database": {"status": "pass", "response_ms": 15},
        "redis": {"status": "pass", "response_ms": 5},
        "disk": {"status": "pass", "usage_percent": 45},
    },
}
SEED_NOT_READY = {
    "status": "not_ready",
    "timestamp": "2025-01-01T12:00:00Z",
    "version": "1.0.0",
    "checks": {"database": {"status": "fail", "response_ms": 2000, "message": "Connection timeout"}},
}
SEED_DETAILED = {
    "status": "healthy",
    "version": "1.0.0",
    "environment": "production",
    "timestamp": 1705318245.123,
    "uptime_seconds": 3600.5,
    "checks": {
        "database": {"status": "healthy", "response_time_ms": 12.34},
        "gemini_api": {"status": "healthy", "response_time_ms": 234.56},
    },
}


def schema(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SCHEMAS / f"health-{name}.schema.json").read_text())
    return data


def probe(endpoint: Endpoint, status: int = 200, schema_name: str | None = None) -> HealthProbe:
    return HealthProbe(
        endpoint,
        status,
        schema(schema_name) if schema_name else None,
        SCHEMAS / f"health-{schema_name}.schema.json" if schema_name else None,
    )


def answer(
    p: HealthProbe,
    status: int | None,
    body: Any = None,
    *,
    raw: bytes | None = None,
    seconds: float = 0.01,
    failing: bool = False,
    error: str = "",
) -> ProbeAnswer:
    path = p.endpoint.path
    x = HttpExchange(
        endpoint=p.endpoint.name,
        method="GET",
        url=f"http://127.0.0.1:8000{path}",
        path=path,
        request_headers=(),
        status_code=status,
        body=raw if raw is not None else json.dumps(body).encode() if body is not None else b"",
        elapsed_seconds=seconds,
        error=error,
    )
    return ProbeAnswer(p, x, dependency_failing=failing)


def messages(findings: list[Any]) -> list[str]:
    return [f.message for f in findings]


# ---------------------------------------------------------------- HLT-001


def test_hlt_001_passes_on_the_seeds_examples() -> None:
    answers = [
        answer(probe(HEALTH, schema_name="root"), 200, SEED_ROOT),
        answer(probe(LIVE, schema_name="live"), 200, SEED_LIVE),
        answer(probe(READY, schema_name="ready"), 200, SEED_READY),
        answer(probe(DETAILED, schema_name="detailed"), 200, SEED_DETAILED),
    ]
    assert health.check_probe_answers(answers) == []


def test_hlt_001_fails_on_a_missing_field_naming_it_and_its_path() -> None:
    body = {k: v for k, v in SEED_ROOT.items() if k != "version"}
    (finding,) = health.check_probe_answers([answer(probe(HEALTH, schema_name="root"), 200, body)])
    assert finding.requirement_id == "HLT-001"
    assert finding.message == (
        "GET /health (health) answered 200; body at $ is not valid against health-root.schema.json: "
        "'version' is a required property"
    )
    assert finding.evidence["json_path"] == "$" and finding.evidence["validator"] == "required"
    assert finding.evidence["endpoint"] == "health" and finding.evidence["status"] == 200


def test_hlt_001_names_the_nested_path_of_a_wrong_value() -> None:
    body = json.loads(json.dumps(SEED_READY))
    body["checks"]["database"]["status"] = "ok"
    (finding,) = health.check_probe_answers([answer(probe(READY, schema_name="ready"), 200, body)])
    assert finding.evidence["json_path"] == "$.checks.database.status"
    assert "body at $.checks.database.status" in finding.message and "'pass' was expected" in finding.message


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({**SEED_LIVE, "timestamp": "2025-01-01 12:00:00"}, "$.timestamp"),  # no T, no zone
        ({**SEED_LIVE, "timestamp": 1705318245.123}, "$.timestamp"),  # seed 004's epoch is not seed 002's
        ({**SEED_LIVE, "status": "alive"}, "$.status"),
    ],
    ids=["timestamp-without-zone", "epoch-timestamp", "wrong-status-word"],
)
def test_hlt_001_liveness_body_is_strict_where_seed_002_is(body: dict[str, Any], path: str) -> None:
    findings = health.check_probe_answers([answer(probe(LIVE, schema_name="live"), 200, body)])
    assert {f.evidence["json_path"] for f in findings} == {path}


def test_hlt_001_unknown_fields_are_allowed() -> None:
    body = {**SEED_DETAILED, "region": "eu-west-1"}
    assert health.check_probe_answers([answer(probe(DETAILED, schema_name="detailed"), 200, body)]) == []


def test_hlt_001_fails_on_the_wrong_status_without_validating_the_body() -> None:
    (finding,) = health.check_probe_answers([answer(probe(READY, schema_name="ready"), 503, SEED_NOT_READY)])
    assert finding.message == "GET /health/ready (health_ready) answered 503, expected 200"
    assert finding.evidence["status"] == 503 and finding.evidence["expected_status"] == 200
    assert '"not_ready"' in finding.evidence["body"]


def test_hlt_001_fails_when_there_is_no_answer() -> None:
    a = answer(probe(LIVE, schema_name="live"), None, error="ConnectError: [Errno 111] Connection refused")
    (finding,) = health.check_probe_answers([a])
    assert (
        finding.message
        == "GET /health/live (health_live) got no answer: ConnectError: [Errno 111] Connection refused"
    )


@pytest.mark.parametrize("raw", [b"OK", b"", b"\xff\xfe"], ids=["text", "empty", "not-utf8"])
def test_hlt_001_fails_on_a_body_that_is_not_json(raw: bytes) -> None:
    (finding,) = health.check_probe_answers([answer(probe(HEALTH, schema_name="root"), 200, raw=raw)])
    assert "answered 200 with a body that is not JSON" in finding.message


def test_quoted_service_output_is_masked() -> None:
    body = json.loads(json.dumps(SEED_NOT_READY))
    body["checks"]["database"]["status"] = "down for jane.doe@example.com"
    (finding,) = health.check_ready_under_failure(answer(probe(READY, 503, "ready-failure"), 503, body))
    assert "jane.doe@example.com" not in finding.message and "j***@e***.com" in finding.message
    (wrong,) = health.check_probe_answers([answer(probe(READY, schema_name="ready"), 503, body)])
    assert "jane.doe@example.com" not in wrong.evidence["body"] and "j***@e***.com" in wrong.evidence["body"]


def test_hlt_001_lists_at_most_ten_schema_errors_per_answer() -> None:
    body = {"status": "ready", "timestamp": "2025-01-01T12:00:00Z", "version": "1", "checks": {}}
    body["checks"] = {f"dep{i:02d}": {"status": "fail"} for i in range(15)}
    findings = health.check_probe_answers([answer(probe(READY, schema_name="ready"), 200, body)])
    assert len(findings) == 11
    assert findings[-1].message == "GET /health/ready (health_ready): 5 more schema error(s) not listed"


def test_hlt_001_without_a_schema_checks_the_status_only() -> None:
    assert health.check_probe_answers([answer(probe(HEALTH), 200, raw=b"OK")]) == []


# ---------------------------------------------------------------- HLT-002


def test_hlt_002_passes_on_seed_002s_failure_answer() -> None:
    a = answer(probe(READY, 503, "ready-failure"), 503, SEED_NOT_READY, failing=True)
    assert health.check_ready_under_failure(a) == []


def test_hlt_002_fails_when_readiness_ignores_the_failing_dependency() -> None:
    a = answer(probe(READY, 503, "ready-failure"), 200, SEED_READY, failing=True)
    (finding,) = health.check_ready_under_failure(a)
    assert finding.requirement_id == "HLT-002"
    assert finding.message == (
        "with a dependency failing, GET /health/ready (health_ready) answered 200, expected 503"
    )
    assert finding.evidence["dependency_failing"] is True


def test_hlt_002_fails_on_a_failed_check_without_a_message() -> None:
    body = json.loads(json.dumps(SEED_NOT_READY))
    del body["checks"]["database"]["message"]
    (finding,) = health.check_ready_under_failure(answer(probe(READY, 503, "ready-failure"), 503, body))
    assert finding.evidence["json_path"] == "$.checks.database"
    assert "'message' is a required property" in finding.message


def test_hlt_002_fails_on_a_503_that_still_says_ready() -> None:
    body = {**SEED_NOT_READY, "status": "ready"}
    (finding,) = health.check_ready_under_failure(answer(probe(READY, 503, "ready-failure"), 503, body))
    assert finding.evidence["json_path"] == "$.status"


def test_hlt_002_without_a_failure_schema_checks_the_status_only() -> None:
    assert health.check_ready_under_failure(answer(probe(READY, 503), 503, raw=b"Service Unavailable")) == []


# ---------------------------------------------------------------- HLT-003


def test_hlt_003_passes_when_liveness_stays_up() -> None:
    assert health.check_live_under_failure(answer(probe(LIVE), 200, SEED_LIVE, failing=True)) == []


def test_hlt_003_fails_when_liveness_checks_dependencies() -> None:
    a = answer(probe(LIVE), 503, {"status": "not_live"}, failing=True)
    (finding,) = health.check_live_under_failure(a)
    assert finding.requirement_id == "HLT-003"
    assert (
        finding.message
        == "with a dependency failing, GET /health/live (health_live) answered 503, expected 200"
    )


def test_hlt_003_fails_when_liveness_hangs() -> None:
    a = answer(probe(LIVE), None, failing=True, error="ReadTimeout: timed out", seconds=10.0)
    (finding,) = health.check_live_under_failure(a)
    assert "got no answer: ReadTimeout" in finding.message


def test_hlt_003_validates_the_body_when_the_profile_gives_a_schema() -> None:
    a = answer(probe(LIVE, 200, "live"), 200, {"status": "live"}, failing=True)
    (finding,) = health.check_live_under_failure(a)
    assert "'timestamp' is a required property" in finding.message


# ---------------------------------------------------------------- HLT-004


def test_hlt_004_passes_within_the_budget() -> None:
    answers = [
        answer(probe(LIVE), 200, SEED_LIVE, seconds=2.99),
        answer(probe(READY, 503), 503, failing=True),
    ]
    assert health.check_response_times(answers, 3.0) == []


def test_hlt_004_fails_on_a_slow_probe_also_with_a_dependency_failing() -> None:
    answers = [
        answer(probe(HEALTH), 200, SEED_ROOT, seconds=0.2),
        answer(probe(READY, 503), 503, SEED_NOT_READY, seconds=4.5, failing=True),
    ]
    (finding,) = health.check_response_times(answers, 3.0)
    assert finding.requirement_id == "HLT-004"
    assert finding.message == (
        "with a dependency failing, GET /health/ready (health_ready) took 4.50 s, over max_seconds 3 "
        "(answered 503)"
    )
    assert finding.evidence["elapsed_seconds"] == 4.5 and finding.evidence["max_seconds"] == 3.0


def test_hlt_004_counts_a_probe_that_gave_up_late() -> None:
    a = answer(probe(READY), None, seconds=10.0, error="ReadTimeout: timed out")
    (finding,) = health.check_response_times([a], 3.0)
    assert "took 10.00 s" in finding.message and "got no answer (ReadTimeout: timed out)" in finding.message


# ---------------------------------------------------------------- collecting


def test_probes_are_fetched_with_their_endpoint_and_timed() -> None:
    """Against a real HTTP server on 127.0.0.1 (stdlib), answering 503 on /health/ready."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(f"GET {self.path}")
            body = b'{"status": "x"}'
            self.send_response(503 if self.path == "/health/ready" else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.server_address[1]}") as client:
            answers = fetch_probes(client, [probe(LIVE), probe(READY)])
    finally:
        server.shutdown()
        server.server_close()
    assert seen == ["GET /health/live", "GET /health/ready"]
    assert [a.exchange.status_code for a in answers] == [200, 503]
    assert all(a.exchange.elapsed_seconds > 0 and not a.dependency_failing for a in answers)
    assert "traceparent" not in dict(answers[0].exchange.request_headers)


def test_the_second_instance_needs_local_mode(tmp_path: Path) -> None:
    profile = load_profile(REPO / "fixtures/reference_service/conformance.yaml")
    failure = profile.section("health").dependency_failure
    with pytest.raises(HarnessError) as info:
        probe_with_dependency_failure(ExternalStack(profile, tmp_path), profile, failure)
    assert str(info.value) == NO_SECOND_INSTANCE
    assert "run with --mode local or declare HLT-002/HLT-003 not_applicable" in str(info.value)
    assert not any(tmp_path.iterdir())  # nothing was started or written
