"""TRC-002…TRC-012: trace context and correlation ids, joined across headers, spans and logs.

Pure: each probe request the harness sent (an :class:`HttpExchange`), the
spans in the trace store and the parsed log lines go in; the join
(:func:`observe`) finds the request's SERVER span and its log lines, and the
checks judge what the service did with the ``traceparent``, ``tracestate`` and
correlation header it was sent. TRC-001 (spans exported at all) is in
``conformance.checks.exports``.

How a request is joined to its telemetry:

* its SERVER span is the one carrying the request's unique ``User-Agent``
  marker (so a span is found even when the service ignored the trace context);
  failing that, the span in the sent trace with the sent parent; failing that,
  the span of the trace its log lines name;
* its log lines are those whose ``correlation_id`` is the response's
  correlation header (or the id the harness supplied), together with those
  whose trace id is the span's trace id. Trace ids in logs are compared as
  bare lowercase hex: their exact format is LOG-006's business.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conformance._mask import excerpt
from conformance._model import Finding, Level
from conformance._requirements import requirement
from conformance.checks.exports import route_key, span_route
from conformance.checks.logs import ParsedLogLine
from conformance.collect._propagation import MARKER_ATTRIBUTES, marker_of
from conformance.collect._traces import server_span
from conformance.telemetry import HttpExchange, Span, trace_hex

__all__ = [
    "TRC_002",
    "TRC_003",
    "TRC_004",
    "TRC_005",
    "TRC_006",
    "TRC_007",
    "TRC_008",
    "TRC_009",
    "TRC_010",
    "TRC_011",
    "TRC_012",
    "TRC_013",
    "Expectation",
    "Observed",
    "SpanSource",
    "W3CVector",
    "assigned_correlation_id",
    "check_correlation_echoed",
    "check_correlation_generated",
    "check_correlation_join",
    "check_correlation_replaced",
    "check_correlation_unique",
    "check_log_join",
    "check_log_join_in_logs",
    "check_new_traces",
    "check_new_traces_in_logs",
    "check_restarted",
    "check_restarted_in_logs",
    "check_trace_continued",
    "check_trace_continued_in_logs",
    "check_tracestate_discarded",
    "check_tracestate_kept",
    "check_untraced",
    "describe_case",
    "load_vectors",
    "logged_trace_ids",
    "observe",
    "trace_hex",
    "tracestate_members",
    "vector_expectation",
]

TRC_002 = requirement(
    "TRC-002", Level.MUST,
    "A valid incoming traceparent is continued: the SERVER span has its trace id and its parent-id as parent",
    source="W3C Trace Context 'traceparent Header' and 'Mutating the traceparent Field' (update parent-id); "
    "seed 000 §Distributed Tracing 'Trace Context Headers: traceparent'; "
    "seed 001 'End-to-end trace propagation'",
)  # fmt: skip
TRC_003 = requirement(
    "TRC-003", Level.MUST, "The tracestate sent with a valid traceparent is kept on the SERVER span",
    source="W3C Trace Context 'Tracestate Header' (several tracestate fields MUST be combined) and "
    "'Mutating the tracestate Field'; seed 000 'tracestate: Vendor-specific trace state'",
)  # fmt: skip
TRC_004 = requirement(
    "TRC-004", Level.MUST,
    "Every log line of a request carries its SERVER span's trace_id and span_id",
    source="seed 000 §Structured Logging 'Logs include OpenTelemetry trace context for correlation'; "
    "seed 002 §Trace-Log Correlation",
)  # fmt: skip
TRC_005 = requirement(
    "TRC-005", Level.MUST,
    "Every response carries the correlation header, equal to the correlation_id in that request's log lines",
    source="seed 000 §Middleware 2 'Correlation ID: added to every request automatically, returned in "
    "X-Correlation-ID response header'; seed 000 §Trace Context Headers",
)  # fmt: skip
TRC_006 = requirement(
    "TRC-006", Level.MUST,
    "A request without a correlation id gets a generated one (a UUID unless the profile says any)",
    source="seed 000 'Correlation ID: added to every request automatically'; seed 000 log examples "
    "(correlation_id 550e8400-e29b-41d4-a716-446655440000, a UUID)",
)  # fmt: skip
TRC_007 = requirement(
    "TRC-007", Level.MUST, "A valid correlation id supplied by the caller is kept (echoed and logged)",
    source="seed 000 §Trace Context Headers 'X-Correlation-ID' travels Edge Workers → Backend API with "
    "traceparent; seed 000 'Use for debugging across distributed systems'",
)  # fmt: skip
TRC_008 = requirement(
    "TRC-008", Level.MUST,
    "A malformed or oversized supplied correlation id is replaced by a fresh one, never echoed "
    "(no header injection)",
    source="RFC 9110 §5.5 field values (no CR, LF, NUL) and RFC 9112 §2.2 (bare CR); the id is copied into a "
    "response header and every log line, so an unchecked value is header and log injection",
)  # fmt: skip
TRC_009 = requirement(
    "TRC-009", Level.MUST,
    "Generated correlation ids are unique across requests (traces.uniqueness_requests)",
    source="seed 000 'Correlation IDs for request tracing' (an id names one request); RFC 9562 §5.4 UUIDv4",
)  # fmt: skip
TRC_010 = requirement(
    "TRC-010", Level.MUST,
    "A request without traceparent starts a new trace (a root SERVER span, a fresh trace id)",
    source="W3C Trace Context 'Mutating the traceparent Field' (restart trace); W3C test suite "
    "test_both_traceparent_and_tracestate_missing, AdvancedTest.test_multiple_requests_without_traceparent",
)  # fmt: skip
TRC_011 = requirement(
    "TRC-011", Level.MUST, "An invalid traceparent is not continued: the service restarts the trace",
    source="W3C Trace Context 'trace-id', 'parent-id' (vendors MUST ignore an invalid traceparent) and "
    "'Versioning of traceparent'; RFC 9110 §5.3 (traceparent is not list-valued); "
    "W3C test suite test_traceparent_*",
)  # fmt: skip
TRC_012 = requirement(
    "TRC-012", Level.SHOULD, "An invalid tracestate is discarded, not kept on the SERVER span",
    source="W3C Trace Context 'tracestate Header Field Values' (key/value grammar, at most 32 members); "
    "W3C test suite tracestate cases at STRICT_LEVEL 2",
)  # fmt: skip
TRC_013 = requirement(
    "TRC-013", Level.SHOULD,
    "Requests to endpoints the profile excludes from tracing (traced: false) produce no SERVER span",
    source="seed 002 §Distributed Tracing, Configuration: OTEL_PYTHON_FASTAPI_EXCLUDED_URLS="
    "/metrics,/health,/health/live,/health/ready,/favicon.ico",
)  # fmt: skip

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
#: A generated id in format ``any``: one visible-ASCII token of sane length.
_TOKEN = re.compile(r"^[\x21-\x7e]{1,256}$")
_EXPECTS = ("continue", "restart", "new")
#: Statuses with which an HTTP server refuses a malformed request before the application sees it.
_REJECTED = frozenset({400, 413, 431})


@dataclass(frozen=True, slots=True)
class SpanSource:
    """Where spans were read and expected from, for "never arrived" findings."""

    store: str
    exporter: str
    waited: float


@dataclass(frozen=True, slots=True)
class Observed:
    """One probe request joined with the telemetry it produced (see :func:`observe`)."""

    name: str
    exchange: HttpExchange
    server: Span | None
    trace: tuple[Span, ...] = ()
    located_by: str = ""
    lines: tuple[ParsedLogLine, ...] = ()
    lines_by: str = ""
    supplied_correlation_id: str | None = None


@dataclass(frozen=True, slots=True)
class Expectation:
    """What one probe must show about trace context.

    ``trace``: ``continue`` (trace ``trace_id``, parent ``parent_id``),
    ``restart`` (no id taken from the ``sent`` header values), ``new`` (no
    traceparent was sent) or ``""`` (nothing). ``includes``: tracestate members
    that must be kept, in order; ``excludes``: keys that must be gone.
    """

    case: str
    trace: str = ""
    trace_id: str = ""
    parent_id: str = ""
    sent: tuple[str, ...] = ()
    includes: str = ""
    excludes: tuple[str, ...] = ()
    source: str = ""


@dataclass(frozen=True, slots=True)
class W3CVector:
    """One inbound case adapted from the W3C trace-context test suite.

    The cases live in ``suites/w3c_trace_context_vectors.yaml``; see its header.
    """

    name: str
    w3c: str
    headers: tuple[tuple[str, str], ...]
    expect: str
    includes: str = ""
    excludes: tuple[str, ...] = ()
    note: str = ""


# --------------------------------------------------------------------------- vectors


def load_vectors(data: Any) -> list[W3CVector]:
    """Type the vector file's content; raises ``ValueError`` naming the bad case."""
    if not isinstance(data, list) or not data:
        raise ValueError("the W3C vector file must be a non-empty list")
    vectors: list[W3CVector] = []
    seen: set[str] = set()
    for i, item in enumerate(data):
        where = f"case {i}"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ValueError(f"{where}: needs a name")
        where = f"case {item['name']!r}"
        if item["name"] in seen:
            raise ValueError(f"{where}: duplicate name")
        seen.add(item["name"])
        headers = item.get("headers")
        if not isinstance(headers, list) or not all(
            isinstance(h, list) and len(h) == 2 and all(isinstance(x, str) for x in h) for h in headers
        ):
            raise ValueError(f"{where}: headers must be a list of [name, value] pairs of strings")
        if item.get("expect") not in _EXPECTS:
            raise ValueError(f"{where}: expect must be one of {', '.join(_EXPECTS)}")
        tracestate = item.get("tracestate") or {}
        if not isinstance(tracestate, dict) or set(tracestate) - {"includes", "excludes"}:
            raise ValueError(f"{where}: tracestate takes includes (a string) or excludes (a list of keys)")
        includes = tracestate.get("includes", "")
        excludes = tracestate.get("excludes", [])
        if not isinstance(includes, str) or not isinstance(excludes, list):
            raise ValueError(f"{where}: tracestate.includes is a string, tracestate.excludes a list")
        vectors.append(
            W3CVector(
                name=item["name"],
                w3c=str(item.get("w3c", "")),
                headers=tuple((h[0], h[1]) for h in headers),
                expect=item["expect"],
                includes=includes,
                excludes=tuple(map(str, excludes)),
                note=str(item.get("note", "")),
            )
        )
    return vectors


