"""SEM-001…SEM-005: the OpenTelemetry semantic conventions for HTTP servers.

Pure: the spans in the trace store and the names of the metrics the service
exposes go in, findings come out. Only HTTP SERVER spans are judged: kind
``SERVER`` with an HTTP attribute, stable or deprecated (a gRPC or messaging
SERVER span is no business of these conventions).

What the conventions say is quoted from one release, :data:`SEMCONV_VERSION`
(``docs/http/http-spans.md``, ``docs/http/http-metrics.md`` and
``docs/non-normative/http-migration.md`` of open-telemetry/semantic-conventions).
The HTTP conventions have been stable since v1.23.1; the attributes, span
names, status rules and metric judged here are the same in every stable
release up to the one cited.

Findings are grouped (one per span name and problem), each with up to five
example ``trace_id`` values: the report links them to Jaeger when it ran.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from conformance._mask import excerpt
from conformance._model import Finding, Level
from conformance._requirements import requirement
from conformance.checks.exports import route_key, span_route
from conformance.telemetry import Span

__all__ = [
    "AFTER_PIPELINE_VIEW",
    "DEPRECATED_SERVER_ATTRIBUTES",
    "KNOWN_METHODS",
    "SEMCONV_VERSION",
    "SEM_001",
    "SEM_002",
    "SEM_003",
    "SEM_004",
    "SEM_005",
    "STABLE_REQUIRED",
    "check_after_pipeline",
    "check_attribute_values",
    "check_server_duration_metric",
    "check_span_names",
    "check_span_status",
    "check_stable_attributes",
    "http_server_spans",
    "status_code_of",
]

#: The release whose text the requirements below were checked against.
SEMCONV_VERSION = "v1.44.0"
_SRC = f"OpenTelemetry semantic conventions for HTTP {SEMCONV_VERSION}"

SEM_001 = requirement(
    "SEM-001", Level.SHOULD,
    "HTTP SERVER spans carry the stable attributes (http.request.method, url.path, url.scheme, "
    "http.response.status_code), not only the deprecated ones (http.method, http.target, http.status_code…)",
    source=f"{_SRC}, docs/http/http-spans.md 'HTTP server span' (Required: http.request.method, url.path, "
    "url.scheme; Conditionally Required: http.response.status_code, http.route); "
    "docs/non-normative/http-migration.md (old → stable names, OTEL_SEMCONV_STABILITY_OPT_IN=http)",
)  # fmt: skip
SEM_002 = requirement(
    "SEM-002", Level.SHOULD,
    "HTTP SERVER span names are '{method} {http.route}' or '{method}', never a raw path",
    source=f"{_SRC}, docs/http/http-spans.md 'Name' ('{{method}} {{target}}' with http.route as target, else "
    "'{method}'; HTTP when the method is _OTHER; 'Instrumentation MUST NOT default to using URI path as a "
    "{target}')",
)  # fmt: skip
SEM_003 = requirement(
    "SEM-003", Level.SHOULD,
    "HTTP SERVER spans of 5xx answers have status ERROR; of 4xx answers, status unset",
    source=f"{_SRC}, docs/http/http-spans.md 'Status' (4xx: MUST be left unset on SpanKind.SERVER; "
    "5xx: SHOULD be set to Error)",
)  # fmt: skip
SEM_004 = requirement(
    "SEM-004", Level.SHOULD,
    "HTTP server durations are the histogram http.server.request.duration in seconds "
    "(http_server_request_duration_seconds in Prometheus), not the old http.server.duration in ms",
    source=f"{_SRC}, docs/http/http-metrics.md 'Metric: http.server.request.duration' (recommended; "
    "Histogram, unit s); docs/non-normative/http-migration.md 'HTTP server duration metric' "
    "(http.server.duration, ms → http.server.request.duration, s)",
)  # fmt: skip
SEM_005 = requirement(
    "SEM-005", Level.SHOULD,
    "http.request.method is a known method spelled exactly (or _OTHER) and http.response.status_code "
    "is an int",
    source=f"{_SRC}, docs/http/http-spans.md note [1] on http.request.method (RFC 9110 methods, PATCH, "
    "QUERY; else _OTHER; MUST match a known method name exactly) and the attribute table "
    "(http.response.status_code: int)",
)  # fmt: skip

#: The stable attributes the HTTP server span table marks ``Required``.
STABLE_REQUIRED = ("http.request.method", "url.path", "url.scheme")

#: Deprecated (v1.20.0 and earlier) HTTP server span attributes → their stable
#: replacement (http-migration.md, 'Common attributes' and 'HTTP server span attributes').
DEPRECATED_SERVER_ATTRIBUTES: Mapping[str, str] = {
    "http.method": "http.request.method",
    "http.status_code": "http.response.status_code",
    "http.target": "url.path and url.query",
    "http.url": "url.path, url.query and url.scheme",
    "http.scheme": "url.scheme",
    "http.client_ip": "client.address",
    "http.user_agent": "user_agent.original",
    "http.flavor": "network.protocol.version",
    "http.request_content_length": "http.request.body.size",
    "http.response_content_length": "http.response.body.size",
    "net.host.name": "server.address",
    "net.host.port": "server.port",
    "net.protocol.name": "network.protocol.name",
    "net.protocol.version": "network.protocol.version",
    "net.sock.peer.addr": "network.peer.address",
    "net.sock.peer.port": "network.peer.port",
    "net.sock.host.addr": "network.local.address",
    "net.sock.host.port": "network.local.port",
}

#: RFC 9110 §9 methods, PATCH (RFC 5789) and QUERY: the conventions' default "known" methods.
KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE", "QUERY"}
)

_OPT_IN = "OTEL_SEMCONV_STABILITY_OPT_IN=http (or http/dup while dashboards move)"
_HTTP_KEYS = ("http.request.method", "http.method", "http.response.status_code", "http.status_code",
              "url.path", "url.full", "http.target", "http.url", "http.route")  # fmt: skip
_EXAMPLES = 5


def http_server_spans(spans: Iterable[Span]) -> list[Span]:
    """The SERVER spans that carry an HTTP attribute (stable or deprecated)."""
    return [s for s in spans if s.kind == "SERVER" and any(k in s.attributes for k in _HTTP_KEYS)]


def status_code_of(span: Span) -> int | None:
    """The span's HTTP response status code (stable attribute first), or ``None``."""
    for key in ("http.response.status_code", "http.status_code"):
        value = span.attributes.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
    return None


