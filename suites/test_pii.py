"""PII-001 … PII-007: canaries sent into every input, searched for in every output
(see conformance.checks.pii and conformance.collect._canaries)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from conformance._exceptions import HarnessError
from conformance._process import RUN_ID
from conformance._sections.pii import KEY, PiiSection
from conformance._session import ConformanceSession
from conformance.checks import pii
from conformance.checks.logs import parse_log_lines
from conformance.collect._canaries import (
    CanaryGenerator,
    CanaryRegistry,
    PiiChannels,
    gather_channels,
    inject_canaries,
    plan_injection,
)
from conformance.collect._logs import read_log_lines
from conformance.plugin import Verdict
from conformance.telemetry import LogLine


@dataclass(frozen=True)
class PiiRun:
    """The canaries, what came out, and everything the scan found in it."""

    registry: CanaryRegistry
    channels: PiiChannels
    hits: Sequence[pii.Hit]
    scanned: dict[str, dict[str, int]]
    needles: int

    def notes(self, channel: str | None = None) -> dict[str, Any]:
        """What was sent and what came back; ``channel`` narrows the scan and wait facts to one channel."""
        statuses = Counter(str(x.status_code or "no answer") for x in self.registry.exchanges)
        notes: dict[str, Any] = {
            "seed": self.registry.seed,
            "canaries": len(self.registry.canaries),
            "forms_searched": self.needles,
            "requests": len(self.registry.exchanges),
            "statuses": dict(sorted(statuses.items())),
        }
        unhandled = statuses.get("429", 0) + statuses.get("no answer", 0)
        if unhandled:
            notes["caveat"] = (
                f"{unhandled} canary request(s) were answered 429 or not at all: the service never handled "
                "them, so their canaries' absence proves less (they were searched for all the same)"
            )
        if channel is None:
            notes["scanned"] = self.scanned
            notes["waits"] = dict(self.channels.waits)
        else:
            notes["scanned"] = self.scanned[channel]
            wait = {"logs": "logs", "traces": "spans", "prometheus": "prometheus"}.get(channel)
            if wait:
                notes["wait"] = self.channels.waits.get(wait, "")
        return notes


@pytest.fixture(scope="module")
def section(conformance_session: ConformanceSession) -> PiiSection:
    parsed: PiiSection = conformance_session.profile.section(KEY)
    return parsed


def _all_log_lines(session: ConformanceSession) -> list[LogLine]:
    """Both streams: the profile's log stream and the other one (plain start-up text, tracebacks)."""
    stream = session.profile.logs.stream
    other = "stderr" if stream == "stdout" else "stdout"
    return session.log_lines() + read_log_lines(
        session.stack.log_path(other),
        stream=other,
        max_line_bytes=session.profile.logs.max_line_bytes,
        final=session.stack.service_exit_code() is not None,
    )


@pytest.fixture(scope="module")
def pii_run(conformance_session: ConformanceSession, section: PiiSection) -> PiiRun:
    s = conformance_session
    s.require_running()
    plan = plan_injection(s.profile.endpoints, section.injection, CanaryGenerator(RUN_ID))
    if not plan.requests:
        raise HarnessError("no endpoint gets canaries; check endpoints and pii.endpoints in the profile")
    clients = [s.client(f"pii-{lane}") for lane in range(section.injection.clients)]
    registry = inject_canaries(plan, clients)
    channels = gather_channels(
        registry,
        read_logs=lambda: _all_log_lines(s),
        store=s.stack.trace_store,
        prometheus=s.prometheus,
        scrape=s.scrape,
        correlation_header=s.profile.correlation_header,
        prometheus_job=s.profile.prometheus.job,
        traced_endpoints=s.traced_endpoints,
        timeout=section.timeout,
    )
    scanner = pii.PiiScanner(
        [*registry.canaries, *pii.baseline_values(s.profile.endpoints)], section.detectors
    )
    texts = {
        "logs": pii.log_texts(channels.log_lines),
        "traces": pii.span_texts(channels.spans),
        "metrics": pii.exposition_texts(channels.exposition),
        "prometheus": pii.prometheus_texts(channels.series, channels.label_values),
    }
    hits = [hit for channel_texts in texts.values() for hit in scanner.scan(channel_texts)]
    scanned = {
        channel: {"texts": len(items), "characters": sum(len(t.text) for t in items)}
        for channel, items in texts.items()
    }
    return PiiRun(registry, channels, hits, scanned, scanner.needles)