def vector_expectation(
    vector: W3CVector, ids: Mapping[str, str], sent: Sequence[tuple[str, str]]
) -> Expectation:
    """The expectation of one vector case whose placeholders were filled with ``ids``."""
    return Expectation(
        case=vector.name,
        trace=vector.expect,
        trace_id=ids.get("trace_id", ""),
        parent_id=ids.get("parent_id", ""),
        sent=tuple(value for _, value in sent),
        includes=vector.includes,
        excludes=vector.excludes,
        source=vector.w3c,
    )


# --------------------------------------------------------------------------- the join


def shared_correlation_ids(lines: Sequence[ParsedLogLine], completed_message: str) -> dict[str, int]:
    """Correlation ids whose ``completed_message`` records carry more than one trace id, with
    the number of trace ids.

    Such an id names several requests (a recycled id, TRC-009's finding), so it
    cannot join a request to its log lines: the lines of the other requests
    that got it would be blamed on this one, and their (correct) trace ids read
    as this request's wrong ones. Counting trace ids, not records, keeps a
    service that logs two completed records per request, or none with a trace
    id, joined by its correlation id; a service that leaks trace context
    between requests keeps its correlation ids unique, so that bug is still caught.
    """
    traces: dict[str, set[str]] = {}
    for p in lines:
        record = p.record
        if record is None or record.get("message") != completed_message:
            continue
        cid, trace_id = record.get("correlation_id"), trace_hex(record.get("trace_id", ""))
        if cid and trace_id:
            traces.setdefault(str(cid), set()).add(trace_id)
    return {cid: len(ids) for cid, ids in traces.items() if len(ids) > 1}


