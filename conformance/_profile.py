"""Conformance profiles: one pipeline from file to typed objects.

file → YAML (no aliases, size-capped) → JSON Schema (``schemas/profile.schema.json``)
→ typed, defaulted dataclasses → CLI overrides, applied only when given.

Every problem is a :class:`ProfileError` whose message reads
``conformance.yaml: rate_limits[2].limit: must be integer, got 'ten'``.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource

from conformance._exceptions import ProfileError

__all__ = [
    "CANONICAL_LOG_FIELDS",
    "Endpoint",
    "LogContract",
    "MetricsConfig",
    "Profile",
    "PrometheusConfig",
    "ServiceConfig",
    "load_profile",
    "parse_byte_size",
    "schema_path",
]

#: Profiles larger than this are refused before parsing (a profile is a page, not a data set).
MAX_PROFILE_BYTES = 1024 * 1024

CANONICAL_LOG_FIELDS = (
    "timestamp",
    "level",
    "logger",
    "message",
    "correlation_id",
    "trace_id",
    "span_id",
    "method",
    "path",
    "status_code",
    "duration_ms",
)

DEFAULT_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

MiB = 1024 * 1024
#: Default limits, named as Prometheus and the Collector name theirs (README "Guarantees").
DEFAULT_LOGS_MAX_BYTES = 64 * MiB
#: A parsed record costs ~1 KiB: lines, not bytes, bound the memory short lines take.
DEFAULT_LOGS_MAX_LINES = 100_000
DEFAULT_MAX_LINE_BYTES = 1 * MiB
DEFAULT_SAMPLE_LIMIT = 200_000
DEFAULT_BODY_SIZE_LIMIT = 50 * MiB
DEFAULT_SCRAPE_TIMEOUT = 10.0
DEFAULT_MAX_REQUEST_BODY_SIZE = 4 * MiB

# Base 2 throughout, as Prometheus reads body_size_limit (alecthomas/units Base2Bytes: 1KB = 1024B).
_SIZE_UNITS = {"B": 1, "KB": 1024, "KiB": 1024, "MB": MiB, "MiB": MiB, "GB": 1024 * MiB, "GiB": 1024 * MiB}
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)")


def parse_byte_size(value: int | str) -> int:
    """``52428800``, ``"50MB"`` or ``"64MiB"`` → bytes (the schema has checked the form)."""
    if isinstance(value, int):
        return value
    match = _SIZE.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"not a byte size: {value!r}")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


def schema_path(name: str) -> Path:
    """Path of a JSON Schema shipped with the harness (``schemas/`` in the repo).

    Installed, the schemas are the package ``conformance.schemas``; imported
    straight from a source checkout (``python -m conformance.cli`` in the repo
    root shadows the installed package) they are the repo's ``schemas/``.
    """
    try:
        return Path(str(resources.files("conformance.schemas").joinpath(name)))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[1] / "schemas" / name


@cache
def _load_schema(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(schema_path(name).read_text(encoding="utf-8"))
    return data


@cache
def _schema_registry() -> Registry[Any]:
    """Every shipped schema by its ``$id``, so the profile schema's per-section
    ``$ref``s (``profile-metrics.schema.json`` …) resolve without network."""
    directory = schema_path("profile.schema.json").parent
    resources = []
    for file in sorted(directory.glob("*.schema.json")):
        contents = json.loads(file.read_text(encoding="utf-8"))
        resources.append((contents["$id"], Resource.from_contents(contents)))
    return Registry().with_resources(resources)


def profile_validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(_load_schema("profile.schema.json"), registry=_schema_registry())


@dataclass(frozen=True, slots=True)
class ReadyProbe:
    path: str = "/health"
    status: int = 200
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    name: str
    command: tuple[str, ...] = ()
    cwd: Path | None = None
    port: int | None = None  # None = pick a free port
    image: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: tuple[str, ...] = ()
    ready: ReadyProbe = field(default_factory=ReadyProbe)
    shutdown_timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    path: str = "/metrics"
    port: int | None = None
    separate_port: bool = False
    format: str = "prometheus-text"
    bearer_token_env: str | None = None
    #: False when the profile declares that the service serves no Prometheus metrics.
    exposed: bool = True
    #: Where the MET requirements read the service's metrics: its own exposition
    #: (``exposition``), or the collector's prometheus exporter of what it pushes (``otlp``).
    source: str = "exposition"
    #: Seconds from the first request the run waits for the first OTLP metric to reach
    #: the exporter (``source: otlp``).
    push_timeout: float = 15.0

    @property
    def scraped_from_service(self) -> bool:
        """Whether Prometheus and the harness scrape the service's own endpoint."""
        return self.exposed and self.source == "exposition"


