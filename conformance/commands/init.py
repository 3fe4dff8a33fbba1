"""``conformance init --url http://127.0.0.1:PORT``: a starting profile from a running service.

It looks at what the service really does, with a bounded number of requests to
127.0.0.1 (never another host; the only method besides GET is the POST an OpenAPI
document describes a body for, sent once, as the run will send it):

* common health paths (``/health``, ``/healthz``, ``/health/ready`` …): endpoints and the readiness probe;
* ``/metrics``: the path, the format and the service's metrics with their types and label
  names, written as ``metrics.required`` (runtime ``process_*``/``python_*``/``go_*`` left out);
* ``/openapi.json`` when served: its GET operations are tried once each and kept when they
  answer 2xx (a path parameter from the document's examples, else an id its list answered);
  a POST whose ``application/json`` request schema is described is tried once with a body
  built from the schema's required properties (examples, defaults, enums, else a value of
  the type) and kept with that body and its 2xx status; PUT, PATCH, DELETE and bodies the
  document does not describe are written commented out;
* response headers: the correlation header (``X-Correlation-ID``, ``X-Request-ID``) and
  whether its generated values are UUIDs; rate-limit headers, and which request header the
  limiter keys clients by (``traffic.client_header``), by comparing the remaining quota;
* a log sample (``--log-file`` or ``--log-command``): the stream, the service's names for
  level/message/trace fields (``level`` vs ``severity``, ``message`` vs ``event``), the levels
  and their case, the trace-id format and the one-per-request record's message.

It writes YAML with a comment on each finding. Requirement families that need
knowledge no probe gives (rate-limit rules, alert rule files) are listed under
``requirements.not_applicable`` with a reason that says what to add, so the
profile runs as written and the report says plainly what is not configured.

The profile needs ``service.command`` to be runnable: ``--command`` records it
(a token equal to the probed port becomes ``{port}``). Without it, init writes
the profile with the key commented out; ``conformance validate`` then fails
with ``service: needs a command (local mode) or an image (container mode)``
until it is filled in, and init says so.

Exit codes: 0 written (and validated, unless the command is missing); 2 a bad
flag, a non-loopback URL, an existing output without ``--force``; 3 the
service could not be reached.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

from conformance._exceptions import HarnessError, ProfileError, UsageError, WaitTimeout
from conformance._process import ManagedProcess, install_termination_handlers
from conformance._profile import CANONICAL_LOG_FIELDS, DEFAULT_LEVELS, load_profile
from conformance._requirements import all_requirements
from conformance._wait import wait_until
from conformance.checks._exposition import view_exposition
from conformance.collect._otlp_logs import OTLP_STREAM, otlp_log_lines
from conformance.collect._scrape import scrape_metrics
from conformance.commands._init_fill import FILL_IN, unfilled_values
from conformance.commands._init_launch import LaunchedService, client_for, fill
from conformance.report import EXIT_HARNESS_ERROR

HEALTH_PATHS = (
    "/health",
    "/health/live",
    "/health/ready",
    "/healthz",
    "/livez",
    "/readyz",
    "/ready",
    "/live",
    "/ping",
    "/status",
    "/__heartbeat__",
    "/__lbheartbeat__",
    "/actuator/health",
    "/actuator/health/liveness",
    "/actuator/health/readiness",
    "/api/health",
    "/api/healthz",
)
#: Readiness probe preference among the confirmed health paths.
READY_PREFERENCE = (
    "/health/ready",
    "/readyz",
    "/ready",
    "/actuator/health/readiness",
    "/health",
    "/healthz",
    "/api/health",
    "/api/healthz",
    "/actuator/health",
    "/__lbheartbeat__",
    "/__heartbeat__",
    "/livez",
    "/health/live",
    "/live",
    "/status",
    "/ping",
)
#: A path no service serves: what the service answers for it is the "unknown path" answer
#: every candidate endpoint must differ from (a catch-all 200 HTML page is no health endpoint).
RANDOM_PATH = "/obsconform-init-no-such-path-7f3c9a"
#: Level names of the common logging libraries (logs.levels; LOG-005 allows these).
LIBRARY_LEVELS = (
    "TRACE",
    "DEBUG",
    "INFO",
    "NOTICE",
    "WARN",
    "WARNING",
    "ERROR",
    "CRITICAL",
    "ALERT",
    "EMERGENCY",
    "FATAL",
    "PANIC",
    "DPANIC",
)
#: Where Prometheus expositions live, on the service port or another port the process listens on.
METRICS_PATHS = ("/metrics", "/actuator/prometheus")
CORRELATION_HEADERS = ("X-Correlation-ID", "X-Request-ID", "X-Trace-ID", "Request-Id")
#: Headers a rate limiter commonly keys clients by, tried in this order.
CLIENT_HEADERS = ("X-API-Key", "X-Client-ID", "X-Forwarded-For")
RUNTIME_PREFIXES = ("process_", "python_", "go_", "jvm_", "nodejs_", "dotnet_")
MAX_OPENAPI_PROBES = 20
MAX_LOG_LINES = 500
MAX_LOG_BYTES = 512 * 1024
#: Requirements init cannot configure from probes (an area prefix or one id), with why and what to add.
UNCONFIGURED = {
    "RL": (
        "not configured yet: conformance init cannot know the rate-limit rules",
        "add rate_limits.rules (name, endpoint, limit, window)",
    ),
    "ALR": (
        "not configured yet: conformance init found no alert rule files",
        "add prometheus.rule_files (and rule_tests, alerts.live_fire)",
    ),
    "PII-007": (
        "not configured yet: conformance init cannot know which fields the service logs redacted",
        "add pii.redacted_fields (endpoint, message, field, markers)",
    ),
    "HLT": (
        "not configured yet: conformance init cannot know the health probes' body schemas",
        "add health.probes (endpoint, status, schema) and health.dependency_failure",
    ),
    "TRC-013": (
        "not configured yet: conformance init cannot know which URLs the service excludes from tracing",
        "mark those endpoints traced: false",
    ),
}

# The service's names for canonical log fields, most common first. Only names from
# these lists are ever written, so nothing the service logs reaches the YAML unquoted.
FIELD_CANDIDATES: dict[str, tuple[str, ...]] = {
    "timestamp": ("timestamp", "time", "ts", "@timestamp", "datetime", "date", "asctime"),
    "level": ("level", "severity", "levelname", "log.level", "lvl", "level_name", "loglevel"),
    "logger": ("logger", "logger_name", "log.logger", "name", "module", "component"),
    "message": ("message", "msg", "event", "@message", "log"),
    "correlation_id": (
        "correlation_id",
        "correlationId",
        "correlation-id",
        "request_id",
        "requestId",
        "reqId",
        "req.id",
        "x_request_id",
    ),
    "trace_id": (
        "trace_id",
        "traceId",
        "trace.id",
        "otelTraceID",
        "logging.googleapis.com/trace",
        "dd.trace_id",
        "traceid",
    ),
    "span_id": (
        "span_id",
        "spanId",
        "span.id",
        "otelSpanID",
        "logging.googleapis.com/spanId",
        "dd.span_id",
        "spanid",
    ),
    "method": ("method", "http.method", "http_method", "request.method", "http.request.method", "req.method"),
    # a path template first: LOG-008 wants the route, not the raw path
    "path": (
        "path_template",
        "http.route",
        "route",
        "path",
        "url.path",
        "http.target",
        "request.path",
        "req.url",
    ),
    "status_code": (
        "status_code",
        "status",
        "http.status_code",
        "http.response.status_code",
        "statusCode",
        "res.statusCode",
    ),
    "duration_ms": (
        "duration_ms",
        "latency_ms",
        "elapsed_ms",
        "response_time_ms",
        "responseTime",
        "latency",
        "duration",
    ),
}
_SAFE_KEY = re.compile(r"^[A-Za-z0-9_.@/:-]{1,80}$")
_SAFE_MESSAGE = re.compile(r"^[A-Za-z0-9_.:-][A-Za-z0-9_. :-]{0,79}$")
#: Text lines that are a one-per-request record, and the message they carry.
_TEXT_REQUEST = re.compile(
    r"\b(request[ _](?:completed|finished|handled|done)|(?:handled|completed|finished)[ _]request)\b", re.I
)
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_W3C_TRACE = re.compile(r"^[0-9a-f]{32}$")
_GCP_TRACE = re.compile(r"^projects/[^/]+/traces/[0-9a-f]{32}$")


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "init",
        help="start (or probe) a service and write a profile for it, commented",
        description="Starts the service (--command) or probes a running one (--url), drives a little "
        "traffic, watches its logs and OTLP telemetry, and writes a profile that validates. "
        "--check PROFILE re-probes and lists where the profile no longer matches.",
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--url", help="a running service, http://127.0.0.1:PORT")
    parser.add_argument(
        "--command",
        dest="service_command",
        help="start the service: 'CMD ... {port}' ({metrics_port}, {otlp_grpc_endpoint} and "
        "{otlp_http_endpoint} are filled in too); recorded as service.command",
    )
    parser.add_argument(
        "--check", metavar="PROFILE", help="re-probe and compare with this profile; exit 1 on a difference"
    )
    logs = parser.add_mutually_exclusive_group()
    logs.add_argument(
        "--log-file", help="--url: a file the service's logs are written to (its last lines are read)"
    )
    logs.add_argument(
        "--log-command",
        help="--url: a shell command that prints recent logs, e.g. 'docker logs --tail 200 svc'",
    )
    parser.add_argument("--cwd", help="working directory for the command (recorded relative to the profile)")
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="service.env entry (repeatable)"
    )
    parser.add_argument(
        "--endpoints",
        metavar="FILE",
        help="a YAML list of endpoints (profile format) init cannot discover, e.g. a POST with its body",
    )
    parser.add_argument(
        "--name", help="service.name (default: guessed from the logs, spans or OpenAPI, else 'service')"
    )
    parser.add_argument("--metrics-path", default="/metrics", help="(default: %(default)s)")
    parser.add_argument("--openapi-path", default="/openapi.json", help="(default: %(default)s)")
    parser.add_argument("--out", default="conformance.yaml", help="where to write (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    parser.add_argument(
        "--timeout", type=float, default=5.0, help="seconds per request (default: %(default)s)"
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=90.0,
        help="--command: seconds to wait for the service to answer",
    )
    parser.add_argument(
        "--otlp-wait",
        type=float,
        default=8.0,
        help="--command: seconds to wait for OTLP spans and metrics after the traffic (default: %(default)s)",
    )
    parser.set_defaults(func=_init)


# --------------------------------------------------------------------------- what was found


@dataclass(frozen=True, slots=True)
class FoundEndpoint:
    name: str
    method: str
    path: str
    status: int | None = None
    path_params: Mapping[str, str] = field(default_factory=dict)
    note: str = ""
    #: Written commented out: the operation needs something init cannot invent (a body).
    commented: bool = False
    rate_limited: bool = False
    #: The JSON body init sent (a POST from the OpenAPI request schema); None: no body.
    json: Any = None

    def concrete_path(self) -> str:
        path = self.path
        for key, value in self.path_params.items():
            path = path.replace("{" + key + "}", value)
        return path


@dataclass(frozen=True, slots=True)
class FoundMetric:
    name: str
    type: str
    labels: tuple[str, ...] | None  # None: no samples yet, labels unknown
    extra_labels: bool = False


@dataclass(slots=True)
class ServiceFindings:
    url: str
    endpoints: list[FoundEndpoint] = field(default_factory=list)
    ready_path: str | None = None
    metrics_path: str | None = None
    metrics_format: str = "prometheus-text"
    metrics: list[FoundMetric] = field(default_factory=list)
    runtime_metrics: int = 0
    metrics_note: str = ""
    openapi_note: str = ""
    title: str = ""
    correlation_header: str | None = None
    correlation_uuid: bool = True
    rate_limit_headers: list[str] = field(default_factory=list)
    client_header: str | None = None
    client_header_note: str = ""
    baseline: tuple[int, str, str] | None = None
    baseline_note: str = ""
    #: Health paths that answered 2xx exactly like an unknown path (a catch-all page).
    rejected: list[str] = field(default_factory=list)
    #: The metrics port: None the service port; "auto" the command's {metrics_port}; else a number.
    metrics_port: int | str | None = None
    #: Signals that arrived over OTLP while probing (``--command`` only): name -> count.
    otlp: dict[str, int] = field(default_factory=dict)
    otlp_protocols: list[str] = field(default_factory=list)
    otlp_observed: bool = False
    correlation_echo: bool | None = None
    correlation_note: str = ""
    #: Endpoint names whose requests produced no span while others did (traced: false).
    untraced: set[str] = field(default_factory=set)
    #: Endpoints the user gave (``--endpoints FILE``), written as given.
    user_endpoints: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class LogGuess:
    source: str
    stream: str = "stdout"
    lines: int = 0
    json_objects: int = 0
    fields: dict[str, str] = field(default_factory=dict)
    required: list[str] = field(default_factory=list)
    levels_seen: list[str] = field(default_factory=list)
    level_case: str = "upper"
    levels: list[str] = field(default_factory=lambda: list(DEFAULT_LEVELS))
    trace_id_format: str = "w3c-hex"
    request_completed_message: str | None = None
    service_name: str | None = None
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- probing


def _loopback_base(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname != "127.0.0.1" or parts.port is None:
        raise UsageError(
            f"--url: must be http://127.0.0.1:PORT (the harness only talks to 127.0.0.1), got {url!r}"
        )
    if parts.path not in ("", "/") or parts.query:
        raise UsageError(f"--url: give the service's base URL without a path, got {url!r}")
    return f"http://127.0.0.1:{parts.port}", parts.port


def _get(client: httpx.Client, path: str, headers: Mapping[str, str] | None = None) -> httpx.Response | None:
    try:
        return client.get(path, headers=dict(headers or {}))
    except httpx.HTTPError:
        return None


def _endpoint_name(method: str, path: str, taken: set[str]) -> str:
    words = re.sub(r"[{}]", "", path).strip("/").replace("/", "_").replace("-", "_").lower()
    base = re.sub(r"[^a-z0-9_.-]+", "_", words).strip("_.-") or "root"
    if method != "GET":
        base = f"{method.lower()}_{base}"
    base = base[:56]
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def _rate_limit_headers(response: httpx.Response) -> list[str]:
    return sorted(
        h for h in {k.lower() for k in response.headers} if h.startswith(("x-ratelimit-", "ratelimit"))
    )


def _remaining(response: httpx.Response | None) -> int | None:
    if response is None:
        return None
    for name in ("x-ratelimit-remaining", "ratelimit-remaining"):
        value = response.headers.get(name, "")
        if value.strip().isdigit():
            return int(value)
    match = re.search(r"\br=(\d+)", response.headers.get("ratelimit", ""))
    return int(match.group(1)) if match else None


def _signature(response: httpx.Response) -> tuple[int, str, str]:
    """(status, media type, body shape): what makes one answer differ from another."""
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    shape = "empty"
    if response.content:
        try:
            body = response.json()
        except ValueError:
            text = response.text.lstrip()[:64].lower()
            shape = "html" if text.startswith(("<!doctype", "<html")) else "text"
        else:
            shape = (
                "json:" + ",".join(sorted(body)) if isinstance(body, dict) else f"json:{type(body).__name__}"
            )
    return response.status_code, media, shape


def _differs(response: httpx.Response, baseline: tuple[int, str, str] | None) -> bool:
    if baseline is None:
        return True
    mine = _signature(response)
    if mine[0] != baseline[0] or mine[1] != baseline[1]:
        return True
    # Same status and media type: a different body shape still tells an endpoint apart,
    # except from an HTML catch-all page, where every page is "html".
    return mine[2] != baseline[2] and baseline[2] != "html"


def probe_service(
    client: httpx.Client,
    base_url: str,
    *,
    metrics_path: str = "/metrics",
    openapi_path: str = "/openapi.json",
) -> ServiceFindings:
    """Everything init learns over HTTP; ``client`` has ``base_url`` set (a MockTransport in unit tests)."""
    found = ServiceFindings(base_url)
    taken: set[str] = set()
    answers: dict[str, httpx.Response] = {}
    unknown = _get(client, RANDOM_PATH)
    if unknown is None:
        raise HarnessError(
            f"cannot reach {base_url}{RANDOM_PATH}",
            hint="is the service running and listening on that port?",
        )
    found.baseline = _signature(unknown)
    found.baseline_note = (
        f"an unknown path ({RANDOM_PATH}) answers {unknown.status_code} {found.baseline[1] or 'no type'} "
        f"({found.baseline[2]})"
    )
    for path in HEALTH_PATHS:
        response = _get(client, path)
        if response is None or not 200 <= response.status_code < 300:
            continue
        if not _differs(response, found.baseline):
            found.rejected.append(path)
            continue
        answers[path] = response
        status, media, shape = _signature(response)
        found.endpoints.append(
            FoundEndpoint(
                _endpoint_name("GET", path, taken),
                "GET",
                path,
                status,
                note=f"answered {status} {media or 'no type'} ({shape}), unlike an unknown path",
                rate_limited=bool(_rate_limit_headers(response)),
            )
        )
    found.ready_path = next((p for p in READY_PREFERENCE if p in answers), None)
    _probe_openapi(client, openapi_path, found, taken, answers)
    _probe_metrics(client, base_url, metrics_path, found)
    _probe_headers(client, found, answers)
    return found


def _probe_openapi(
    client: httpx.Client,
    openapi_path: str,
    found: ServiceFindings,
    taken: set[str],
    answers: dict[str, httpx.Response],
) -> None:
    """Endpoints from the service's OpenAPI document, each tried once, in three passes:
    GETs without path parameters; GETs with them (values from the document's examples,
    else an id a list answered in the first pass); POSTs whose JSON body the document's
    schema describes (required properties, from examples, defaults, enums or their type).
    What cannot be tried is written commented out, with the reason."""
    response = _get(client, openapi_path)
    if response is None or response.status_code != 200:
        what = "no answer" if response is None else f"HTTP {response.status_code}"
        found.openapi_note = f"GET {openapi_path}: {what}, so endpoints come from the health paths only"
        return
    try:
        doc = response.json()
    except ValueError:
        found.openapi_note = f"GET {openapi_path} is not JSON"
        return
    if not isinstance(doc, dict) or not isinstance(doc.get("paths"), dict):
        found.openapi_note = f"GET {openapi_path} has no `paths`"
        return
    title = doc.get("info", {}).get("title") if isinstance(doc.get("info"), dict) else None
    found.title = str(title) if isinstance(title, str) else ""
    known = {e.path for e in found.endpoints} | {found.metrics_path or "/metrics", openapi_path}
    operations: list[tuple[str, str, Mapping[str, Any], Mapping[str, Any]]] = []
    for path, ops in doc["paths"].items():
        if not isinstance(path, str) or not re.fullmatch(r"/[^\s]*", path) or not isinstance(ops, dict):
            continue
        for method, op in ops.items():
            method = str(method).upper()
            if method not in ("GET", "POST", "PUT", "PATCH", "DELETE") or (path in known and method == "GET"):
                continue
            operations.append((method, path, op if isinstance(op, dict) else {}, ops))
    tried = _OpenApiTries(client, found, taken, answers)
    for method, path, _op, _ops in operations:  # 1: plain GETs (their lists give ids to pass 2)
        if method == "GET" and not re.search(r"{[^}]+}", path):
            tried.get(path, {}, "from OpenAPI")
    for method, path, op, ops in operations:  # 2: GETs with path parameters
        if method != "GET" or not re.search(r"{[^}]+}", path):
            continue
        params = _path_params(path, op, ops)
        source = "from OpenAPI; path parameter from its examples"
        if params is None:
            params = _ids_from_lists(path, tried.json_answers)
            source = "from OpenAPI; path parameter from an id its list answered"
        if params is None:
            tried.commented(method, path, "from OpenAPI; needs path parameter values: fill in and uncomment")
        else:
            tried.get(path, params, source)
    for method, path, op, _ops in operations:  # 3: bodies the schema describes
        if method == "GET":
            continue
        body = _example_body(op, doc) if method == "POST" and not re.search(r"{[^}]+}", path) else None
        if body is None:
            why = "changes or deletes data" if method != "POST" else "needs a body its schema lacks"
            tried.commented(method, path, f"from OpenAPI; {why}: fill in and uncomment")
        else:
            tried.post(path, body)
    found.openapi_note = (
        f"GET {openapi_path}: {len(operations)} operation(s) besides the health paths, {tried.count} tried"
    )


class _OpenApiTries:
    """Tries OpenAPI operations once each (at most :data:`MAX_OPENAPI_PROBES`) and records them."""

    def __init__(
        self,
        client: httpx.Client,
        found: ServiceFindings,
        taken: set[str],
        answers: dict[str, httpx.Response],
    ) -> None:
        self.client, self.found, self.taken, self.answers = client, found, taken, answers
        self.count = 0
        #: path -> the JSON a successful GET answered (lists hold the ids pass 2 needs)
        self.json_answers: dict[str, Any] = {}

    def commented(self, method: str, path: str, note: str, params: Mapping[str, str] | None = None) -> None:
        name = _endpoint_name(method, path, self.taken)
        self.found.endpoints.append(
            FoundEndpoint(name, method, path, path_params=dict(params or {}), note=note, commented=True)
        )

    def get(self, path: str, params: Mapping[str, str], source: str) -> None:
        if self.count >= MAX_OPENAPI_PROBES:
            self.commented("GET", path, "from OpenAPI; not tried", params)
            return
        concrete = path
        for key, value in params.items():
            concrete = concrete.replace("{" + key + "}", value)
        answer = _get(self.client, concrete)
        self._record("GET", path, params, None, answer, source)
        if answer is not None and 200 <= answer.status_code < 300:
            self.answers[path] = answer
            with contextlib.suppress(ValueError):
                self.json_answers[path] = answer.json()

    def post(self, path: str, body: Any) -> None:
        if self.count >= MAX_OPENAPI_PROBES:
            self.commented("POST", path, "from OpenAPI; not tried")
            return
        try:
            answer: httpx.Response | None = self.client.post(path, json=body)
        except httpx.HTTPError:
            answer = None
        self._record("POST", path, {}, body, answer, "from OpenAPI; body from its request schema")

    def _record(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        body: Any,
        answer: httpx.Response | None,
        source: str,
    ) -> None:
        self.count += 1
        status = answer.status_code if answer is not None else None
        ok = status is not None and 200 <= status < 300
        self.found.endpoints.append(
            FoundEndpoint(
                _endpoint_name(method, path, self.taken),
                method,
                path,
                status,
                dict(params),
                note=f"{source}; answered {status if status is not None else 'nothing'}",
                commented=not ok,
                rate_limited=bool(answer is not None and _rate_limit_headers(answer)),
                json=body,
            )
        )


def _ids_from_lists(path: str, json_answers: Mapping[str, Any]) -> dict[str, str] | None:
    """``/books/{book_id}``: an id from what ``GET /books`` answered (a list of objects,
    or an object holding one), under the parameter's own name, else ``id``."""
    match = re.fullmatch(r"(?P<parent>.*)/{(?P<param>[^}]+)}", path)
    if match is None or match["parent"] not in json_answers:
        return None
    listing = json_answers[match["parent"]]
    if isinstance(listing, dict):  # {"items": [...]}, {"data": [...]}
        listing = next((v for v in listing.values() if isinstance(v, list)), None)
    if not isinstance(listing, list):
        return None
    param = match["param"]
    for item in listing:
        if not isinstance(item, dict):
            continue
        for key in (param, "id", "ID", "_id"):
            value = item.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return {param: str(value)}
    return None