def _method_of(span: Span) -> str:
    return str(span.attributes.get("http.request.method") or span.attributes.get("http.method") or "")


def _names(group: Sequence[Span]) -> str:
    """Up to three distinct span names of a group, quoted."""
    names = sorted({excerpt(s.name, 60) for s in group})
    more = f" (+{len(names) - 3} more)" if len(names) > 3 else ""
    return ", ".join(repr(n) for n in names[:3]) + more


def _group_findings(
    req_id: str, groups: Mapping[tuple[str, ...], Sequence[Span]], message: Any, **extra: Any
) -> list[Finding]:
    """One finding per group key: ``message(key, spans)`` says what, the evidence shows examples."""
    findings = []
    for key, spans in groups.items():
        first = spans[0]
        findings.append(
            Finding(
                req_id,
                message(key, spans),
                {
                    "spans": len(spans),
                    "span_name": excerpt(first.name, 120),
                    "trace_ids": [s.trace_id for s in spans[:_EXAMPLES]],
                    "example": {
                        "trace_id": first.trace_id,
                        "span_id": first.span_id,
                        "attributes": {k: excerpt(str(v), 120) for k, v in sorted(first.attributes.items())
                                       if k.startswith(("http.", "url.", "net.", "server."))},
                    },
                    **extra,
                },
            )
        )  # fmt: skip
    return findings


# --------------------------------------------------------------------------- SEM-001


