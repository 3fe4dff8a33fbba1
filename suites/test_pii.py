"""PII-001 … PII-007: canaries sent into every input, searched for in every output
(see conformance.checks.pii and conformance.collect._canaries)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from conformance._exceptions import HarnessError
from conformance._plan import ProbeContext, implements
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
from conformance.collect._otlp_logs import OTLP_STREAM
from conformance.plugin import Verdict
from conformance.stack._telemetry import AfterTeamPipeline
from conformance.telemetry import LogLine, OtlpLogRecord, OtlpMetricPoints


@dataclass(frozen=True, repr=False)
class PiiRun:
    """The canaries, what came out, and everything the scan found in it.

    Its repr is counts only: pytest prints a failing test's arguments in the
    traceback, which reaches the reports (Allure), and canaries never may.
    """

    registry: CanaryRegistry
    channels: PiiChannels
    hits: Sequence[pii.Hit]
    scanned: dict[str, dict[str, int]]
    needles: int
    #: What left the team's collector pipeline (telemetry.collector_config), searched alike.
    pipeline: pii.AfterPipeline | None = None
    #: For the report: the team pipeline's config, processors, what it passed on, or why it did not run.
    pipeline_note: dict[str, Any] | None = None
    #: OTLP log records the service exported (local mode's receiver), searched as channel log_records.
    log_records: Sequence[OtlpLogRecord] = ()
    #: The distinct attribute sets of OTLP metric points (local mode's receiver): channel otlp_metrics.
    metric_points: Sequence[OtlpMetricPoints] = ()

    @classmethod
    def scan(
        cls,
        registry: CanaryRegistry,
        channels: PiiChannels,
        scanner: pii.PiiScanner,
        after: AfterTeamPipeline | None = None,
        *,
        settle_timeout: float = 15.0,
        log_records: Sequence[OtlpLogRecord] = (),
        metric_points: Sequence[OtlpMetricPoints] = (),
    ) -> PiiRun:
        """Search every channel with ``scanner`` (and what left the team's pipeline, when ``after``)."""
        texts = {
            "logs": pii.log_texts(_captured(channels.log_lines)),
            "log_records": pii.log_record_texts(log_records),
            "otlp_metrics": pii.metric_point_texts(metric_points),
            "traces": pii.span_texts(channels.spans),
            "metrics": pii.exposition_texts(channels.exposition),
            "prometheus": pii.prometheus_texts(channels.series, channels.label_values),
        }
        hits = [hit for channel_texts in texts.values() for hit in scanner.scan(channel_texts)]
        scanned = {
            channel: {"texts": len(items), "characters": sum(len(t.text) for t in items)}
            for channel, items in texts.items()
        }
        pipeline, pipeline_note = _after_pipeline(after, scanner, settle_timeout)
        return cls(
            registry,
            channels,
            hits,
            scanned,
            scanner.needles,
            pipeline,
            pipeline_note,
            log_records,
            metric_points,
        )

    def __repr__(self) -> str:
        return (
            f"PiiRun(seed={self.registry.seed!r}, canaries={len(self.registry.canaries)}, "
            f"requests={len(self.registry.exchanges)}, hits={len(self.hits)})"
        )

    @property
    def exposition_lines(self) -> int:
        """Lines of the exposition searched that are an exposition's (samples, HELP, TYPE)."""
        return pii.exposition_lines(self.channels.exposition)

    @property
    def service_series(self) -> int:
        """The job's series the service exposed that Prometheus stored samples of after the
        canary requests (not ``up``, ``scrape_*`` or alerts)."""
        return pii.service_series(self.channels.series, self.channels.sampled_names)

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
        if self.pipeline_note is not None and channel in (None, "logs", "traces", "metrics"):
            notes["after_pipeline"] = self.pipeline_note
        if channel is None:
            notes["scanned"] = self.scanned
            notes["waits"] = dict(self.channels.waits)
        else:
            notes["scanned"] = self.scanned[channel]
            wait = {"logs": "logs", "traces": "spans", "prometheus": "prometheus"}.get(channel)
            if wait:
                notes["wait"] = self.channels.waits.get(wait, "")
            if channel == "prometheus" and "prometheus samples" in self.channels.waits:
                notes["samples"] = self.channels.waits["prometheus samples"]
        return notes


def _after_pipeline(
    after: AfterTeamPipeline | None, scanner: pii.PiiScanner, settle_timeout: float
) -> tuple[pii.AfterPipeline | None, dict[str, Any] | None]:
    """The team pipeline's output searched with ``scanner``, and the note saying what it was."""
    if after is None:
        return None, None
    note: dict[str, Any] = {
        "config": str(after.config_file),
        "processors": {name: list(names) for name, names in after.processors.items()},
    }
    if not after.running:
        note["not_searched"] = after.reason
        return None, note
    note["wait"] = after.settle(settle_timeout)
    processors: dict[str, tuple[str, ...]] = {}
    texts: list[pii.ChannelText] = []
    searched: dict[str, str] = {}
    if after.carries("traces"):
        spans = after.spans()
        processors["traces"] = after.processors_for("traces")
        texts += pii.span_texts(spans)
        searched["traces"] = f"{len(spans)} spans after the team's pipeline"
    if after.carries("logs"):
        records = after.log_records()
        processors["log_records"] = after.processors_for("logs")
        texts += pii.log_record_texts(records)
        searched["log_records"] = f"{len(records)} log records after the team's pipeline"
    if after.carries("metrics"):
        points = after.metric_points()
        processors["otlp_metrics"] = after.processors_for("metrics")
        texts += pii.metric_point_texts(points)
        searched["otlp_metrics"] = f"{len(points)} metric attribute sets after the team's pipeline"
    note["searched"] = searched
    view = pii.AfterPipeline(after.config_file.name, processors, scanner.scan(texts), searched)
    return view, note


@pytest.fixture(scope="module")
def section(conformance_session: ConformanceSession) -> PiiSection:
    parsed: PiiSection = conformance_session.profile.section(KEY)
    return parsed


def _all_log_lines(session: ConformanceSession) -> list[LogLine]:
    """Both streams: the profile's log stream and the other one (plain start-up text, tracebacks);
    with ``logs.stream: otlp`` the OTLP log records as lines (for the waits and PII-007) and both
    captured streams (the records themselves are searched as channel log_records)."""
    stream = session.profile.logs.stream
    if stream == OTLP_STREAM:
        captured = session.log_lines("stdout") + session.log_lines("stderr")
        # A mode that keeps no OTLP log records (external) still has the captured streams to search.
        if getattr(session.stack, "otlp_log_records", None) is None:
            return captured
        return session.log_lines() + captured
    other = "stderr" if stream == "stdout" else "stdout"
    return session.log_lines() + session.log_lines(other)


def _captured(lines: Sequence[LogLine]) -> list[LogLine]:
    """The lines of the captured streams (channel logs): not the OTLP log records rendered as lines,
    which channel log_records searches as the records they are."""
    return [line for line in lines if line.stream != OTLP_STREAM]


@implements("pii-canaries")
def _inject_canaries(s: ConformanceSession, _: ProbeContext) -> tuple[CanaryRegistry, PiiChannels]:
    """The canary requests, then a bounded wait for their logs, spans and samples."""
    section: PiiSection = s.profile.section(KEY)
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
        scrape=s.scrape_or_gap,
        correlation_header=s.profile.correlation_header,
        prometheus_job=s.metrics_job,
        # A service declared to export no spans is not waited for, nor one without metrics scraped.
        traced_endpoints=s.traced_endpoints if s.profile.telemetry.spans else (),
        timeout=section.timeout,
        metrics=s.profile.metrics.exposed and (s.otlp_metrics is None or bool(s.otlp_metrics.url)),
    )
    return registry, channels