@dataclass(frozen=True, slots=True)
class TelemetryConfig:
    otlp_protocol: str = "http/protobuf"
    service_name: str = ""
    timeout: float = 15.0
    #: False when the profile declares that the service exports no spans.
    spans: bool = True
    #: Largest OTLP request the harness's own receiver accepts, after decompression.
    max_request_body_size: int = DEFAULT_MAX_REQUEST_BODY_SIZE


#: Requirements about exported spans alone; ``telemetry.spans: false`` makes them not
#: applicable (the propagation requirements are then decided from the logs).
SPAN_ONLY_REQUIREMENTS = (
    *("TRC-001", "TRC-003", "TRC-012", "TRC-013", "PII-002"),
    *(f"SEM-{n:03d}" for n in (1, 2, 3, 5)),
)
NO_SPANS_REASON = "the profile declares that the service exports no spans (telemetry.spans: false)"
#: Requirements about a scraped Prometheus exposition; ``metrics.exposed: false`` makes them
#: not applicable (and Prometheus is not pointed at the service). PII-003 is not among them:
#: it searches the metric points a service pushes over OTLP as well as the exposition.
METRICS_ONLY_REQUIREMENTS = (*(f"MET-{n:03d}" for n in range(1, 12)), "PII-004", "RL-008")
NO_METRICS_REASON = (
    "the profile declares that the service serves no Prometheus metrics (metrics.exposed: false)"
)

NOT_INTERNAL_REASON = "the profile does not declare /metrics internal (metrics.internal: false)"

#: What OpenTelemetry's logging integrations write outside a span: Python's writes "0",
#: others the all-zero ids of an invalid span context.
DEFAULT_NO_TRACE_VALUES = frozenset({"0", "0" * 32, "0" * 16})


@dataclass(frozen=True, slots=True)
class LogContract:
    """What the service's log stream must look like, in the service's own names."""

    #: ``stdout``, ``stderr``, or ``otlp``: the log records the service exports over OTLP.
    stream: str = "stdout"
    schema: Path | None = None
    #: Replaces the built-in request_completed schema (LOG-003); applied to the raw record.
    request_completed_schema: Path | None = None
    fields: Mapping[str, str] = field(default_factory=lambda: {f: f for f in CANONICAL_LOG_FIELDS})
    required_fields: tuple[str, ...] = ("timestamp", "level", "logger", "message")
    levels: tuple[str, ...] = DEFAULT_LEVELS
    level_case: str = "upper"
    trace_id_format: str = "w3c-hex"
    request_completed_message: str = "request_completed"
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    #: Most bytes of each captured stream kept; the rest is counted and dropped.
    max_bytes: int = DEFAULT_LOGS_MAX_BYTES
    #: Most lines of a stream the log requirements parse.
    max_lines: int = DEFAULT_LOGS_MAX_LINES
    #: trace_id values meaning "no active trace" (lines outside a request): never a
    #: malformed id, never joined to a request.
    no_trace_values: frozenset[str] = DEFAULT_NO_TRACE_VALUES


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    path: str
    method: str = "GET"
    path_params: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    has_json: bool = False
    expect_status: tuple[int, ...] = (200,)
    traced: bool = True

    def concrete_path(self) -> str:
        """The template with its parameters filled in, e.g. ``/users/42``."""
        path = self.path
        for key, value in self.path_params.items():
            path = path.replace("{" + key + "}", str(value))
        return path