def check_stable_attributes(spans: Sequence[Span]) -> list[Finding]:
    """SEM-001: every HTTP SERVER span has ``http.request.method``, ``url.path`` and
    ``url.scheme``, and ``http.response.status_code`` when it carries the old
    ``http.status_code`` (so a response was sent). A span with only deprecated names
    is one finding naming the old → new mapping."""
    groups: dict[tuple[str, ...], list[Span]] = {}
    for span in http_server_spans(spans):
        attrs = span.attributes
        missing = [k for k in STABLE_REQUIRED if k not in attrs]
        if "http.status_code" in attrs and "http.response.status_code" not in attrs:
            missing.append("http.response.status_code")
        if missing:
            old = tuple(sorted(k for k in attrs if k in DEPRECATED_SERVER_ATTRIBUTES))
            groups.setdefault((",".join(missing), *old), []).append(span)

    def message(key: tuple[str, ...], group: Sequence[Span]) -> str:
        missing, *old = key
        text = f"{len(group)} SERVER span(s) ({_names(group)}) lack {missing.replace(',', ', ')}"
        if old:
            mapping = "; ".join(f"{k} → {DEPRECATED_SERVER_ATTRIBUTES[k]}" for k in old)
            text += (
                f"; they carry the deprecated names instead ({mapping}): set {_OPT_IN}, "
                "or upgrade the instrumentation"
            )
        return text

    return _group_findings(SEM_001.id, groups, message)


# --------------------------------------------------------------------------- SEM-002


def _method_placeholder(span: Span) -> str:
    """``{method}`` of the span name: the method attribute (``HTTP`` for ``_OTHER``); for a
    span without one, the method another convention records (Micrometer's ``method``) or
    its name starts with (``http get /x``)."""
    method = _method_of(span) or span_route(span)[0]
    return "HTTP" if method == "_OTHER" else method


def check_span_names(spans: Sequence[Span], templates: Collection[str] = ()) -> tuple[list[Finding], int]:
    """SEM-002: the name is ``{method} {http.route}`` when the span has a route,
    else ``{method}``. ``templates`` are the profile's route templates: a name
    ``{method} {template}`` is also a low-cardinality target ("other value MAY be
    provided through custom hooks"). Anything else is a finding; a name that is
    the request's path while the route has parameters says so. Returns (findings,
    spans examined: those whose method is known)."""
    known = {route_key(t) for t in templates}
    groups: dict[tuple[str, ...], list[Span]] = {}
    examined = 0
    for span in http_server_spans(spans):
        method = _method_placeholder(span)
        if not method:
            continue
        examined += 1
        route = str(span.attributes.get("http.route") or "")
        name = span.name
        expected = f"{method} {route}" if route else method
        if name == expected:
            continue
        head, _, target = name.partition(" ")
        if not route and head == method and target and route_key(target) in known:
            continue
        path = str(span.attributes.get("url.path") or span.attributes.get("http.target") or "").split("?")[0]
        if target and path and target == path and (route_key(path) not in known or route):
            why = "the raw request path (ids and all), not the route"
        elif head != method:
            why = f"not of the form '{{method}} …' (method {method!r})"
        else:
            why = f"expected {expected!r}"
        groups.setdefault((expected if route else method, why), []).append(span)

    def message(key: tuple[str, ...], group: Sequence[Span]) -> str:
        expected, why = key
        return (
            f"{len(group)} SERVER span(s) named {_names(group)}: {why}; the convention's name is {expected!r}"
        )

    return _group_findings(SEM_002.id, groups, message), examined


# --------------------------------------------------------------------------- SEM-003


def check_span_status(spans: Sequence[Span]) -> tuple[list[Finding], int]:
    """SEM-003: of the HTTP SERVER spans with a 4xx or 5xx status code, 5xx ones
    must have status ERROR and 4xx ones must not. Returns (findings, spans examined)."""
    groups: dict[tuple[str, ...], list[Span]] = {}
    examined = 0
    for span in http_server_spans(spans):
        code = status_code_of(span)
        if code is None or code < 400:
            continue
        examined += 1
        if code >= 500 and span.status_code != "ERROR":
            groups.setdefault((f"{code}", "5xx", span.status_code), []).append(span)
        elif 400 <= code < 500 and span.status_code == "ERROR":
            groups.setdefault((f"{code}", "4xx"), []).append(span)

    def message(key: tuple[str, ...], group: Sequence[Span]) -> str:
        code, kind, *status = key
        if kind == "5xx":
            return (f"{len(group)} SERVER span(s) ({_names(group)}) answered {code} with span status "
                    f"{status[0]}, not ERROR")  # fmt: skip
        return (f"{len(group)} SERVER span(s) ({_names(group)}) answered {code} with span status ERROR: "
                "a 4xx is the client's error, the server span's status stays unset")  # fmt: skip

    return _group_findings(SEM_003.id, groups, message), examined