@pytest.fixture(scope="module")
def pii_run(conformance_session: ConformanceSession, section: PiiSection) -> PiiRun:
    """The canaries' channels, searched once all the run's traffic is over: the logs and
    spans are read again then, so the detectors see everything the service wrote."""
    s = conformance_session
    registry, channels = s.probe("pii-canaries")
    s.after_all_traffic()
    s.settle_logs()  # logs.stream: otlp: the records of the last requests are still being exported
    channels = dataclasses.replace(
        channels, log_lines=tuple(_all_log_lines(s)), spans=tuple(s.stack.trace_store.spans())
    )
    scanner = pii.PiiScanner(
        [*registry.canaries, *pii.baseline_values(s.profile.endpoints)], section.detectors
    )
    # telemetry.collector_config (local and container mode): what left the team's collector pipeline too.
    after: AfterTeamPipeline | None = getattr(s.stack, "team_pipeline", None)
    team = getattr(s.profile.sections.get("telemetry"), "collector_config", None)
    if after is None and team is not None:
        reason = (
            f"{s.stack.mode} mode does not run the team's collector pipeline (local and container mode do)"
        )
        after = AfterTeamPipeline(team.path, team.processors, reason=reason)
    # The receiver (local and container mode) holds the OTLP log records the service exported;
    # external mode keeps none.
    otlp_log_records = getattr(s.stack, "otlp_log_records", None)
    otlp_metric_points = getattr(s.stack, "otlp_metric_points", None)
    return PiiRun.scan(
        registry,
        channels,
        scanner,
        after,
        settle_timeout=s.profile.telemetry.timeout,
        log_records=otlp_log_records() if otlp_log_records is not None else (),
        metric_points=otlp_metric_points() if otlp_metric_points is not None else (),
    )