#: Deepest nesting :func:`_example_body` follows, and the longest string it writes.
_MAX_SCHEMA_DEPTH = 6
_PLACEHOLDER = "obsconform"


def _example_body(op: Mapping[str, Any], doc: Mapping[str, Any]) -> Any:
    """A JSON body for ``op`` from its ``application/json`` request schema; None when there
    is none or it cannot be built (an unresolvable ``$ref``, ``oneOf`` without a usable branch)."""
    body = op.get("requestBody")
    if not isinstance(body, dict):
        return None
    content = body.get("content")
    media = content.get("application/json") if isinstance(content, dict) else None
    if not isinstance(media, dict):
        return None
    if "example" in media:
        return media["example"]
    examples = media.get("examples")
    if isinstance(examples, dict):
        first = next(iter(examples.values()), None)
        if isinstance(first, dict) and "value" in first:
            return first["value"]
    schema = media.get("schema")
    return _instance(schema, doc, 0) if isinstance(schema, dict) else None


class _NoInstance(Exception):
    pass


def _instance(schema: Any, doc: Mapping[str, Any], depth: int) -> Any:
    try:
        return _build(schema, doc, depth)
    except _NoInstance:
        return None


def _build(schema: Any, doc: Mapping[str, Any], depth: int) -> Any:
    if not isinstance(schema, dict) or depth > _MAX_SCHEMA_DEPTH:
        raise _NoInstance
    ref = schema.get("$ref")
    if isinstance(ref, str):
        if not ref.startswith("#/"):
            raise _NoInstance
        target: Any = doc
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        return _build(target, doc, depth + 1)
    for key in ("example", "default"):
        if key in schema and schema[key] is not None:
            return schema[key]
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        return schema["examples"][0]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("allOf",):
        if isinstance(schema.get(key), list):
            merged: dict[str, Any] = {}
            for part in schema[key]:
                value = _build(part, doc, depth + 1)
                if isinstance(value, dict):
                    merged.update(value)
            return merged
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            usable = [b for b in schema[key] if not (isinstance(b, dict) and b.get("type") == "null")]
            if not usable:
                raise _NoInstance
            return _build(usable[0], doc, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object" or (kind is None and "properties" in schema):
        raw = schema.get("properties")
        properties: dict[str, Any] = raw if isinstance(raw, dict) else {}
        required = [r for r in schema.get("required", []) if isinstance(r, str)]
        return {name: _build(properties.get(name, {"type": "string"}), doc, depth + 1) for name in required}
    if kind == "array":
        count = int(schema.get("minItems", 0) or 0)
        return [_build(schema.get("items", {"type": "string"}), doc, depth + 1) for _ in range(count)]
    if kind == "integer":
        low = schema.get("minimum", 1)
        return int(max(low, 1)) if isinstance(low, int | float) else 1
    if kind == "number":
        low = schema.get("minimum", 1)
        return float(max(low, 1)) if isinstance(low, int | float) else 1.0
    if kind == "boolean":
        return True
    if kind == "string":
        return _example_string(schema)
    raise _NoInstance


def _example_string(schema: Mapping[str, Any]) -> str:
    fmt = schema.get("format")
    fixed = {
        "date-time": "2026-01-01T00:00:00Z",
        "date": "2026-01-01",
        "uuid": "00000000-0000-4000-8000-000000000000",
    }
    if fmt in fixed:
        return fixed[str(fmt)]
    if schema.get("pattern"):
        raise _NoInstance  # a value matching an arbitrary pattern is not invented
    low = int(schema.get("minLength", 0) or 0)
    high = schema.get("maxLength")
    text = _PLACEHOLDER.ljust(low, "x")
    return text[: int(high)] if isinstance(high, int) else text


def _path_params(path: str, op: Mapping[str, Any], operations: Mapping[str, Any]) -> dict[str, str] | None:
    """Values for a path's parameters from the OpenAPI examples; None when one has none."""
    wanted = re.findall(r"{([^}]+)}", path)
    examples: dict[str, str] = {}
    declared = [*operations.get("parameters", []), *op.get("parameters", [])]
    for param in declared:
        if not isinstance(param, dict) or param.get("in") != "path":
            continue
        raw_schema = param.get("schema")
        schema: dict[str, Any] = raw_schema if isinstance(raw_schema, dict) else {}
        example = param.get("example", schema.get("example", schema.get("default")))
        if isinstance(example, str | int) and not isinstance(example, bool):
            examples[str(param.get("name"))] = str(example)
    if any(w not in examples for w in wanted):
        return None
    return {w: examples[w] for w in wanted}


def _probe_metrics(
    client: httpx.Client, base_url: str, path: str, found: ServiceFindings, *, port_note: str = ""
) -> bool:
    """Whether ``base_url + path`` serves an exposition (then ``found`` holds what it says)."""
    plain = _get(client, f"{base_url}{path}")
    if plain is None or plain.status_code != 200:
        what = "no answer" if plain is None else f"answered {plain.status_code}"
        found.metrics_note = f"GET {path} {what}{port_note}"
        return False
    media = plain.headers.get("content-type", "").split(";")[0].strip().lower()
    if not _differs(plain, found.baseline) or media in ("text/html", "application/json"):
        found.metrics_note = (
            f"GET {path} answered 200 {media or 'no type'}{port_note}, like any path (no exposition)"
        )
        return False
    exposition = scrape_metrics(f"{base_url}{path}", client=client)
    if exposition.status_code != 200:
        found.metrics_note = f"GET {path} answered {exposition.status_code}{port_note}"
        return False
    if exposition.parse_error:
        found.metrics_path = path
        found.metrics_note = (
            f"GET {path}{port_note} serves {media}, which does not parse "
            f"({exposition.parse_error[:120]}): MET-001 will say why"
        )
        return True
    view = view_exposition(exposition.families, exposition.text, exposition.format)
    owners = view.sample_owners()
    found.metrics_path = path
    found.metrics_format = exposition.format
    for family in view.families:
        if owners.get(family.name, family.name) != family.name:
            continue  # a counter's or histogram's _created series, counted with its metric
        if family.name.startswith(RUNTIME_PREFIXES):
            found.runtime_metrics += 1
            continue
        if family.type not in ("counter", "gauge", "histogram", "summary", "untyped"):
            continue
        samples = [s for s in family.samples if not s.name.endswith("_created")]
        labelsets = [set(s.labels) - {"le", "quantile"} for s in samples]
        if not labelsets:
            found.metrics.append(FoundMetric(family.name, family.type, None))
            continue
        common = set.intersection(*labelsets)
        union = set.union(*labelsets)
        found.metrics.append(FoundMetric(family.name, family.type, tuple(sorted(common)), union != common))
    found.metrics_note = (
        f"GET {path}{port_note} serves {exposition.format}: {len(view.families)} families, "
        f"{len(found.metrics)} of the service's own written as required"
    )
    return True


def _probe_headers(
    client: httpx.Client, found: ServiceFindings, answers: Mapping[str, httpx.Response]
) -> None:
    for response in answers.values():
        for header in CORRELATION_HEADERS:
            if header.lower() in response.headers:
                found.correlation_header = header
                found.correlation_uuid = bool(_UUID.match(response.headers[header.lower()]))
                break
        if found.correlation_header:
            break
    limited = [e for e in found.endpoints if e.rate_limited and not e.commented]
    if not limited:
        return
    sample = answers.get(limited[0].path)
    found.rate_limit_headers = _rate_limit_headers(sample) if sample is not None else []
    path = limited[0].concrete_path()
    for header in CLIENT_HEADERS:
        value = (
            f"198.51.100.{uuid.uuid4().int % 200 + 1}" if header == "X-Forwarded-For" else uuid.uuid4().hex
        )
        first = _remaining(_get(client, path, {header: value}))
        second = _remaining(_get(client, path, {header: value}))
        other_value = (
            f"203.0.113.{uuid.uuid4().int % 200 + 1}" if header == "X-Forwarded-For" else uuid.uuid4().hex
        )
        other = _remaining(_get(client, path, {header: other_value}))
        if first is None or second is None or other is None:
            found.client_header_note = (
                "the remaining-quota header is not a number, so the client key is unknown"
            )
            return
        if second < first and other > second:
            found.client_header = header
            found.client_header_note = (
                f"a new {header} value got a fresh quota on {path} ({other} left vs {second}), "
                "so the limiter keys clients by it"
            )
            return
    found.client_header_note = (
        f"tried {', '.join(CLIENT_HEADERS)} on {path}: none got a fresh quota, so the limiter keys clients "
        "by something else (the source address?)"
    )


# --------------------------------------------------------------------------- traffic


@dataclass(slots=True)
class Traffic:
    """What init sent: per endpoint name the trace ids, and the correlation values."""

    trace_ids: dict[str, list[str]] = field(default_factory=dict)
    #: value sent -> the header it was sent in
    sent_correlation: dict[str, str] = field(default_factory=dict)
    #: header -> values the service answered with when none was sent
    generated: dict[str, list[str]] = field(default_factory=dict)
    echoed: dict[str, bool] = field(default_factory=dict)


def _request_plan(found: ServiceFindings) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(name, method, concrete path, httpx kwargs) for every endpoint init knows."""
    plan: list[tuple[str, str, str, dict[str, Any]]] = []
    for e in found.endpoints:
        if not e.commented:
            plan.append((e.name, e.method, e.concrete_path(), {} if e.json is None else {"json": e.json}))
    for ep in found.user_endpoints:
        path = str(ep["path"])
        for key, value in dict(ep.get("path_params") or {}).items():
            path = path.replace("{" + str(key) + "}", str(value))
        kwargs: dict[str, Any] = {}
        if ep.get("query"):
            kwargs["params"] = {str(k): str(v) for k, v in dict(ep["query"]).items()}
        if "json" in ep:
            kwargs["json"] = ep["json"]
        if ep.get("headers"):
            kwargs["headers"] = {str(k): str(v) for k, v in dict(ep["headers"]).items()}
        plan.append((str(ep["name"]), str(ep.get("method", "GET")).upper(), path, kwargs))
    return plan


def drive_traffic(client: httpx.Client, found: ServiceFindings, rounds: int = 2) -> Traffic:
    """A little traffic: every endpoint with a fresh traceparent, and correlation headers sent and not.

    Random ids are sent but never written to the profile (it stays stable run to run)."""
    traffic = Traffic()
    for name, method, path, kwargs in _request_plan(found):
        for i in range(rounds):
            trace_id = uuid.uuid4().hex
            headers = {
                "traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01",
                **kwargs.get("headers", {}),
            }
            if i == 1:  # the second round carries a correlation id in each candidate header
                for header in CORRELATION_HEADERS[:2]:
                    value = str(uuid.uuid4())
                    headers[header] = value
                    traffic.sent_correlation[value] = header
            try:
                response = client.request(
                    method, path, headers=headers, **{k: v for k, v in kwargs.items() if k != "headers"}
                )
            except httpx.HTTPError:
                continue
            traffic.trace_ids.setdefault(name, []).append(trace_id)
            for header in CORRELATION_HEADERS:
                answered = response.headers.get(header)
                if answered is None:
                    continue
                if i == 0:
                    traffic.generated.setdefault(header, []).append(answered)
                else:
                    traffic.echoed[header] = (
                        traffic.echoed.get(header, True) and headers.get(header) == answered
                    )
    return traffic


def _record_correlation(
    found: ServiceFindings, traffic: Traffic, records: Sequence[Mapping[str, Any]]
) -> str | None:
    """The response's correlation header, else the request header the logs show read; and the
    log field that holds the id (returned)."""
    answered = [h for h in CORRELATION_HEADERS if h in traffic.generated or h in traffic.echoed]
    logged_field: str | None = None
    logged_header: str | None = None
    for record in records:
        for key, value in _flat_items(record):
            if isinstance(value, str) and value in traffic.sent_correlation:
                logged_field = key
                logged_header = traffic.sent_correlation[value]
                break
        if logged_field:
            break
    if answered:
        header = answered[0]
        found.correlation_header = header
        values = traffic.generated.get(header, [])
        found.correlation_uuid = all(_UUID.match(v) for v in values)
        found.correlation_echo = traffic.echoed.get(header)
        echo = {
            True: "echoes the caller's value",
            False: "does not echo the caller's value",
            None: "was not sent one",
        }[found.correlation_echo]
        found.correlation_note = (
            f"responses carry {header} ({'UUIDs' if found.correlation_uuid else 'not UUIDs'}); it {echo}"
        )
    elif logged_header:
        found.correlation_header = logged_header
        found.correlation_echo = False
        found.correlation_note = (
            f"no response carries a correlation header, but the {logged_header} value sent is logged "
            f"as {logged_field!r}"
        )
    if logged_field and found.correlation_header:
        ids = [
            v
            for r in records
            if isinstance(v := _get_field(r, logged_field), str) and v not in traffic.sent_correlation
        ]
        if ids and not all(_UUID.match(v) for v in ids):
            found.correlation_uuid = False
    return logged_field if _SAFE_KEY.match(logged_field or "") else None


def _flat_items(record: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flat_items(value, name + ".")
        else:
            yield name, value


def _spans_per_endpoint(found: ServiceFindings, traffic: Traffic, receiver: Any) -> None:
    """Endpoints whose requests got no span while others did: excluded from tracing (traced: false)."""
    traced = {name: any(receiver.spans(t) for t in ids) for name, ids in traffic.trace_ids.items()}
    if any(traced.values()):
        found.untraced = {name for name, ok in traced.items() if not ok}


# --------------------------------------------------------------------------- logs


def read_log_file(path: Path) -> list[str]:
    """The last lines of ``path`` (at most MAX_LOG_LINES from the last MAX_LOG_BYTES)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - MAX_LOG_BYTES))
            data = f.read()
    except OSError as exc:
        raise UsageError(f"--log-file: cannot read {path}: {exc.strerror}") from None
    lines = data.decode("utf-8", errors="replace").splitlines()
    if size > MAX_LOG_BYTES and lines:
        lines = lines[1:]  # the first one is cut
    return lines[-MAX_LOG_LINES:]