# --------------------------------------------------------------------------- SEM-004

_PROM_STABLE = "http_server_request_duration_seconds"
_PROM_BASE = re.compile(r"^(http_server_request_duration|http_server_duration)(?:_(\w+))?$")
_PROM_SUFFIXES = ("_bucket", "_count", "_sum", "_created")
_OTLP_OLD = "http.server.duration"
_OTLP_STABLE = "http.server.request.duration"


def check_server_duration_metric(
    prometheus: Mapping[str, Collection[str]], otlp_names: Collection[str] = ()
) -> tuple[list[Finding], int]:
    """SEM-004. ``prometheus`` maps each series name Prometheus holds that starts
    with ``http_server_`` to the jobs that exposed it (the service's ``/metrics``,
    the collector's exporter of the service's OTLP metrics); ``otlp_names`` are the
    metric names the service pushed over OTLP. What is judged, and counted:

    * an ``http_server_request_duration*`` or ``http_server_duration*`` family in
      Prometheus: the stable one must be ``http_server_request_duration_seconds``
      with ``_bucket`` series (a histogram in seconds); the old one is a finding;
    * OTLP metrics at all: ``http.server.request.duration`` must be among them
      (the recommended metric of an HTTP server), ``http.server.duration`` is old.

    Returns (findings, metrics examined); nothing examined when the service makes
    no claim to OpenTelemetry's HTTP metrics (no such family, no OTLP metric).
    """
    findings: list[Finding] = []
    families: dict[tuple[str, str], dict[str, Any]] = {}
    for name, jobs in prometheus.items():
        suffix = next((x for x in _PROM_SUFFIXES if name.endswith(x)), "")
        m = _PROM_BASE.match(name.removesuffix(suffix) if suffix else name)
        if not m:
            continue
        base, unit = m.group(1), m.group(2) or ""
        fam = families.setdefault((base, unit), {"series": set(), "jobs": set()})
        fam["series"].add(suffix)
        fam["jobs"].update(jobs)
    examined = len(families)
    for (base, unit), fam in sorted(families.items()):
        name = f"{base}_{unit}" if unit else base
        evidence = {
            "family": name,
            "jobs": sorted(fam["jobs"]),
            "series": sorted(x or "(bare)" for x in fam["series"]),
        }
        if base == "http_server_duration":
            problem = (
                f"{name} is the deprecated http.server.duration (milliseconds, semantic conventions "
                "v1.20.0 and earlier); the stable metric is http.server.request.duration in seconds "
                f"({_PROM_STABLE} in Prometheus): set {_OPT_IN}, or upgrade the instrumentation"
            )
        elif unit != "seconds":
            said = f"unit suffix {unit!r}" if unit else "no unit suffix"
            problem = (
                f"{name} has {said}: http.server.request.duration is in seconds "
                f"(unit s, {_PROM_STABLE} in Prometheus)"
            )
        elif "_bucket" not in fam["series"]:
            problem = f"{name} has no _bucket series: http.server.request.duration is a histogram"
        else:
            continue
        findings.append(Finding(SEM_004.id, problem, evidence))
    if otlp_names:
        examined += 1
        names = set(otlp_names)
        pushed = {"otlp_metrics": sorted(names)[:40]}
        if _OTLP_OLD in names and _OTLP_STABLE not in names:
            problem = (
                f"the service pushes {_OTLP_OLD} over OTLP (the deprecated metric, in milliseconds), "
                f"not {_OTLP_STABLE} (seconds): set {_OPT_IN}, or upgrade the instrumentation"
            )
            findings.append(Finding(SEM_004.id, problem, pushed))
        elif _OTLP_STABLE not in names:
            problem = (
                f"the service pushes {len(names)} metric(s) over OTLP but not {_OTLP_STABLE}, "
                "the recommended HTTP server metric"
            )
            findings.append(Finding(SEM_004.id, problem, pushed))
    return findings, examined


# --------------------------------------------------------------------------- SEM-005