@pytest.mark.requirement("PII-001")
def test_no_canary_in_logs(pii_run: PiiRun, verdict: Verdict) -> None:
    if not pii_run.channels.log_lines:
        raise HarnessError("the service wrote no log lines at all, so there is nothing to search")
    verdict.note(**pii_run.notes("logs"), injected=pii_run.registry.summary())
    findings = pii.check_canary_leaks(pii_run.hits, "logs", pii_run.registry)
    verdict.check(findings, what=f"{len(pii_run.channels.log_lines)} log lines")


@pytest.mark.requirement("PII-002")
def test_no_canary_in_spans(pii_run: PiiRun, verdict: Verdict) -> None:
    sent = {x.sent_traceparent.split("-")[1] for x in pii_run.registry.exchanges if x.sent_traceparent}
    arrived = {span.trace_id for span in pii_run.channels.spans} & sent
    if not arrived:
        raise HarnessError(
            f"none of the {len(sent)} canary requests' traces reached the trace store "
            f"({pii_run.channels.waits.get('spans', '')}), so their spans cannot be searched"
        )
    verdict.note(**pii_run.notes("traces"), canary_traces_arrived=f"{len(arrived)}/{len(sent)}")
    findings = pii.check_canary_leaks(pii_run.hits, "traces", pii_run.registry)
    verdict.check(findings, what=f"{len(pii_run.channels.spans)} spans")


@pytest.mark.requirement("PII-003")
def test_no_canary_in_metrics(pii_run: PiiRun, verdict: Verdict) -> None:
    exposition = pii_run.channels.exposition
    if exposition.status_code != 200:
        raise HarnessError(f"{exposition.url} answered {exposition.status_code}; see MET-001")
    verdict.note(
        **pii_run.notes("metrics"), exposition=exposition.url, parse_error=exposition.parse_error or None
    )
    findings = pii.check_canary_leaks(pii_run.hits, "metrics", pii_run.registry)
    verdict.check(findings, what=f"the exposition at {exposition.url}")


@pytest.mark.requirement("PII-004")
def test_no_canary_in_prometheus(pii_run: PiiRun, verdict: Verdict) -> None:
    if not pii_run.channels.series:
        raise HarnessError("Prometheus has no series for the service's job (prometheus.job); see MET-001")
    labels = pii_run.channels.label_values
    verdict.note(
        **pii_run.notes("prometheus"),
        series=len(pii_run.channels.series),
        label_names=sorted(labels),
        label_values=sum(len(v) for v in labels.values()),
    )
    findings = pii.check_canary_leaks(pii_run.hits, "prometheus", pii_run.registry)
    verdict.check(findings, what="Prometheus series and label values")


@pytest.mark.requirement("PII-005")
def test_no_partial_or_encoded_canary(pii_run: PiiRun, verdict: Verdict) -> None:
    verdict.note(**pii_run.notes())
    findings = pii.check_partial_leaks(pii_run.hits, pii_run.registry)
    verdict.check(findings, what="every channel")


@pytest.mark.requirement("PII-006")
def test_no_pii_nobody_sent(pii_run: PiiRun, section: PiiSection, verdict: Verdict) -> None:
    detectors = section.detectors
    verdict.note(
        **pii_run.notes(),
        detectors=list(detectors.kinds),
        allowed=[p.pattern for p in detectors.allow],
        ignored_fields=sorted(detectors.ignore_fields),
    )
    verdict.check(pii.check_unknown_pii(pii_run.hits), what="every channel")


@pytest.mark.requirement("PII-007")
def test_redacted_fields_carry_markers(
    pii_run: PiiRun, section: PiiSection, conformance_session: ConformanceSession, verdict: Verdict
) -> None:
    profile = conformance_session.profile
    if not section.redacted_fields:
        raise HarnessError(
            "the profile declares no pii.redacted_fields, so there is no redaction to look for; "
            "declare the fields the service logs redacted, or list PII-007 in requirements.not_applicable"
        )
    verdict.note(
        **pii_run.notes("logs"),
        rules=[
            f"{r.endpoint}: {r.message}.{r.field} has {', '.join(r.markers)}" for r in section.redacted_fields
        ],
    )
    parsed = parse_log_lines(pii_run.channels.log_lines, profile.logs)
    findings = pii.check_redaction_present(
        pii_run.registry,
        parsed,
        section.redacted_fields,
        correlation_header=profile.correlation_header,
        expected_statuses={ep.name: ep.expect_status for ep in profile.endpoints},
    )
    verdict.check(findings, what="the declared redacted fields")