def _located(
    exchange: HttpExchange,
    spans: Sequence[Span],
    continued: tuple[str, str] | None,
    lines: Sequence[ParsedLogLine],
    correlation_ids: set[str],
    suspects: Collection[str] = (),
    route: str = "",
    claimed: Collection[str] = (),
) -> tuple[Span | None, str]:
    servers = [span for span in spans if span.kind == "SERVER"]
    marker = marker_of(exchange)
    if marker:
        marked = [s for s in servers if any(s.attributes.get(key) == marker for key in MARKER_ATTRIBUTES)]
        if marked:
            return server_span(marked), "User-Agent marker"
    if continued is not None:
        found = [s for s in servers if (s.trace_id, s.parent_span_id) == continued]
        if found:
            return server_span(found), "sent trace id"
    if suspects:
        # An invalid traceparent's trace id: a span in it continued what it must not.
        found = [s for s in servers if s.trace_id in suspects]
        if found:
            return server_span(found), "a trace id of the invalid header sent"
    logged = {
        trace_hex(p.record["trace_id"])
        for p in lines
        if p.record is not None
        and p.record.get("trace_id")
        and str(p.record.get("correlation_id")) in correlation_ids
    }
    for trace_id in sorted(logged):
        candidate = server_span(s for s in servers if s.trace_id == trace_id)
        if candidate is not None:
            return candidate, "trace id in its log lines"
    if route and exchange.started_at:
        # Last resort, for services that record no User-Agent: the one SERVER span of this
        # route that started while the request was in flight, in no trace a probe sent.
        start = exchange.started_at - _CLOCK_SLACK
        end = exchange.started_at + exchange.elapsed_seconds + _CLOCK_SLACK
        keys = {route_key(route), route_key(exchange.path)}

        def same_request(s: Span) -> bool:
            method, span_path = span_route(s)
            return method in ("", exchange.method) and route_key(span_path) in keys

        window = [
            s for s in servers
            if s.trace_id not in claimed and start <= s.start_time_unix_nano / 1e9 <= end and same_request(s)
        ]  # fmt: skip
        if len(window) == 1:
            return window[0], "the only SERVER span of its route while it was in flight"
    return None, ""


#: Seconds of clock difference allowed between the harness's send time and the span's start.
_CLOCK_SLACK = 0.05