def run_log_command(command: str, timeout: float = 10.0) -> dict[str, list[str]]:
    """stdout and stderr lines of ``command`` (``sh -c``), stopped after ``timeout`` seconds."""
    with tempfile.TemporaryDirectory(prefix="obsconform-init-") as tmp:
        out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
        proc = ManagedProcess("log-command", ["sh", "-c", command], stdout_path=out, stderr_path=err)
        proc.start()
        try:
            wait_until(lambda: (proc.poll(), "running"), awaited="--log-command to finish", timeout=timeout)
        except HarnessError:
            pass  # a command that follows the log (tail -f) is stopped; what it printed is the sample
        finally:
            proc.stop(timeout=2)
        return {"stdout": read_log_file(out), "stderr": read_log_file(err)}


def _get_field(record: Mapping[str, Any], name: str) -> Any:
    if name in record:
        return record[name]
    node: Any = record
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _json_objects(lines: Iterable[str]) -> tuple[list[dict[str, Any]], int]:
    objects, total = [], 0
    for line in lines:
        if not line.strip():
            continue
        total += 1
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            objects.append(value)
    return objects, total


def _amount(lines: int, objects: int) -> str:
    """How much of a stream is JSON, in words that do not change with the traffic's size."""
    if not lines:
        return "no lines"
    return "every line JSON" if objects == lines else "no JSON" if not objects else "some lines JSON"