@pytest.mark.requirement("PII-001")
def test_no_canary_in_logs(
    pii_run: PiiRun, conformance_session: ConformanceSession, verdict: Verdict
) -> None:
    lines = _captured(pii_run.channels.log_lines)
    stream = conformance_session.profile.logs.stream
    other = "stderr" if stream == "stdout" else "stdout"
    if stream == OTLP_STREAM:
        stream, other = "stdout", "stderr"
    verdict.examined(
        lines=len(lines),
        # Only where the service exported any: external mode keeps no OTLP log records.
        **({"otlp_log_records": len(pii_run.log_records)} if pii_run.log_records else {}),
        none_because=f"the service wrote no log lines on {stream} (nor on {other}) and exported no OTLP log "
        "records, so there is nothing to search for the canaries",
        hint="check that the service logs each request, and logs.stream",
    )
    verdict.note(
        **pii_run.notes("logs"),
        lines_by_stream=dict(Counter(line.stream for line in lines)),
        injected=pii_run.registry.summary(),
    )
    findings = [
        finding
        for channel in ("logs", "log_records")
        for finding in pii.check_canary_leaks(
            pii_run.hits, channel, pii_run.registry, pipeline=pii_run.pipeline
        )
    ]
    records = f" and {len(pii_run.log_records)} OTLP log records" if pii_run.log_records else ""
    verdict.check(findings, what=f"{len(lines)} log lines{records}")


@pytest.mark.requirement("PII-002")
def test_no_canary_in_spans(pii_run: PiiRun, verdict: Verdict) -> None:
    # telemetry.spans: false makes PII-002 not applicable at load time (Profile.not_applicable).
    spans = pii_run.channels.spans
    verdict.examined(
        spans=len(spans),
        none_because="no spans to search; the service exports no spans",
        hint="point the service's OTLP exporter at OTEL_EXPORTER_OTLP_ENDPOINT, or declare telemetry.spans: "
        "false if it exports none by design (PII-002 is then not applicable)",
    )
    sent = {x.sent_trace_id for x in pii_run.registry.exchanges if x.sent_trace_id}
    arrived = {span.trace_id for span in spans} & sent
    if spans and not arrived:
        raise HarnessError(
            f"none of the {len(sent)} canary requests' traces reached the trace store "
            f"({pii_run.channels.waits.get('spans', '')}), so their spans cannot be searched"
        )
    verdict.note(**pii_run.notes("traces"), canary_traces_arrived=f"{len(arrived)}/{len(sent)}")
    findings = pii.check_canary_leaks(pii_run.hits, "traces", pii_run.registry, pipeline=pii_run.pipeline)
    verdict.check(findings, what=f"{len(spans)} spans")


@pytest.mark.requirement("PII-003")
def test_no_canary_in_metrics(
    conformance_session: ConformanceSession, pii_run: PiiRun, verdict: Verdict
) -> None:
    exposition = pii_run.channels.exposition
    hint = "see MET-001; metrics.path and metrics.port say where the exposition is"
    gap = conformance_session.otlp_metrics_gap()
    if not exposition.url and gap:  # metrics.source: otlp without the collector
        none_because = f"{gap}; and no metric point "
        hint = "see MET-001"
    elif not exposition.url:  # metrics.exposed: false
        none_because = "the profile declares no /metrics (metrics.exposed: false) and no metric point "
        hint = (
            "a service that pushes metrics over OTLP is searched here once its points arrive (its export "
            "interval, e.g. OTEL_METRIC_EXPORT_INTERVAL, must be shorter than the run); a service with no "
            "metrics at all declares PII-003 in requirements.not_applicable"
        )
    elif exposition.status_code == 0:  # metrics.source: otlp and the exporter had nothing (the reason)
        none_because = f"{exposition.parse_error}; and no point "
        hint = "see MET-001; metrics.push_timeout bounds the wait for the service's OTLP metrics"
    elif exposition.status_code != 200:
        none_because = f"{exposition.url} answered {exposition.status_code}: no exposition, and no point "
    else:
        none_because = (
            f"{exposition.url} answered 200 with no exposition line ({exposition.parse_error or 'empty'}) "
            "and no point "
        )
    verdict.examined(
        metric_families=len(exposition.families),
        exposition_lines=pii_run.exposition_lines,
        # Only where the service exported any over OTLP (local mode's receiver).
        **({"otlp_metric_points": len(pii_run.metric_points)} if pii_run.metric_points else {}),
        none_because=none_because + "arrived over OTLP: no metric to search",
        hint=hint,
    )
    verdict.note(
        **pii_run.notes("metrics"), exposition=exposition.url, parse_error=exposition.parse_error or None
    )
    findings = [
        finding
        for channel in ("metrics", "otlp_metrics")
        for finding in pii.check_canary_leaks(
            pii_run.hits, channel, pii_run.registry, pipeline=pii_run.pipeline
        )
    ]
    points = f" and {len(pii_run.metric_points)} OTLP metric attribute sets" if pii_run.metric_points else ""
    searched = f"the exposition at {exposition.url}" if exposition.url else "no exposition"
    verdict.check(findings, what=f"{searched}{points}")


