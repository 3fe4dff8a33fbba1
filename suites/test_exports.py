"""MET-001, TRC-001: telemetry reaches the real backends."""

from __future__ import annotations

from typing import Any

import pytest

from conformance._model import Finding
from conformance._session import ConformanceSession
from conformance.checks import exports
from conformance.plugin import Verdict
from conformance.stack._telemetry import AfterTeamPipeline


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
        **({"metrics_source": s.otlp_metrics.describe()} if s.otlp_metrics is not None else {}),
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
    findings += _after_team_pipeline(s, verdict, findings)
    verdict.check(findings, what="the trace store")


def _after_team_pipeline(s: ConformanceSession, verdict: Verdict, at_service: list[Finding]) -> list[Finding]:
    """TRC-001 on the spans after the team's collector pipeline (telemetry.collector_config), when it
    runs and carries traces: routes whose SERVER spans it drops."""
    after: AfterTeamPipeline | None = getattr(s.stack, "team_pipeline", None)
    if after is None:
        return []
    note: dict[str, Any] = {"config": str(after.config_file)}
    if why := after.not_compared("traces"):
        verdict.note(after_pipeline={**note, "not_checked": why})
        return []
    # The baseline's traces only: the plan's other probes keep traffic flowing meanwhile.
    sent = [x.sent_trace_id for x in s.exchanges if x.endpoint in s.traced_endpoints and x.sent_trace_id]
    note["wait"] = after.settle(s.profile.telemetry.timeout, traces=sent)
    servers = [span for span in after.spans() if span.kind == "SERVER"]
    verdict.note(after_pipeline={**note, "server_spans": len(servers)})
    pipeline = after.described("traces")
    dropped = exports.check_server_spans_exported(
        s.exchanges, servers, templates=s.templates, traced_endpoints=s.traced_endpoints, store=pipeline
    )
    return exports.check_server_spans_after_pipeline(at_service, dropped, pipeline=pipeline)
