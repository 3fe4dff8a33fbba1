"""MET-001 and TRC-001: the service's metrics and traces reach real backends.

These are the entry requirements of the metrics and trace families: before
names, labels or propagation can be judged, the telemetry has to arrive.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from conformance._mask import excerpt
from conformance._model import Finding, Level
from conformance._requirements import requirement
from conformance.checks.metrics import exposition_gap
from conformance.telemetry import HttpExchange, Span

__all__ = [
    "MET_001",
    "TRC_001",
    "check_metrics_scraped",
    "check_server_spans_after_pipeline",
    "check_server_spans_exported",
    "route_key",
    "span_route",
]

MET_001 = requirement(
    "MET-001",
    Level.MUST,
    "The metrics endpoint serves a valid Prometheus exposition and Prometheus scrapes it (target up)",
    source="seed 000 §Middleware 3 'Metrics endpoint: GET /metrics'; seed 002 §Metrics Reference",
)
TRC_001 = requirement(
    "TRC-001",
    Level.MUST,
    "Every traced request produces a SERVER span exported over OTLP",
    source="seed 001 §Distributed Tracing 'Automatic instrumentation for all HTTP requests'; "
    "seed 000 §OpenTelemetry Components",
)


def check_metrics_scraped(
    *,
    url: str,
    status_code: int,
    content_type: str,
    parse_error: str,
    family_count: int,
    target: Mapping[str, Any] | None,
) -> list[Finding]:
    """MET-001 from one scrape by the harness and Prometheus's view of the target.

    Not 200, a web page (a single-page app's catch-all answers 200 text/html on
    every path), a body that does not parse, or no metric family: the endpoint
    serves no exposition.
    """
    findings = []
    gap = exposition_gap(
        url=url, status_code=status_code, content_type=content_type, parse_error=parse_error,
        family_count=family_count,
    )  # fmt: skip
    if gap:
        findings.append(Finding(MET_001.id, gap.removesuffix("; nothing to examine"), {"url": url}))
    if target is None:
        findings.append(Finding(MET_001.id, "Prometheus has no active target for the service", {"url": url}))
    elif target.get("health") != "up":
        findings.append(
            Finding(
                MET_001.id,
                f"Prometheus target health is {target.get('health')!r}: "
                f"{excerpt(str(target.get('lastError', '')))}",
                {"scrape_url": target.get("scrapeUrl"), "health": target.get("health")},
            )
        )
    return findings


def span_route(span: Span) -> tuple[str, str]:
    """(method, route-or-path) of a server span, across old and new HTTP semconv and
    the names instrumentations use besides them (Micrometer's ``uri``, a full URL,
    a span named ``GET /items/{id}`` or ``http get /items``)."""
    attrs = span.attributes
    name_method, name_route = _from_span_name(span.name)
    method = str(attrs.get("http.request.method") or attrs.get("http.method") or attrs.get("method") or "")
    route = (
        attrs.get("http.route") or attrs.get("url.path") or attrs.get("http.target") or attrs.get("uri")
        or _url_path(attrs.get("url.full") or attrs.get("http.url")) or name_route
    )  # fmt: skip
    return (method or name_method).upper(), str(route).split("?", 1)[0]


_PARAM = re.compile(r"^(?::\w+|\{[^/{}]+\}|<(?:\w+:)?\w+>)$")


def route_key(route: str) -> str:
    """A route template with its parameters unnamed, so that express's
    ``/items/:id``, Flask's ``/items/<int:id>`` and OpenAPI's ``/items/{item_id}``
    compare equal."""
    return "/".join("{}" if _PARAM.match(part) else part for part in route.split("/"))


def _url_path(url: Any) -> str:
    return urlsplit(url).path if isinstance(url, str) and "://" in url else ""


def _from_span_name(name: str) -> tuple[str, str]:
    """``GET /items/{id}`` or ``http get /items`` → (method, route); else empty."""
    parts = name.split()
    if len(parts) >= 2 and parts[-1].startswith("/") and parts[-2].isalpha():
        return parts[-2].upper(), parts[-1]
    return "", ""


def check_server_spans_exported(
    exchanges: Sequence[HttpExchange],
    spans: Iterable[Span],
    *,
    templates: Mapping[str, str],
    traced_endpoints: set[str],
    store: str,
) -> list[Finding]:
    """TRC-001: every answered traced request has a SERVER span.

    A request sent with a traceparent is matched to a SERVER span in that
    trace; the others, and those whose trace no span continued, are counted
    per (method, route) against the SERVER spans left, so a service that
    breaks propagation fails the propagation requirements, not this one.
    """
    servers = [span for span in spans if span.kind == "SERVER"]
    answered = [x for x in exchanges if x.status_code is not None and x.endpoint in traced_endpoints]
    in_trace: dict[str, list[Span]] = {}
    for span in servers:
        in_trace.setdefault(span.trace_id, []).append(span)
    used: set[str] = set()
    unmatched: list[HttpExchange] = []
    for x in answered:
        trace_id = x.sent_trace_id
        candidates = [s for s in in_trace.get(trace_id, []) if s.span_id not in used]
        if candidates:
            used.add(candidates[0].span_id)
        else:
            unmatched.append(x)
    exported: Counter[tuple[str, str]] = Counter()
    for span in servers:
        if span.span_id not in used:
            method, route = span_route(span)
            exported[(method, route_key(templates.get(route, route)))] += 1
    shown = {route_key(t): t for t in (templates.get(x.path, x.path) for x in unmatched)}
    sent: Counter[tuple[str, str]] = Counter(
        (x.method, route_key(templates.get(x.path, x.path))) for x in unmatched
    )
    findings = []
    for (method, key), n in sorted(sent.items()):
        got, route = exported.get((method, key), 0), shown[key]
        if got < n:
            findings.append(
                Finding(
                    TRC_001.id,
                    f"{method} {route}: {n - got} of the answered request(s) have no SERVER span in {store} "
                    "(none in the trace the request's traceparent named, none with its route)",
                    {
                        "method": method,
                        "route": route,
                        "requests": n,
                        "server_spans_by_route": got,
                        "missing": n - got,
                    },
                )
            )
    return findings


def check_server_spans_after_pipeline(
    at_service: Sequence[Finding], after: Sequence[Finding], *, pipeline: str
) -> list[Finding]:
    """TRC-001 after the team's collector pipeline (``telemetry.collector_config``).

    ``at_service`` and ``after`` are :func:`check_server_spans_exported` on the
    spans as the service sent them and as they left the team's pipeline
    (``pipeline`` describes it: config and processors). A route with more
    requests missing their SERVER span after the pipeline than at the service
    is a finding of its own: the service exports the spans, the pipeline drops
    them (a ``filter`` processor, a sampler), and they never reach the team's backend.
    """
    missing = {(f.evidence["method"], f.evidence["route"]): int(f.evidence["missing"]) for f in at_service}
    findings = []
    for finding in after:
        key = (finding.evidence["method"], finding.evidence["route"])
        dropped = int(finding.evidence["missing"]) - missing.get(key, 0)
        if dropped <= 0:
            continue
        method, route = key
        findings.append(
            Finding(
                TRC_001.id,
                f"{method} {route}: the service exported the SERVER span of {dropped} answered "
                f"request(s) that {pipeline} drops; they have none after it",
                {
                    **finding.evidence,
                    "dropped_by_pipeline": dropped,
                    "view": "after the team's collector pipeline",
                },
            )
        )
    return findings
