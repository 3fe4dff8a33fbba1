"""TRC-002…TRC-012: trace context and correlation ids across headers, spans and logs
(see conformance.checks.traces; TRC-001 is in test_exports).

One batch of probe requests serves every test but TRC-009: per endpoint, one
request with a fresh traceparent/tracestate and one without but with a
correlation id; every W3C vector of ``w3c_trace_context_vectors.yaml``; the
malformed correlation ids. They are three probes of the run's plan
(conformance._plan: the malformed ids, the vectors, the ordinary requests,
each sent alone), each HTTP client carrying at most
``traces.requests_per_client`` of them; a fourth probe joins them to the
spans and log lines they produced while the run's other probes go on.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from conformance._exceptions import HarnessError
from conformance._plan import ProbeContext, implements
from conformance._profile import Endpoint
from conformance._sections.traces import KEY, TracesSection
from conformance._session import ConformanceSession
from conformance.checks import traces
from conformance.checks.logs import ParsedLogLine, parse_log_lines
from conformance.checks.traces import Expectation, Observed, SpanSource
from conformance.collect._propagation import (
    CORRELATION,
    MALFORMED_CORRELATION_IDS,
    ProbeRequest,
    fill_placeholders,
    fresh_ids,
    send_probes,
    wait_for_probe_logs,
    wait_for_probe_spans,
)
from conformance.collect._traffic import new_traceparent
from conformance.plugin import Verdict
from conformance.telemetry import HttpExchange

VECTORS = Path(__file__).with_name("w3c_trace_context_vectors.yaml")
W3C = "w3c "


@dataclass(frozen=True)
class TraceProbes:
    """What the probe batch showed: every request joined to its telemetry, by name.

    ``spans`` is False when the service exports no spans (declared, or seen
    once per run); the propagation requirements are then decided from ``lines``.
    """

    observed: dict[str, Observed]
    expected: dict[str, Expectation]
    malformed: list[tuple[str, Observed]]
    source: SpanSource
    spans: bool
    no_spans_reason: str
    lines: list[ParsedLogLine]

    def cases(self, *, vectors_only: bool = False) -> list[tuple[Expectation, Observed]]:
        return [
            (e, self.observed[n]) for n, e in self.expected.items() if not vectors_only or n.startswith(W3C)
        ]

    def endpoint_requests(self) -> list[Observed]:
        """The two requests per profile endpoint (traced or not)."""
        return [o for n, o in self.observed.items() if not n.startswith((W3C, CORRELATION))]


def _section(session: ConformanceSession) -> tuple[TracesSection, Endpoint]:
    section: TracesSection = session.profile.section(KEY)
    if section.probe_endpoint is None:
        raise HarnessError(
            "no endpoint to send trace-context probes to: the profile has no traced GET endpoint",
            hint="name one in traces.probe_endpoint",
        )
    return section, section.probe_endpoint


Batches = list[tuple[httpx.Client, Sequence[ProbeRequest]]]


def _clients(
    session: ConformanceSession, purpose: str, probes: Sequence[ProbeRequest], per_client: int
) -> Batches:
    return [
        (session.client(f"{purpose}-{i // per_client}"), probes[i : i + per_client])
        for i in range(0, len(probes), per_client)
    ]


def _parsed(session: ConformanceSession) -> list[ParsedLogLine]:
    return parse_log_lines(session.log_lines(), session.profile.logs)


def _ids_of(traceparent: str) -> tuple[str, str]:
    _, trace_id, parent_id, _ = traceparent.split("-")
    return trace_id, parent_id


def _probe_plan(
    session: ConformanceSession, section: TracesSection, probe: Endpoint
) -> tuple[list[ProbeRequest], dict[str, Expectation], dict[str, str]]:
    """The requests to send, the trace expectation of each, and supplied correlation ids."""
    header = session.profile.correlation_header
    requests: list[ProbeRequest] = []
    expected: dict[str, Expectation] = {}
    supplied: dict[str, str] = {}
    for ep in session.profile.endpoints:
        context = new_traceparent(section.tracestate)
        trace_id, parent_id = _ids_of(context["traceparent"])
        name = f"{ep.method} {ep.path} with traceparent"
        requests.append(ProbeRequest(name, ep, tuple(context.items())))
        if ep.traced:
            expected[name] = Expectation(name, "continue", trace_id, parent_id, includes=section.tracestate)
        name = f"{ep.method} {ep.path} without traceparent"
        supplied[name] = str(uuid.uuid4())
        requests.append(ProbeRequest(name, ep, ((header, supplied[name]),)))
        if ep.traced:
            expected[name] = Expectation(name, "new")
    for vector in traces.load_vectors(yaml.safe_load(VECTORS.read_text(encoding="utf-8"))):
        ids = fresh_ids()
        headers = fill_placeholders(vector.headers, ids)
        name = W3C + vector.name
        requests.append(ProbeRequest(name, probe, headers, raw=True, ids=ids))
        expected[name] = traces.vector_expectation(vector, ids, headers)
    for what, value in MALFORMED_CORRELATION_IDS:  # sent by the session, alone each (LOG-009)
        supplied[CORRELATION + what] = value
    return requests, expected, supplied


@dataclass(frozen=True)
class _Plan:
    requests: list[ProbeRequest]
    expected: dict[str, Expectation]
    supplied: dict[str, str]


@implements("trace-vectors")
def _send_vectors(s: ConformanceSession, _: ProbeContext) -> tuple[_Plan, dict[str, HttpExchange]]:
    """The trace probes' plan; the W3C vectors sent together, so that what the service logs in
    answer to them is attributed to them (LOG-009) and kept out of the verdicts on normal traffic."""
    s.require_running()
    section, probe = _section(s)
    plan = _Plan(*_probe_plan(s, section, probe))
    vectors = [r for r in plan.requests if r.name.startswith(W3C)]
    with s.provoking("the W3C trace-context vectors (invalid traceparent/tracestate values)"):
        exchanges = send_probes(
            _clients(s, "traces-w3c", vectors, section.requests_per_client), concurrency=section.concurrency
        )
    return plan, exchanges


@implements("trace-requests")
def _send_requests(s: ConformanceSession, _: ProbeContext) -> dict[str, HttpExchange]:
    """Every endpoint with and without a traceparent (the malformed correlation ids are the
    session's, each sent alone once per run)."""
    plan, _vectors = s.probe("trace-vectors")
    section, _probe = _section(s)
    ordinary = [r for r in plan.requests if not r.name.startswith(W3C)]
    return send_probes(
        _clients(s, "traces", ordinary, section.requests_per_client), concurrency=section.concurrency
    )


@pytest.fixture(scope="module")
def probes(conformance_session: ConformanceSession) -> TraceProbes:
    result: TraceProbes = conformance_session.probe("trace-observe")
    return result


@implements("trace-observe")
def _observe(s: ConformanceSession, _: ProbeContext) -> TraceProbes:
    header, timeout = s.profile.correlation_header, s.profile.telemetry.timeout
    plan, vectors = s.probe("trace-vectors")
    exchanges = s.probe("trace-requests") | vectors | dict(s.malformed_probes())
    expected, supplied = plan.expected, plan.supplied
    spans_exported = s.spans_exported()
    store = s.stack.trace_store
    awaited = {
        name: x for name, x in exchanges.items()
        if x.status_code is not None and x.endpoint in s.traced_endpoints
        and (x.status_code < 400 or x.response_header(header) is not None)
    }  # fmt: skip
    continued = {n: (e.trace_id, e.parent_id) for n, e in expected.items() if e.trace == "continue"}
    suspects = {n: _trace_ids_in(e.sent) for n, e in expected.items() if e.trace == "restart"}
    claimed = {tid for e in expected.values() for tid in _trace_ids_in(e.sent)} | {
        x.sent_trace_id for x in exchanges.values() if x.sent_trace_id
    }
    spans = (
        wait_for_probe_spans(store, awaited, timeout=timeout, continued=continued) if spans_exported else []
    )

    def observe(lines: Sequence[ParsedLogLine]) -> dict[str, Observed]:
        shared = traces.shared_correlation_ids(lines, s.profile.logs.request_completed_message)
        return {
            name: traces.observe(name, x, spans, lines, correlation_header=header,
                                 continued=continued.get(name), supplied_correlation_id=supplied.get(name),
                                 suspects=suspects.get(name, ()), claimed=claimed,
                                 route=s.templates.get(x.path, x.path), shared=shared)
            for name, x in exchanges.items()
        }  # fmt: skip

    first = observe([])
    keys = {
        name: [x.response_header(header) or "", supplied.get(name, ""),
               o.server.trace_id if o.server else continued.get(name, ("", ""))[0]]
        for name, (x, o) in ((n, (exchanges[n], first[n])) for n in awaited)
    }  # fmt: skip
    wait_for_probe_logs(
        lambda: [p.record for p in _parsed(s) if p.record is not None], keys,
        completed_message=s.profile.logs.request_completed_message, timeout=timeout,
    )  # fmt: skip
    lines = _parsed(s)
    observed = observe(lines)
    source = SpanSource(
        store=store.describe(),
        exporter=f"the service's OTLP {s.profile.telemetry.otlp_protocol} exporter",
        waited=timeout,
    )
    malformed = [(n.removeprefix(CORRELATION), o) for n, o in observed.items() if n.startswith(CORRELATION)]
    reason = "" if spans_exported else s.no_spans_reason()
    return TraceProbes(observed, expected, malformed, source, spans_exported, reason, lines)


def _trace_ids_in(values: Sequence[str]) -> frozenset[str]:
    """Every 32-hex run in the header values sent: the trace ids a probe offered."""
    return frozenset(
        m.lower() for v in values for m in re.findall(r"(?<![0-9a-fA-F])[0-9a-fA-F]{32}(?![0-9a-fA-F])", v)
    )


def _no_spans(verdict: Verdict, probes: TraceProbes) -> None:
    """A span-only requirement on a service that exports no spans: nothing to examine."""
    verdict.examined(
        spans=0,
        none_because=f"{probes.no_spans_reason}; this requirement is about spans alone",
        hint="if the service exports no spans by design, declare telemetry.spans: false",
    )
    verdict.require_evidence()


def _located(
    verdict: Verdict, probes: TraceProbes, cases: Sequence[tuple[Expectation, Observed]], what: str
) -> list[tuple[Expectation, Observed]]:
    """The cases whose SERVER span was found; the others are not examined (a span
    that was never exported is TRC-001's finding, not this requirement's)."""
    located = [(e, o) for e, o in cases if o.server is not None]
    lost = [o.name for _, o in cases if o.server is None]
    if lost:
        verdict.note(spans_not_located=len(lost), examples=lost[:5])
    verdict.examined(
        **{what: len(located)},
        none_because=f"the SERVER span of none of these {len(cases)} requests could be located in "
        f"{probes.source.store} (looked for the User-Agent the harness sent in user_agent.original or "
        "http.user_agent, the sent trace id, and the trace id in the request's log lines)",
        hint="record the User-Agent on SERVER spans (OpenTelemetry HTTP semantic conventions), or log "
        "the trace id with a correlation id",
    )
    return located


def _from_logs(verdict: Verdict, probes: TraceProbes, examined: int, what: str) -> None:
    verdict.note(decided_from=f"the trace ids in the log lines ({probes.no_spans_reason})")
    verdict.examined(
        **{what: examined},
        none_because=f"{probes.no_spans_reason}, and no log line of these requests carries a trace id",
        hint="log trace_id/span_id on every line (logs.fields maps their names), or export spans",
    )


def _note_cases(verdict: Verdict, cases: Sequence[tuple[Expectation, Observed]]) -> None:
    verdict.note(cases=[traces.describe_case(e, o) for e, o in cases])


@pytest.mark.requirement("TRC-002")
def test_incoming_traceparent_is_continued(probes: TraceProbes, verdict: Verdict) -> None:
    cases = [(e, o) for e, o in probes.cases() if e.trace == "continue"]
    _note_cases(verdict, cases)
    if not probes.spans:
        findings, examined = traces.check_trace_continued_in_logs(cases)
        _from_logs(verdict, probes, examined, "requests")
        verdict.check(findings, what=f"{examined} requests' log lines")
        return
    cases = _located(verdict, probes, cases, "requests")
    verdict.check(traces.check_trace_continued(cases, probes.source), what=f"{len(cases)} requests")


@pytest.mark.requirement("TRC-003")
def test_tracestate_is_kept(probes: TraceProbes, verdict: Verdict) -> None:
    if not probes.spans:
        _no_spans(verdict, probes)
    cases = [(e, o) for e, o in probes.cases() if e.includes]
    _note_cases(verdict, cases)
    cases = _located(verdict, probes, cases, "requests")
    verdict.check(traces.check_tracestate_kept(cases, probes.source), what=f"{len(cases)} requests")


@pytest.mark.requirement("TRC-004")
def test_log_lines_carry_the_span_ids(
    probes: TraceProbes, verdict: Verdict, conformance_session: ConformanceSession
) -> None:
    s = conformance_session
    observed = [o for o in probes.endpoint_requests() if o.exchange.endpoint in s.traced_endpoints]
    verdict.note(
        requests=[{"request": o.name, "log_lines": len(o.lines), "joined_by": o.lines_by} for o in observed]
    )
    if not probes.spans:
        found, examined = traces.check_log_join_in_logs(observed)
        _from_logs(verdict, probes, examined, "requests")
        verdict.check(found, what=f"{examined} requests' log lines")
        return
    # A request that wrote no line, or whose span was not found, has nothing to judge here.
    lost = [o.name for o in observed if o.server is None or not o.lines]
    observed = [o for o in observed if o.server is not None and o.lines]
    if lost:
        verdict.note(not_examined=len(lost), examples=lost[:5], why="no log line of the request found, "
                     "or its SERVER span not located")  # fmt: skip
    verdict.examined(
        requests=len(observed),
        log_lines=sum(len(o.lines) for o in observed),
        none_because="no request had both a located SERVER span and log lines joined to it (by "
        "correlation id or trace id)",
        hint="log a correlation id or the trace id on each request's lines (logs.fields maps the names)",
    )
    findings = traces.check_log_join(
        observed, probes.source, correlation_header=s.profile.correlation_header,
        completed_message=s.profile.logs.request_completed_message,
    )  # fmt: skip
    verdict.check(findings, what=f"{len(observed)} requests")


@pytest.mark.requirement("TRC-005")
def test_correlation_header_matches_the_logs(
    probes: TraceProbes, verdict: Verdict, conformance_session: ConformanceSession
) -> None:
    s = conformance_session
    observed = probes.endpoint_requests()
    header = s.profile.correlation_header
    verdict.note(header=header)
    verdict.examined(requests=len(observed))
    verdict.check(
        traces.check_correlation_join(observed, correlation_header=header), what=f"{len(observed)} requests"
    )


@pytest.mark.requirement("TRC-006")
def test_correlation_id_is_generated(
    probes: TraceProbes, verdict: Verdict, conformance_session: ConformanceSession
) -> None:
    s = conformance_session
    fmt = s.profile.section(KEY).correlation_id_format
    observed = [o for o in probes.endpoint_requests() if o.supplied_correlation_id is None]
    verdict.note(header=s.profile.correlation_header, format=fmt)
    verdict.examined(requests=len(observed))
    findings = traces.check_correlation_generated(
        observed, correlation_header=s.profile.correlation_header, fmt=fmt
    )
    verdict.check(findings, what=f"{len(observed)} requests without a correlation id")


@pytest.mark.requirement("TRC-007")
def test_supplied_correlation_id_is_kept(
    probes: TraceProbes, verdict: Verdict, conformance_session: ConformanceSession
) -> None:
    s = conformance_session
    observed = [o for o in probes.endpoint_requests() if o.supplied_correlation_id is not None]
    verdict.note(header=s.profile.correlation_header)
    verdict.examined(requests=len(observed))
    findings = traces.check_correlation_echoed(observed, correlation_header=s.profile.correlation_header)
    verdict.check(findings, what=f"{len(observed)} requests with a correlation id")


@pytest.mark.requirement("TRC-008")
def test_malformed_correlation_id_is_replaced(
    probes: TraceProbes, verdict: Verdict, conformance_session: ConformanceSession
) -> None:
    s = conformance_session
    header = s.profile.correlation_header
    verdict.note(cases=[{"sent": what, "status": o.exchange.status_code,
                         "id_read_from": traces.assigned_correlation_id(o, header)[1] or "none"}
                        for what, o in probes.malformed])  # fmt: skip
    verdict.examined(
        probes=sum(1 for _, o in probes.malformed if o.exchange.status_code is not None),
        none_because=f"none of the {len(probes.malformed)} malformed correlation-id probes was answered",
    )
    findings = traces.check_correlation_replaced(probes.malformed, correlation_header=header)
    verdict.check(findings, what=f"{len(probes.malformed)} malformed correlation ids")


@pytest.mark.requirement("TRC-010")
def test_request_without_traceparent_starts_a_trace(probes: TraceProbes, verdict: Verdict) -> None:
    cases = [(e, o) for e, o in probes.cases() if e.trace == "new"]
    _note_cases(verdict, cases)
    if not probes.spans:
        findings, examined = traces.check_new_traces_in_logs(cases)
        _from_logs(verdict, probes, examined, "requests")
        verdict.check(findings, what=f"{examined} requests' log lines")
        return
    cases = _located(verdict, probes, cases, "requests")
    verdict.check(traces.check_new_traces(cases, probes.source), what=f"{len(cases)} requests")


@pytest.mark.requirement("TRC-011")
def test_invalid_traceparent_restarts_the_trace(probes: TraceProbes, verdict: Verdict) -> None:
    cases = [(e, o) for e, o in probes.cases(vectors_only=True) if e.trace == "restart"]
    _note_cases(verdict, cases)
    if not probes.spans:
        findings, examined = traces.check_restarted_in_logs(cases, probes.lines)
        _from_logs(verdict, probes, examined, "w3c_cases")
        verdict.check(findings, what=f"{examined} W3C cases against the logged trace ids")
        return
    cases = _located(verdict, probes, cases, "w3c_cases")
    verdict.check(traces.check_restarted(cases, probes.source), what=f"{len(cases)} W3C cases")


@pytest.mark.requirement("TRC-012")
def test_invalid_tracestate_is_discarded(probes: TraceProbes, verdict: Verdict) -> None:
    if not probes.spans:
        _no_spans(verdict, probes)
    cases = [(e, o) for e, o in probes.cases(vectors_only=True) if e.excludes]
    _note_cases(verdict, cases)
    cases = _located(verdict, probes, cases, "w3c_cases")
    verdict.check(traces.check_tracestate_discarded(cases, probes.source), what=f"{len(cases)} W3C cases")


def _unique_ids(
    session: ConformanceSession, exchanges: Mapping[str, HttpExchange], sent: Mapping[str, str]
) -> tuple[list[str], str]:
    """The correlation ids of the answered requests: their response headers or,
    when no response carries one, their request_completed records (by trace id)."""
    header = session.profile.correlation_header
    ids = [v for x in exchanges.values() if (v := x.response_header(header)) is not None]
    if ids:
        return ids, f"{header} response headers"
    answered = {n: [sent[n]] for n, x in exchanges.items() if x.status_code is not None}
    completed = session.profile.logs.request_completed_message
    records: list[Mapping[str, Any]] = wait_for_probe_logs(
        lambda: [p.record for p in _parsed(session) if p.record is not None], answered,
        completed_message=completed, timeout=session.profile.telemetry.timeout,
    )  # fmt: skip
    wanted = set(sent.values())
    ids = [
        str(r["correlation_id"]) for r in records
        if r.get("message") == session.profile.logs.request_completed_message and r.get("correlation_id")
        and traces.trace_hex(r.get("trace_id", "")) in wanted
    ]  # fmt: skip
    return ids, "request_completed log lines (no response carried the header)"


@implements("trace-uniqueness")
def _uniqueness_requests(
    s: ConformanceSession, _: ProbeContext
) -> tuple[dict[str, HttpExchange], dict[str, str], float]:
    """traces.uniqueness_requests requests, each with a fresh traceparent: (exchanges, sent trace
    ids, seconds)."""
    section, probe = _section(s)
    requests, sent = [], {}
    for i in range(section.uniqueness_requests):
        context = new_traceparent()
        sent[f"unique {i}"] = _ids_of(context["traceparent"])[0]
        requests.append(ProbeRequest(f"unique {i}", probe, tuple(context.items())))
    started = time.monotonic()
    exchanges = send_probes(
        _clients(s, "traces-unique", requests, section.requests_per_client),
        concurrency=section.concurrency, deadline=started + section.uniqueness_timeout,
    )  # fmt: skip
    return exchanges, sent, time.monotonic() - started


@pytest.mark.requirement("TRC-009")
def test_generated_correlation_ids_are_unique(
    conformance_session: ConformanceSession, verdict: Verdict
) -> None:
    s = conformance_session
    section, probe = _section(s)
    exchanges, sent, elapsed = s.probe("trace-uniqueness")
    answered = sum(1 for x in exchanges.values() if x.status_code is not None)
    if answered < max(10, section.uniqueness_requests // 10):
        raise HarnessError(
            f"the uniqueness probe got {answered} answers from {len(exchanges)} requests sent to "
            f"{probe.method} {probe.path} in {elapsed:.1f}s",
            hint="raise traces.uniqueness_timeout or choose a cheaper traces.probe_endpoint",
        )
    ids, where = _unique_ids(s, exchanges, sent)
    if not ids:
        raise HarnessError(f"none of {answered} answers carried a correlation id, in headers or logs")
    verdict.examined(correlation_ids=len(ids))
    verdict.note(endpoint=f"{probe.method} {probe.path}", requested=section.uniqueness_requests,
                 sent=len(exchanges), answered=answered, ids=len(ids), distinct=len(set(ids)),
                 seconds=round(elapsed, 2), read_from=where)  # fmt: skip
    verdict.check(
        traces.check_correlation_unique(ids, answered=answered, where=where), what=f"{len(ids)} ids"
    )


@pytest.mark.requirement("TRC-013")
def test_excluded_endpoints_are_not_traced(
    probes: TraceProbes, verdict: Verdict, conformance_session: ConformanceSession
) -> None:
    s = conformance_session
    excluded = [ep.name for ep in s.profile.endpoints if not ep.traced]
    if not excluded:
        raise HarnessError(
            "the profile excludes no endpoint from tracing (traced: false), so there is nothing to check",
            hint="mark the endpoints the service does not trace with traced: false, or declare TRC-013 "
            "in requirements.not_applicable",
        )
    if not probes.spans:
        _no_spans(verdict, probes)
    observed = [o for o in probes.endpoint_requests() if o.exchange.endpoint in excluded]
    verdict.note(excluded=excluded, spans_read_after_quiet_period=True)
    verdict.examined(requests=len(observed))
    verdict.check(traces.check_untraced(observed, probes.source), what=f"{len(observed)} requests")
