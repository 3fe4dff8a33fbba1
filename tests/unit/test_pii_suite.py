"""The PII suite's verdicts rest on evidence (suites/test_pii.py): each test records
what it examined, errors when there was nothing, and PII-002 is not applicable to a
service declared to export no spans. The suite's test functions are called here
with hand-made channels, a real Verdict and a stand-in for the session."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from conformance.suites import test_pii as suite

from conformance import load_profile
from conformance._exceptions import Failure, HarnessError, NoEvidence
from conformance._profile import Profile
from conformance._requirements import get_requirement
from conformance._sections.pii import KEY, PiiSection
from conformance.checks import pii
from conformance.collect._canaries import (
    CanaryGenerator,
    CanaryRegistry,
    PiiChannels,
    _sampled_names,
    gather_channels,
)
from conformance.collect._scrape import Exposition
from conformance.plugin import Verdict
from conformance.telemetry import HttpExchange, LogLine, Span

REPO = Path(__file__).resolve().parents[2]
PROFILE = load_profile(REPO / "fixtures/reference_service/conformance.yaml")
SECTION: PiiSection = PROFILE.section(KEY)
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class SessionStandIn:
    """A stand-in for ConformanceSession (a test double): the suite's tests only read its profile
    and whether OTLP metrics had a gap (``metrics.source: otlp`` without the collector)."""

    def __init__(self, profile: Profile = PROFILE, otlp_gap: str = "") -> None:
        self.profile = profile
        self.otlp_gap = otlp_gap

    def otlp_metrics_gap(self) -> str:
        return self.otlp_gap


def exposition(status: int = 200, text: str = "# TYPE up gauge\nup 1\n") -> Exposition:
    return Exposition("http://127.0.0.1:9/metrics", status, "text/plain", text, (), "prometheus-text")


def pii_run(
    *,
    lines: tuple[str, ...] = ('{"message": "request_completed", "correlation_id": "cid-1"}',),
    spans: int = 1,
    metrics: Exposition | None = None,
    series: tuple[dict[str, str], ...] = ({"__name__": "http_requests_total", "job": "service"},),
    sampled: frozenset[str] | None = None,
) -> Any:
    (email,) = [CanaryGenerator("suite").new("email", endpoint="login", slot="json $.email", request=0)]
    exchange = HttpExchange(
        "login", "POST", "http://x/auth/login", "/auth/login", (), 200,
        (("X-Correlation-ID", "cid-1"),), sent_traceparent=TRACEPARENT,
    )  # fmt: skip
    registry = CanaryRegistry("suite", (email,), (exchange,))
    channels = PiiChannels(
        log_lines=tuple(LogLine(i, line.encode()) for i, line in enumerate(lines, 1)),
        spans=tuple(
            Span(
                "4bf92f3577b34da6a3ce929d0e0e4736", f"{i + 1:016x}", None, "POST /auth/login", "SERVER", 1, 2
            )
            for i in range(spans)
        ),
        exposition=metrics or exposition(),
        series=series,
        label_values={name: (value,) for labels in series for name, value in labels.items()},
        waits={"logs": "complete", "spans": "complete", "prometheus": "complete"},
        sampled_names=sampled,
    )
    return suite.PiiRun.scan(registry, channels, pii.PiiScanner(registry.canaries))


def verdict(requirement: str) -> Verdict:
    return Verdict(get_requirement(requirement))


class TestEvidence:
    def test_pii_001_counts_the_log_lines(self) -> None:
        v = verdict("PII-001")
        suite.test_no_canary_in_logs(pii_run(lines=("a", "b", "c")), SessionStandIn(), v)
        assert v.counts == {"lines": 3}

    def test_pii_001_without_log_lines_is_an_error(self) -> None:
        with pytest.raises(NoEvidence, match=r"^the service wrote no log lines on stdout \(nor on stderr\)"):
            suite.test_no_canary_in_logs(pii_run(lines=()), SessionStandIn(), verdict("PII-001"))

    def test_pii_001_leak_fails_whatever_the_counts(self) -> None:
        run = pii_run()
        (email,) = run.registry.canaries
        leaked = pii_run(lines=(json.dumps({"email": email.value}),))
        with pytest.raises(Failure, match="PII-001"):
            suite.test_no_canary_in_logs(leaked, SessionStandIn(), verdict("PII-001"))

    def test_pii_002_counts_spans_or_errors_without_any(self) -> None:
        v = verdict("PII-002")
        suite.test_no_canary_in_spans(pii_run(spans=2), v)
        assert v.counts == {"spans": 2}
        with pytest.raises(NoEvidence, match=r"^no spans to search; the service exports no spans"):
            suite.test_no_canary_in_spans(pii_run(spans=0), verdict("PII-002"))

    def test_pii_003_counts_families_and_lines_and_errors_without_an_exposition(self) -> None:
        v = verdict("PII-003")
        suite.test_no_canary_in_metrics(SessionStandIn(), pii_run(), v)
        assert v.counts == {"metric_families": 0, "exposition_lines": 2}
        with pytest.raises(NoEvidence, match=r"/metrics answered 404: no exposition, and no point arrived"):
            suite.test_no_canary_in_metrics(
                SessionStandIn(), pii_run(metrics=exposition(404, "not found")), verdict("PII-003")
            )

    def test_pii_003_errors_on_a_body_that_is_no_exposition(self) -> None:
        """A service that answers every path 200 {} has no /metrics to search."""
        with pytest.raises(NoEvidence, match=r"answered 200 with no exposition line"):
            suite.test_no_canary_in_metrics(
                SessionStandIn(), pii_run(metrics=exposition(200, "{}")), verdict("PII-003")
            )

    def test_pii_003_says_why_otlp_metrics_were_not_read(self) -> None:
        """metrics.source: otlp without the collector: the reason, not "metrics.exposed: false"."""
        gap = "the metrics the service pushes over OTLP are read from ..., and the collector is not running"
        unread = Exposition("", 0, "", "", (), "prometheus-text", "metrics.exposed: false")
        with pytest.raises(NoEvidence, match=r"and the collector is not running; and no metric point"):
            suite.test_no_canary_in_metrics(
                SessionStandIn(otlp_gap=gap), pii_run(metrics=unread), verdict("PII-003")
            )

    def test_pii_004_counts_the_services_series_and_errors_without_any(self) -> None:
        v = verdict("PII-004")
        suite.test_no_canary_in_prometheus(pii_run(), v)
        assert v.counts == {"series": 1}
        with pytest.raises(
            NoEvidence,
            match="Prometheus stored no sample of the service's own series after the canary requests",
        ):
            suite.test_no_canary_in_prometheus(pii_run(series=()), verdict("PII-004"))

    def test_pii_004_the_series_prometheus_makes_itself_are_no_evidence(self) -> None:
        made_by_prometheus = tuple(
            {"__name__": name, "job": "service", "instance": "127.0.0.1:9"}
            for name in ("up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS", "job:up:sum")
        )
        with pytest.raises(
            NoEvidence, match=r"\(5 series of the job listed: its own up, scrape_\* and alerts"
        ):
            suite.test_no_canary_in_prometheus(pii_run(series=made_by_prometheus), verdict("PII-004"))

    def test_pii_004_series_without_samples_are_no_evidence(self) -> None:
        """The series API lists series no scrape after the canaries brought (a target down since,
        a scrape Prometheus drops as a whole for exemplars it rejects): they are no evidence."""
        listed = (
            {"__name__": "jvm_threads_live_threads", "job": "service"},
            {"__name__": "up", "job": "service"},
        )
        with pytest.raises(NoEvidence, match="or series no scrape since brought"):
            suite.test_no_canary_in_prometheus(
                pii_run(series=listed, sampled=frozenset({"up"})), verdict("PII-004")
            )
        v = verdict("PII-004")
        suite.test_no_canary_in_prometheus(
            pii_run(series=listed, sampled=frozenset({"up", "jvm_threads_live_threads"})), v
        )
        assert v.counts == {"series": 1}

    @pytest.mark.parametrize("requirement", ["PII-005", "PII-006"])
    def test_pii_005_and_006_count_every_channel_and_say_which_had_data(self, requirement: str) -> None:
        def test(run: Any, v: Verdict) -> None:
            if requirement == "PII-005":
                suite.test_no_partial_or_encoded_canary(run, v)
            else:
                suite.test_no_pii_nobody_sent(run, SECTION, v)

        v = verdict(requirement)
        test(pii_run(spans=0, series=()), v)
        assert v.counts == {"log_lines": 1, "spans": 0, "exposition_lines": 2, "series": 0}
        (note,) = [n for n in v.evidence if "channels_with_data" in n]
        assert note["channels_with_data"] == ["logs", "metrics (/metrics exposition)"]
        with pytest.raises(NoEvidence, match=r"^no channel had anything to search"):
            test(pii_run(lines=(), spans=0, metrics=exposition(503, ""), series=()), verdict(requirement))

    def test_pii_007_counts_rules_and_handled_requests(self) -> None:
        v = verdict("PII-007")
        line = '{"message": "login_attempt", "correlation_id": "cid-1", "email": "[REDACTED_EMAIL]"}'
        section = replace(
            SECTION, redacted_fields=tuple(r for r in SECTION.redacted_fields if r.endpoint == "login")
        )
        suite.test_redacted_fields_carry_markers(pii_run(lines=(line,)), section, SessionStandIn(), v)
        assert v.counts == {"redaction_rules": 1, "canary_requests": 1}

    def test_pii_007_without_rules_is_an_error(self) -> None:
        with pytest.raises(NoEvidence, match=r"the profile declares no pii\.redacted_fields"):
            suite.test_redacted_fields_carry_markers(
                pii_run(), replace(SECTION, redacted_fields=()), SessionStandIn(), verdict("PII-007")
            )


class TestServiceWithoutMetrics:
    def test_metrics_exposed_false_reads_neither_metrics_nor_prometheus(self) -> None:
        """gather_channels with metrics=False: /metrics and Prometheus are never asked."""

        class TraceStoreStandIn:
            """A stand-in for a TraceStore (a test double) holding no span."""

            def spans(self) -> list[Span]:
                return []

            def describe(self) -> str:
                return "a stand-in trace store"

        def scrape() -> Exposition:
            raise AssertionError("/metrics must not be scraped")

        channels = gather_channels(
            CanaryRegistry("suite", ()),
            read_logs=lambda: [LogLine(1, b"{}")],
            store=cast(Any, TraceStoreStandIn()),
            prometheus=cast(Any, None),
            scrape=scrape,
            correlation_header="X-Correlation-ID",
            prometheus_job="service",
            traced_endpoints=(),
            timeout=1,
            metrics=False,
        )
        assert channels.series == () and channels.exposition.status_code == 0
        assert channels.waits["prometheus"].startswith("not read")
        run = suite.PiiRun.scan(CanaryRegistry("suite", ()), channels, pii.PiiScanner([]))
        v = verdict("PII-006")
        suite.test_no_pii_nobody_sent(run, SECTION, v)
        assert v.counts == {"log_lines": 1, "spans": 0, "exposition_lines": 0, "series": 0}


class PrometheusStandIn:
    """A stand-in for PrometheusClient (a test double): answers the one query the PII
    collector asks about samples, or fails it."""

    def __init__(self, names: list[str] | None) -> None:
        self.names = names
        self.asked: list[str] = []

    def query(self, expr: str) -> list[dict[str, Any]]:
        self.asked.append(expr)
        if self.names is None:
            raise HarnessError("Prometheus API /api/v1/query failed (HTTP 422): bad query")
        return [{"metric": {"__name__": name}, "value": 1.0} for name in self.names]


def test_the_metrics_with_samples_since_the_canaries_come_from_last_over_time() -> None:
    """last_over_time keeps the metric name (count_over_time would drop it, and Prometheus
    rejects the aggregation then: "vector cannot contain metrics with the same labelset")."""
    since = datetime.now(UTC) - timedelta(seconds=12)
    prometheus = PrometheusStandIn(["up", "http_requests_total"])
    waits: dict[str, str] = {}
    names = _sampled_names(cast(Any, prometheus), "service", since=since, waits=waits)
    assert names == {"up", "http_requests_total"} and waits == {}
    (expr,) = prometheus.asked
    assert re.fullmatch(r'count by \(__name__\) \(last_over_time\(\{job="service"\}\[1[34]s\]\)\)', expr), (
        expr
    )
    failing = PrometheusStandIn(None)
    assert _sampled_names(cast(Any, failing), "service", since=since, waits=waits) is None
    assert waits["prometheus samples"].startswith("unknown (every listed series counts): Prometheus API")
