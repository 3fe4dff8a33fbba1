"""SEM-001…SEM-005: the OpenTelemetry HTTP semantic conventions (see conformance.checks.semconv).

No probe of its own: the span requirements judge every HTTP SERVER span the
run's traffic left in the trace store (baseline, the other suites' probes,
live-fire's 5xx), read once all planned traffic has ended and the store has
stopped growing; SEM-004 reads the HTTP duration metric names Prometheus holds
(the service's ``/metrics`` and, through the collector, its OTLP metrics) and
the metric names the harness's receiver got over OTLP.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from conformance._exceptions import ConformanceError, WaitTimeout
from conformance._model import Finding
from conformance._session import ConformanceSession
from conformance._wait import wait_until
from conformance.checks import semconv
from conformance.plugin import Verdict
from conformance.stack._telemetry import COLLECTOR_JOB, AfterTeamPipeline
from conformance.telemetry import Span

#: Seconds the span count must stay unchanged before the store counts as settled.
_QUIET = 0.5


@pytest.fixture(scope="module")
def spans(conformance_session: ConformanceSession) -> list[Span]:
    """Every span of the run once the traffic is over (none when the service exports none)."""
    s = conformance_session
    s.after_all_traffic()
    found = s.server_spans()
    if not found:
        return []
    store = s.stack.trace_store
    last: dict[str, float] = {"count": len(found), "since": 0.0}

    def settled() -> tuple[list[Span] | None, str]:
        nonlocal found
        found = store.spans()
        now = time.monotonic()
        if len(found) != last["count"] or not last["since"]:
            last.update(count=len(found), since=now)
            return None, f"{len(found)} span(s), still arriving"
        return (found if now - last["since"] >= _QUIET else None), f"{len(found)} span(s)"

    try:
        return wait_until(
            settled, awaited="the trace store to stop growing", timeout=s.profile.telemetry.timeout
        )
    except WaitTimeout:
        return found


@dataclass(frozen=True)
class _AfterPipeline:
    """The spans as the service sent them (the harness's raw receiver) and as they left the
    team's collector pipeline (``telemetry.collector_config``), or why they are not compared."""

    note: dict[str, Any]
    sent: Sequence[Span] = ()
    after: Sequence[Span] = ()
    pipeline: str = ""


@pytest.fixture(scope="module")
def after_pipeline(conformance_session: ConformanceSession, spans: list[Span]) -> _AfterPipeline | None:
    """``None`` without a team pipeline; otherwise what SEM-001/002/003/005 compare."""
    s = conformance_session
    after: AfterTeamPipeline | None = getattr(s.stack, "team_pipeline", None)
    if after is None:
        return None
    note: dict[str, Any] = {"config": str(after.config_file)}
    if why := after.not_compared("traces"):
        return _AfterPipeline({**note, "not_checked": why})
    note["wait"] = after.settle(s.profile.telemetry.timeout)
    # The raw copy the harness's receiver keeps (local and container mode), not the trace store's.
    return _AfterPipeline(note, s.stack.sent_spans(), after.spans(), after.described("traces"))


def _after_team_pipeline(
    verdict: Verdict, after: _AfterPipeline | None, check: Callable[[Sequence[Span]], list[Finding]]
) -> list[Finding]:
    """``check`` on the spans after the team's pipeline: what the pipeline breaks (see
    semconv.check_after_pipeline); the counts go to the evidence either way."""
    if after is None:
        return []
    if not after.pipeline:
        verdict.note(after_pipeline=after.note)
        return []
    findings, counts = semconv.check_after_pipeline(check, after.sent, after.after, pipeline=after.pipeline)
    verdict.note(after_pipeline={**after.note, "spans_after": len(after.after), **counts})
    return findings


def _http_spans(
    verdict: Verdict, session: ConformanceSession, spans: list[Span], *, counted: bool = True
) -> list[Span]:
    """The HTTP SERVER spans; raises NoEvidence (an error with the reason) when there are none.
    ``counted``: they are what the verdict rests on (else the caller records what it judged)."""
    if not spans:
        verdict.examined(
            spans=0,
            none_because=session.no_spans_reason() if not session.spans_exported() else
            f"no span in {session.stack.trace_store.describe()}",
            hint="if the service exports no spans by design, declare telemetry.spans: false",
        )  # fmt: skip
        verdict.require_evidence()
    http = semconv.http_server_spans(spans)
    verdict.note(store=session.stack.trace_store.describe(), spans=len(spans), http_server_spans=len(http),
                 semantic_conventions=semconv.SEMCONV_VERSION)  # fmt: skip
    if not http:
        verdict.examined(
            http_server_spans=0,
            none_because=f"none of the {len(spans)} span(s) is an HTTP SERVER span (kind SERVER with an "
            "http.*/url.* attribute)",
            hint="instrument the HTTP server with OpenTelemetry (its SERVER spans carry http.request.method)",
        )
        verdict.require_evidence()
    if counted:
        verdict.examined(http_server_spans=len(http))
    return http


@pytest.mark.requirement("SEM-001")
def test_server_spans_have_stable_attributes(
    conformance_session: ConformanceSession,
    spans: list[Span],
    after_pipeline: _AfterPipeline | None,
    verdict: Verdict,
) -> None:
    http = _http_spans(verdict, conformance_session, spans)
    findings = semconv.check_stable_attributes(http)
    findings += _after_team_pipeline(verdict, after_pipeline, semconv.check_stable_attributes)
    verdict.check(findings, what=f"{len(http)} HTTP SERVER spans")


@pytest.mark.requirement("SEM-002")
def test_server_span_names(
    conformance_session: ConformanceSession,
    spans: list[Span],
    after_pipeline: _AfterPipeline | None,
    verdict: Verdict,
) -> None:
    http = _http_spans(verdict, conformance_session, spans, counted=False)
    templates = [ep.path for ep in conformance_session.profile.endpoints]
    findings, examined = semconv.check_span_names(http, templates)
    findings += _after_team_pipeline(
        verdict, after_pipeline, lambda judged: semconv.check_span_names(judged, templates)[0]
    )
    verdict.examined(
        spans_with_a_method=examined,
        none_because=f"none of the {len(http)} HTTP SERVER span(s) records its request method "
        "(http.request.method, http.method) or starts its name with one",
        hint="instrument the HTTP server with OpenTelemetry (its SERVER spans carry http.request.method)",
    )
    verdict.check(findings, what=f"{examined} HTTP SERVER spans")


@pytest.mark.requirement("SEM-003")
def test_server_span_status(
    conformance_session: ConformanceSession,
    spans: list[Span],
    after_pipeline: _AfterPipeline | None,
    verdict: Verdict,
) -> None:
    http = _http_spans(verdict, conformance_session, spans, counted=False)
    findings, examined = semconv.check_span_status(http)
    findings += _after_team_pipeline(
        verdict, after_pipeline, lambda judged: semconv.check_span_status(judged)[0]
    )
    verdict.examined(
        spans_answered_4xx_or_5xx=examined,
        none_because=f"none of the {len(http)} HTTP SERVER span(s) records a 4xx or 5xx answer "
        "(http.response.status_code or http.status_code)",
        hint="the run's probes give the 4xx and 5xx (the cardinality probe's unknown paths, PII canaries in "
        "path parameters, rate-limit bursts, alert live-fire): a run of this suite alone, a service that "
        "answers them all 2xx, or one that records no status code leaves nothing to judge",
    )
    verdict.check(findings, what=f"{examined} SERVER spans of 4xx/5xx answers")


def _prometheus_names(session: ConformanceSession) -> tuple[dict[str, set[str]], str]:
    """Series names ``http_server_*`` → the jobs exposing them, and what went wrong reading them.

    Only the service's jobs count: its ``/metrics`` and the collector's exporter of its
    OTLP metrics (the collector's own telemetry has HTTP server metrics of its own)."""
    jobs = {session.profile.prometheus.job, COLLECTOR_JOB, f"{COLLECTOR_JOB}-exporter"}
    try:
        series = session.prometheus.series(['{__name__=~"http_server_.+"}'])
    except ConformanceError as exc:
        return {}, str(exc)
    names: dict[str, set[str]] = {}
    for labels in series:
        if labels.get("job", "") in jobs:
            names.setdefault(labels.get("__name__", ""), set()).add(labels.get("job", ""))
    return names, ""


def _otlp_metric_names(session: ConformanceSession) -> list[str]:
    """Metric names the harness's own receiver got over OTLP (local mode; the
    other stacks' receivers keep no metric names the suites can read)."""
    receiver = getattr(session.stack, "receiver", None)
    names = getattr(receiver, "metric_names", None)
    return list(names()) if callable(names) else []


@pytest.mark.requirement("SEM-004")
def test_server_duration_metric(conformance_session: ConformanceSession, verdict: Verdict) -> None:
    s = conformance_session
    s.after_all_traffic()
    prometheus, problem = _prometheus_names(s)
    otlp = _otlp_metric_names(s)
    shown: Mapping[str, list[str]] = {name: sorted(jobs) for name, jobs in sorted(prometheus.items())}
    verdict.note(prometheus_http_server_series=shown, otlp_metrics=len(otlp),
                 semantic_conventions=semconv.SEMCONV_VERSION,
                 **({"prometheus_problem": problem} if problem else {}))  # fmt: skip
    findings, examined = semconv.check_server_duration_metric(prometheus, otlp)
    verdict.examined(
        duration_metrics=examined,
        none_because="the service makes no claim to OpenTelemetry's HTTP metrics: Prometheus holds no "
        "http_server_request_duration* or http_server_duration* series and no metric arrived over OTLP"
        + (f" (Prometheus: {problem})" if problem else ""),
        hint="export http.server.request.duration (an OpenTelemetry HTTP server instrumentation with a "
        "MeterProvider), or declare SEM-004 in requirements.not_applicable when the service's HTTP metrics "
        "follow another convention (MET-* judge them)",
    )
    verdict.check(findings, what=f"{examined} HTTP duration metric(s)")


@pytest.mark.requirement("SEM-005")
def test_server_span_attribute_values(
    conformance_session: ConformanceSession,
    spans: list[Span],
    after_pipeline: _AfterPipeline | None,
    verdict: Verdict,
) -> None:
    http = _http_spans(verdict, conformance_session, spans, counted=False)
    findings, examined = semconv.check_attribute_values(http)
    findings += _after_team_pipeline(
        verdict, after_pipeline, lambda judged: semconv.check_attribute_values(judged)[0]
    )
    verdict.examined(
        spans_with_stable_attributes=examined,
        none_because=f"none of the {len(http)} HTTP SERVER span(s) carries http.request.method or "
        "http.response.status_code (only deprecated names: see SEM-001)",
        hint="set OTEL_SEMCONV_STABILITY_OPT_IN=http, or upgrade the HTTP instrumentation",
    )
    verdict.check(findings, what=f"{examined} HTTP SERVER spans with the stable attributes")
