"""MET-001 and TRC-001: the service's metrics and traces reach real backends.

These are the entry requirements of the metrics and trace families: before
names, labels or propagation can be judged, the telemetry has to arrive.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from conformance._mask import excerpt
from conformance._model import Finding, Level
from conformance._requirements import requirement
from conformance.telemetry import HttpExchange, Span

__all__ = ["MET_001", "TRC_001", "check_metrics_scraped", "check_server_spans_exported", "span_route"]

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
    parse_error: str,
    family_count: int,
    target: Mapping[str, Any] | None,
) -> list[Finding]:
    """MET-001 from one scrape by the harness and Prometheus's view of the target."""
    findings = []
    if status_code != 200:
        findings.append(Finding(MET_001.id, f"GET {url} answered {status_code}", {"url": url}))
    elif parse_error:
        findings.append(
            Finding(MET_001.id, f"{url} is not a valid exposition: {excerpt(parse_error)}", {"url": url})
        )
    elif family_count == 0:
        findings.append(Finding(MET_001.id, f"{url} exposes no metric families", {"url": url}))
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
    """(method, route-or-path) of a server span, across old and new HTTP semconv."""
    attrs = span.attributes
    method = str(attrs.get("http.request.method") or attrs.get("http.method") or "")
    route = attrs.get("http.route") or attrs.get("url.path") or attrs.get("http.target") or ""
    return method, str(route).split("?", 1)[0]


def check_server_spans_exported(
    exchanges: Sequence[HttpExchange],
    spans: Iterable[Span],
    *,
    templates: Mapping[str, str],
    traced_endpoints: set[str],
    store: str,
) -> list[Finding]:
    """TRC-001: per (method, route), at least as many SERVER spans as answered
    requests. Matched by route rather than trace id so that a service which
    breaks propagation fails the propagation requirements, not this one."""
    exported: Counter[tuple[str, str]] = Counter()
    for span in spans:
        if span.kind == "SERVER":
            method, route = span_route(span)
            exported[(method, templates.get(route, route))] += 1
    sent: Counter[tuple[str, str]] = Counter(
        (x.method, templates.get(x.path, x.path))
        for x in exchanges
        if x.status_code is not None and x.endpoint in traced_endpoints
    )
    findings = []
    for (method, route), n in sorted(sent.items()):
        got = exported.get((method, route), 0)
        if got < n:
            findings.append(
                Finding(
                    TRC_001.id,
                    f"{method} {route}: {n} request(s) answered but {got} SERVER span(s) arrived in {store}",
                    {"method": method, "route": route, "requests": n, "server_spans": got},
                )
            )
    return findings
