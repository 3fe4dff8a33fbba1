"""LOG-*: the service's log stream is structured, typed and complete.

Pure: log lines (bytes as captured) and the profile's log contract in,
findings out. Records are first mapped from the service's field names to the
canonical ones (``logs.fields``), so one set of checks serves ``level`` and
``severity``, ``message`` and ``event`` alike.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from operator import itemgetter
from typing import Any

import jsonschema

from conformance._gc import cyclic_gc_paused
from conformance._mask import excerpt
from conformance._model import Finding, Level
from conformance._profile import LogContract
from conformance._requirements import requirement
from conformance.checks._schemafast import compile_passes
from conformance.telemetry import HttpExchange, LogLine, OtlpLogLine, trace_hex

__all__ = [
    "LOG_001",
    "LOG_002",
    "LOG_003",
    "LOG_004",
    "LOG_005",
    "LOG_006",
    "LOG_007",
    "LOG_008",
    "LOG_009",
    "ParsedLogLine",
    "ProvokedWindow",
    "attribute_provoked",
    "check_json_lines",
    "check_levels",
    "check_provoked_lines",
    "check_record_schema",
    "check_request_completed",
    "check_request_coverage",
    "check_route_templates",
    "check_timestamps",
    "check_trace_ids",
    "get_field",
    "parse_log_lines",
]

LOG_001 = requirement(
    "LOG-001",
    Level.MUST,
    "Every line on the log stream is one JSON object in UTF-8",
    source="seed 000 §Middleware 2 'Structured JSON Logging': all logs in JSON format",
)
LOG_002 = requirement(
    "LOG-002",
    Level.MUST,
    "Every record validates against the log-record schema",
    source="seed 000 §Middleware 2 'Log format'; schemas/log-record.schema.json",
)
LOG_003 = requirement(
    "LOG-003",
    Level.MUST,
    "request_completed records carry correlation_id, trace_id, span_id, method, path, status_code, "
    "duration_ms",
    source="seed 000 §Middleware 2 'Log format' and seed 001 §Structured Logging; "
    "schemas/log-request-completed.schema.json",
)
LOG_004 = requirement(
    "LOG-004",
    Level.MUST,
    "Timestamps are RFC 3339 date-times with a time zone",
    source="RFC 3339 §5.6; seed 000 log example '2025-12-02T10:30:45.123Z'",
)
LOG_005 = requirement(
    "LOG-005",
    Level.MUST,
    "The level is one of the allowed levels",
    source="seed 000 LOG_LEVEL: DEBUG, INFO, WARNING, ERROR, CRITICAL",
)
LOG_006 = requirement(
    "LOG-006",
    Level.MUST,
    "trace_id and span_id are W3C trace-context ids (lowercase hex, not all zero)",
    source="W3C Trace Context §3.2.2.3 trace-id, §3.2.2.4 parent-id; seed 001 trace-log correlation",
)
LOG_007 = requirement(
    "LOG-007",
    Level.MUST,
    "Every request the service answered has exactly one request_completed record",
    source="seed 000 §Middleware 2 'Automatic request/response logging'",
)
LOG_008 = requirement(
    "LOG-008",
    Level.SHOULD,
    "request_completed.path is the route template, not the raw URL path",
    source="seed 000 log example path '/chat/completions'; seed 002 'full_path can include IDs'",
)

LOG_009 = requirement(
    "LOG-009",
    Level.SHOULD,
    "Lines written in answer to malformed requests keep the log format (one JSON object per line)",
    source="seed 000 §Middleware 2 'Structured JSON Logging': all logs in JSON format, including the "
    "server framework's own warnings about requests it rejects",
)

_W3C_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_W3C_SPAN_ID = re.compile(r"^[0-9a-f]{16}$")
_GCP_TRACE = re.compile(r"^projects/[^/]+/traces/([0-9a-f]{32})$")
# RFC 3339 §5.6 date-time. Hand-written because jsonschema's "date-time" format
# is only enforced when the optional rfc3339-validator is installed, and
# silently passes otherwise; we also want to name what is wrong.
_RFC3339 = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[Tt](?P<time>\d{2}:\d{2}:\d{2})(?P<frac>\.\d+)?(?P<tz>[Zz]|[+-]\d{2}:\d{2})?$"
)


@dataclass(frozen=True, slots=True)
class ParsedLogLine:
    """A captured line and, when it is a JSON object, its canonical record.

    ``no_trace`` is set when the record's trace id is a "no active trace"
    placeholder (``logs.no_trace_values``): the canonical record then carries
    no trace_id/span_id, so the line is judged for format only and never
    joined to a request. ``provoked_by`` names the harness probe the line
    answered (see :func:`attribute_provoked`).
    """

    line: LogLine
    raw_record: Mapping[str, Any] | None
    record: Mapping[str, Any] | None
    problem: str = ""
    no_trace: bool = False
    provoked_by: str = ""

    def evidence(self, **extra: Any) -> dict[str, Any]:
        out = {
            "stream": self.line.stream,
            "line": self.line.number,  # an OTLP log record's number for stream "otlp"
            "excerpt": excerpt(self.line.text()),
        }
        if isinstance(self.line, OtlpLogLine):
            out["time"] = self.line.time
        if self.provoked_by:
            out["provoked_by"] = self.provoked_by
        return {**out, **extra}


@dataclass(frozen=True, slots=True)
class ProvokedWindow:
    """Lines ``first``…``last`` (1-based, inclusive) of ``stream`` were written
    while the harness's malformed ``probe`` was the only traffic in flight."""

    stream: str
    first: int
    last: int
    probe: str

    def covers(self, line: LogLine) -> bool:
        return line.stream == self.stream and self.first <= line.number <= self.last