def guess_log_contract(streams: Mapping[str, Sequence[str]], source: str) -> LogGuess:
    """The log section's values from a sample of lines per stream (pure; unit-tested)."""
    parsed = {name: _json_objects(lines) for name, lines in streams.items()}
    text_requests = {
        name: [m.group(1) for line in lines if (m := _TEXT_REQUEST.search(line))]
        for name, lines in streams.items()
    }
    stream = (
        max(parsed, key=lambda s: (len(parsed[s][0]), len(text_requests[s]), s == "stdout"))
        if parsed
        else "stdout"
    )
    records, total = parsed.get(stream, ([], 0))
    guess = LogGuess(source, stream, total, len(records))
    others = [
        f"{name}: {_amount(parsed[name][1], len(parsed[name][0]))}"
        for name in sorted(parsed)
        if name != stream
    ]
    if others:
        guess.notes.append(f"chose {stream} ({_amount(total, len(records))}); " + "; ".join(others))
    if not records and text_requests.get(stream):
        message = Counter(text_requests[stream]).most_common(1)[0][0]
        guess.request_completed_message = message
        guess.notes.append(f"text lines with {message!r} look like one line per request")
    if not records:
        guess.notes.append(
            f"no JSON objects among the lines of {stream}: LOG-001 will fail unless the logs are JSON"
            if total
            else "the sample is empty: the log section keeps its defaults"
        )
        return guess
    if total > len(records):
        guess.notes.append("some lines are not JSON objects: LOG-001 fails on them")
    for canonical, candidates in FIELD_CANDIDATES.items():
        scores = [(sum(1 for r in records if _get_field(r, c) is not None), c) for c in candidates]
        if canonical == "level":
            # pino keeps a numeric `level` next to a configured `severity` string: the name wins
            named = [(sum(1 for r in records if isinstance(_get_field(r, c), str)), c) for c in candidates]
            if max(named)[0]:
                scores = named
        best = max(scores, key=lambda s: s[0])
        if best[0] == 0:
            continue
        guess.fields[canonical] = best[1]
        if canonical in ("timestamp", "level", "logger", "message") and best[0] == len(records):
            guess.required.append(canonical)
    levels = [
        str(_get_field(r, guess.fields["level"]))
        for r in records
        if "level" in guess.fields and isinstance(_get_field(r, guess.fields["level"]), str)
    ]
    guess.levels_seen = sorted(set(levels))
    if levels and all(lv == lv.lower() for lv in levels):
        guess.level_case = "lower"
    elif levels and not all(lv == lv.upper() for lv in levels):
        guess.level_case = "any"
    # A sample holds few levels (INFO, maybe WARN): allow the names of the common logging
    # libraries (Python, logback, zap, zerolog, slog, pino, syslog, GCP) so a later WARN is no finding.
    known = {lv.casefold() for lv in LIBRARY_LEVELS}
    unknown = [lv for lv in guess.levels_seen if lv.casefold() not in known and _SAFE_KEY.match(lv)]
    guess.levels = [*LIBRARY_LEVELS, *sorted({lv.upper() for lv in unknown})]
    if unknown:
        guess.notes.append(
            f"levels outside the common libraries' names seen and allowed: {', '.join(unknown)}"
        )
    trace_values = [
        v
        for r in records
        if "trace_id" in guess.fields and isinstance(v := _get_field(r, guess.fields["trace_id"]), str)
    ]
    if trace_values and all(_GCP_TRACE.match(v) for v in trace_values):
        guess.trace_id_format = "gcp-resource"
    elif trace_values and not all(_W3C_TRACE.match(v) for v in trace_values):
        guess.notes.append(
            "some trace ids are neither W3C hex nor projects/…/traces/…: LOG-006 will say which"
        )
    guess.request_completed_message = _request_message(records, guess.fields)
    for key in ("service_name", "service", "service.name"):
        names = Counter(str(v) for r in records if isinstance(v := _get_field(r, key), str))
        if names:
            guess.service_name = names.most_common(1)[0][0]
            break
    return guess


