"""MET-001, TRC-001: telemetry reaches the real backends."""

from __future__ import annotations

import pytest

from conformance._session import ConformanceSession
from conformance.checks import exports
from conformance.plugin import Verdict


@pytest.mark.requirement("MET-001")
def test_metrics_are_scraped_by_prometheus(conformance_session: ConformanceSession, verdict: Verdict) -> None:
    s = conformance_session
    exposition = s.scrape(openmetrics=s.profile.metrics.format == "openmetrics")
    target = s.prometheus_target()
    verdict.note(
        url=exposition.url,
        families=len(exposition.families),
        format=exposition.format,
        prometheus_target=(target or {}).get("scrapeUrl"),
    )
    findings = exports.check_metrics_scraped(
        url=exposition.url,
        status_code=exposition.status_code,
        parse_error=exposition.parse_error,
        family_count=len(exposition.families),
        target=target,
    )
    verdict.check(findings, what="the metrics endpoint")


@pytest.mark.requirement("TRC-001")
def test_server_spans_are_exported(conformance_session: ConformanceSession, verdict: Verdict) -> None:
    s = conformance_session
    spans = s.server_spans()
    store = s.stack.trace_store.describe()
    verdict.note(store=store, spans=len(spans), protocol=s.profile.telemetry.otlp_protocol)
    findings = exports.check_server_spans_exported(
        s.exchanges, spans, templates=s.templates, traced_endpoints=s.traced_endpoints, store=store
    )
    verdict.check(findings, what="the trace store")