def attribute_provoked(
    parsed: Sequence[ParsedLogLine], windows: Sequence[ProvokedWindow]
) -> tuple[list[ParsedLogLine], list[ParsedLogLine]]:
    """Split lines into (normal traffic, provoked by a malformed probe).

    Provoked lines are judged by LOG-009 only, never mixed into the verdicts
    on normal traffic; each keeps the name of its probe as evidence.
    """
    normal: list[ParsedLogLine] = []
    provoked: list[ParsedLogLine] = []
    for p in parsed:
        probe = next((w.probe for w in windows if w.covers(p.line)), "")
        if probe:
            provoked.append(replace(p, provoked_by=probe))
        else:
            normal.append(p)
    return normal, provoked


def get_field(record: Mapping[str, Any], name: str) -> Any:
    """A field by the service's name: a literal key first (GCP's
    ``logging.googleapis.com/trace`` contains dots), else a dotted path."""
    if name in record:
        return record[name]
    node: Any = record
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _canonical(
    raw: Mapping[str, Any], contract: LogContract, mapped_names: frozenset[str] | None = None
) -> tuple[dict[str, Any], bool]:
    """The record in canonical names, and whether its trace id said "no active trace".

    ``mapped_names`` (``frozenset(contract.fields.values())``) when the caller
    maps many records with one contract.
    """
    fields = contract.fields
    if mapped_names is None:
        mapped_names = frozenset(fields.values())
    record = {k: v for k, v in raw.items() if k not in mapped_names}
    for canonical, name in fields.items():
        value = get_field(raw, name)
        if value is not None or name in raw:
            record[canonical] = value
    return record, _drop_no_trace(record, contract)


def _drop_no_trace(record: dict[str, Any], contract: LogContract) -> bool:
    """Take a "no active trace" placeholder id out of ``record``; whether there was one."""
    no_trace = "trace_id" in record and _is_no_trace(record["trace_id"], contract)
    if no_trace:
        del record["trace_id"]
        if "span_id" in record and _is_no_trace(record["span_id"], contract):
            del record["span_id"]
    return no_trace


def _is_no_trace(value: Any, contract: LogContract) -> bool:
    """``"0"``, all zeros, or a profile placeholder, also inside GCP's
    ``projects/P/traces/<id>`` (and a JSON ``0``)."""
    if value is None or isinstance(value, bool):
        return False
    text = str(value).strip()
    if contract.trace_id_format == "gcp-resource":
        text = text.rsplit("/", 1)[-1]
    return text in contract.no_trace_values