def observe(
    name: str,
    exchange: HttpExchange,
    spans: Sequence[Span],
    lines: Sequence[ParsedLogLine],
    *,
    correlation_header: str,
    continued: tuple[str, str] | None = None,
    supplied_correlation_id: str | None = None,
    suspects: Collection[str] = (),
    route: str = "",
    claimed: Collection[str] = (),
    shared: Mapping[str, int] | None = None,
) -> Observed:
    """Join one request to its SERVER span, that span's trace, and its log lines.

    ``continued`` is the (trace id, parent id) the request's traceparent sent,
    when it sent a valid one; ``suspects`` the trace ids in an invalid one (a
    span in those traces is the request's, wrongly continued);
    ``supplied_correlation_id`` the correlation header value the harness sent;
    ``route`` the request's route template and ``claimed`` the trace ids any
    probe sent, for the last resort: the one SERVER span of the route that
    started while the request was in flight; ``shared`` the correlation ids
    that several requests got (see :func:`shared_correlation_ids`): lines are
    joined to the request by its trace id alone when its id is one of them.
    """
    response_id = exchange.response_header(correlation_header)
    correlation_ids = {response_id} if response_id else set()
    if not correlation_ids and supplied_correlation_id:
        correlation_ids = {supplied_correlation_id}
    recycled = {cid: n for cid, n in (shared or {}).items() if cid in correlation_ids}
    correlation_ids -= recycled.keys()
    server, located_by = _located(
        exchange, spans, continued, lines, correlation_ids, suspects, route=route, claimed=claimed
    )
    trace = tuple(s for s in spans if server is not None and s.trace_id == server.trace_id)
    by_correlation = [
        p for p in lines if p.record is not None and str(p.record.get("correlation_id")) in correlation_ids
    ]
    # Without a span (the service exports none), the sent trace id still finds the lines
    # of a request that continued it.
    trace_key = server.trace_id if server is not None else (continued[0] if continued else "")
    by_trace = [
        p
        for p in lines
        if trace_key and p.record is not None and trace_hex(p.record.get("trace_id", "")) == trace_key
    ]
    joined = {p.line.number: p for p in [*by_correlation, *by_trace]}
    how = [label for label, found in (("correlation id", by_correlation), ("trace id", by_trace)) if found]
    if recycled and how:
        cid, n = next(iter(recycled.items()))
        how[-1] += f" (not its correlation id {cid}: {n} requests with other trace ids logged it)"
    return Observed(
        name=name,
        exchange=exchange,
        server=server,
        trace=trace,
        located_by=located_by,
        lines=tuple(joined[n] for n in sorted(joined)),
        lines_by=" and ".join(how),
        supplied_correlation_id=supplied_correlation_id,
    )


def assigned_correlation_id(o: Observed, header: str) -> tuple[str | None, str]:
    """The correlation id the service gave the request and where it was read:
    the response header, else the one value its log lines agree on."""
    value = o.exchange.response_header(header)
    if value is not None:
        return value, "response header"
    logged = {
        str(p.record.get("correlation_id")) for p in o.lines if p.record and p.record.get("correlation_id")
    }
    if len(logged) == 1:
        return logged.pop(), "log lines (the response had no header)"
    return None, ""


def tracestate_members(value: str) -> list[tuple[str, str]]:
    """``(key, value)`` list members of a tracestate, OWS and empty members dropped."""
    members = []
    for part in value.split(","):
        member = part.strip(" \t")
        if not member:
            continue
        key, _, val = member.partition("=")
        members.append((key, val.rstrip(" ")))
    return members


def _is_subsequence(wanted: Sequence[tuple[str, str]], have: Sequence[tuple[str, str]]) -> bool:
    remaining = iter(have)
    return all(item in remaining for item in wanted)


def describe_case(e: Expectation, o: Observed) -> dict[str, Any]:
    """A short line of evidence for one case, whatever its outcome."""
    s = o.server
    if s is None:
        seen = "no SERVER span found"
    elif e.trace_id and s.trace_id == e.trace_id and s.parent_span_id == e.parent_id:
        seen = "continued"
    elif s.parent_span_id is None:
        seen = f"new root span in trace {s.trace_id}"
    else:
        seen = f"trace {s.trace_id}, parent {s.parent_span_id}"
    out: dict[str, Any] = {"case": e.case, "expect": e.trace or "-", "observed": seen}
    if e.source:
        out["w3c"] = e.source
    if s is not None and (e.includes or e.excludes):
        out["tracestate"] = excerpt(s.trace_state, 120)
    return out


# --------------------------------------------------------------------------- trace context


def _evidence(o: Observed, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"request": o.name, "endpoint": o.exchange.endpoint, "path": o.exchange.path}
    if o.server is not None:  # the report links it to the trace in Jaeger
        out["trace_id"] = o.server.trace_id
    if o.located_by:
        out["span_located_by"] = o.located_by
    return {**out, **extra}


def _missing_span(req: str, case: str, o: Observed, src: SpanSource, e: Expectation | None = None) -> Finding:
    looked = [f"User-Agent {marker_of(o.exchange)}"] if marker_of(o.exchange) else []
    if e is not None and e.trace == "continue":
        looked.append(f"trace {e.trace_id}")
    looked_for = " or ".join(looked) or "the trace id in its log lines"
    return Finding(
        req,
        f"{case}: no SERVER span of this request arrived in {src.store} within {src.waited:g}s "
        f"(expected from {src.exporter}; looked for {looked_for})",
        _evidence(o, case=case),
    )


def check_trace_continued(cases: Sequence[tuple[Expectation, Observed]], src: SpanSource) -> list[Finding]:
    """TRC-002, on the cases that expect ``continue``."""
    findings = []
    for e, o in cases:
        if e.trace != "continue":
            continue
        s = o.server
        if s is None:
            findings.append(_missing_span(TRC_002.id, e.case, o, src, e))
        elif s.trace_id != e.trace_id:
            findings.append(
                Finding(
                    TRC_002.id,
                    f"{e.case}: the SERVER span is in trace {s.trace_id}, not the incoming {e.trace_id}: "
                    "the traceparent was not continued",
                    _evidence(o, case=e.case, expected_trace_id=e.trace_id, trace_id=s.trace_id),
                )
            )
        elif s.parent_span_id != e.parent_id:
            findings.append(
                Finding(
                    TRC_002.id,
                    f"{e.case}: the SERVER span's parent is {s.parent_span_id or 'none (a root span)'}, "
                    f"not the incoming parent-id {e.parent_id}",
                    _evidence(
                        o, case=e.case, expected_parent_id=e.parent_id, parent_span_id=s.parent_span_id
                    ),
                )
            )
    return findings