@dataclass(frozen=True, slots=True)
class PrometheusConfig:
    scrape_interval: float = 1.0
    evaluation_interval: float = 1.0
    rule_files: tuple[Path, ...] = ()
    rule_tests: tuple[Path, ...] = ()
    #: Job name of the service's scrape target (rules select ``up{job=...}``).
    job: str = "service"
    #: Samples one scrape of the service may carry (0: no limit).
    sample_limit: int = DEFAULT_SAMPLE_LIMIT
    #: Bytes one scrape of the service may carry (uncompressed).
    body_size_limit: int = DEFAULT_BODY_SIZE_LIMIT
    #: Deadline of one scrape of the service, headers to last byte.
    scrape_timeout: float = DEFAULT_SCRAPE_TIMEOUT


@dataclass(frozen=True, slots=True)
class Profile:
    """A validated profile; paths are absolute."""

    path: Path
    service: ServiceConfig
    metrics: MetricsConfig
    telemetry: TelemetryConfig
    logs: LogContract
    correlation_header: str
    endpoints: tuple[Endpoint, ...]
    requests_per_endpoint: int
    request_timeout: float
    prometheus: PrometheusConfig
    not_applicable: Mapping[str, str]
    client_header: str | None = None
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)
    #: Typed family sections by key (see ``conformance._sections``).
    sections: Mapping[str, Any] = field(repr=False, default_factory=dict)

    def section(self, key: str) -> Any:
        """The parsed family section ``key`` (its defaults when the profile omits it)."""
        return self.sections[key]

    @property
    def directory(self) -> Path:
        return self.path.parent

    def with_overrides(
        self, *, service_command: str | Sequence[str] | None = None, service_port: int | None = None
    ) -> Profile:
        """Apply CLI overrides; ``None`` means "not given" and keeps the profile's value."""
        service = self.service
        if service_command is not None:
            argv = shlex.split(service_command) if isinstance(service_command, str) else list(service_command)
            if not argv:
                raise ProfileError("--service-command", "", "must not be empty")
            service = replace(service, command=tuple(argv))
        if service_port is not None:
            if not 1 <= service_port <= 65535:
                raise ProfileError("--service-port", "", f"must be a port number 1-65535, got {service_port}")
            service = replace(service, port=service_port)
        return replace(self, service=service)


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors/aliases: they buy a profile nothing and
    are how "billion laughs" YAML bombs blow up memory."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.constructor.ConstructorError(
                None, None, "YAML aliases (*name) are not allowed in profiles", event.start_mark
            )
        return super().compose_node(parent, index)


def _format_path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


_TYPE_NAMES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "object": "a mapping",
    "array": "a list",
    "boolean": "true or false",
    "null": "null",
}


def _describe(instance: Any) -> str:
    text = json.dumps(instance, default=str) if not isinstance(instance, str) else repr(instance)
    return text if len(text) <= 60 else text[:57] + "..."


