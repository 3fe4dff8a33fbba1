"""PERF-*: the load gate. The service meets its targets under load, and its
telemetry tells the truth about that load.

Pure: Locust's own statistics (:class:`~conformance.telemetry.LoadStatsEntry`,
read from its CSV; no percentile is recomputed here), the profile's targets,
the counts and quantiles Prometheus answered, and the service's log lines in;
findings out.

Locust has no pass/fail thresholds of its own; these checks are them. Targets
are compared with the mode's scales applied: ``min_rps x rps_scale`` and
``latency x latency_scale``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from conformance._exceptions import HarnessError
from conformance._mask import excerpt
from conformance._model import Finding, Level
from conformance._requirements import requirement
from conformance._sections.load import LATENCY_KEYS, Scenario, Targets, Tolerance
from conformance.telemetry import LoadStatsEntry, LogLine

__all__ = [
    "AGGREGATE_SCOPE",
    "PERF_001",
    "PERF_002",
    "PERF_003",
    "PERF_004",
    "PERF_005",
    "PERF_006",
    "PERF_007",
    "TargetResult",
    "check_aggregate_targets",
    "check_export_errors",
    "check_failure_targets",
    "check_latency_targets",
    "check_request_counts",
    "check_server_p95",
    "check_throughput_targets",
    "evaluate_targets",
]

_LOAD_SEED_000 = "seed 000 §Middleware Features '4. Load Testing (Locust)'"
_SLA_SEED_003 = "seed 003 §Alert Thresholds 'SLA Targets'"

PERF_001 = requirement(
    "PERF-001",
    Level.MUST,
    "Every load scenario meets its response-time targets (p50/p95/p99) under load",
    source=f"{_LOAD_SEED_000} performance targets: health < 100 ms p95, chat < 2 s p95, login < 500 ms p95",
)
PERF_002 = requirement(
    "PERF-002",
    Level.MUST,
    "Every load scenario sustains its throughput target (requests per second)",
    source=f"{_LOAD_SEED_000} performance targets: health 100 RPS, chat 10 RPS, login 20 RPS",
)
PERF_003 = requirement(
    "PERF-003",
    Level.MUST,
    "Every load scenario's failure ratio stays within its target",
    source=f"{_SLA_SEED_003}: error rate <= 1%; seed 000 §Testing the Setup '4. Run load test': "
    "should complete without errors",
)
PERF_004 = requirement(
    "PERF-004",
    Level.MUST,
    "The whole load run meets the aggregate targets (p95, throughput, failure ratio)",
    source=f"{_SLA_SEED_003}: response time P95 <= 500 ms, error rate <= 1%",
)
PERF_005 = requirement(
    "PERF-005",
    Level.MUST,
    "The request counter grows by the number of requests the load test sent (no telemetry loss)",
    source="seed 000 §Middleware Features '3. Prometheus Metrics' (http_requests_total) and "
    f"{_LOAD_SEED_000}: metrics must count every request served under load",
)
PERF_006 = requirement(
    "PERF-006",
    Level.MUST,
    "The server-side p95 from the duration histogram agrees with the load test's p95",
    source="seed 000 §Middleware Features '3. Prometheus Metrics' (http_request_duration_seconds buckets) "
    f"and {_LOAD_SEED_000} p95 targets: the histogram must resolve the SLO's percentile",
)
PERF_007 = requirement(
    "PERF-007",
    Level.MUST,
    "The service logs no OTLP export errors or dropped telemetry under load",
    source="seed 000 §OpenTelemetry Observability Stack 'OTLP Collector Setup'; seed 001 §Components "
    "'1. OpenTelemetry Configuration' (OTLP exporters)",
)

#: The ``scope`` of an aggregate target: Locust's Aggregated row.
AGGREGATE_SCOPE = "all"


@dataclass(frozen=True, slots=True)
class TargetResult:
    """One target compared with what Locust measured; ``observed`` is ``None``
    when Locust recorded no request for the scope."""

    requirement_id: str
    scope: str
    metric: str
    target: float
    observed: float | None
    #: ``"max"``: observed must not exceed target; ``"min"``: must reach it.
    kind: str
    unit: str = ""

    @property
    def passed(self) -> bool:
        if self.observed is None:
            return False
        return self.observed <= self.target if self.kind == "max" else self.observed >= self.target

    @property
    def miss(self) -> float | None:
        """How far beyond the target (positive when failed), in the target's unit."""
        if self.observed is None:
            return None
        return self.observed - self.target if self.kind == "max" else self.target - self.observed

    def describe(self) -> str:
        bound = "<=" if self.kind == "max" else ">="
        want = f"{bound} {_fmt(self.target, self.unit)}"
        if self.observed is None:
            return f"{self.scope} {self.metric}: no requests recorded; target {want}"
        got = _fmt(self.observed, self.unit)
        if self.passed:
            return f"{self.scope} {self.metric} is {got}; target {want}"
        miss = self.miss or 0.0
        relative = f", {miss / self.target:+.0%}" if self.target else ""
        side = "over" if self.kind == "max" else "short"
        by = f"{side} by {_fmt(miss, self.unit)}{relative}"
        return f"{self.scope} {self.metric} is {got}; target {want} ({by})"

    def to_evidence(self) -> dict[str, object]:
        return {
            "scope": self.scope,
            "metric": self.metric,
            "target": self.target,
            "bound": "max" if self.kind == "max" else "min",
            "observed": self.observed,
            "unit": self.unit,
            "passed": self.passed,
        }


