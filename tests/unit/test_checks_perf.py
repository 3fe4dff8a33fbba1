"""PERF-* checks on hand-made Locust statistics and Prometheus answers: each
requirement passes on good numbers and fails, under its own id, on the defect
it exists for. Also the pieces around them: reading Locust's CSVs, the target
table, the plan the locustfile runs, and the promise never to import Locust here."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from conformance._exceptions import HarnessError
from conformance._profile import Endpoint, load_profile
from conformance._sections.load import (
    DEFAULT_EXPORT_ERROR_PATTERNS,
    LoadSection,
    Scenario,
    Targets,
    Tolerance,
)
from conformance.checks import perf
from conformance.collect._load_telemetry import histogram_p95_query, served_requests_query
from conformance.collect._locust import read_failures, read_stats
from conformance.commands.load import render_target_table
from conformance.telemetry import LOAD_AGGREGATE_NAME, LoadStatsEntry, LogLine

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests/data"
REFERENCE_PROFILE = REPO / "fixtures/reference_service/conformance.yaml"


def entry(
    name: str,
    *,
    method: str = "GET",
    requests: int = 200,
    failures: int = 0,
    rps: float = 20.0,
    p50: float | None = 10,
    p95: float | None = 40,
    p99: float | None = 80,
) -> LoadStatsEntry:
    return LoadStatsEntry(
        name=name,
        method=method,
        requests=requests,
        failures=failures,
        rps=rps,
        percentiles_ms={0.5: p50, 0.75: p50, 0.9: p95, 0.95: p95, 0.99: p99},
    )


def total(**over: Any) -> LoadStatsEntry:
    return entry(LOAD_AGGREGATE_NAME, method="", **over)


def scenario(
    name: str = "health_check",
    *,
    path: str = "/health",
    method: str = "GET",
    p95: float | None = 100,
    p99: float | None = None,
    min_rps: float | None = None,
    max_failure_ratio: float | None = None,
) -> Scenario:
    latency = {k: v for k, v in (("p95", p95), ("p99", p99)) if v is not None}
    return Scenario(
        name=name,
        endpoint=Endpoint(name=name, path=path, method=method),
        targets=Targets(latency_ms=latency, min_rps=min_rps, max_failure_ratio=max_failure_ratio),
    )


def ids(findings: list[Any]) -> set[str]:
    return {f.requirement_id for f in findings}


# -- PERF-001 latency ----------------------------------------------------


def test_perf_001_passes_when_every_percentile_is_within_its_target() -> None:
    assert perf.check_latency_targets([entry("health_check", p95=99)], [scenario(p95=100, p99=200)]) == []


def test_perf_001_fails_with_the_target_the_observed_value_and_the_miss() -> None:
    findings = perf.check_latency_targets([entry("health_check", p95=162)], [scenario(p95=100)])
    assert ids(findings) == {"PERF-001"}
    (finding,) = findings
    assert finding.message == "health_check p95 is 162 ms; target <= 100 ms (over by 62 ms, +62%)"
    assert finding.evidence["observed"] == 162 and finding.evidence["target"] == 100


def test_perf_001_checks_p99_separately() -> None:
    findings = perf.check_latency_targets([entry("health_check", p95=50, p99=300)], [scenario(p99=250)])
    assert [f.evidence["metric"] for f in findings] == ["p99"]


def test_perf_001_latency_scale_loosens_the_target() -> None:
    stats = [entry("health_check", p95=140)]
    assert perf.check_latency_targets(stats, [scenario(p95=100)], latency_scale=1.5) == []
    assert perf.check_latency_targets(stats, [scenario(p95=100)], latency_scale=1.2)


def test_perf_001_a_scenario_without_requests_fails() -> None:
    findings = perf.check_latency_targets([entry("other")], [scenario(p95=100)])
    assert [f.message for f in findings] == ["health_check p95: no requests recorded; target <= 100 ms"]


def test_perf_001_missing_percentile_column_cannot_be_checked() -> None:
    stats = [LoadStatsEntry("health_check", "GET", 10, 0, 1.0, percentiles_ms={0.5: 3})]
    with pytest.raises(HarnessError, match="no 95% column"):
        perf.check_latency_targets(stats, [scenario(p95=100)])


# -- PERF-002 throughput -------------------------------------------------


def test_perf_002_passes_at_or_above_min_rps() -> None:
    assert perf.check_throughput_targets([entry("health_check", rps=25.0)], [scenario(min_rps=25)]) == []


def test_perf_002_fails_when_the_service_did_not_keep_up() -> None:
    findings = perf.check_throughput_targets([entry("health_check", rps=18.0)], [scenario(min_rps=25)])
    assert ids(findings) == {"PERF-002"}
    assert "short by 7.00 req/s" in findings[0].message


def test_perf_002_rps_scale_applies_to_the_target() -> None:
    stats = [entry("health_check", rps=3.0)]
    assert perf.check_throughput_targets(stats, [scenario(min_rps=25)], rps_scale=0.1) == []
    assert perf.check_throughput_targets(stats, [scenario(min_rps=25)], rps_scale=0.16)


# -- PERF-003 failures ---------------------------------------------------


def test_perf_003_passes_within_the_failure_ratio() -> None:
    stats = [entry("login", requests=200, failures=2)]
    assert perf.check_failure_targets(stats, [scenario("login", max_failure_ratio=0.01)]) == []


def test_perf_003_fails_above_the_failure_ratio() -> None:
    stats = [entry("login", requests=200, failures=30)]
    findings = perf.check_failure_targets(stats, [scenario("login", max_failure_ratio=0.01)])
    assert ids(findings) == {"PERF-003"}
    assert findings[0].message.startswith("login failure_ratio is 15.00%; target <= 1.00%")


# -- PERF-004 aggregate --------------------------------------------------


def test_perf_004_passes_on_a_good_run() -> None:
    aggregate = Targets(latency_ms={"p95": 500}, min_rps=80, max_failure_ratio=0.01)
    assert perf.check_aggregate_targets([total(rps=88, p95=120)], aggregate) == []


def test_perf_004_reads_only_the_aggregated_row() -> None:
    aggregate = Targets(latency_ms={"p95": 500}, min_rps=80, max_failure_ratio=0.01)
    stats = [entry("slow", p95=900), total(rps=60, p95=620, requests=1000, failures=20)]
    findings = perf.check_aggregate_targets(stats, aggregate)
    assert ids(findings) == {"PERF-004"}
    assert {f.evidence["metric"] for f in findings} == {"p95", "rps", "failure_ratio"}
    assert all(f.evidence["scope"] == perf.AGGREGATE_SCOPE for f in findings)


def test_perf_004_scales_like_the_scenarios() -> None:
    aggregate = Targets(latency_ms={"p95": 500}, min_rps=80)
    assert (
        perf.check_aggregate_targets([total(rps=9, p95=700)], aggregate, rps_scale=0.1, latency_scale=2) == []
    )


def test_evaluate_targets_orders_scenarios_then_aggregate() -> None:
    results = perf.evaluate_targets(
        [entry("a"), entry("b"), total()],
        [scenario("a", p95=100, min_rps=1), scenario("b", path="/b", max_failure_ratio=0.01)],
        Targets(latency_ms={"p95": 500}),
    )
    assert [(r.requirement_id, r.scope, r.metric) for r in results] == [
        ("PERF-001", "a", "p95"),
        ("PERF-002", "a", "rps"),
        ("PERF-001", "b", "p95"),
        ("PERF-003", "b", "failure_ratio"),
        ("PERF-004", "all", "p95"),
    ]
    assert all(r.passed for r in results)


def test_target_table_says_which_target_failed_by_how_much() -> None:
    results = perf.evaluate_targets(
        [entry("health_check", p95=162, rps=24.0), total()],
        [scenario(p95=100, min_rps=25)],
        Targets(),
    )
    table = render_target_table(results)
    assert "FAILED: over by 62 ms, +62%" in table
    assert "FAILED: short by 1.00 req/s, +4%" in table
    markdown = render_target_table(results, markdown=True)
    assert markdown.splitlines()[0] == "| requirement | scope | metric | target | observed | result |"


# -- PERF-005 request counter --------------------------------------------

ROUTE = ("GET", "/health")


def test_perf_005_passes_when_the_counter_grew_by_what_was_sent() -> None:
    findings = perf.check_request_counts(
        [entry("health_check", requests=300)], [scenario()], {ROUTE: 300.0}, Tolerance()
    )
    assert findings == []


def test_perf_005_fails_when_a_tenth_of_the_increments_are_dropped() -> None:
    findings = perf.check_request_counts(
        [entry("health_check", requests=300)], [scenario()], {ROUTE: 270.0}, Tolerance(ratio=0.01)
    )
    assert ids(findings) == {"PERF-005"}
    assert "grew by 270 while Locust sent 300 request(s): 30 increment(s) missing (10.0%; tolerance 3)" in (
        findings[0].message
    )


def test_perf_005_fails_when_the_counter_counts_too_much() -> None:
    findings = perf.check_request_counts(
        [entry("health_check", requests=100)], [scenario()], {ROUTE: 112.0}, Tolerance()
    )
    assert "12 increment(s) too many" in findings[0].message


def test_perf_005_tolerance_absorbs_small_differences() -> None:
    stats, scenarios = [entry("health_check", requests=1000)], [scenario()]
    assert perf.check_request_counts(stats, scenarios, {ROUTE: 991.0}, Tolerance(ratio=0.01)) == []
    assert perf.check_request_counts(stats, scenarios, {ROUTE: 998.0}, Tolerance(absolute=2)) == []


def test_perf_005_fails_when_the_route_has_no_series() -> None:
    findings = perf.check_request_counts(
        [entry("health_check", requests=5)], [scenario()], {ROUTE: None}, Tolerance()
    )
    assert (
        findings[0].message
        == "http_requests_total has no series for GET /health, which Locust sent 5 request(s)"
    )


def test_perf_005_a_route_nobody_sent_needs_no_series() -> None:
    assert perf.check_request_counts([], [scenario()], {ROUTE: None}, Tolerance()) == []


# -- PERF-006 server-side p95 --------------------------------------------

P95_TOLERANCE = Tolerance(absolute=50, ratio=0.5)


def p95_check(server_seconds: float | None, *, client_ms: float = 20, requests: int = 200) -> list[Any]:
    return perf.check_server_p95(
        [entry("health_check", p95=client_ms, requests=requests)],
        [scenario()],
        {ROUTE: server_seconds},
        P95_TOLERANCE,
        min_samples=50,
    )


def test_perf_006_passes_when_the_histogram_agrees_within_tolerance() -> None:
    assert p95_check(0.00475) == []  # everything in the 5 ms bucket; Locust adds the client
    assert p95_check(0.2425, client_ms=160) == []  # 150 ms sleep: the (0.1, 0.25] bucket


def test_perf_006_fails_when_the_buckets_are_too_coarse() -> None:
    findings = p95_check(0.95)  # buckets (0, 1]: interpolated p95 of a 20 ms endpoint is 950 ms
    assert ids(findings) == {"PERF-006"}
    assert (
        "is 950.0 ms but Locust's p95 is 20 ms (difference 930.0 ms, allowed 60.0 ms)" in findings[0].message
    )


def test_perf_006_fails_on_no_observations_and_on_plus_inf() -> None:
    assert "no observations" in p95_check(math.nan)[0].message
    assert "no observations" in p95_check(None)[0].message
    assert "above its largest finite bucket" in p95_check(math.inf)[0].message


def test_perf_006_skips_scenarios_below_min_samples_but_never_passes_on_nothing() -> None:
    scenarios = [scenario(), scenario("rare", path="/rare")]
    stats = [entry("health_check", requests=200), entry("rare", requests=3, p95=5000)]
    assert perf.check_server_p95(stats, scenarios, {ROUTE: 0.004}, P95_TOLERANCE, min_samples=50) == []
    with pytest.raises(HarnessError, match="no scenario had 50 requests"):
        p95_check(0.004, requests=10)


# -- PERF-007 OTLP export errors -----------------------------------------

SDK_MESSAGES = [
    '{"level": "ERROR", "logger": "opentelemetry.sdk._shared_internal", '
    '"message": "Exception while exporting Span."}',
    '{"level": "WARNING", "logger": "opentelemetry.exporter.otlp.proto.http.trace_exporter", '
    '"message": "Failed to export span batch code: 503, reason: unavailable"}',
    '{"level": "WARNING", "logger": "opentelemetry.exporter.otlp.proto.grpc.exporter", "message": '
    '"Transient error StatusCode.UNAVAILABLE encountered while exporting traces to 127.0.0.1:4317"}',
    '{"level": "WARNING", "logger": "opentelemetry.sdk._shared_internal", '
    '"message": "Queue full, dropping span."}',
    "Failed to export batch code: 404, reason: Not Found",  # plain text on stderr
]


def log_lines(*texts: str, stream: str = "stdout") -> list[LogLine]:
    return [LogLine(i, t.encode(), stream) for i, t in enumerate(texts, 1)]


@pytest.mark.parametrize("text", SDK_MESSAGES)
def test_perf_007_fails_on_each_sdk_export_error(text: str) -> None:
    findings = perf.check_export_errors(log_lines(text, stream="stderr"), DEFAULT_EXPORT_ERROR_PATTERNS)
    assert ids(findings) == {"PERF-007"}
    assert findings[0].evidence["stream"] == "stderr" and findings[0].evidence["line"] == 1


def test_perf_007_passes_on_ordinary_records() -> None:
    lines = log_lines(
        '{"level": "INFO", "message": "request_completed", "path": "/health"}',
        '{"level": "INFO", "message": "chat_completion_requested", "prompt": "export the report"}',
    )
    assert perf.check_export_errors(lines, DEFAULT_EXPORT_ERROR_PATTERNS) == []


def test_perf_007_masks_what_it_quotes() -> None:
    line = "Failed to export batch for jane.doe@example.com"
    (finding,) = perf.check_export_errors(log_lines(line), DEFAULT_EXPORT_ERROR_PATTERNS)
    assert "jane.doe@example.com" not in finding.message
    assert "jane.doe@example.com" not in str(finding.evidence)


def test_perf_007_profile_patterns_replace_the_defaults() -> None:
    lines = log_lines("exporter gave up after 3 tries", "Failed to export batch")
    assert [f.evidence["line"] for f in perf.check_export_errors(lines, [r"gave up"])] == [1]


# -- Locust's files ------------------------------------------------------


def test_read_stats_keeps_locusts_own_numbers() -> None:
    stats = read_stats(DATA / "locust_final_stats.csv")
    by_name = {e.name: e for e in stats}
    health = by_name["health_check"]
    assert (health.method, health.requests, health.failures) == ("GET", 292, 0)
    assert health.percentiles_ms[0.95] == 23 and health.percentiles_ms[0.99] == 28
    assert health.rps == pytest.approx(20.106342036451423)
    aggregate = by_name[LOAD_AGGREGATE_NAME]
    assert aggregate.is_aggregate and aggregate.requests == 944
    assert sum(e.requests for e in stats if not e.is_aggregate) == aggregate.requests


def test_read_stats_reads_na_percentiles_as_none(tmp_path: Path) -> None:
    text = (DATA / "locust_final_stats.csv").read_text().splitlines()[0] + "\n"
    text += "POST,chat_completion,0,0,0,0.0,0,0,0,0.0,0.0" + ",N/A" * 11 + "\n"
    path = tmp_path / "stats.csv"
    path.write_text(text)
    (chat,) = read_stats(path)
    assert chat.requests == 0 and chat.percentiles_ms[0.95] is None


def test_read_stats_refuses_a_foreign_file(tmp_path: Path) -> None:
    path = tmp_path / "stats.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(HarnessError, match="unexpected Locust statistics row"):
        read_stats(path)


def test_read_failures() -> None:
    failures = read_failures(DATA / "locust_final_failures.csv")
    assert [(f.name, f.error, f.occurrences) for f in failures] == [
        ("login", "HTTP 429, expected [200]", 3),
        ("health_check", "no response: ConnectionRefusedError(111, 'Connection refused')", 1),
    ]
    assert read_failures(DATA / "does-not-exist.csv") == []


# -- PromQL the collector sends ------------------------------------------


def test_served_requests_query_subtracts_the_value_at_the_window_start() -> None:
    query = served_requests_query(
        "http_requests_total",
        ("GET", '/a"b'),
        method_label="method",
        route_label="endpoint",
        since=1700000000.5,
    )
    selector = 'http_requests_total{method="GET",endpoint="/a\\"b"}'
    assert query == f"sum({selector}) - (sum({selector} @ 1700000000.500) or vector(0))"


def test_histogram_p95_query_counts_new_series_from_zero() -> None:
    query = histogram_p95_query(
        "http_request_duration_seconds", ROUTE, method_label="method", route_label="endpoint", since=1.0
    )
    assert query.startswith("histogram_quantile(0.95, sum by (le) (http_request_duration_seconds_bucket{")
    assert "@ 1.000) or sum by (le) (" in query and query.endswith(" * 0))")


# -- the profile section and the plan ------------------------------------


def test_reference_profile_load_section() -> None:
    profile = load_profile(REFERENCE_PROFILE)
    section: LoadSection = profile.section("load")
    names = [s.name for s in section.scenarios]
    assert names == [
        "health_check",
        "health_all",
        "health_chroma",
        "health_sandbox",
        "get_models",
        "chat_completion",
        "get_settings",
        "login",
    ]
    assert [s.weight for s in section.scenarios] == [10, 8, 5, 3, 2, 1, 2, 1]
    assert section.service_env == {"REFSVC_RATE_LIMIT_ENABLED": "false"}
    health = section.scenarios[0]
    assert health.targets.latency_ms == {"p95": 100.0} and health.targets.max_failure_ratio == 0.01


def test_plan_carries_requests_weights_pacing_and_cap() -> None:
    profile = load_profile(REFERENCE_PROFILE)
    section: LoadSection = profile.section("load")
    mode = section.mode("pr", run_time=10)
    plan = section.plan(profile, mode, client_prefix="p", processes=2)
    chat = next(s for s in plan["scenarios"] if s["name"] == "chat_completion")
    assert chat["method"] == "POST" and chat["path"] == "/chat/completions" and chat["has_json"]
    assert chat["json"]["model"] == "fake-small"
    assert plan["client_header"] == "X-API-Key" and plan["throughput_per_user"] == 2.0
    bound = mode.users * 2 * (10 + section.stop_timeout) + mode.users
    assert mode.max_requests == bound and plan["max_requests_per_process"] == math.ceil(bound / 2)


def test_section_defaults_when_the_profile_has_none(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nservice: {name: x, command: [x]}\n")
    section: LoadSection = load_profile(path).section("load")
    assert not section.configured
    assert section.modes["pr"].users == 5 and section.modes["nightly"].run_time == 300
    assert section.telemetry.requests_metric == "http_requests_total"


def _profile_with(tmp_path: Path, load: str) -> Mapping[str, Any]:
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nservice: {name: x, command: [x]}\nendpoints: [{name: e, path: /e}]\n" + load)
    section: LoadSection = load_profile(path).section("load")
    return {"section": section}


def test_inline_scenario_gets_defaults_and_default_targets(tmp_path: Path) -> None:
    section = _profile_with(
        tmp_path,
        "load: {scenarios: [{name: s, path: '/x/{id}', path_params: {id: 7}, targets: {p99: 9}}],"
        " default_targets: {p95: 5, max_failure_ratio: 0.1}}\n",
    )["section"]
    (s,) = section.scenarios
    assert s.route == ("GET", "/x/{id}") and s.endpoint.concrete_path() == "/x/7"
    assert s.targets == Targets(latency_ms={"p95": 5.0, "p99": 9.0}, max_failure_ratio=0.1)


# -- the harness never imports Locust --------------------------------------


def test_the_harness_process_never_imports_locust_or_gevent() -> None:
    code = (
        "import sys, conformance.cli, conformance.commands.load, conformance.collect._locust;"
        "from conformance._requirements import all_requirements; all_requirements();"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent'));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
