"""``conformance init --url http://127.0.0.1:PORT``: a starting profile from a running service.

It looks at what the service really does, with a bounded number of GETs to
127.0.0.1 (never another host, never a method that changes state):

* common health paths (``/health``, ``/healthz``, ``/health/ready`` …): endpoints and the readiness probe;
* ``/metrics``: the path, the format and the service's metrics with their types and label
  names, written as ``metrics.required`` (runtime ``process_*``/``python_*``/``go_*`` left out);
* ``/openapi.json`` when served: its GET operations are tried once each and kept when they
  answer 2xx; operations that need a body are written commented out;
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
import datetime as dt
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

from conformance._exceptions import HarnessError, ProfileError, UsageError
from conformance._process import ManagedProcess
from conformance._profile import CANONICAL_LOG_FIELDS, DEFAULT_LEVELS, load_profile
from conformance._requirements import all_requirements
from conformance._wait import wait_until
from conformance.checks._exposition import view_exposition
from conformance.collect._scrape import scrape_metrics
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
)
#: Readiness probe preference among the health paths that answered 200.
READY_PREFERENCE = ("/health/ready", "/readyz", "/ready", "/health", "/healthz", "/status", "/ping")
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
    "correlation_id": ("correlation_id", "correlationId", "correlation-id", "request_id", "requestId"),
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
    "method": ("method", "http.method", "http_method", "request.method", "http.request.method"),
    "path": ("path", "http.route", "route", "url.path", "http.target", "request.path"),
    "status_code": ("status_code", "status", "http.status_code", "http.response.status_code", "statusCode"),
    "duration_ms": ("duration_ms", "latency_ms", "elapsed_ms", "response_time_ms", "duration"),
}
_SAFE_KEY = re.compile(r"^[A-Za-z0-9_.@/:-]{1,80}$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_W3C_TRACE = re.compile(r"^[0-9a-f]{32}$")
_GCP_TRACE = re.compile(r"^projects/[^/]+/traces/[0-9a-f]{32}$")


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "init",
        help="probe a running service and write a starting profile, commented",
        description="Probes http://127.0.0.1:PORT with a few GETs (health paths, /metrics, /openapi.json) "
        "and a log sample, and writes a profile that validates.",
    )
    parser.add_argument("--url", required=True, help="the running service, http://127.0.0.1:PORT")
    logs = parser.add_mutually_exclusive_group()
    logs.add_argument("--log-file", help="a file the service's logs are written to (its last lines are read)")
    logs.add_argument(
        "--log-command", help="a shell command that prints recent logs, e.g. 'docker logs --tail 200 svc'"
    )
    parser.add_argument(
        "--command",
        help="how to start the service, recorded as service.command, e.g. './app --port {port}' "
        "(a token equal to the probed port becomes {port})",
    )
    parser.add_argument("--cwd", help="working directory for the command (recorded relative to the profile)")
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="service.env entry (repeatable)"
    )
    parser.add_argument(
        "--name", help="service.name (default: guessed from the logs or OpenAPI, else 'service')"
    )
    parser.add_argument("--metrics-path", default="/metrics", help="(default: %(default)s)")
    parser.add_argument("--openapi-path", default="/openapi.json", help="(default: %(default)s)")
    parser.add_argument("--out", default="conformance.yaml", help="where to write (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    parser.add_argument(
        "--timeout", type=float, default=5.0, help="seconds per request (default: %(default)s)"
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
    for path in HEALTH_PATHS:
        response = _get(client, path)
        if response is None:
            if path == HEALTH_PATHS[0]:
                raise HarnessError(
                    f"cannot reach {base_url}{path}",
                    hint="is the service running and listening on that port?",
                )
            continue
        if response.status_code == 200:
            answers[path] = response
            found.endpoints.append(
                FoundEndpoint(
                    _endpoint_name("GET", path, taken),
                    "GET",
                    path,
                    200,
                    note="answered 200",
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
    probed = 0
    listed = 0
    for path, operations in doc["paths"].items():
        if not isinstance(path, str) or not path.startswith("/") or not isinstance(operations, dict):
            continue
        for method, op in operations.items():
            method = str(method).upper()
            if method not in ("GET", "POST", "PUT", "PATCH", "DELETE") or (path in known and method == "GET"):
                continue
            if not re.fullmatch(r"/[^\s]*", path):
                continue
            listed += 1
            params = _path_params(path, op if isinstance(op, dict) else {}, operations)
            name = _endpoint_name(method, path, taken)
            if method != "GET" or params is None:
                why = "needs a request body" if method != "GET" else "needs path parameter values"
                found.endpoints.append(
                    FoundEndpoint(
                        name, method, path, note=f"from OpenAPI; {why}: fill in and uncomment", commented=True
                    )
                )
                continue
            if probed >= MAX_OPENAPI_PROBES:
                found.endpoints.append(
                    FoundEndpoint(
                        name, method, path, path_params=params, note="from OpenAPI; not tried", commented=True
                    )
                )
                continue
            concrete = path
            for key, value in params.items():
                concrete = concrete.replace("{" + key + "}", value)
            answer = _get(client, concrete)
            probed += 1
            status = answer.status_code if answer is not None else None
            ok = status is not None and 200 <= status < 300
            found.endpoints.append(
                FoundEndpoint(
                    name,
                    method,
                    path,
                    status,
                    params,
                    note=f"from OpenAPI; answered {status if status is not None else 'nothing'}",
                    commented=not ok,
                    rate_limited=bool(answer is not None and _rate_limit_headers(answer)),
                )
            )
            if ok and answer is not None:
                answers[path] = answer
    found.openapi_note = f"GET {openapi_path}: {listed} operation(s) besides the health paths, {probed} tried"


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


def _probe_metrics(client: httpx.Client, base_url: str, path: str, found: ServiceFindings) -> None:
    exposition = scrape_metrics(f"{base_url}{path}", client=client)
    if exposition.status_code != 200:
        found.metrics_note = (
            f"GET {path} answered {exposition.status_code}: no metrics section contract written"
        )
        return
    if exposition.parse_error:
        found.metrics_path = path
        found.metrics_note = f"GET {path} does not parse ({exposition.parse_error[:120]}): MET-001 will fail"
        return
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
        f"GET {path} serves {exposition.format}: {len(view.families)} families, "
        f"{len(found.metrics)} of the service's own written as required"
    )


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


def guess_log_contract(streams: Mapping[str, Sequence[str]], source: str) -> LogGuess:
    """The log section's values from a sample of lines per stream (pure; unit-tested)."""
    parsed = {name: _json_objects(lines) for name, lines in streams.items()}
    stream = max(parsed, key=lambda s: (len(parsed[s][0]), s == "stdout")) if parsed else "stdout"
    records, total = parsed.get(stream, ([], 0))
    guess = LogGuess(source, stream, total, len(records))
    if not records:
        guess.notes.append(
            f"no JSON objects among {total} line(s) of {stream}: LOG-001 will fail unless the logs are JSON"
            if total
            else "the sample is empty: the log section keeps its defaults"
        )
        return guess
    if total > len(records):
        guess.notes.append(
            f"{total - len(records)} of {total} line(s) are not JSON objects: LOG-001 fails on them"
        )
    for canonical, candidates in FIELD_CANDIDATES.items():
        scores = [(sum(1 for r in records if _get_field(r, c) is not None), c) for c in candidates]
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
    known = {lv.casefold() for lv in DEFAULT_LEVELS}
    unknown = [lv for lv in guess.levels_seen if lv.casefold() not in known and _SAFE_KEY.match(lv)]
    if unknown:
        guess.levels = [*DEFAULT_LEVELS, *sorted({lv.upper() for lv in unknown})]
        guess.notes.append(f"levels outside DEBUG…CRITICAL seen and allowed: {', '.join(unknown)}")
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
    needed = [fields.get(k) for k in ("method", "path", "status_code", "message")]
    if any(n is None for n in needed):
        return None
    method, path, status, message = (str(n) for n in needed)
    messages = Counter(
        str(_get_field(r, message))
        for r in records
        if all(_get_field(r, f) is not None for f in (method, path, status))
    )
    if not messages:
        return None
    best = messages.most_common(1)[0][0]
    return best if _SAFE_KEY.match(best) else None


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
    today: dt.date,
) -> str:
    """The profile's YAML text with the comments that say what was found."""
    w: list[str] = [
        f"# Conformance profile written by `conformance init` on {today.isoformat()} from {found.url}.",
        "# A starting point: each value is what init observed (see the comments). Review it, commit it next",
        "# to the service, and check it with `conformance validate` and `conformance run --profile`.",
        "version: 1",
        "",
        "service:",
        f"  name: {_q(name)}",
    ]
    if command:
        w.append("  # argv that starts the service; {port} is the free port the harness picks for each run")
        w.append(f"  command: [{', '.join(_q(t) for t in command)}]")
    else:
        w += [
            "  # FILL IN: the argv that starts the service, {port} where the port goes (no --command given).",
            "  # Until then `conformance validate` says: service: needs a command (local mode) or an image.",
            '  # command: ["./my-service", "--port", "{port}"]',
        ]
    if cwd:
        w.append(f"  cwd: {_q(cwd)}")
    if command and not has_port_placeholder:
        w.append(f"  # the command has no {{port}}: the service listens on {port} as probed")
        w.append(f"  port: {port}")
    else:
        w.append("  port: auto")
    if env:
        w.append("  env:")
        w += [f"    {_q(k)}: {_q(v)}" for k, v in env.items()]
    if found.ready_path:
        w += [
            "  ready:",
            f"    # GET {found.ready_path} answered 200 (preferred: {', '.join(READY_PREFERENCE[:3])} …)",
            f"    path: {_q(found.ready_path)}",
            "    status: 200",
            "    timeout: 30",
        ]
    else:
        w.append(f"  # no health path answered 200 ({', '.join(HEALTH_PATHS)}): set ready.path")
    w.append("")

    if found.metrics_path:
        w += ["metrics:", f"  # {_comment(found.metrics_note)}", f"  path: {_q(found.metrics_path)}"]
        w.append(f"  format: {found.metrics_format}")
        if found.metrics:
            skipped = (
                f"; {found.runtime_metrics} runtime metric(s) ({', '.join(RUNTIME_PREFIXES[:3])}…) left out"
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
    else:
        w += [f"# metrics: {_comment(found.metrics_note)}", ""]

    w += _render_logs(logs)

    if found.correlation_header:
        w += [
            "correlation:",
            f"  # responses carry {found.correlation_header}",
            f"  header: {_q(found.correlation_header)}",
            "",
        ]
    else:
        w += [f"# correlation: no response carried {' or '.join(CORRELATION_HEADERS)}; the default stays", ""]

    w += [f"# {_comment(found.openapi_note)}" if found.openapi_note else "", "endpoints:"]
    live = [e for e in found.endpoints if not e.commented]
    for e in found.endpoints:
        parts = [f"name: {_q(e.name)}", f"method: {e.method}", f"path: {_q(e.path)}"]
        if e.path_params:
            parts.append(
                "path_params: {" + ", ".join(f"{_q(k)}: {_q(v)}" for k, v in e.path_params.items()) + "}"
            )
        if e.status is not None and e.status != 200 and not e.commented:
            parts.append(f"expect_status: {e.status}")
        line = f"  - {{{', '.join(parts)}}}  # {_comment(e.note)}"
        w.append(f"  # {line.strip()}" if e.commented else line)
    if not live:
        w.append("  # FILL IN: no endpoint answered; list at least one")
        w.append('  - {name: "health", method: GET, path: "/health"}')
    w.append("")

    if found.rate_limit_headers:
        w += ["traffic:", f"  # responses carry rate-limit headers ({', '.join(found.rate_limit_headers)})"]
        w.append(f"  # {_comment(found.client_header_note)}")
        if found.client_header:
            w.append(f"  client_header: {_q(found.client_header)}")
        else:
            w.append("  # client_header: X-API-Key   # the header the limiter keys clients by, if any")
        w.append("")

    probe = next((e for e in live if e.method == "GET" and not e.rate_limited), None)
    if probe is not None or not found.correlation_uuid:
        w.append("traces:")
        if probe is not None:
            w.append(
                "  # a traced GET without rate-limit headers: the trace-context probes send ~1,000 requests"
            )
            w.append(f"  probe_endpoint: {_q(probe.name)}")
        if not found.correlation_uuid:
            w.append("  # generated correlation ids are not UUIDs")
            w.append("  correlation_id_format: any")
        w.append("")

    w += [
        "requirements:",
        "  # Families init cannot configure from probes; the run reports them as skipped, with the reason.",
        "  not_applicable:",
    ]
    for key, (why, todo) in UNCONFIGURED.items():
        ids = [r.id for r in all_requirements() if key in (r.id, r.id.partition("-")[0])]
        if not ids:
            continue
        w.append(f"    # {todo}, then remove {'these lines' if len(ids) > 1 else 'this line'}")
        w += [f"    {rid}: {_q(why)}" for rid in ids]
    return "\n".join(w) + "\n"


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
        f"  # sampled {logs.lines} line(s) of {logs.stream} from {_comment(logs.source)}: "
        f"{logs.json_objects} JSON object(s)",
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


def _init(args: argparse.Namespace) -> int:
    base_url, port = _loopback_base(args.url)
    out = Path(args.out)
    if out.exists() and not args.force:
        raise UsageError(f"--out: {out} exists; pass --force to overwrite it")
    env = _env_pairs(args.env)
    command, has_port = _command_argv(args.command, port) if args.command else (None, False)
    try:
        with httpx.Client(base_url=base_url, timeout=args.timeout, trust_env=False) as client:
            found = probe_service(
                client, base_url, metrics_path=args.metrics_path, openapi_path=args.openapi_path
            )
    except HarnessError as exc:
        print(f"conformance: error: {exc}", file=sys.stderr)
        return EXIT_HARNESS_ERROR
    # Read after probing: the probes' own requests are in the sample (one-per-request records).
    logs: LogGuess | None = None
    if args.log_file:
        logs = guess_log_contract({"stdout": read_log_file(Path(args.log_file))}, args.log_file)
        logs.notes.append("a file does not say which stream it came from: stdout assumed")
    elif args.log_command:
        logs = guess_log_contract(run_log_command(args.log_command), f"`{args.log_command}`")
    name = _slug(
        args.name or (logs.service_name if logs and logs.service_name else "") or found.title or "service"
    )
    cwd = None
    if args.cwd:
        cwd_path = Path(args.cwd).resolve()
        if not cwd_path.is_dir():
            raise UsageError(f"--cwd: not a directory: {args.cwd}")
        cwd = os.path.relpath(cwd_path, out.resolve().parent)
    text = render_profile(
        found,
        logs,
        name=name,
        command=command,
        has_port_placeholder=has_port,
        port=port,
        cwd=cwd,
        env=env,
        today=dt.datetime.now(tz=dt.UTC).date(),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    live = [e for e in found.endpoints if not e.commented]
    print(
        f"conformance: wrote {out}: {len(live)} endpoint(s), {len(found.metrics)} required metric(s), "
        f"logs {'from ' + logs.source if logs else 'not sampled'}"
    )
    if command is None:
        print(
            f"conformance: {out} has no service.command yet (pass --command next time): fill it in; until "
            "then `conformance validate` fails with 'service: needs a command (local mode) or an image'"
        )
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


def _validate_without_command(out: Path, text: str) -> None:
    """Everything but the missing command must validate (a placeholder is checked in a copy)."""
    filled = text.replace('  # command: ["./my-service", "--port", "{port}"]', '  command: ["true"]', 1)
    with tempfile.TemporaryDirectory(prefix="obsconform-init-") as tmp:
        copy = Path(tmp) / out.name
        copy.write_text(filled, encoding="utf-8")
        cwd_line = re.search(r"^  cwd: (.*)$", filled, re.MULTILINE)
        if cwd_line:  # a relative cwd is relative to the real profile's directory
            absolute = (out.resolve().parent / json.loads(cwd_line.group(1))).resolve()
            copy.write_text(
                filled.replace(cwd_line.group(0), f"  cwd: {_q(str(absolute))}"), encoding="utf-8"
            )
        try:
            load_profile(copy)
        except ProfileError as exc:
            raise HarnessError(f"the written profile has another problem: {exc}") from None