def check_tracestate_kept(cases: Sequence[tuple[Expectation, Observed]], src: SpanSource) -> list[Finding]:
    """TRC-003: the members in ``includes`` are on the span's tracestate, in order
    (the service may add its own entry on the left, as the spec allows)."""
    findings = []
    for e, o in cases:
        if not e.includes:
            continue
        if o.server is None:
            findings.append(_missing_span(TRC_003.id, e.case, o, src, e))
            continue
        wanted = tracestate_members(e.includes)
        have = tracestate_members(o.server.trace_state)
        if not _is_subsequence(wanted, have):
            findings.append(
                Finding(
                    TRC_003.id,
                    f"{e.case}: the SERVER span's tracestate is {excerpt(o.server.trace_state, 80)!r}; "
                    f"expected it to keep {excerpt(e.includes, 80)!r}",
                    _evidence(
                        o,
                        case=e.case,
                        expected=excerpt(e.includes, 300),
                        tracestate=excerpt(o.server.trace_state, 300),
                    ),
                )
            )
    return findings


def check_tracestate_discarded(
    cases: Sequence[tuple[Expectation, Observed]], src: SpanSource
) -> list[Finding]:
    """TRC-012: no key in ``excludes`` is on the span's tracestate."""
    findings = []
    for e, o in cases:
        if not e.excludes:
            continue
        if o.server is None:
            findings.append(_missing_span(TRC_012.id, e.case, o, src, e))
            continue
        kept = sorted({key for key, _ in tracestate_members(o.server.trace_state)} & set(e.excludes))
        if kept:
            findings.append(
                Finding(
                    TRC_012.id,
                    f"{e.case}: the SERVER span kept {', '.join(map(repr, kept))} from an invalid tracestate "
                    f"({excerpt(o.server.trace_state, 80)!r}); it should have been discarded",
                    _evidence(o, case=e.case, kept=kept, tracestate=excerpt(o.server.trace_state, 300)),
                )
            )
    return findings


def _taken_from(value: str | None, sent: Iterable[str]) -> bool:
    return value is not None and value != "" and any(value in text.lower() for text in sent)


def check_restarted(cases: Sequence[tuple[Expectation, Observed]], src: SpanSource) -> list[Finding]:
    """TRC-011, on the cases that expect ``restart``: neither the span's trace id
    nor its parent comes from the (invalid) headers that were sent."""
    findings = []
    for e, o in cases:
        if e.trace != "restart":
            continue
        s = o.server
        if s is None:
            findings.append(_missing_span(TRC_011.id, e.case, o, src, e))
        elif _taken_from(s.trace_id, e.sent) or _taken_from(s.parent_span_id, e.sent):
            findings.append(
                Finding(
                    TRC_011.id,
                    f"{e.case}: the SERVER span continues trace {s.trace_id} (parent {s.parent_span_id}) "
                    f"taken from an invalid header ({excerpt(' | '.join(e.sent), 120)}); "
                    "the service must restart the trace",
                    _evidence(
                        o, case=e.case, w3c=e.source, trace_id=s.trace_id, parent_span_id=s.parent_span_id
                    ),
                )
            )
    return findings


def check_new_traces(cases: Sequence[tuple[Expectation, Observed]], src: SpanSource) -> list[Finding]:
    """TRC-010, on the cases that expect ``new``: a root SERVER span (or one under
    its own spans), with a trace id of its own."""
    findings = []
    owners: dict[str, str] = {}
    for e, o in cases:
        if e.trace != "new":
            continue
        s = o.server
        if s is None:
            findings.append(_missing_span(TRC_010.id, e.case, o, src, e))
            continue
        in_trace = {span.span_id for span in o.trace}
        if s.parent_span_id is not None and s.parent_span_id not in in_trace:
            findings.append(
                Finding(
                    TRC_010.id,
                    f"{e.case}: no traceparent was sent, yet the SERVER span has the remote parent "
                    f"{s.parent_span_id}",
                    _evidence(o, case=e.case, parent_span_id=s.parent_span_id),
                )
            )
        if _taken_from(s.trace_id, e.sent):
            findings.append(
                Finding(
                    TRC_010.id,
                    f"{e.case}: the new trace {s.trace_id} reuses an id from the headers sent",
                    _evidence(o, case=e.case, trace_id=s.trace_id),
                )
            )
        if s.trace_id in owners:
            findings.append(
                Finding(
                    TRC_010.id,
                    f"{e.case}: shares trace {s.trace_id} with {owners[s.trace_id]}; each request "
                    "without traceparent must start its own trace",
                    _evidence(o, case=e.case, trace_id=s.trace_id, other=owners[s.trace_id]),
                )
            )
        owners.setdefault(s.trace_id, e.case)
    return findings


# --------------------------------------------------------------------------- logs ↔ spans ↔ headers