def check_attribute_values(spans: Sequence[Span]) -> tuple[list[Finding], int]:
    """SEM-005: on HTTP SERVER spans with the stable attributes, ``http.request.method``
    is one of :data:`KNOWN_METHODS` exactly or ``_OTHER`` (then with
    ``http.request.method_original``), and ``http.response.status_code`` is an int.
    Returns (findings, spans examined: those with either stable attribute)."""
    groups: dict[tuple[str, ...], list[Span]] = {}
    examined = 0
    for span in http_server_spans(spans):
        attrs = span.attributes
        if "http.request.method" not in attrs and "http.response.status_code" not in attrs:
            continue
        examined += 1
        if "http.request.method" in attrs:
            method = attrs["http.request.method"]
            if method == "_OTHER":
                if "http.request.method_original" not in attrs:
                    groups.setdefault(("method", "_OTHER without http.request.method_original"), []).append(
                        span
                    )
            elif not isinstance(method, str) or method not in KNOWN_METHODS:
                what = f"{excerpt(str(method), 40)!r} is not a known method (nor _OTHER)"
                groups.setdefault(("method", what), []).append(span)
        if "http.response.status_code" in attrs:
            code = attrs["http.response.status_code"]
            if isinstance(code, bool) or not isinstance(code, int):
                shown = excerpt(str(code), 20)
                what = f"http.response.status_code is a {type(code).__name__} ({shown!r}), not an int"
                groups.setdefault(("status", what), []).append(span)

    def message(key: tuple[str, ...], group: Sequence[Span]) -> str:
        attribute, what = key
        hint = (" (RFC 9110 methods, PATCH and QUERY are known; others are _OTHER, with the original in "
                "http.request.method_original)") if attribute == "method" else ""  # fmt: skip
        return f"{len(group)} SERVER span(s) ({_names(group)}): {what}{hint}"

    return _group_findings(SEM_005.id, groups, message), examined


# --------------------------------------------------------------------------- after the team's pipeline

#: Evidence ``view`` of a finding the team's collector pipeline brings about.
AFTER_PIPELINE_VIEW = "after the team's collector pipeline"


def check_after_pipeline(
    check: Callable[[Sequence[Span]], list[Finding]],
    at_service: Sequence[Span],
    after: Sequence[Span],
    *,
    pipeline: str,
) -> tuple[list[Finding], dict[str, int]]:
    """One SEM check on the spans as they left the team's collector pipeline
    (``telemetry.collector_config``), against the same spans as the service sent them.

    Spans are paired by trace and span id. A span that passes ``check`` as the
    service sent it and fails it after the pipeline (an ``attributes`` processor
    that deletes ``http.request.method``, a ``transform`` that renames spans to
    the raw path) is a finding of the pipeline: ``check``'s own finding on those
    spans, its message prefixed with ``pipeline`` and its evidence ``view``
    :data:`AFTER_PIPELINE_VIEW`. A span the pipeline makes conform is counted
    (``fixed_by_pipeline``), never excused: the service's own finding stands.
    Returns the findings and the counts (paired spans, changed, broken, fixed).
    """
    sent = {(s.trace_id, s.span_id): s for s in at_service}
    broken: list[Span] = []
    counts = {"paired_spans": 0, "changed_by_pipeline": 0, "broken_by_pipeline": 0, "fixed_by_pipeline": 0}
    for span in after:
        original = sent.get((span.trace_id, span.span_id))
        if original is None:
            continue  # a span the store dropped at the service (Jaeger's sample) or the pipeline made
        counts["paired_spans"] += 1
        if (span.name, span.attributes, span.status_code) == (
            original.name,
            original.attributes,
            original.status_code,
        ):
            continue
        counts["changed_by_pipeline"] += 1
        failed_after, failed_sent = bool(check([span])), bool(check([original]))
        if failed_after and not failed_sent:
            broken.append(span)
        elif failed_sent and not failed_after:
            counts["fixed_by_pipeline"] += 1
    counts["broken_by_pipeline"] = len(broken)
    findings = [
        Finding(
            f.requirement_id,
            f"{pipeline} breaks what the service sends conforming: {f.message}",
            {**f.evidence, "view": AFTER_PIPELINE_VIEW},
        )
        for f in (check(broken) if broken else [])
    ]
    return findings, counts