def _request_message(records: Sequence[Mapping[str, Any]], fields: Mapping[str, str]) -> str | None:
    """The message of the records that carry method, path and status code (one per request)."""
    status, message = fields.get("status_code"), fields.get("message")
    if status is None or message is None:
        return None
    others = [f for k in ("method", "path", "duration_ms") if (f := fields.get(k))]
    messages = Counter(
        str(_get_field(r, message))
        for r in records
        if _get_field(r, status) is not None and any(_get_field(r, f) is not None for f in others)
    )
    if not messages:
        return None
    best = messages.most_common(1)[0][0]
    return best if _SAFE_MESSAGE.match(best) else None


# --------------------------------------------------------------------------- writing


def _q(value: Any) -> str:
    """A YAML scalar: JSON is YAML, and JSON-quoting keeps any text inert."""
    return json.dumps(value, ensure_ascii=False)


def _comment(text: str) -> str:
    """One safe comment line: no newlines or control characters from the service."""
    flat = re.sub(r"[\x00-\x1f\x7f\u2028\u2029]", " ", text)
    return flat[:300]


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9_.-]+", "-", text.lower()).strip("-._")
    return slug[:63] or "service"


def _command_argv(command: str, port: int) -> tuple[list[str], bool]:
    """argv with the probed port replaced by ``{port}``; and whether ``{port}`` is in it."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise UsageError(f"--command: cannot split {command!r}: {exc}") from None
    if not argv:
        raise UsageError("--command: must not be empty")
    out = []
    placeholder = "{port}"
    for token in argv:
        if token == str(port):
            out.append(placeholder)
        elif token.endswith((f"={port}", f":{port}")):
            out.append(token[: -len(str(port))] + placeholder)
        else:
            out.append(token)
    return out, any("{port}" in t for t in out)


def _flow(value: Any) -> str:
    """A YAML flow value (JSON is YAML)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=False)