def _descendants(server: Span, trace: Sequence[Span]) -> set[str]:
    children: dict[str | None, list[str]] = {}
    for span in trace:
        children.setdefault(span.parent_span_id, []).append(span.span_id)
    found, pending = {server.span_id}, [server.span_id]
    while pending:
        for child in children.get(pending.pop(), ()):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def _no_lines(req: str, o: Observed, header: str) -> Finding:
    ids = [v for v in (o.exchange.response_header(header), o.supplied_correlation_id) if v]
    keys = [f"correlation_id {excerpt(ids[0], 60)}"] if ids else []
    if o.server is not None:
        keys.append(f"trace_id {o.server.trace_id}")
    return Finding(
        req,
        f"{o.name}: no log line of this request found (looked for {' or '.join(keys) or 'nothing: no id'})",
        _evidence(o),
    )


def check_log_join(
    observed: Sequence[Observed], src: SpanSource, *, correlation_header: str, completed_message: str
) -> list[Finding]:
    """TRC-004: each of the request's log lines names the request's trace, and a
    span of it: the SERVER span itself for the ``completed_message`` record, the
    SERVER span or one below it for the others."""
    findings = []
    for o in observed:
        s = o.server
        if s is None:
            findings.append(_missing_span(TRC_004.id, o.name, o, src))
            continue
        if not o.lines:
            findings.append(_no_lines(TRC_004.id, o, correlation_header))
            continue
        below = _descendants(s, o.trace)
        for p in o.lines:
            record = p.record or {}
            what = f"{o.name}: {p.line.where} ({excerpt(str(record.get('message')), 40)})"
            trace_id, span_id = record.get("trace_id"), record.get("span_id")
            if not trace_id:
                findings.append(Finding(TRC_004.id, f"{what} has no trace_id", p.evidence(**_evidence(o))))
            elif trace_hex(trace_id) != s.trace_id:
                findings.append(
                    Finding(
                        TRC_004.id,
                        f"{what} has trace_id {excerpt(str(trace_id), 70)}, but the request's SERVER span "
                        f"is in trace {s.trace_id}",
                        p.evidence(**_evidence(o, trace_id=s.trace_id)),
                    )
                )
            if not span_id:
                findings.append(Finding(TRC_004.id, f"{what} has no span_id", p.evidence(**_evidence(o))))
                continue
            span_hex = str(span_id).strip().lower()
            if record.get("message") == completed_message and span_hex != s.span_id:
                findings.append(
                    Finding(
                        TRC_004.id,
                        f"{what} has span_id {excerpt(str(span_id), 40)}, not the SERVER span's {s.span_id}",
                        p.evidence(**_evidence(o, span_id=s.span_id)),
                    )
                )
            elif span_hex not in below:
                findings.append(
                    Finding(
                        TRC_004.id,
                        f"{what} has span_id {excerpt(str(span_id), 40)}, neither the SERVER span "
                        f"({s.span_id}) nor a span under it",
                        p.evidence(**_evidence(o, span_id=s.span_id)),
                    )
                )
    return findings


def check_correlation_join(observed: Sequence[Observed], *, correlation_header: str) -> list[Finding]:
    """TRC-005: the response names its correlation id, and the request's log lines say the same."""
    findings = []
    for o in observed:
        if o.exchange.status_code is None:
            continue
        value = o.exchange.response_header(correlation_header)
        if value is None:
            findings.append(
                Finding(
                    TRC_005.id,
                    f"{o.name}: the response ({o.exchange.status_code}) has no {correlation_header} header",
                    _evidence(o, status_code=o.exchange.status_code),
                )
            )
            continue
        if not o.lines:
            findings.append(_no_lines(TRC_005.id, o, correlation_header))
            continue
        for p in o.lines:
            record = p.record or {}
            logged = record.get("correlation_id")
            what = f"{o.name}: {p.line.where} ({excerpt(str(record.get('message')), 40)})"
            if not logged:
                findings.append(
                    Finding(
                        TRC_005.id,
                        f"{what} has no correlation_id; the response's "
                        f"{correlation_header} is {excerpt(value, 60)}",
                        p.evidence(**_evidence(o)),
                    )
                )
            elif str(logged) != value:
                findings.append(
                    Finding(
                        TRC_005.id,
                        f"{what} has correlation_id {excerpt(str(logged), 60)}, but the response's "
                        f"{correlation_header} is {excerpt(value, 60)}",
                        p.evidence(**_evidence(o)),
                    )
                )
    return findings


def _format_problem(value: str, fmt: str) -> str:
    if fmt == "uuid":
        return "" if _UUID.match(value) else "is not a UUID"
    return "" if _TOKEN.match(value) else "is not a token of 1-256 visible ASCII characters"


def check_correlation_generated(
    observed: Sequence[Observed], *, correlation_header: str, fmt: str
) -> list[Finding]:
    """TRC-006, on requests sent without a correlation id."""
    findings = []
    owners: dict[str, str] = {}
    for o in observed:
        if o.exchange.status_code is None:
            continue
        value, where = assigned_correlation_id(o, correlation_header)
        if value is None:
            findings.append(
                Finding(
                    TRC_006.id,
                    f"{o.name}: no correlation id was generated (no {correlation_header} header, "
                    "none in the request's log lines)",
                    _evidence(o),
                )
            )
            continue
        problem = _format_problem(value, fmt)
        if problem:
            findings.append(
                Finding(
                    TRC_006.id,
                    f"{o.name}: the generated correlation id {excerpt(value, 60)!r} ({where}) {problem}",
                    _evidence(o, correlation_id=excerpt(value, 80), format=fmt),
                )
            )
        if value in owners:
            findings.append(
                Finding(
                    TRC_006.id,
                    f"{o.name}: got the same generated correlation id as {owners[value]}",
                    _evidence(o, correlation_id=excerpt(value, 80)),
                )
            )
        owners.setdefault(value, o.name)
    return findings


