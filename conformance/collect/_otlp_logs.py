"""OTLP log records as canonical log lines (``logs.stream: otlp``).

A service that logs through an OpenTelemetry logs bridge (Python's
``LoggingHandler``, Go's ``otelslog``, Java's Logback/Log4j appenders, Node's
pino/winston instrumentations) sends its records to the harness's receiver
instead of writing lines. Each record becomes one JSON line here, and from
then on the log checks cannot tell it from a captured stdout line: the
profile's ``logs.fields`` maps it, the schema validates it, TRC-004, RL and
PII read it. The mapping from the OTLP log data model:

==================================  ==============================================
OTLP                                canonical record
==================================  ==============================================
``time_unix_nano`` (else            ``timestamp``: RFC 3339 UTC with nanoseconds
``observed_time_unix_nano``)        (``2026-12-08T02:40:01.123456789Z``); none when
                                    both are 0
``severity_text``                   ``level``; without text, the data model's short
                                    name of ``severity_number`` (9 → ``INFO``,
                                    14 → ``WARN2``); a number outside 1-24 is kept as
                                    the number (LOG-005 says it is not a level)
instrumentation scope name          ``logger`` (the bridges name the scope after the
                                    logger)
``body``: a string                  ``message``
``body``: a map                     its keys, merged into the record (``logs.fields``
                                    then says which one is the message)
``body``: any other value           ``message``, as that value (LOG-002 judges it)
``trace_id``, ``span_id``           lowercase hex; none when empty (an all-zero id is
                                    a "no active trace" placeholder, as on a line)
``attributes``                      each by its key (``http.request.method`` stays
                                    one literal key; a map value stays an object, so
                                    ``logs.fields`` may name ``a.b`` inside it)
resource attributes                 left out: they describe the process, not the
                                    event (the same on every record, like a
                                    container's labels for a stdout line); PII-001
                                    searches them as channel ``log_records``
==================================  ==============================================

The record's own fields win a name clash, then the body's keys; the body key or
attribute that lost is kept as ``body.<key>`` or ``attributes.<key>``, so nothing
is lost. Values JSON
has no form for: bytes become base64 (as OTLP/JSON writes them), arrays lists.
A record that cannot be rendered (a time past year 9999, a value of a type no
OTLP value has) becomes a line whose ``problem`` says so: LOG-001 reports it,
the run goes on.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from conformance.telemetry import OtlpLogLine, OtlpLogRecord

__all__ = ["OTLP_STREAM", "canonical_record", "otlp_log_lines", "severity_name", "timestamp_of"]

#: The ``logs.stream`` value (and ``LogLine.stream``) of log records that arrived over OTLP.
OTLP_STREAM = "otlp"

#: OTel logs data model, "Displaying Severity": the short name of each SeverityNumber range.
_SEVERITY_RANGES = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")


def severity_name(number: int) -> str:
    """The data model's short name of a SeverityNumber (1-24), or ``""``: 9 → ``INFO``, 10 → ``INFO2``."""
    if not 1 <= number <= 24:
        return ""
    name = _SEVERITY_RANGES[(number - 1) // 4]
    step = (number - 1) % 4 + 1
    return name if step == 1 else f"{name}{step}"


def timestamp_of(time_unix_nano: int) -> str:
    """RFC 3339 UTC with nanoseconds; raises ``ValueError`` for a time no date-time has."""
    seconds, nanos = divmod(time_unix_nano, 1_000_000_000)
    try:
        second = _second(seconds)
    except (OverflowError, OSError, ValueError) as exc:  # past year 9999, or before year 1
        raise ValueError(f"time_unix_nano {time_unix_nano} is no date-time ({exc})") from None
    return f"{second}.{nanos:09d}Z"


@lru_cache(maxsize=4096)
def _second(seconds: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` of a Unix second (cached: a run's records share their seconds)."""
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S}"


#: Values JSON writes as they are (the rest go through :func:`_json_value`).
_PLAIN = frozenset({str, int, float, bool, type(None)})
#: json.dumps(..., ensure_ascii=False, separators=(",", ":")) without its per-call set-up;
#: NaN and Infinity are written as json.loads reads them back, as on a captured line.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _json_value(value: Any) -> Any:
    """An OTLP AnyValue (as the receiver keeps it) in a form JSON has."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, tuple | list):
        return [_json_value(item) for item in value]
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    raise TypeError(f"a value of type {type(value).__name__} is no OTLP value")


def canonical_record(record: OtlpLogRecord) -> dict[str, Any]:
    """The record in the names a log line would use (the table in the module docstring).

    Raises ``ValueError`` or ``TypeError`` for a record that has no such form.
    """
    own: dict[str, Any] = {}
    if record.time_unix_nano:
        own["timestamp"] = timestamp_of(record.time_unix_nano)
    if record.severity_text:
        own["level"] = record.severity_text
    elif record.severity_number:
        own["level"] = severity_name(record.severity_number) or record.severity_number
    if record.scope_name:
        own["logger"] = record.scope_name
    body = record.body
    body_keys: Mapping[Any, Any] = {}
    if isinstance(body, Mapping):
        body_keys = body
    elif body is not None:
        own["message"] = _json_value(body)
    if record.trace_id:
        own["trace_id"] = record.trace_id.lower()
    if record.span_id:
        own["span_id"] = record.span_id.lower()
    out = own  # timestamp, level, logger, message, trace_id, span_id: a line's usual order
    shadowed: dict[str, Any] = {}
    for prefix, values in (("body", body_keys), ("attributes", record.attributes)):
        for key, value in values.items():
            name = key if type(key) is str else str(key)
            if type(value) not in _PLAIN:
                value = _json_value(value)
            if name in out:
                shadowed[f"{prefix}.{name}"] = value
            else:
                out[name] = value
    if shadowed:
        out.update((k, v) for k, v in shadowed.items() if k not in out)
    return out


def otlp_log_lines(records: Iterable[OtlpLogRecord], *, start: int = 1) -> list[OtlpLogLine]:
    """Each record as one canonical JSON line, numbered from ``start`` in arrival order (a
    caller that polls a growing list renders only what is new)."""
    lines: list[OtlpLogLine] = []
    for number, record in enumerate(records, start):
        try:
            rendered = canonical_record(record)
            time = str(rendered.get("timestamp", ""))
            raw = _encode(rendered).encode("utf-8")
        except (ValueError, TypeError, RecursionError) as exc:
            lines.append(
                OtlpLogLine(
                    number,
                    b"",
                    OTLP_STREAM,
                    time_unix_nano=_int_or_zero(record),
                    problem=f"no log record the harness can read: {exc}",
                )
            )
            continue
        lines.append(OtlpLogLine(number, raw, OTLP_STREAM, time=time, time_unix_nano=record.time_unix_nano))
    return lines


def _int_or_zero(record: OtlpLogRecord) -> int:
    value = record.time_unix_nano
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