def _schema_problem(error: jsonschema.ValidationError) -> tuple[str, str]:
    """Turn a jsonschema error into (path, problem) in the profile's own words."""
    path = list(error.absolute_path)
    validator = error.validator
    # types-jsonschema types these as "X | Unset"; a raised error always has them set.
    value: Any = error.validator_value
    schema: Any = error.schema
    if validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        key = extra[0] if extra else "?"
        hint = f"; allowed: {', '.join(allowed)}" if allowed else ""
        return _format_path([*path, key]), f"unknown key{hint}"
    if validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        key = missing[0] if missing else "?"
        return _format_path([*path, key]), "is required"
    if validator == "type":
        expected = value
        names = [expected] if isinstance(expected, str) else list(expected)
        want = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        return _format_path(path), f"must be {want}, got {_describe(error.instance)}"
    if validator == "enum":
        options = ", ".join(str(o) for o in value)
        return _format_path(path), f"must be one of {options}; got {_describe(error.instance)}"
    if validator == "const":
        return _format_path(path), f"must be {_describe(value)}, got {_describe(error.instance)}"
    if validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        words = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
        return _format_path(path), f"must be {words[str(validator)]} {value}, got {error.instance}"
    if validator == "pattern":
        return _format_path(path), f"{_describe(error.instance)} does not match {value}"
    if validator == "oneOf" and error.context:
        # A branch whose type fits but whose constraint fails says most ("must be <= 65535");
        # when no branch's type fits, name the alternatives ("an integer or 'auto'").
        fitting = [e for e in error.context if e.validator not in ("type", "const")]
        if fitting:
            return _schema_problem(fitting[0])
        wants = []
        for e in error.context:
            sub: Any = e.validator_value
            if e.validator == "const":
                wants.append(_describe(sub))
            else:
                names = [sub] if isinstance(sub, str) else list(sub)
                wants.append(" or ".join(_TYPE_NAMES.get(n, n) for n in names))
        return _format_path(path), f"must be {' or '.join(wants)}, got {_describe(error.instance)}"
    if validator == "minItems":
        return _format_path(path), f"must have at least {value} item(s)"
    return _format_path(path), error.message