def check_correlation_echoed(observed: Sequence[Observed], *, correlation_header: str) -> list[Finding]:
    """TRC-007, on requests that supplied a valid correlation id."""
    findings = []
    for o in observed:
        supplied = o.supplied_correlation_id
        if supplied is None or o.exchange.status_code is None:
            continue
        value, where = assigned_correlation_id(o, correlation_header)
        if value != supplied:
            got = f"{excerpt(value, 60)} ({where})" if value else "no correlation id at all"
            findings.append(
                Finding(
                    TRC_007.id,
                    f"{o.name}: sent {correlation_header}: {supplied}, the service used {got}",
                    _evidence(o, supplied=supplied, correlation_id=excerpt(value or "", 80)),
                )
            )
    return findings


def _injected(exchange: HttpExchange) -> str:
    for name, value in exchange.response_headers:
        if not name:
            return f"a response header line without a name ({excerpt(value, 60)!r}): the header was split"
        if name.strip().lower() == "x-injected":
            return "the response carries an X-Injected header smuggled in the correlation id"
        if any(ch in value for ch in "\r\n\x00"):
            return f"response header {name} contains CR/LF/NUL"
    return ""


def check_correlation_replaced(
    cases: Sequence[tuple[str, Observed]], *, correlation_header: str
) -> list[Finding]:
    """TRC-008: ``cases`` pairs a description of the malformed value sent with
    the request. Refusing the request outright (400, 413, 431 without a
    correlation id) is fine; answering it with the value echoed, or with a
    header injected, is not. What the fresh id looks like is TRC-006's business;
    here it only has to be a plain token."""
    findings = []
    for what, o in cases:
        x = o.exchange
        supplied = o.supplied_correlation_id or ""
        if x.status_code is None:
            continue
        injected = _injected(x)
        if injected:
            findings.append(Finding(TRC_008.id, f"{o.name}: {injected}", _evidence(o, sent=what)))
            continue
        value, where = assigned_correlation_id(o, correlation_header)
        if value is None:
            if x.status_code in _REJECTED:
                continue
            findings.append(
                Finding(
                    TRC_008.id,
                    f"{o.name}: answered {x.status_code} with no correlation id at all; expected a fresh one",
                    _evidence(o, sent=what),
                )
            )
        elif supplied and (value == supplied or (len(supplied) > 8 and supplied in value)):
            findings.append(
                Finding(
                    TRC_008.id,
                    f"{o.name}: the malformed value was kept as the correlation id ({where})",
                    _evidence(o, sent=what, correlation_id=excerpt(value, 80)),
                )
            )
        elif not _TOKEN.match(value):
            findings.append(
                Finding(
                    TRC_008.id,
                    f"{o.name}: replaced by {excerpt(value, 60)!r} ({where}), which is not a "
                    "token of 1-256 visible ASCII characters",
                    _evidence(o, sent=what, correlation_id=excerpt(value, 80)),
                )
            )
    return findings


def check_correlation_unique(ids: Sequence[str], *, answered: int, where: str) -> list[Finding]:
    """TRC-009: every generated id occurs once. ``ids`` are the ids of the
    ``answered`` requests that carried one (read from ``where``)."""
    counts = Counter(ids)
    repeated = [(value, n) for value, n in counts.most_common() if n > 1]
    if not repeated:
        return []
    shown = ", ".join(f"{excerpt(value, 40)} x{n}" for value, n in repeated[:5])
    return [
        Finding(
            TRC_009.id,
            f"{len(repeated)} correlation id(s) were given to more than one of {answered} requests "
            f"({where}): {shown}",
            {
                "answered": answered,
                "distinct": len(counts),
                "repeated": [{"id": excerpt(v, 80), "count": n} for v, n in repeated[:20]],
            },
        )
    ]


def check_untraced(observed: Sequence[Observed], src: SpanSource) -> list[Finding]:
    """TRC-013: ``observed`` are the requests sent to excluded endpoints; none may
    have a SERVER span (found by its marker or, sent with a traceparent, by trace)."""
    findings = []
    for o in observed:
        if o.server is None:
            continue
        x = o.exchange
        findings.append(
            Finding(
                TRC_013.id,
                f"{x.method} {x.path} ({x.endpoint}) is excluded from tracing (traced: false) but produced "
                f"SERVER span {o.server.span_id} in trace {o.server.trace_id} ({o.located_by}), read from "
                f"{src.store}",
                {
                    "endpoint": x.endpoint,
                    "request": o.name,
                    "span": {
                        "trace_id": o.server.trace_id,
                        "span_id": o.server.span_id,
                        "name": o.server.name,
                    },
                },
            )
        )
    return findings