@pytest.mark.requirement("PII-004")
def test_no_canary_in_prometheus(pii_run: PiiRun, verdict: Verdict) -> None:
    series = pii_run.channels.series
    labels = pii_run.channels.label_values
    verdict.examined(
        series=pii_run.service_series,
        none_because="Prometheus stored no sample of the service's own series after the canary requests "
        f"({len(series)} series of the job listed: its own up, scrape_* and alerts, or series no scrape "
        "since brought; a target down or a scrape Prometheus drops leaves them), so what it holds says "
        "nothing about the canaries",
        hint="see MET-001; prometheus.job names the service's scrape job",
    )
    verdict.note(
        **pii_run.notes("prometheus"),
        series_of_the_job=len(series),
        label_names=sorted(labels),
        label_values=sum(len(v) for v in labels.values()),
    )
    findings = pii.check_canary_leaks(pii_run.hits, "prometheus", pii_run.registry)
    verdict.check(findings, what="Prometheus series and label values")


def _examine_every_channel(pii_run: PiiRun, verdict: Verdict) -> str:
    """PII-005 and PII-006 search every channel: what each one had, and which had data."""
    channels = pii_run.channels
    counts = {
        "logs": ("log_lines", len(_captured(channels.log_lines))),
        "traces": ("spans", len(channels.spans)),
        "metrics": ("exposition_lines", pii_run.exposition_lines),
        "prometheus": ("series", pii_run.service_series),
    }
    if pii_run.log_records:
        counts["log_records"] = ("otlp_log_records", len(pii_run.log_records))
    if pii_run.metric_points:
        counts["otlp_metrics"] = ("otlp_metric_points", len(pii_run.metric_points))
    verdict.examined(
        **dict(counts.values()),
        none_because="no channel had anything to search: no log lines, no spans, no scrapeable exposition, "
        "no Prometheus series of the service's own",
        hint="check logs.stream, the OTLP exporter, metrics.path and prometheus.job",
    )
    with_data = [pii.CHANNELS[channel] for channel, (_, count) in counts.items() if count]
    verdict.note(
        channels_with_data=with_data,
        channels_without_data=[pii.CHANNELS[channel] for channel, (_, count) in counts.items() if not count],
    )
    return ", ".join(with_data) or "every channel"


@pytest.mark.requirement("PII-005")
def test_no_partial_or_encoded_canary(pii_run: PiiRun, verdict: Verdict) -> None:
    searched = _examine_every_channel(pii_run, verdict)
    verdict.note(**pii_run.notes())
    findings = pii.check_partial_leaks(pii_run.hits, pii_run.registry, pipeline=pii_run.pipeline)
    verdict.check(findings, what=searched)


@pytest.mark.requirement("PII-006")
def test_no_pii_nobody_sent(pii_run: PiiRun, section: PiiSection, verdict: Verdict) -> None:
    searched = _examine_every_channel(pii_run, verdict)
    detectors = section.detectors
    verdict.note(
        **pii_run.notes(),
        detectors=list(detectors.kinds),
        allowed=[p.pattern for p in detectors.allow],
        ignored_fields=sorted(detectors.ignore_fields),
    )
    verdict.check(pii.check_unknown_pii(pii_run.hits, pipeline=pii_run.pipeline), what=searched)


@pytest.mark.requirement("PII-007")
def test_redacted_fields_carry_markers(
    pii_run: PiiRun, section: PiiSection, conformance_session: ConformanceSession, verdict: Verdict
) -> None:
    profile = conformance_session.profile
    expected = {ep.name: ep.expect_status for ep in profile.endpoints}
    rules = section.redacted_fields
    verdict.examined(
        redaction_rules=len(rules),
        canary_requests=sum(len(pii.handled_requests(pii_run.registry, r.endpoint, expected)) for r in rules),
        none_because="the profile declares no pii.redacted_fields, so there is no redaction to look for",
        hint="declare the fields the service logs redacted, or list PII-007 in requirements.not_applicable",
    )
    verdict.note(
        **pii_run.notes("logs"),
        rules=[f"{r.endpoint}: {r.message}.{r.field} has {', '.join(r.markers)}" for r in rules],
    )
    parsed = parse_log_lines(pii_run.channels.log_lines, profile.logs)
    findings = pii.check_redaction_present(
        pii_run.registry,
        parsed,
        rules,
        correlation_header=profile.correlation_header,
        expected_statuses=expected,
    )
    verdict.check(findings, what="the declared redacted fields")