def parse_log_lines(lines: Iterable[LogLine], contract: LogContract) -> list[ParsedLogLine]:
    """Decode every line; a line that is not a JSON object keeps the reason."""
    with cyclic_gc_paused():  # every record built here stays alive: no garbage to look for
        return _parse_log_lines(lines, contract)


def _parse_log_lines(lines: Iterable[LogLine], contract: LogContract) -> list[ParsedLogLine]:
    parsed: list[ParsedLogLine] = []
    mapped_names = frozenset(contract.fields.values())
    # Field names without a dot are literal keys (get_field), so a record's canonical keys
    # follow from its keys alone: computed once per key order (_KeyOrder) and cached.
    plain = all("." not in n for n in mapped_names)
    # Every field under its canonical name: the canonical record has the raw record's keys and
    # values (in the raw order), so the raw dict itself serves, unless an id must be dropped.
    identity = plain and all(canonical == name for canonical, name in contract.fields.items())
    orders: dict[tuple[str, ...], _KeyOrder] = {}
    scan = _scan_json
    w3c = contract.trace_id_format != "gcp-resource"
    no_trace_values = contract.no_trace_values
    for line in lines:
        if line.truncated:
            parsed.append(
                ParsedLogLine(line, None, None, f"line longer than {contract.max_line_bytes} bytes")
            )
            continue
        try:
            text = line.raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            parsed.append(ParsedLogLine(line, None, None, f"invalid UTF-8 at byte {exc.start}"))
            continue
        try:
            # json.loads(text), skipping its wrapper when the line is one JSON value from its
            # first character to its last; json.loads decides (and words the error) otherwise.
            try:
                value, end = scan(text, 0)
            except StopIteration:  # nothing to decode at the first character
                end = -1
            if end != len(text):
                if not text or text.isspace():
                    # An OTLP record that could not be rendered is an empty line that says why.
                    problem = getattr(line, "problem", "") or "empty line"
                    parsed.append(ParsedLogLine(line, None, None, problem))
                    continue
                value = json.loads(text)
        except json.JSONDecodeError as exc:
            parsed.append(ParsedLogLine(line, None, None, f"not JSON ({exc.msg} at column {exc.colno})"))
            continue
        except RecursionError:
            parsed.append(ParsedLogLine(line, None, None, "JSON nested too deeply"))
            continue
        if not isinstance(value, dict):
            parsed.append(ParsedLogLine(line, None, None, f"JSON {type(value).__name__}, not an object"))
            continue
        if not plain:
            record, no_trace = _canonical(value, contract, mapped_names)
            parsed.append(ParsedLogLine(line, value, record, "", no_trace))
            continue
        if identity:
            record = value
        else:
            keys = tuple(value)
            order = orders.get(keys)
            if order is None:
                order = _KeyOrder(keys, contract.fields, mapped_names)
                if len(orders) < _KEY_ORDERS_KEPT:
                    orders[keys] = order
            record = dict(zip(order.record_keys, order.values(value), strict=True))
        trace_id = record.get("trace_id")
        # _drop_no_trace, skipped for the usual case: a trace id that is no placeholder.
        if type(trace_id) is str and w3c and trace_id.strip() not in no_trace_values:
            no_trace = False
        else:
            if record is value:
                record = dict(value)  # the raw record keeps its ids
            no_trace = _drop_no_trace(record, contract)
        parsed.append(ParsedLogLine(line, value, record, "", no_trace))
    return parsed


#: Distinct key orders remembered per parse; a log with more (keys made of data) still parses.
_KEY_ORDERS_KEPT = 1024