def render_profile(
    found: ServiceFindings,
    logs: LogGuess | None,
    *,
    name: str,
    command: list[str] | None,
    has_port_placeholder: bool,
    port: int,
    cwd: str | None,
    env: Mapping[str, str],
    source: str = "",
) -> str:
    """The profile's YAML text with the comments that say what was found (no dates, no random
    values: the same service gives the same file)."""
    w: list[str] = [
        "# Conformance profile written by `conformance init` from "
        f"{_comment(source or 'a running service')}.",
        "# Each value is what init observed (see the comments). Review it, commit it next to the service,",
        "# and check it with `conformance validate` and `conformance run --profile`.",
        "version: 1",
        "",
        "service:",
        f"  name: {_q(name)}",
    ]
    if command:
        w.append("  # argv that starts the service; {port} is the free port the harness picks for each run")
        w.append(f"  command: [{', '.join(_q(t) for t in command)}]")
    else:
        w.append("  # the argv that starts the service, {port} where the port goes (no --command given)")
        w.append(f"  command: [{_q(FILL_IN + ': the argv that starts the service, with {port}')}]")
    if cwd:
        w.append(f"  cwd: {_q(cwd)}")
    if command and not has_port_placeholder:
        w.append(f"  # the command has no {{port}}: the service listens on {port} as probed")
        w.append(f"  port: {port}")
    if env:
        w.append("  # the environment given to init; {port}, {metrics_port}, {otlp_grpc_endpoint},")
        w.append("  # {otlp_http_endpoint} are filled in by the harness")
        w.append("  env:")
        w += [f"    {_q(k)}: {_q(v)}" for k, v in env.items()]
    else:
        w.append("  # The harness sets OTEL_EXPORTER_OTLP_ENDPOINT; a service reading another variable gets")
        w.append('  # it with env: {MY_OTLP_URL: "{otlp_http_endpoint}"}   (or "{otlp_grpc_endpoint}")')
    if found.baseline_note:
        w.append(f"  # {_comment(found.baseline_note)}")
    if found.rejected:
        w.append(f"  # answered like an unknown path, so not endpoints: {', '.join(found.rejected)}")
    if found.ready_path:
        w += [
            "  ready:",
            f"    # GET {found.ready_path} answered unlike an unknown path (readiness first, then health)",
            f"    path: {_q(found.ready_path)}",
            "    status: 200",
            "    timeout: 60",
        ]
    else:
        w.append(f"  # no health path answered unlike an unknown path ({', '.join(HEALTH_PATHS[:6])} ...):")
        w.append("  # the harness waits for any answer on /")
    w.append("")

    w += _render_metrics(found)
    w += _render_telemetry(found)
    w += _render_logs(logs)

    if found.correlation_header:
        w += [
            "correlation:",
            f"  # {_comment(found.correlation_note)}",
            f"  header: {_q(found.correlation_header)}",
            "",
        ]
    else:
        w += [
            f"# correlation: no response carried {' or '.join(CORRELATION_HEADERS)}",
            "# and no log line held a sent correlation id: TRC-005..009 are declared not applicable below",
            "",
        ]

    w += [f"# {_comment(found.openapi_note)}" if found.openapi_note else "", "endpoints:"]
    live = [e for e in found.endpoints if not e.commented]
    for e in found.endpoints:
        parts = [f"name: {_q(e.name)}", f"method: {e.method}", f"path: {_q(e.path)}"]
        if e.path_params:
            parts.append(
                "path_params: {" + ", ".join(f"{_q(k)}: {_q(v)}" for k, v in e.path_params.items()) + "}"
            )
        if e.json is not None:
            parts.append(f"json: {_flow(e.json)}")
        if e.status is not None and e.status != 200 and not e.commented:
            parts.append(f"expect_status: {e.status}")
        note = e.note
        if e.name in found.untraced:
            parts.append("traced: false")
            note += "; no span for it while other requests had one"
        line = f"  - {{{', '.join(parts)}}}  # {_comment(note)}"
        w.append(f"  # {line.strip()}" if e.commented else line)
    if found.user_endpoints:
        w.append("  # given to init (--endpoints)")
    for ep in found.user_endpoints:
        entry = dict(ep)
        if str(entry.get("name")) in found.untraced:
            entry["traced"] = False
        w.append(f"  - {_flow(entry)}")
    if not live and not found.user_endpoints:
        w.append("  # no endpoint answered; list at least one")
        w.append(f'  - {{name: "endpoint", method: GET, path: {_q("/" + FILL_IN.replace(" ", "-"))}}}')
        w.append(f"    # {FILL_IN}")
    w.append("")

    if found.rate_limit_headers:
        w += ["traffic:", f"  # responses carry rate-limit headers ({', '.join(found.rate_limit_headers)})"]
        w.append(f"  # {_comment(found.client_header_note)}")
        if found.client_header:
            w.append(f"  client_header: {_q(found.client_header)}")
        else:
            w.append("  # client_header: X-API-Key   # the header the limiter keys clients by, if any")
        w.append("")

    names = [(e.name, e.method, e.rate_limited) for e in live] + [
        (str(ep["name"]), str(ep.get("method", "GET")).upper(), False) for ep in found.user_endpoints
    ]
    candidates = [n for n, m, limited in names if m == "GET" and not limited and n not in found.untraced]
    probe = candidates[0] if candidates else None
    if probe is not None or not found.correlation_uuid:
        w.append("traces:")
        if probe is not None:
            w.append(
                "  # a traced GET without rate-limit headers: the trace-context probes send ~1,000 requests"
            )
            w.append(f"  probe_endpoint: {_q(probe)}")
        if not found.correlation_uuid:
            w.append("  # generated correlation ids are not UUIDs")
            w.append("  correlation_id_format: any")
        w.append("")

    w += _render_unknowable()
    w += ["requirements:", "  not_applicable:"]
    for rid, why in _not_applicable(found, logs):
        w.append(f"    {rid}: {_q(why)}")
    return "\n".join(w) + "\n"


def _render_metrics(found: ServiceFindings) -> list[str]:
    if not found.metrics_path:
        pushed = found.otlp.get("metrics", 0)
        why = (
            f"no Prometheus exposition ({found.metrics_note}); metrics arrived over OTLP instead"
            if pushed
            else f"no Prometheus exposition ({found.metrics_note}) and no OTLP metrics"
        )
        # Pushed over OTLP: the MET requirements read the collector's exporter of them.
        return ["metrics:", f"  # {_comment(why)}", "  source: otlp" if pushed else "  exposed: false", ""]
    w = ["metrics:", f"  # {_comment(found.metrics_note)}", f"  path: {_q(found.metrics_path)}"]
    if found.metrics_port == "auto":
        w += [
            "  # on the port the command's {metrics_port} names, not the service port",
            "  port: auto",
            "  internal: true",
        ]
    elif isinstance(found.metrics_port, int):
        w += [
            f"  # on port {found.metrics_port}, which the service's process listens on besides its own",
            f"  port: {found.metrics_port}",
            "  internal: true",
        ]
    w.append(f"  format: {found.metrics_format}")
    if found.metrics:
        skipped = (
            f"; {found.runtime_metrics} runtime metric(s) ({', '.join(RUNTIME_PREFIXES[:3])}...) left out"
            if found.runtime_metrics
            else ""
        )
        w.append(f"  # The service's own metrics as exposed now (MET-004 keeps them){skipped}.")
        w.append("  # Label names are those of the current samples; without samples yet, no `labels`.")
        w.append("  required:")
        for m in found.metrics:
            parts = [f"name: {_q(m.name)}", f"type: {m.type}"]
            if m.labels is not None:
                parts.append(f"labels: [{', '.join(_q(lb) for lb in m.labels)}]")
            if m.extra_labels:
                parts.append("extra_labels: true")
            w.append(f"    - {{{', '.join(parts)}}}")
    w.append("")
    return w


def _render_telemetry(found: ServiceFindings) -> list[str]:
    if not found.otlp_observed:
        return [
            "# telemetry: not observed (--url): the defaults stay (OTLP http/protobuf, spans expected)",
            "",
        ]
    seen = ", ".join(k for k, n in sorted(found.otlp.items()) if n) or "nothing"
    protocols = ", ".join(found.otlp_protocols) or "none"
    w = ["telemetry:", f"  # over OTLP while probing: {seen} (protocol: {protocols})"]
    protocol = next((p for p in ("grpc", "http/protobuf", "http/json") if p in found.otlp_protocols), None)
    if protocol:
        w.append(f"  otlp_protocol: {protocol}")
    if not found.otlp.get("spans"):
        w.append("  # no span arrived: the requirements about spans are not applicable")
        w.append("  spans: false")
    w.append("")
    return w