def _fmt(value: float, unit: str) -> str:
    if unit == "ratio":
        return f"{value:.2%}"
    if unit == "req/s":
        return f"{value:.2f} req/s"
    return f"{value:g} {unit}".rstrip()


def _results_for(
    requirement_id: str,
    scope: str,
    entry: LoadStatsEntry | None,
    targets: Targets,
    *,
    rps_scale: float,
    latency_scale: float,
    which: frozenset[str],
) -> list[TargetResult]:
    has_requests = entry is not None and entry.requests > 0
    out: list[TargetResult] = []
    if "latency" in which:
        for key, target in targets.latency_ms.items():
            observed = None
            if entry is not None and has_requests:
                fraction = LATENCY_KEYS[key]
                if fraction not in entry.percentiles_ms:
                    raise HarnessError(
                        f"Locust's statistics have no {fraction:.0%} column for {scope}",
                        hint="the locustfile sets locust.stats.PERCENTILES_TO_REPORT; was it changed?",
                    )
                observed = entry.percentiles_ms[fraction]
            out.append(
                TargetResult(requirement_id, scope, key, target * latency_scale, observed, "max", "ms")
            )
    if "rps" in which and targets.min_rps is not None:
        observed_rps = entry.rps if entry is not None and has_requests else None
        out.append(
            TargetResult(
                requirement_id, scope, "rps", targets.min_rps * rps_scale, observed_rps, "min", "req/s"
            )
        )
    if "failures" in which and targets.max_failure_ratio is not None:
        ratio = entry.failure_ratio if entry is not None and has_requests else None
        out.append(
            TargetResult(
                requirement_id, scope, "failure_ratio", targets.max_failure_ratio, ratio, "max", "ratio"
            )
        )
    return out


def _by_name(stats: Sequence[LoadStatsEntry]) -> dict[str, LoadStatsEntry]:
    return {e.name: e for e in stats if not e.is_aggregate}