class _KeyOrder:
    """How :func:`_canonical` maps a record with keys ``keys`` (in that order) when every
    field name is a literal key: the record's keys, in order, and which raw key each takes
    its value from. A canonical key that is also an unmapped raw key appears twice; ``dict``
    keeps the first position and the last value, as :func:`_canonical`'s assignments do."""

    __slots__ = ("record_keys", "values")

    def __init__(self, keys: tuple[str, ...], fields: Mapping[str, str], mapped: frozenset[str]) -> None:
        present = set(keys)
        pairs = [(k, k) for k in keys if k not in mapped]
        pairs += [(canonical, name) for canonical, name in fields.items() if name in present]
        self.record_keys = [k for k, _ in pairs]
        sources = [name for _, name in pairs]
        if len(sources) >= 2:
            self.values: Callable[[Mapping[str, Any]], Iterable[Any]] = itemgetter(*sources)
        else:
            self.values = lambda raw: [raw[name] for name in sources]


_scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _records(parsed: Iterable[ParsedLogLine]) -> Iterable[tuple[ParsedLogLine, Mapping[str, Any]]]:
    for p in parsed:
        if p.record is not None:
            yield p, p.record


def _is_request_completed(record: Mapping[str, Any], contract: LogContract) -> bool:
    return record.get("message") == contract.request_completed_message


def records_of(parsed: Iterable[ParsedLogLine]) -> list[Mapping[str, Any]]:
    """The canonical records (lines that are JSON objects)."""
    return [r for _, r in _records(parsed)]


def request_completed_records(
    parsed: Iterable[ParsedLogLine], contract: LogContract
) -> list[Mapping[str, Any]]:
    return [r for _, r in _records(parsed) if _is_request_completed(r, contract)]


def check_json_lines(parsed: Sequence[ParsedLogLine]) -> list[Finding]:
    """LOG-001."""
    return [
        Finding(LOG_001.id, f"{p.line.where} is {p.problem}", p.evidence())
        for p in parsed
        if p.record is None
    ]


def check_provoked_lines(provoked: Sequence[ParsedLogLine]) -> list[Finding]:
    """LOG-009: lines written in answer to the harness's malformed probes, each
    named by its probe, are JSON objects like every other line."""
    return [
        Finding(
            LOG_009.id,
            f"{p.line.where}, written in answer to the probe {p.provoked_by!r}, is {p.problem}",
            p.evidence(),
        )
        for p in provoked
        if p.record is None
    ]


def _validation_findings(
    req_id: str,
    p: ParsedLogLine,
    instance: Mapping[str, Any],
    validator: jsonschema.protocols.Validator,
    passes: Callable[[Any], bool] | None,
) -> list[Finding]:
    if passes is not None and passes(instance):
        return []  # valid by the precompiled test (_schemafast); jsonschema judges every other record
    out = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        where = "/".join(map(str, error.absolute_path)) or "(record)"
        out.append(Finding(req_id, f"{p.line.where}: {where}: {error.message}", p.evidence(field=where)))
    return out


def check_record_schema(
    parsed: Sequence[ParsedLogLine], contract: LogContract, schema: Mapping[str, Any]
) -> list[Finding]:
    """LOG-002: built-in schema on the canonical record, or the profile's own
    schema (``logs.schema``) on the raw record."""
    if contract.schema is None:
        schema = {**schema, "required": list(contract.required_fields)}
    validator = jsonschema.Draft202012Validator(schema)
    passes = compile_passes(schema) or _never
    raw = contract.schema is not None
    findings: list[Finding] = []
    for p in parsed:
        instance = p.raw_record if raw and p.raw_record is not None else p.record
        if instance is not None and not passes(instance):
            findings += _validation_findings(LOG_002.id, p, instance, validator, None)
    return findings


def check_request_completed(
    parsed: Sequence[ParsedLogLine], contract: LogContract, schema: Mapping[str, Any]
) -> list[Finding]:
    """LOG-003: the built-in schema on the canonical record, or the profile's
    own (``logs.request_completed_schema``) on the raw record."""
    validator = jsonschema.Draft202012Validator(schema)
    passes = compile_passes(schema) or _never
    raw = contract.request_completed_schema is not None
    message = contract.request_completed_message
    findings: list[Finding] = []
    for p in parsed:
        record = p.record
        if record is not None and record.get("message") == message:  # _is_request_completed
            instance = p.raw_record if raw and p.raw_record is not None else record
            if not passes(instance):
                findings += _validation_findings(LOG_003.id, p, instance, validator, None)
    return findings