def _render_unknowable() -> list[str]:
    return [
        "# ---------------------------------------------------------------------------------------------",
        "# NOT INFERRED: init cannot know these from probes. Fill in what the service has, then remove",
        "# the matching lines under requirements.not_applicable.",
        "#",
        "# rate_limits:                      # RL-*: the limiter's rules",
        "#   client_key: source-address      # or header / forwarded-for",
        "#   rules:",
        "#     - {name: create, endpoint: <endpoint name>, limit: 10, window: 5}",
        "# prometheus:",
        "#   rule_files: [alerts.yml]        # ALR-*: the alert rules shipped with the service",
        "# slos: ...                         # latency/error objectives (conformance load)",
        "# health:                           # HLT-*: the probes' body schemas and a dependency to fail",
        "#   probes: [{endpoint: <name>, status: 200, schema: health.schema.json}]",
        "# pii:",
        "#   redacted_fields: ...            # PII-007: which fields the service redacts",
        "# ---------------------------------------------------------------------------------------------",
        "",
    ]


def _not_applicable(found: ServiceFindings, logs: LogGuess | None) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    ids = [r.id for r in all_requirements()]
    for key, (why, todo) in UNCONFIGURED.items():
        if key == "TRC-013" and found.untraced:
            continue  # an endpoint marked traced: false is what TRC-013 checks
        if key == "TRC-013" and found.otlp_observed and found.otlp.get("spans"):
            why = "every request init sent had a span: nothing is excluded from tracing"
        for rid in ids:
            if key in (rid, rid.partition("-")[0]):
                out.append(
                    (rid, f"{why} ({todo})" if key != "TRC-013" or not found.otlp.get("spans") else why)
                )
    if not found.correlation_header:
        why = "no correlation header: no response carried one and no log line held a sent id"
        out += [(rid, why) for rid in ("TRC-005", "TRC-006", "TRC-007", "TRC-008", "TRC-009")]
    if not found.otlp.get("metrics") and not any(
        m.name.startswith(("http_server_request_duration", "http_server_duration")) for m in found.metrics
    ):
        # SEM-004 judges a claim to OpenTelemetry's HTTP metrics; with none it has nothing to examine.
        out.append((
            "SEM-004",
            "not configured yet: conformance init found no OpenTelemetry HTTP metric (no "
            "http_server_request_duration* family, no metric over OTLP); remove this line once the "
            "service exports http.server.request.duration",
        ))  # fmt: skip
    if not found.metrics_path and not found.otlp.get("metrics"):
        out.append(("PII-003", "no /metrics exposition and no metric over OTLP: no metric label to search"))
    no_spans = found.otlp_observed and not found.otlp.get("spans")
    if no_spans and logs is not None and "trace_id" not in logs.fields:
        why = "no span arrived and no log line carries a trace id: the service does not take part in tracing"
        out += [(rid, why) for rid in ("TRC-002", "TRC-004", "TRC-010", "TRC-011")]
    return sorted(set(out), key=lambda item: ids.index(item[0]) if item[0] in ids else 0)


def _render_logs(logs: LogGuess | None) -> list[str]:
    if logs is None:
        return [
            "logs:",
            "  # no log sample given (--log-file or --log-command): defaults; check the names below",
            "  stream: stdout",
            "",
        ]
    w = [
        "logs:",
        f"  # read {logs.stream} of {_comment(logs.source)}: {_amount(logs.lines, logs.json_objects)}",
    ]
    w += [f"  # {_comment(n)}" for n in logs.notes]
    w.append(f"  stream: {logs.stream}")
    renamed = {k: v for k, v in logs.fields.items() if k != v}
    missing = [f for f in CANONICAL_LOG_FIELDS if f not in logs.fields]
    if renamed:
        w.append("  # the service's names for the canonical fields")
        w.append("  fields: {" + ", ".join(f"{k}: {_q(v)}" for k, v in renamed.items()) + "}")
    if missing:
        w.append(f"  # not seen in the sample: {', '.join(missing)}")
    if logs.json_objects:
        if set(logs.required) != {"timestamp", "level", "logger", "message"}:
            w.append("  # fields present on every sampled record")
            w.append(f"  required_fields: [{', '.join(logs.required)}]")
        if logs.levels_seen:
            w.append(f"  # levels seen: {_comment(', '.join(logs.levels_seen[:12]))}")
        if logs.levels != list(DEFAULT_LEVELS):
            w.append("  # the level names of the common logging libraries, and any other seen")
            w.append(f"  levels: [{', '.join(_q(lv) for lv in logs.levels)}]")
        w.append(f"  level_case: {logs.level_case}")
        w.append(f"  trace_id_format: {logs.trace_id_format}")
        if logs.request_completed_message:
            w.append("  # the message of the records that carry method, path and status code")
            w.append(f"  request_completed_message: {_q(logs.request_completed_message)}")
        else:
            w.append(
                "  # no record with method, path and status code seen: LOG-003/LOG-007 need one per request"
            )
    w.append("")
    return w


# --------------------------------------------------------------------------- the command


def _env_pairs(items: Sequence[str]) -> dict[str, str]:
    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise UsageError(f"--env: expected KEY=VALUE, got {item!r}")
        env[key] = value
    return env


def _read_endpoints(path: str | None) -> list[dict[str, Any]]:
    if not path:
        return []
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"--endpoints: cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"--endpoints: {path} is not YAML: {exc}") from None
    if not isinstance(data, list) or not all(
        isinstance(e, dict) and isinstance(e.get("name"), str) and str(e.get("path", "")).startswith("/")
        for e in data
    ):
        raise UsageError(f"--endpoints: {path} must be a list of endpoints, each with a name and a /path")
    return data


@dataclass(slots=True)
class Inferred:
    text: str
    found: ServiceFindings
    logs: LogGuess | None


def _add_user_endpoints(found: ServiceFindings, user: list[dict[str, Any]]) -> None:
    """The user's endpoints win over what init found at the same method and path."""
    given = {(str(e.get("method", "GET")).upper(), e["path"]) for e in user}
    found.endpoints = [e for e in found.endpoints if (e.method, e.path) not in given]
    found.user_endpoints = user


def _wait_for_otlp(receiver: Any, timeout: float, traffic: Traffic) -> None:
    """Until every request sent has its span and metrics arrived, or ``timeout`` (a service
    without spans, or one that excludes an endpoint from tracing, takes the whole wait)."""
    sent = [t for ids in traffic.trace_ids.values() for t in ids]

    def probe() -> tuple[bool | None, str]:
        traced = sum(1 for t in sent if receiver.spans(t))
        metrics = len(receiver.metric_names())
        done = traced == len(sent) and metrics > 0
        return (True if done else None), f"spans for {traced} of {len(sent)} request(s), {metrics} metric(s)"

    with contextlib.suppress(WaitTimeout):
        wait_until(probe, awaited="spans and metrics over OTLP", timeout=timeout)


def _metrics_elsewhere(
    launched: LaunchedService, found: ServiceFindings, timeout: float, uses_metrics_port: bool
) -> None:
    notes = [found.metrics_note]
    for other in launched.other_ports():
        with client_for(other, timeout) as client:
            for path in METRICS_PATHS:
                if _probe_metrics(
                    client,
                    f"http://127.0.0.1:{other}",
                    path,
                    found,
                    port_note=" on another port the process listens on",
                ):
                    found.metrics_port = (
                        "auto" if uses_metrics_port and other == launched.metrics_port else other
                    )
                    return
                notes.append(found.metrics_note)
    found.metrics_note = "; ".join(n for n in notes if n)