def _read_yaml(path: Path, display: str) -> Any:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ProfileError(display, "", "file not found") from None
    except OSError as exc:
        raise ProfileError(display, "", f"cannot read: {exc.strerror}") from None
    if not path.is_file():
        raise ProfileError(display, "", "not a regular file")
    if size > MAX_PROFILE_BYTES:
        raise ProfileError(display, "", f"file is {size} bytes; profiles are limited to {MAX_PROFILE_BYTES}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileError(display, "", f"not UTF-8 text (byte {exc.start})") from None
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        raise ProfileError(display, where, f"invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ProfileError(display, "", f"invalid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ProfileError(display, "", "invalid YAML: nested too deeply") from None


def load_profile(path: str | Path) -> Profile:
    """Load, validate and type a profile; raise :class:`ProfileError` on any problem."""
    path = Path(path)
    display = str(path)
    data = _read_yaml(path, display)
    if data is None:
        raise ProfileError(display, "", "file is empty")
    if not isinstance(data, dict):
        raise ProfileError(display, "", f"top level must be a mapping, got {type(data).__name__}")
    errors = sorted(
        profile_validator().iter_errors(data),
        key=lambda e: (list(map(str, e.absolute_path)), str(e.validator)),
    )
    if errors:
        where, problem = _schema_problem(errors[0])
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ProfileError(display, where, problem + more)
    profile = _build(path.resolve(), display, data)
    return replace(profile, sections=_parse_sections(profile, display, data))


def _parse_sections(profile: Profile, display: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Typed views of the family sections (``traces``, ``rate_limits`` …).

    Each module in ``conformance._sections`` declares ``KEY`` and
    ``parse(profile, value, display) -> object`` and raises ProfileError for
    problems a schema cannot express (a path that does not exist, an
    endpoint name that is not in ``endpoints``).
    """
    from conformance import _sections

    parsed: dict[str, Any] = {}
    for info in sorted(pkgutil.iter_modules(_sections.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{_sections.__name__}.{info.name}")
        key = module.KEY
        parsed[key] = module.parse(profile, data.get(key), display)
    return parsed


#: In a profile's file paths: the schemas shipped with the harness (``schemas/`` of a checkout).
HARNESS_SCHEMAS = "{harness_schemas}"


def _existing_file(base: Path, value: str, display: str, where: str) -> Path:
    if value.startswith(HARNESS_SCHEMAS):
        value = str(schema_path("profile.schema.json").parent) + value[len(HARNESS_SCHEMAS) :]
    resolved = (base / value).resolve()
    if not resolved.is_file():
        raise ProfileError(display, where, f"file not found: {value} (looked at {resolved})")
    return resolved


def _build(path: Path, display: str, data: dict[str, Any]) -> Profile:
    base = path.parent
    svc = data["service"]
    if "command" not in svc and "image" not in svc:
        raise ProfileError(display, "service", "needs a command (local mode) or an image (container mode)")
    cwd = None
    if "cwd" in svc:
        cwd = (base / svc["cwd"]).resolve()
        if not cwd.is_dir():
            raise ProfileError(display, "service.cwd", f"directory not found: {svc['cwd']} (looked at {cwd})")
    ready = svc.get("ready", {})
    service = ServiceConfig(
        name=svc["name"],
        command=tuple(svc.get("command", ())),
        cwd=cwd,
        port=None if svc.get("port", "auto") == "auto" else int(svc["port"]),
        image=svc.get("image"),
        env={k: _env_str(v) for k, v in svc.get("env", {}).items()},
        secret_env=tuple(svc.get("secret_env", ())),
        ready=ReadyProbe(
            path=ready.get("path", "/health"),
            status=ready.get("status", 200),
            timeout=float(ready.get("timeout", 30.0)),
        ),
        shutdown_timeout=float(svc.get("shutdown_timeout", 10.0)),
    )
    for i, name in enumerate(service.secret_env):
        if name not in service.env:
            raise ProfileError(display, f"service.secret_env[{i}]", f"{name!r} is not a key of service.env")

    met = data.get("metrics", {})
    if met.get("source") == "otlp" and met.get("exposed") is False:
        raise ProfileError(
            display,
            "metrics.source",
            "otlp examines the metrics the service pushes over OTLP, while metrics.exposed: false "
            "declares it has none to examine; keep one of them",
        )
    metrics = MetricsConfig(
        path=met.get("path", "/metrics"),
        port=None if met.get("port", "auto") == "auto" else int(met["port"]),
        separate_port="port" in met,
        format=met.get("format", "prometheus-text"),
        bearer_token_env=met.get("bearer_token_env"),
        exposed=bool(met.get("exposed", True)),
        source=str(met.get("source", "exposition")),
        push_timeout=float(met.get("push_timeout", 15.0)),
    )
    tel = data.get("telemetry", {})
    telemetry = TelemetryConfig(
        otlp_protocol=tel.get("otlp_protocol", "http/protobuf"),
        service_name=tel.get("service_name", service.name),
        timeout=float(tel.get("timeout", 15.0)),
        spans=bool(tel.get("spans", True)),
        max_request_body_size=parse_byte_size(
            tel.get("max_request_body_size", DEFAULT_MAX_REQUEST_BODY_SIZE)
        ),
    )
    logs = _build_logs(base, display, data.get("logs", {}))

    endpoints: list[Endpoint] = []
    seen: dict[str, int] = {}
    for i, ep in enumerate(data.get("endpoints", [])):
        if ep["name"] in seen:
            raise ProfileError(display, f"endpoints[{i}].name", f"duplicate of endpoints[{seen[ep['name']]}]")
        seen[ep["name"]] = i
        params = {k: str(v) for k, v in ep.get("path_params", {}).items()}
        placeholders = set(re.findall(r"{([^}]+)}", ep["path"]))
        missing = sorted(placeholders - set(params))
        if missing:
            raise ProfileError(display, f"endpoints[{i}].path_params", f"no value for {{{missing[0]}}}")
        expect = ep.get("expect_status", 200)
        endpoints.append(
            Endpoint(
                name=ep["name"],
                path=ep["path"],
                method=ep.get("method", "GET"),
                path_params=params,
                query=dict(ep.get("query", {})),
                headers=dict(ep.get("headers", {})),
                json=ep.get("json"),
                has_json="json" in ep,
                expect_status=tuple(expect) if isinstance(expect, list) else (expect,),
                traced=ep.get("traced", True),
            )
        )
    traffic = data.get("traffic", {})
    prom = data.get("prometheus", {})
    prometheus = PrometheusConfig(
        scrape_interval=float(prom.get("scrape_interval", 1.0)),
        evaluation_interval=float(prom.get("evaluation_interval", 1.0)),
        job=str(prom.get("job", "service")),
        sample_limit=int(prom.get("sample_limit", DEFAULT_SAMPLE_LIMIT)),
        body_size_limit=parse_byte_size(prom.get("body_size_limit", DEFAULT_BODY_SIZE_LIMIT)),
        scrape_timeout=float(prom.get("scrape_timeout", DEFAULT_SCRAPE_TIMEOUT)),
        rule_files=tuple(
            _existing_file(base, f, display, f"prometheus.rule_files[{i}]")
            for i, f in enumerate(prom.get("rule_files", []))
        ),
        rule_tests=tuple(
            _existing_file(base, f, display, f"prometheus.rule_tests[{i}]")
            for i, f in enumerate(prom.get("rule_tests", []))
        ),
    )
    return Profile(
        path=path,
        service=service,
        metrics=metrics,
        telemetry=telemetry,
        logs=logs,
        correlation_header=data.get("correlation", {}).get("header", "X-Correlation-ID"),
        endpoints=tuple(endpoints),
        requests_per_endpoint=int(traffic.get("requests_per_endpoint", 2)),
        request_timeout=float(traffic.get("request_timeout", 10.0)),
        prometheus=prometheus,
        not_applicable={
            **({} if telemetry.spans else dict.fromkeys(SPAN_ONLY_REQUIREMENTS, NO_SPANS_REASON)),
            **({} if metrics.exposed else dict.fromkeys(METRICS_ONLY_REQUIREMENTS, NO_METRICS_REASON)),
            # MET-011 asks something only of a service whose profile says /metrics is internal.
            **({} if met.get("internal", False) else {"MET-011": NOT_INTERNAL_REASON}),
            **data.get("requirements", {}).get("not_applicable", {}),
        },
        client_header=traffic.get("client_header"),
        raw=data,
    )


def _build_logs(base: Path, display: str, logs: dict[str, Any]) -> LogContract:
    fields = {f: f for f in CANONICAL_LOG_FIELDS}
    fields.update(logs.get("fields", {}))
    return LogContract(
        stream=logs.get("stream", "stdout"),
        schema=_schema_file(base, display, logs, "schema"),
        request_completed_schema=_schema_file(base, display, logs, "request_completed_schema"),
        fields=fields,
        required_fields=tuple(logs.get("required_fields", ("timestamp", "level", "logger", "message"))),
        levels=tuple(logs.get("levels", DEFAULT_LEVELS)),
        level_case=logs.get("level_case", "upper"),
        trace_id_format=logs.get("trace_id_format", "w3c-hex"),
        request_completed_message=logs.get("request_completed_message", "request_completed"),
        max_line_bytes=int(logs.get("max_line_bytes", DEFAULT_MAX_LINE_BYTES)),
        max_bytes=parse_byte_size(logs.get("max_bytes", DEFAULT_LOGS_MAX_BYTES)),
        max_lines=int(logs.get("max_lines", DEFAULT_LOGS_MAX_LINES)),
        no_trace_values=DEFAULT_NO_TRACE_VALUES | frozenset(logs.get("no_trace_values", ())),
    )


def _schema_file(base: Path, display: str, logs: Mapping[str, Any], key: str) -> Path | None:
    """``logs.<key>``: an existing file holding a valid JSON Schema, or None when not given."""
    if key not in logs:
        return None
    schema = _existing_file(base, logs[key], display, f"logs.{key}")
    try:
        custom = json.loads(schema.read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator.check_schema(custom)
    except (ValueError, jsonschema.SchemaError) as exc:
        first = str(exc).splitlines()[0]
        raise ProfileError(
            display, f"logs.{key}", f"{logs[key]} is not a valid JSON Schema: {first}"
        ) from None
    return schema


def _env_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