def _never(instance: Any) -> bool:
    """The fast test of a schema :func:`compile_passes` cannot compile: ask jsonschema."""
    return False


def rfc3339_problem(value: Any) -> str:
    """Why ``value`` is not an RFC 3339 date-time with offset, or ``""``."""
    if not isinstance(value, str):
        return f"is {type(value).__name__}, not a string"
    m = _RFC3339.match(value)
    if not m:
        return "does not match YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)"
    if not m.group("tz"):
        return "has no time zone (add Z or ±HH:MM)"
    tz = m.group("tz")
    normalised = f"{m.group('date')}T{m.group('time')}{m.group('frac') or ''}{'+00:00' if tz in 'Zz' else tz}"
    try:
        # fromisoformat rejects month 13, Feb 30, hour 24 and offsets beyond ±24h.
        datetime.fromisoformat(normalised)
    except ValueError as exc:
        return f"is not a real date-time ({exc})"
    return ""


def check_timestamps(parsed: Sequence[ParsedLogLine]) -> list[Finding]:
    """LOG-004: records without a timestamp are LOG-002's business."""
    findings = []
    for p, record in _records(parsed):
        if "timestamp" not in record:
            continue
        problem = rfc3339_problem(record["timestamp"])
        if problem:
            findings.append(
                Finding(
                    LOG_004.id,
                    f"{p.line.where}: timestamp {record['timestamp']!r} {problem}",
                    p.evidence(field="timestamp"),
                )
            )
    return findings


def check_levels(parsed: Sequence[ParsedLogLine], contract: LogContract) -> list[Finding]:
    """LOG-005."""
    if contract.level_case == "lower":
        allowed = {lvl.lower() for lvl in contract.levels}
    elif contract.level_case == "upper":
        allowed = {lvl.upper() for lvl in contract.levels}
    else:
        allowed = {lvl.casefold() for lvl in contract.levels}
    findings = []
    for p, record in _records(parsed):
        if "level" not in record:
            continue
        level = record["level"]
        if not isinstance(level, str):
            findings.append(
                Finding(
                    LOG_005.id,
                    f"{p.line.where}: level is {type(level).__name__}, not a string",
                    p.evidence(field="level"),
                )
            )
            continue
        key = level.casefold() if contract.level_case == "any" else level
        if key not in allowed:
            findings.append(
                Finding(
                    LOG_005.id,
                    f"{p.line.where}: level {level!r} is not one of {sorted(allowed)}",
                    p.evidence(field="level"),
                )
            )
    return findings


def trace_id_problem(value: Any, fmt: str = "w3c-hex") -> str:
    if not isinstance(value, str):
        return f"is {type(value).__name__}, not a string"
    if fmt == "gcp-resource":
        m = _GCP_TRACE.match(value)
        if not m:
            return "is not projects/<project>/traces/<32 lowercase hex>"
        value = m.group(1)
    if not _W3C_TRACE_ID.match(value):
        return "is not 32 lowercase hex characters"
    if value == "0" * 32:
        return "is all zeros (invalid per W3C)"
    return ""


def span_id_problem(value: Any) -> str:
    if not isinstance(value, str):
        return f"is {type(value).__name__}, not a string"
    if not _W3C_SPAN_ID.match(value):
        return "is not 16 lowercase hex characters"
    if value == "0" * 16:
        return "is all zeros (invalid per W3C)"
    return ""


def check_trace_ids(parsed: Sequence[ParsedLogLine], contract: LogContract) -> list[Finding]:
    """LOG-006: ids where present (LOG-003 decides where they must be)."""
    findings = []
    for p, record in _records(parsed):
        for name, problem in (
            (
                "trace_id",
                trace_id_problem(record["trace_id"], contract.trace_id_format)
                if "trace_id" in record
                else "",
            ),
            ("span_id", span_id_problem(record["span_id"]) if "span_id" in record else ""),
        ):
            if problem:
                findings.append(
                    Finding(
                        LOG_006.id,
                        f"{p.line.where}: {name} {str(record[name])[:80]!r} {problem}",
                        p.evidence(field=name),
                    )
                )
    return findings