# --------------------------------------------------------------------------- without spans: the logs decide
#
# For a service that exports no spans (declared with telemetry.spans: false, or
# detected once per run), TRC-002, TRC-004, TRC-010 and TRC-011 are decided
# from the trace ids its log lines carry. Each function returns its findings
# and how many cases it could examine (a case none of whose lines could be
# found is not examined; the suite turns zero examined into an error).


def logged_trace_ids(o: Observed) -> set[str]:
    """The trace ids (bare hex) the request's log lines carry."""
    return {
        trace_hex(p.record["trace_id"]) for p in o.lines if p.record is not None and p.record.get("trace_id")
    }


def _log_evidence(o: Observed, **extra: Any) -> dict[str, Any]:
    return _evidence(o, decided_from="log lines (no spans)", log_lines=[p.line.number for p in o.lines][:10],
                     **extra)  # fmt: skip


def check_trace_continued_in_logs(
    cases: Sequence[tuple[Expectation, Observed]],
) -> tuple[list[Finding], int]:
    """TRC-002 from the logs: the request's lines carry the incoming trace id."""
    findings, examined = [], 0
    for e, o in cases:
        if e.trace != "continue":
            continue
        logged = logged_trace_ids(o)
        if not logged:
            continue
        examined += 1
        if e.trace_id not in logged:
            findings.append(
                Finding(
                    TRC_002.id,
                    f"{e.case}: its log lines carry trace {', '.join(sorted(logged))[:100]}, "
                    f"not the incoming {e.trace_id}: the traceparent was not continued",
                    _log_evidence(o, case=e.case, expected_trace_id=e.trace_id),
                )
            )
    return findings, examined


def check_new_traces_in_logs(cases: Sequence[tuple[Expectation, Observed]]) -> tuple[list[Finding], int]:
    """TRC-010 from the logs: a request sent without traceparent logs a trace id of
    its own (a valid id, no other request's, not from the headers sent)."""
    findings, examined = [], 0
    owners: dict[str, str] = {}
    for e, o in cases:
        if e.trace != "new":
            continue
        logged = logged_trace_ids(o)
        if not logged:
            continue
        examined += 1
        for trace_id in sorted(logged):
            problem = ""
            if not re.fullmatch(r"[0-9a-f]{32}", trace_id) or trace_id == "0" * 32:
                problem = f"its log lines carry {excerpt(trace_id, 40)!r}, not a fresh W3C trace id"
            elif _taken_from(trace_id, e.sent):
                problem = f"the new trace {trace_id} reuses an id from the headers sent"
            elif trace_id in owners and owners[trace_id] != e.case:
                problem = (
                    f"logs trace {trace_id}, like {owners[trace_id]}; each request without traceparent "
                    "must start its own trace"
                )
            if problem:
                evidence = _log_evidence(o, case=e.case, trace_id=trace_id)
                findings.append(Finding(TRC_010.id, f"{e.case}: {problem}", evidence))
            owners.setdefault(trace_id, e.case)
    return findings, examined


def check_restarted_in_logs(
    cases: Sequence[tuple[Expectation, Observed]], lines: Sequence[ParsedLogLine]
) -> tuple[list[Finding], int]:
    """TRC-011 from the logs: no log line carries a trace id taken from an invalid
    traceparent that was sent. A case counts as examined when the logs carry
    trace ids at all (else nothing could have shown a continued trace)."""
    logged: dict[str, ParsedLogLine] = {}
    for p in lines:
        if p.record is not None and p.record.get("trace_id"):
            logged.setdefault(trace_hex(p.record["trace_id"]), p)
    if not logged:
        return [], 0
    findings, examined = [], 0
    for e, o in cases:
        if e.trace != "restart":
            continue
        examined += 1
        for trace_id, p in logged.items():
            if _taken_from(trace_id, e.sent):
                findings.append(
                    Finding(
                        TRC_011.id,
                        f"{e.case}: log {p.line.where} carries trace {trace_id}, taken from an invalid "
                        f"header ({excerpt(' | '.join(e.sent), 120)}); the service must restart the trace",
                        p.evidence(**_log_evidence(o, case=e.case, w3c=e.source)),
                    )
                )
                break
    return findings, examined


def check_log_join_in_logs(observed: Sequence[Observed]) -> tuple[list[Finding], int]:
    """TRC-004 from the logs: every line of a request carries a trace id and a span
    id, and all of them name the same trace."""
    findings, examined = [], 0
    for o in observed:
        if not o.lines:
            continue
        examined += 1
        traces_seen = logged_trace_ids(o)
        for p in o.lines:
            record = p.record or {}
            what = f"{o.name}: {p.line.where} ({excerpt(str(record.get('message')), 40)})"
            for name in ("trace_id", "span_id"):
                if not record.get(name):
                    findings.append(
                        Finding(TRC_004.id, f"{what} has no {name}", p.evidence(**_log_evidence(o)))
                    )
        if len(traces_seen) > 1:
            findings.append(
                Finding(
                    TRC_004.id,
                    f"{o.name}: its log lines name {len(traces_seen)} different traces "
                    f"({', '.join(sorted(traces_seen))[:140]})",
                    _log_evidence(o, traces=sorted(traces_seen)),
                )
            )
    return findings, examined