def evaluate_targets(
    stats: Sequence[LoadStatsEntry],
    scenarios: Sequence[Scenario],
    aggregate: Targets,
    *,
    rps_scale: float = 1.0,
    latency_scale: float = 1.0,
) -> list[TargetResult]:
    """Every target of every scenario, then the aggregate ones, against Locust's rows."""
    rows = _by_name(stats)
    out: list[TargetResult] = []
    parts = (("PERF-001", "latency"), ("PERF-002", "rps"), ("PERF-003", "failures"))
    for scenario in scenarios:
        for requirement_id, which in parts:
            out += _results_for(
                requirement_id,
                scenario.name,
                rows.get(scenario.name),
                scenario.targets,
                rps_scale=rps_scale,
                latency_scale=latency_scale,
                which=frozenset({which}),
            )
    total = next((e for e in stats if e.is_aggregate), None)
    out += _results_for(
        "PERF-004",
        AGGREGATE_SCOPE,
        total,
        aggregate,
        rps_scale=rps_scale,
        latency_scale=latency_scale,
        which=frozenset({"latency", "rps", "failures"}),
    )
    return out


def _findings(results: Sequence[TargetResult], requirement_id: str) -> list[Finding]:
    return [
        Finding(requirement_id, r.describe(), r.to_evidence())
        for r in results
        if r.requirement_id == requirement_id and not r.passed
    ]


def check_latency_targets(
    stats: Sequence[LoadStatsEntry], scenarios: Sequence[Scenario], *, latency_scale: float = 1.0
) -> list[Finding]:
    """PERF-001: each scenario's Locust percentiles are within its latency targets."""
    return _findings(evaluate_targets(stats, scenarios, Targets(), latency_scale=latency_scale), "PERF-001")


def check_throughput_targets(
    stats: Sequence[LoadStatsEntry], scenarios: Sequence[Scenario], *, rps_scale: float = 1.0
) -> list[Finding]:
    """PERF-002: each scenario's Locust Requests/s reaches its min_rps."""
    return _findings(evaluate_targets(stats, scenarios, Targets(), rps_scale=rps_scale), "PERF-002")


def check_failure_targets(stats: Sequence[LoadStatsEntry], scenarios: Sequence[Scenario]) -> list[Finding]:
    """PERF-003: each scenario's failures / requests is within its max_failure_ratio."""
    return _findings(evaluate_targets(stats, scenarios, Targets()), "PERF-003")


def check_aggregate_targets(
    stats: Sequence[LoadStatsEntry],
    aggregate: Targets,
    *,
    rps_scale: float = 1.0,
    latency_scale: float = 1.0,
) -> list[Finding]:
    """PERF-004: Locust's Aggregated row meets the whole-run targets."""
    results = evaluate_targets(stats, (), aggregate, rps_scale=rps_scale, latency_scale=latency_scale)
    return _findings(results, "PERF-004")


def check_request_counts(
    stats: Sequence[LoadStatsEntry],
    scenarios: Sequence[Scenario],
    served: Mapping[tuple[str, str], float | None],
    tolerance: Tolerance,
    *,
    metric: str = "http_requests_total",
) -> list[Finding]:
    """PERF-005: per route, the counter's increase equals the requests Locust sent.

    ``served`` is the increase between a scrape before the run and one after
    its last response, so only dropped (or invented) increments remain.
    """
    rows = _by_name(stats)
    findings = []
    for scenario in scenarios:
        method, route = scenario.route
        entry = rows.get(scenario.name)
        sent = entry.requests if entry is not None else 0
        got = served.get(scenario.route)
        evidence = {"scenario": scenario.name, "route": f"{method} {route}", "sent": sent, "counted": got}
        if got is None:
            if sent:
                findings.append(
                    Finding(
                        "PERF-005",
                        f"{metric} has no series for {method} {route}, which Locust sent {sent} request(s)",
                        evidence,
                    )
                )
            continue
        allowed = tolerance.allowed(sent)
        if abs(got - sent) > allowed:
            lost = sent - got
            what = f"{lost:g} increment(s) missing" if lost > 0 else f"{-lost:g} increment(s) too many"
            findings.append(
                Finding(
                    "PERF-005",
                    f"{metric}{{{method} {route}}} grew by {got:g} while Locust sent {sent} request(s): "
                    f"{what} ({abs(lost) / max(sent, 1):.1%}; tolerance {allowed:g})",
                    {**evidence, "tolerance": allowed},
                )
            )
    return findings