def _answered(exchanges: Iterable[HttpExchange]) -> list[HttpExchange]:
    return [x for x in exchanges if x.status_code is not None]


def check_request_coverage(
    parsed: Sequence[ParsedLogLine],
    exchanges: Sequence[HttpExchange],
    contract: LogContract,
    correlation_header: str,
) -> list[Finding]:
    """LOG-007: a request is matched to its record by the correlation id its
    response carried, else by the trace id of the traceparent it was sent (a
    record that continued it names it). Requests that cannot be matched either
    way (no header, records without ids: TRC's and LOG-003's findings) are
    matched by method and status against the records without a matching id, so
    this requirement stays about whether each request was logged once."""
    completed = [r for _, r in _records(parsed) if _is_request_completed(r, contract)]
    by_correlation = Counter(str(r["correlation_id"]) for r in completed if r.get("correlation_id"))
    by_trace = Counter(trace_hex(r["trace_id"]) for r in completed if r.get("trace_id"))
    findings = []
    unmatched: list[HttpExchange] = []
    used: set[str] = set()
    used_traces: set[str] = set()
    for x in _answered(exchanges):
        cid = x.response_header(correlation_header)
        count = by_correlation.get(cid, 0) if cid else 0
        key, kind = cid, correlation_header
        if count == 0:
            trace_id = x.sent_trace_id
            count = by_trace.get(trace_id, 0) if trace_id else 0
            key, kind = trace_id, "trace id"
            if count == 0:
                unmatched.append(x)
                continue
            used_traces.add(trace_id)
        else:
            used.add(str(cid))
        if count > 1:
            findings.append(
                Finding(
                    LOG_007.id,
                    f"{x.method} {x.path} -> {x.status_code} ({kind}: {key}) has "
                    f"{count} request_completed records",
                    {
                        "endpoint": x.endpoint,
                        "method": x.method,
                        "path": x.path,
                        "matched_by": kind,
                        "id": key,
                        "records": count,
                    },
                )
            )
    pool = Counter(
        (r.get("method"), r.get("status_code"))
        for r in completed
        if str(r.get("correlation_id")) not in used and trace_hex(r.get("trace_id", "")) not in used_traces
    )
    sent = Counter((x.method, x.status_code) for x in unmatched)
    for (method, status), n in sorted(sent.items(), key=str):
        logged = pool.get((method, status), 0)
        if logged < n:
            paths = sorted({x.path for x in unmatched if (x.method, x.status_code) == (method, status)})
            findings.append(
                Finding(
                    LOG_007.id,
                    f"{n} {method} request(s) answered {status} ({', '.join(paths)[:120]}) "
                    f"but only {logged} record(s) with {contract.fields.get('message', 'message')} = "
                    f"{contract.request_completed_message!r} match them",
                    {"method": method, "status_code": status, "sent": n, "logged": logged},
                )
            )
    return findings


def check_route_templates(
    parsed: Sequence[ParsedLogLine],
    contract: LogContract,
    templates: Mapping[str, str],
) -> list[Finding]:
    """LOG-008: ``templates`` maps each concrete path the harness sent to its
    route template; a record whose path is a concrete path that differs from
    its template logged the raw path."""
    raw_to_template = {raw: tpl for raw, tpl in templates.items() if raw != tpl}
    findings = []
    for p, record in _records(parsed):
        if not _is_request_completed(record, contract):
            continue
        path = record.get("path")
        if isinstance(path, str):
            bare = path.split("?", 1)[0]
            if bare in raw_to_template:
                findings.append(
                    Finding(
                        LOG_008.id,
                        f"{p.line.where}: path {excerpt(path, 80)!r} is the raw path; "
                        f"expected the route template {raw_to_template[bare]!r}",
                        p.evidence(field="path"),
                    )
                )
    return findings
