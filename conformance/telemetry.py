"""Plain values the collectors produce and the checks consume.

Nothing here does I/O. Collectors (log capture, OTLP receiver, Jaeger query,
scrapes, traffic) turn what they read into these; checks take them as input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conformance._sections.health import HealthProbe

__all__ = [
    "LOAD_AGGREGATE_NAME",
    "HttpExchange",
    "LoadStatsEntry",
    "LogLine",
    "OtlpLogLine",
    "OtlpLogRecord",
    "OtlpMetricPoints",
    "ProbeAnswer",
    "Span",
    "SpanEvent",
    "trace_hex",
]


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line the service wrote to its log stream, exactly as bytes.

    ``number`` is 1-based within the stream; ``raw`` excludes the newline.
    ``truncated`` is set when the line was longer than the capture limit.
    """

    number: int
    raw: bytes
    stream: str = "stdout"
    truncated: bool = False

    def text(self) -> str:
        return self.raw.decode("utf-8", errors="replace")

    @property
    def where(self) -> str:
        """How a finding names the line: ``line 12``."""
        return f"line {self.number}"

    @property
    def place(self) -> str:
        """The line with its stream: ``stderr line 12``."""
        return f"{self.stream} line {self.number}"


@dataclass(frozen=True, slots=True)
class OtlpLogLine(LogLine):
    """An OTLP log record rendered as one canonical JSON line (``logs.stream: otlp``;
    see :mod:`conformance.collect._otlp_logs`), so the log checks judge it like a
    captured line. ``number`` is the record's 1-based place in arrival order.

    ``time`` is the record's timestamp as the line shows it (``""`` when it has none);
    ``problem`` says why a record could not be rendered (``raw`` is then empty), which
    the parser reports as it reports a line that is not JSON.
    """

    time: str = ""
    time_unix_nano: int = 0
    problem: str = ""

    @property
    def where(self) -> str:
        return f"OTLP log record {self.number}" + (f" ({self.time})" if self.time else "")

    @property
    def place(self) -> str:
        return self.where


@dataclass(frozen=True, slots=True)
class SpanEvent:
    name: str
    time_unix_nano: int
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Span:
    """A span normalised from any trace store (OTLP receiver, Jaeger).

    Ids are lowercase hex (32 chars for traces, 16 for spans); ``kind`` and
    ``status_code`` use the OTLP enum names without prefix (``SERVER``, ``ERROR``).
    """

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    start_time_unix_nano: int
    end_time_unix_nano: int
    attributes: Mapping[str, Any] = field(default_factory=dict)
    resource_attributes: Mapping[str, Any] = field(default_factory=dict)
    events: tuple[SpanEvent, ...] = ()
    status_code: str = "UNSET"
    status_message: str = ""
    trace_state: str = ""
    scope_name: str = ""

    @property
    def service_name(self) -> str:
        return str(self.resource_attributes.get("service.name", ""))


@dataclass(frozen=True, slots=True)
class HttpExchange:
    """One request the harness sent and what came back.

    ``request_headers``/``response_headers`` keep every value in order (a
    header may repeat). ``error`` is set when no response arrived.
    """

    endpoint: str
    method: str
    url: str
    path: str
    request_headers: tuple[tuple[str, str], ...]
    status_code: int | None
    response_headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    elapsed_seconds: float = 0.0
    error: str = ""
    sent_traceparent: str = ""
    #: Wall-clock time (epoch seconds) the request was sent: spans' clocks are the same machine's.
    started_at: float = 0.0

    @property
    def sent_trace_id(self) -> str:
        """The trace id of the traceparent the harness sent, or ``""``."""
        parts = self.sent_traceparent.split("-")
        return parts[1].lower() if len(parts) == 4 else ""

    def response_header(self, name: str) -> str | None:
        """The first value of a response header, case-insensitively."""
        wanted = name.lower()
        for key, value in self.response_headers:
            if key.lower() == wanted:
                return value
        return None


def trace_hex(value: Any) -> str:
    """A logged trace id as bare lowercase hex (``projects/p/traces/ABC`` → ``abc``)."""
    return str(value).rsplit("/", 1)[-1].strip().lower()


@dataclass(frozen=True, slots=True)
class OtlpLogRecord:
    """A log record that arrived over OTLP (as opposed to the stdout stream).

    ``time_unix_nano`` is the record's time, else its observed time (0: neither);
    ``severity_number`` is the OTLP SeverityNumber (0: unspecified); ``scope_name``
    is the instrumentation scope's, which the logs bridges set to the logger's name.
    """

    time_unix_nano: int
    severity_text: str
    body: Any
    attributes: Mapping[str, Any] = field(default_factory=dict)
    resource_attributes: Mapping[str, Any] = field(default_factory=dict)
    trace_id: str = ""
    span_id: str = ""
    severity_number: int = 0
    scope_name: str = ""


@dataclass(frozen=True, slots=True)
class OtlpMetricPoints:
    """One metric's data points with one attribute set, as they arrived over OTLP (the
    receiver keeps each distinct name, attributes and resource once; ``count`` says how
    many points had them)."""

    name: str
    attributes: Mapping[str, Any] = field(default_factory=dict)
    resource_attributes: Mapping[str, Any] = field(default_factory=dict)
    count: int = 1


#: The name of Locust's whole-run row in its statistics.
LOAD_AGGREGATE_NAME = "Aggregated"


@dataclass(frozen=True, slots=True)
class LoadStatsEntry:
    """One row of Locust's request statistics (its ``_stats.csv``), as Locust computed it.

    ``name`` is the load scenario, or ``Aggregated`` for the whole run.
    ``percentiles_ms`` holds Locust's own ``get_response_time_percentile``
    values in whole milliseconds, keyed by fraction (``0.95``); a value is
    ``None`` when Locust had no request to rank. ``rps`` is Locust's
    ``Requests/s``: requests over the time from the run's start to the last one.
    """

    name: str
    method: str
    requests: int
    failures: int
    rps: float
    percentiles_ms: Mapping[float, float | None] = field(default_factory=dict)
    average_ms: float = 0.0
    max_ms: float = 0.0

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    @property
    def is_aggregate(self) -> bool:
        return self.name == LOAD_AGGREGATE_NAME and not self.method


@dataclass(frozen=True, slots=True)
class ProbeAnswer:
    """One request to a health probe and what came back (``exchange.elapsed_seconds`` is its time)."""

    probe: HealthProbe
    exchange: HttpExchange
    #: True when asked on the second instance, in which a dependency fails.
    dependency_failing: bool = False
