"""MET-001, TRC-001: telemetry reaches the real backends."""

from __future__ import annotations

import pytest

from conformance._model import Finding
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
        status=exposition.status_code,
        format=exposition.format,
        prometheus_target=(target or {}).get("scrapeUrl"),
    )
    verdict.examined(metric_families=len(exposition.families), scrapes=1 + (target is not None))
    findings = exports.check_metrics_scraped(
        url=exposition.url,
        status_code=exposition.status_code,
        content_type=exposition.content_type,
        parse_error=exposition.parse_error,
        family_count=len(exposition.families),
        target=target,
    )
    verdict.check(findings, what="the metrics endpoint")


@pytest.mark.requirement("TRC-001")
def test_server_spans_are_exported(conformance_session: ConformanceSession, verdict: Verdict) -> None:
    s = conformance_session
    traced = [x for x in s.exchanges if x.endpoint in s.traced_endpoints and x.status_code is not None]
    verdict.examined(
        traced_requests=len(traced),
        none_because="no traced request of the baseline traffic was answered",
        hint="mark at least one endpoint as traced, or check the service's output",
    )
    store = s.stack.trace_store.describe()
    verdict.note(store=store, protocol=s.profile.telemetry.otlp_protocol)
    if traced and not s.spans_exported():
        # One finding, not one per route: the fact is that nothing was exported.
        verdict.check(
            [Finding("TRC-001", f"{s.no_spans_reason()} ({len(traced)} traced requests were answered)",
                     {"store": store, "protocol": s.profile.telemetry.otlp_protocol,
                      "hint": "point the service's OTLP exporter at OTEL_EXPORTER_OTLP_ENDPOINT, or declare "
                              "telemetry.spans: false if it exports none by design"})],
            what="the trace store",
        )  # fmt: skip
    spans = s.server_spans()
    verdict.examined(spans=len(spans))
    findings = exports.check_server_spans_exported(
        s.exchanges, spans, templates=s.templates, traced_endpoints=s.traced_endpoints, store=store
    )
    verdict.check(findings, what="the trace store")