def infer(args: argparse.Namespace, out_dir: Path) -> Inferred:
    """Start or probe the service and write the profile text (no file is written here)."""
    env = _env_pairs(args.env)
    user_endpoints = _read_endpoints(args.endpoints)
    cwd = None
    if args.cwd:
        cwd_path = Path(args.cwd).resolve()
        if not cwd_path.is_dir():
            raise UsageError(f"--cwd: not a directory: {args.cwd}")
        cwd = os.path.relpath(cwd_path, out_dir)
    logs: LogGuess | None = None
    records: list[dict[str, Any]] = []
    span_names: list[str] = []
    if args.url:
        base_url, port = _loopback_base(args.url)
        command, has_port = (
            _command_argv(args.service_command, port) if args.service_command else (None, False)
        )
        with httpx.Client(base_url=base_url, timeout=args.timeout, trust_env=False) as client:
            found = probe_service(
                client, base_url, metrics_path=args.metrics_path, openapi_path=args.openapi_path
            )
            _add_user_endpoints(found, user_endpoints)
            traffic = drive_traffic(client, found)
        # Read after probing: the probes' own requests are in the sample (one-per-request records).
        if args.log_file:
            logs = guess_log_contract({"stdout": read_log_file(Path(args.log_file))}, args.log_file)
            logs.notes.append("a file does not say which stream it came from: stdout assumed")
        elif args.log_command:
            logs = guess_log_contract(run_log_command(args.log_command), f"`{args.log_command}`")
        if args.log_file or args.log_command:
            streams = (
                {"stdout": read_log_file(Path(args.log_file))}
                if args.log_file
                else run_log_command(args.log_command)
            )
            records = _json_objects(streams.get(logs.stream if logs else "stdout", []))[0]
        source = f"{base_url}"
    elif args.service_command:
        try:
            command = shlex.split(args.service_command)
        except ValueError as exc:
            raise UsageError(f"--command: cannot split {args.service_command!r}: {exc}") from None
        if not command:
            raise UsageError("--command: must not be empty")
        joined = " ".join([*command, *env.values()])
        if "{port}" not in joined:
            raise UsageError(
                "--command: put {port} where the service's port goes (in the command or an --env value)"
            )
        has_port, port = True, 0
        install_termination_handlers()  # SIGTERM/SIGHUP too: the service is stopped in `finally`
        with tempfile.TemporaryDirectory(prefix="obsconform-init-") as tmp:
            launched = LaunchedService(
                command, env, Path(tmp), cwd=Path(args.cwd).resolve() if args.cwd else None
            )
            try:
                launched.start(args.ready_timeout)
                with client_for(launched.port, args.timeout) as client:
                    base_url = f"http://127.0.0.1:{launched.port}"
                    found = probe_service(
                        client, base_url, metrics_path=args.metrics_path, openapi_path=args.openapi_path
                    )
                    if not found.metrics_path:
                        _metrics_elsewhere(launched, found, args.timeout, "{metrics_port}" in joined)
                    _add_user_endpoints(found, user_endpoints)
                    traffic = drive_traffic(client, found)
                _wait_for_otlp(launched.receiver, args.otlp_wait, traffic)
            finally:
                launched.stop()  # SIGTERM first: exporters flush what they hold
            receiver = launched.receiver
            found.otlp_observed = True
            found.otlp = {
                "spans": len(receiver.spans()),
                "metrics": len(receiver.metric_names()),
                "log records": len(receiver.log_records()),
            }
            found.otlp_protocols = launched.sniffer.protocols() if launched.sniffer else []
            _spans_per_endpoint(found, traffic, receiver)
            span_names = [str(sp.resource_attributes.get("service.name", "")) for sp in receiver.spans()[:50]]
            output = launched.output()
        logs = guess_log_contract(output, "the service's stdout and stderr")
        if not logs.json_objects and found.otlp["log records"]:
            # No JSON on either stream, but records over OTLP (a logs bridge): judge those.
            output = {OTLP_STREAM: [line.text() for line in otlp_log_lines(receiver.log_records())]}
            logs = guess_log_contract(output, "the OTLP log records the service exported")
        records = _json_objects(output.get(logs.stream, []))[0]
        source = f"`{shlex.join(command)}`"
    else:
        raise UsageError(
            "give --command 'CMD ... {port}' (init starts the service) or --url http://127.0.0.1:PORT"
        )
    correlation_field = _record_correlation(found, traffic, records)
    if logs is not None and correlation_field:
        logs.fields["correlation_id"] = correlation_field
    named = [n for n in span_names if n and not n.startswith("unknown_service")]
    name = _slug(
        args.name
        or (logs.service_name if logs and logs.service_name else "")
        or (Counter(named).most_common(1)[0][0] if named else "")
        or found.title
        or (Path(command[0]).name if command and not args.url else "")
        or "service"
    )
    text = render_profile(
        found,
        logs,
        name=name,
        command=command,
        has_port_placeholder=has_port,
        port=port,
        cwd=cwd,
        env=env,
        source=source,
    )
    return Inferred(text, found, logs)


def _init(args: argparse.Namespace) -> int:
    if args.check:
        return _check(args)
    out = Path(args.out)
    if out.exists() and not args.force:
        raise UsageError(f"--out: {out} exists; pass --force to overwrite it")
    try:
        inferred = infer(args, out.resolve().parent)
    except HarnessError as exc:
        print(f"conformance: error: {exc}", file=sys.stderr)
        return EXIT_HARNESS_ERROR
    found, logs, text = inferred.found, inferred.logs, inferred.text
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    live = [e for e in found.endpoints if not e.commented]
    print(
        f"conformance: wrote {out}: {len(live) + len(found.user_endpoints)} endpoint(s), "
        f"{len(found.metrics)} required metric(s), logs {'from ' + logs.source if logs else 'not sampled'}"
    )
    unfilled = unfilled_values(out)
    if unfilled:
        print(f"conformance: {out} is incomplete; fill in: " + ", ".join(w for w, _ in unfilled))
        try:
            _validate_without_command(out, text)
        except HarnessError as exc:
            print(f"conformance: error: {exc}", file=sys.stderr)
            return EXIT_HARNESS_ERROR
        return 0
    try:
        load_profile(out)
    except ProfileError as exc:
        print(f"conformance: error: the written profile does not validate: {exc}", file=sys.stderr)
        return EXIT_HARNESS_ERROR
    print(f"conformance: {out} validates; next: conformance run --profile {out}")
    return 0


#: What --check compares: dotted paths into the profile.
CHECKED_KEYS = (
    "service.ready.path",
    "metrics.exposed",
    "metrics.source",
    "metrics.path",
    "metrics.port",
    "telemetry.spans",
    "telemetry.otlp_protocol",
    "logs.stream",
    "logs.request_completed_message",
    "logs.level_case",
    "logs.trace_id_format",
    "correlation.header",
)


def _dig(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def compare_profiles(existing: Mapping[str, Any], fresh: Mapping[str, Any]) -> list[str]:
    """Where ``existing`` says something else than what init sees now (pure; unit-tested)."""
    diffs = []
    for key in CHECKED_KEYS:
        old, new = _dig(existing, key), _dig(fresh, key)
        if key == "metrics.exposed":
            old, new = old is not False, new is not False
        if key == "telemetry.spans":
            old, new = old is not False, new is not False
        if key == "logs.stream":
            old, new = old or "stdout", new or "stdout"
        if new is None or old == new:
            continue
        diffs.append(f"{key}: the profile says {old!r}, the service now shows {new!r}")
    old_renamed = dict(_dig(existing, "logs.fields") or {})
    new_renamed = dict(_dig(fresh, "logs.fields") or {})
    old_fields = {**{f: f for f in CANONICAL_LOG_FIELDS}, **old_renamed}
    new_fields = {**{f: f for f in CANONICAL_LOG_FIELDS}, **new_renamed}
    for canonical in [*new_renamed, *(k for k in old_renamed if k not in new_renamed)]:
        name = new_fields.get(canonical, canonical)
        if old_fields.get(canonical) != name:
            diffs.append(
                f"logs.fields.{canonical}: the profile says {old_fields.get(canonical)!r}, "
                f"the service now logs {name!r}"
            )
    fresh_paths = {e.get("path") for e in _dig(fresh, "endpoints") or [] if isinstance(e, dict)}
    for e in _dig(existing, "endpoints") or []:
        if isinstance(e, dict) and e.get("path") in HEALTH_PATHS and e.get("path") not in fresh_paths:
            diffs.append(
                f"endpoints: {e.get('path')} ({e.get('name')}) no longer answers unlike an unknown path"
            )
    return diffs


def _check(args: argparse.Namespace) -> int:
    path = Path(args.check)
    try:
        existing = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"--check: cannot read {path}: {exc}") from None
    profile = load_profile(path)
    if not args.url and not args.service_command:
        if not profile.service.command:
            raise UsageError(f"--check: {path} has no service.command; give --command or --url")
        values = {"profile_dir": str(profile.directory), "python": sys.executable}
        args.service_command = shlex.join(fill(a, values) for a in profile.service.command)
        args.env = [*args.env, *(f"{k}={fill(str(v), values)}" for k, v in profile.service.env.items())]
        if profile.service.cwd and not args.cwd:
            args.cwd = str(profile.service.cwd)
    try:
        inferred = infer(args, path.resolve().parent)
    except HarnessError as exc:
        print(f"conformance: error: {exc}", file=sys.stderr)
        return EXIT_HARNESS_ERROR
    diffs = compare_profiles(existing, yaml.safe_load(inferred.text))
    if not diffs:
        print(f"conformance: {path} still matches the service")
        return 0
    print(f"conformance: {path} no longer matches the service ({len(diffs)} difference(s)):")
    for diff in diffs:
        print(f"  {diff}")
    return 1


def _validate_without_command(out: Path, text: str) -> None:
    """An incomplete profile must still parse: only its FILL IN values are missing."""
    try:
        load_profile(out)
    except ProfileError as exc:
        raise HarnessError(f"the written profile has another problem: {exc}") from None