def check_server_p95(
    stats: Sequence[LoadStatsEntry],
    scenarios: Sequence[Scenario],
    server_p95_seconds: Mapping[tuple[str, str], float | None],
    tolerance: Tolerance,
    *,
    min_samples: int = 50,
    metric: str = "http_request_duration_seconds",
) -> list[Finding]:
    """PERF-006: ``histogram_quantile(0.95)`` over the run agrees with Locust's p95.

    Allowed difference: ``tolerance.absolute`` ms + ``tolerance.ratio`` x
    Locust's p95. Locust's time includes the client and the socket queue;
    the histogram interpolates inside a bucket, so buckets far wider than the
    latency being measured (or in the wrong unit) show up here. Scenarios with
    fewer than ``min_samples`` requests are left out; if none is left, the
    check cannot run and raises.
    """
    rows = _by_name(stats)
    findings = []
    compared = 0
    for scenario in scenarios:
        entry = rows.get(scenario.name)
        if entry is None or entry.requests < min_samples:
            continue
        client_ms = entry.percentiles_ms.get(0.95)
        if client_ms is None:
            continue
        compared += 1
        method, route = scenario.route
        server = server_p95_seconds.get(scenario.route)
        evidence = {"scenario": scenario.name, "route": f"{method} {route}", "locust_p95_ms": client_ms}
        if server is None or math.isnan(server):
            findings.append(
                Finding(
                    "PERF-006",
                    f"{metric} has no observations for {method} {route} during the run "
                    f"(Locust sent {entry.requests} request(s), p95 {client_ms:g} ms)",
                    evidence,
                )
            )
            continue
        if math.isinf(server):
            findings.append(
                Finding(
                    "PERF-006",
                    f"{metric} p95 for {method} {route} is above its largest finite bucket "
                    f"(Locust's p95: {client_ms:g} ms): the buckets do not reach the latencies served",
                    {**evidence, "server_p95_ms": "+Inf"},
                )
            )
            continue
        server_ms = server * 1000
        allowed = tolerance.allowed(client_ms)
        if abs(server_ms - client_ms) > allowed:
            findings.append(
                Finding(
                    "PERF-006",
                    f"histogram_quantile(0.95, {metric}) for {method} {route} is {server_ms:.1f} ms but "
                    f"Locust's p95 is {client_ms:g} ms (difference {abs(server_ms - client_ms):.1f} ms, "
                    f"allowed {allowed:.1f} ms): the buckets do not resolve this latency",
                    {**evidence, "server_p95_ms": round(server_ms, 3), "allowed_ms": round(allowed, 3)},
                )
            )
    if not compared:
        raise HarnessError(
            f"no scenario had {min_samples} requests, so no p95 could be compared",
            hint="raise the mode's users or run_time, or lower load.telemetry.min_samples",
        )
    return findings


def check_export_errors(lines: Sequence[LogLine], patterns: Sequence[str]) -> list[Finding]:
    """PERF-007: no line of the service's output reports a failed or dropped OTLP export.

    Matches ``patterns`` (case-insensitive) against every captured line, JSON
    or not: the OpenTelemetry SDK logs through the application's logging,
    which may or may not be the structured stream.
    """
    if not patterns:
        return []
    matcher = re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
    findings = []
    for line in lines:
        text = line.text()
        match = matcher.search(text)
        if match:
            findings.append(
                Finding(
                    "PERF-007",
                    f"{line.stream} line {line.number} reports an export problem ({match.group(0)!r}): "
                    f"{excerpt(text, 200)}",
                    {"stream": line.stream, "line": line.number, "excerpt": excerpt(text, 200)},
                )
            )
    return findings
