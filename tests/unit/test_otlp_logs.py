"""OTLP log records as canonical log lines (``logs.stream: otlp``, issue 18): the mapping from
the OTLP log data model, and the log checks judging the result like captured lines."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

from conformance import HarnessError, LimitExceeded, load_profile
from conformance._profile import LogContract, schema_path
from conformance._session import ConformanceSession
from conformance.checks import logs, pii
from conformance.checks.logs import ProvokedWindow, attribute_provoked, parse_log_lines
from conformance.collect._otlp_logs import (
    OTLP_STREAM,
    canonical_record,
    otlp_log_lines,
    severity_name,
    timestamp_of,
)
from conformance.stack._otlp import log_records_from_proto
from conformance.telemetry import LogLine, OtlpLogLine, OtlpLogRecord

T0 = 1_765_161_601_123_456_789  # 2025-12-08T02:40:01.123456789Z
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def _record(**overrides: Any) -> OtlpLogRecord:
    values: dict[str, Any] = {
        "time_unix_nano": T0,
        "severity_text": "INFO",
        "body": "request completed",
        "attributes": {},
        "trace_id": TRACE,
        "span_id": SPAN,
        "scope_name": "pantry",
        "severity_number": 9,
    }
    values.update(overrides)
    return OtlpLogRecord(**values)


def _parsed(*records: OtlpLogRecord, contract: LogContract | None = None) -> list[logs.ParsedLogLine]:
    return parse_log_lines(otlp_log_lines(records), contract or LogContract(stream=OTLP_STREAM))


def _schema(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(schema_path(name).read_text(encoding="utf-8"))
    return data


# -- the mapping -----------------------------------------------------------------------


def test_a_bridge_record_becomes_the_canonical_record() -> None:
    record = _record(attributes={"http.request.method": "GET", "http.response.status_code": 200})
    assert canonical_record(record) == {
        "timestamp": "2025-12-08T02:40:01.123456789Z",
        "level": "INFO",
        "logger": "pantry",
        "message": "request completed",
        "trace_id": TRACE,
        "span_id": SPAN,
        "http.request.method": "GET",
        "http.response.status_code": 200,
    }


@pytest.mark.parametrize(
    ("number", "name"),
    [(1, "TRACE"), (4, "TRACE4"), (5, "DEBUG"), (9, "INFO"), (10, "INFO2"), (13, "WARN"), (14, "WARN2"),
     (17, "ERROR"), (21, "FATAL"), (24, "FATAL4"), (0, ""), (25, ""), (-1, "")],
)  # fmt: skip
def test_severity_names_follow_the_data_model(number: int, name: str) -> None:
    assert severity_name(number) == name


def test_a_severity_number_without_text_gives_the_level() -> None:
    assert canonical_record(_record(severity_text="", severity_number=13))["level"] == "WARN"
    assert "level" not in canonical_record(_record(severity_text="", severity_number=0))
    # A number the data model has no name for stays a number: LOG-005 says it is no level.
    (parsed,) = _parsed(_record(severity_text="", severity_number=30))
    assert parsed.record is not None and parsed.record["level"] == 30
    (finding,) = logs.check_levels([parsed], LogContract(stream=OTLP_STREAM))
    assert finding.message.startswith("OTLP log record 1 (2025-12-08T02:40:01.123456789Z): level is int")


def test_severity_text_wins_over_the_number() -> None:
    assert canonical_record(_record(severity_text="WARNING", severity_number=13))["level"] == "WARNING"


def test_a_map_body_is_merged_and_the_profile_names_its_message() -> None:
    record = _record(body={"msg": "login", "user": {"id": 7}}, attributes={"http.route": "/login"})
    assert canonical_record(record) == {
        "timestamp": "2025-12-08T02:40:01.123456789Z",
        "level": "INFO",
        "logger": "pantry",
        "trace_id": TRACE,
        "span_id": SPAN,
        "msg": "login",
        "user": {"id": 7},
        "http.route": "/login",
    }
    contract = LogContract(stream=OTLP_STREAM, fields={"message": "msg", "correlation_id": "user.id"})
    (parsed,) = _parsed(record, contract=contract)
    assert parsed.record is not None
    assert (parsed.record["message"], parsed.record["correlation_id"]) == ("login", 7)


def test_a_name_clash_keeps_both_values() -> None:
    record = _record(body={"level": "debug", "message": "from the body"}, attributes={"level": 3, "x": 1})
    rendered = canonical_record(record)
    assert rendered["level"] == "INFO"  # the record's own severity wins
    assert rendered["message"] == "from the body"  # no own message: the body's key fills it
    assert (rendered["body.level"], rendered["attributes.level"], rendered["x"]) == ("debug", 3, 1)
    record = _record(attributes={"message": "an attribute"})
    assert canonical_record(record)["attributes.message"] == "an attribute"


def test_missing_ids_are_left_out_and_zero_ids_mean_no_trace() -> None:
    without, zero = _parsed(_record(trace_id="", span_id=""), _record(trace_id="0" * 32, span_id="0" * 16))
    assert without.record is not None and "trace_id" not in without.record and "span_id" not in without.record
    assert not without.no_trace
    assert zero.no_trace and zero.record is not None and "trace_id" not in zero.record
    assert logs.check_trace_ids([without, zero], LogContract(stream=OTLP_STREAM)) == []


def test_a_request_record_without_ids_fails_log_003_by_its_record_number() -> None:
    record = _record(
        trace_id="",
        span_id="",
        body="request_completed",
        attributes={"correlation_id": "c-1", "method": "GET", "path": "/items", "status_code": 200,
                    "duration_ms": 1.5},
    )  # fmt: skip
    parsed = _parsed(_record(), record)
    findings = logs.check_request_completed(
        parsed, LogContract(stream=OTLP_STREAM), _schema("log-request-completed.schema.json")
    )
    assert {f.message for f in findings} == {
        "OTLP log record 2 (2025-12-08T02:40:01.123456789Z): (record): 'trace_id' is a required property",
        "OTLP log record 2 (2025-12-08T02:40:01.123456789Z): (record): 'span_id' is a required property",
    }
    assert findings[0].evidence["stream"] == OTLP_STREAM
    assert findings[0].evidence["line"] == 2
    assert findings[0].evidence["time"] == "2025-12-08T02:40:01.123456789Z"
    assert '"correlation_id":"c-1"' in findings[0].evidence["excerpt"]


def test_non_string_attribute_values_keep_their_json_types() -> None:
    record = _record(
        attributes={
            "count": 3,
            "ratio": 0.5,
            "ok": True,
            "raw": b"\x00\xff",
            "tags": ("a", 1),
            "nested": {"deep": {"k": (b"x",)}},
            "nothing": None,
            "nan": math.nan,
        }
    )
    (parsed,) = _parsed(record)
    assert parsed.record is not None
    r = parsed.record
    assert (r["count"], r["ratio"], r["ok"], r["tags"], r["nothing"]) == (3, 0.5, True, ["a", 1], None)
    assert r["raw"] == "AP8="  # base64, as OTLP/JSON writes bytes
    assert r["nested"] == {"deep": {"k": ["eA=="]}}
    assert math.isnan(r["nan"])
    assert logs.get_field(r, "nested.deep.k") == ["eA=="]


def test_other_bodies_are_the_message_as_they_are() -> None:
    number, array, empty = _parsed(_record(body=42), _record(body=("a", "b")), _record(body=None))
    assert number.record is not None and number.record["message"] == 42
    assert array.record is not None and array.record["message"] == ["a", "b"]
    assert empty.record is not None and "message" not in empty.record
    findings = logs.check_record_schema(
        [number, array, empty], LogContract(stream=OTLP_STREAM), _schema("log-record.schema.json")
    )
    assert sorted(f.message.split(": ", 1)[1] for f in findings) == [
        "(record): 'message' is a required property",
        "message: 42 is not of type 'string'",
        "message: ['a', 'b'] is not of type 'string'",
    ]


def test_a_record_without_any_time_has_no_timestamp() -> None:
    (parsed,) = _parsed(_record(time_unix_nano=0))
    assert parsed.record is not None and "timestamp" not in parsed.record
    assert parsed.line.where == "OTLP log record 1"
    contract = LogContract(stream=OTLP_STREAM)
    (finding,) = logs.check_record_schema([parsed], contract, _schema("log-record.schema.json"))
    assert finding.message == "OTLP log record 1: (record): 'timestamp' is a required property"


def test_a_malformed_record_is_a_finding_not_a_crash() -> None:
    class Opaque:
        pass

    records = [_record(), _record(time_unix_nano=2**70), _record(attributes={"x": Opaque()}), _record()]
    lines = otlp_log_lines(records)
    assert [line.number for line in lines] == [1, 2, 3, 4]
    assert lines[1].raw == b"" and "time_unix_nano" in lines[1].problem
    assert "Opaque" in lines[2].problem
    parsed = parse_log_lines(lines, LogContract(stream=OTLP_STREAM))
    assert [p.record is not None for p in parsed] == [True, False, False, True]
    findings = logs.check_json_lines(parsed)
    assert [f.message.split(" is ", 1)[0] for f in findings] == ["OTLP log record 2", "OTLP log record 3"]
    assert findings[0].message.startswith(
        "OTLP log record 2 is no log record the harness can read: "
        "time_unix_nano 1180591620717411303424 is no date-time"
    )
    with pytest.raises(ValueError, match="no date-time"):
        timestamp_of(2**70)


def _text(value: str) -> AnyValue:
    return AnyValue(string_value=value)


def test_receiver_keeps_severity_number_and_scope_name() -> None:
    request = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                scope_logs=[
                    ScopeLogs(
                        scope=InstrumentationScope(name="pantry"),
                        log_records=[
                            LogRecord(
                                observed_time_unix_nano=T0,
                                severity_number=17,
                                body=AnyValue(kvlist_value={"values": [KeyValue(key="m", value=_text("x"))]}),
                            )
                        ],
                    )
                ]
            )
        ]
    )  # fmt: skip
    (record,) = log_records_from_proto(request)
    assert (record.severity_number, record.scope_name, record.time_unix_nano) == (17, "pantry", T0)
    assert canonical_record(record) == {
        "timestamp": "2025-12-08T02:40:01.123456789Z",
        "level": "ERROR",
        "logger": "pantry",
        "m": "x",
    }


# -- naming and the other requirement families ------------------------------------------


def test_lines_and_records_are_named_apart() -> None:
    line = LogLine(12, b"{}", "stderr")
    assert (line.where, line.place) == ("line 12", "stderr line 12")
    (record,) = otlp_log_lines([_record()])
    assert record.where == record.place == "OTLP log record 1 (2025-12-08T02:40:01.123456789Z)"
    (text,) = pii.log_texts([record])
    assert text.location == "OTLP log record 1 (2025-12-08T02:40:01.123456789Z)"


def test_provoked_records_are_split_off_by_window() -> None:
    parsed = _parsed(_record(), _record(), _record())
    window = ProvokedWindow(OTLP_STREAM, 2, 2, "malformed X-Request-ID")
    normal, provoked = attribute_provoked(parsed, [window])
    assert [p.line.number for p in normal] == [1, 3]
    assert [(p.line.number, p.provoked_by) for p in provoked] == [(2, "malformed X-Request-ID")]


# -- the session reads them -------------------------------------------------------------


class _StackDouble:
    """A stand-in for a stack (a test double): a service URL, a mode, and maybe OTLP log records."""

    service_url = "http://127.0.0.1:9"

    def __init__(self, mode: str, records: list[OtlpLogRecord] | None) -> None:
        self.mode = mode
        if records is not None:
            self.otlp_log_records = lambda: list(records)


def _session(tmp_path: Path, stack: _StackDouble, extra: str = "") -> ConformanceSession:
    path = tmp_path / "conformance.yaml"
    path.write_text("version: 1\nservice: {name: svc, command: [x]}\nlogs:\n  stream: otlp\n" + extra)
    return ConformanceSession(load_profile(path), stack)  # type: ignore[arg-type]


def test_the_session_reads_otlp_records_as_lines(tmp_path: Path) -> None:
    session = _session(tmp_path, _StackDouble("local", [_record(), _record(body="x")]))
    try:
        lines = session.log_lines()
        assert [type(line) for line in lines] == [OtlpLogLine, OtlpLogLine]
        assert all(line.stream == OTLP_STREAM for line in lines)
        parsed, provoked = session.parsed_logs()
        assert [p.record is not None for p in parsed] == [True, True] and provoked == []
    finally:
        for client in session._clients:
            client.close()


def test_a_mode_without_otlp_records_is_an_error_with_the_fix(tmp_path: Path) -> None:
    session = _session(tmp_path, _StackDouble("external", None))
    with pytest.raises(HarnessError, match="external mode keeps no OTLP log records") as info:
        session.log_lines()
    assert "local or container mode" in str(info.value)


def test_too_many_records_hit_logs_max_lines(tmp_path: Path) -> None:
    session = _session(tmp_path, _StackDouble("local", [_record()] * 3), "  max_lines: 2\n")
    with pytest.raises(LimitExceeded, match=r"OTLP log records exceeded 2 records \(3 records\)"):
        session.log_lines()


def test_no_record_at_all_says_how_to_export_them(tmp_path: Path) -> None:
    session = _session(tmp_path, _StackDouble("local", []))
    reason, fix = session.no_otlp_logs_reason()
    assert "exported no OTLP log record" in reason
    assert "OTEL_LOGS_EXPORTER" in fix and "LoggingHandler" in fix


def test_polling_renders_only_the_new_records(tmp_path: Path) -> None:
    records = [_record()]
    stack = _StackDouble("local", None)
    stack.otlp_log_records = lambda: list(records)  # type: ignore[attr-defined]
    session = _session(tmp_path, stack)
    try:
        first = session.log_lines()
        records.append(_record(body="second"))
        second = session.log_lines()
        assert second[0] is first[0]  # rendered once
        assert [line.number for line in second] == [1, 2]
        assert b'"message":"second"' in second[1].raw
    finally:
        for client in session._clients:
            client.close()


def test_the_log_view_says_where_the_records_are() -> None:
    from conformance.suites.test_logs import LogView

    nothing = ("the service exported no OTLP log record ...", "send the logs through a bridge ...")
    assert LogView([], [], OTLP_STREAM, 0, no_otlp=nothing).no_records() == nothing
    # stdout named, no JSON there, but records over OTLP: the fix is the key.
    lines = parse_log_lines([LogLine(1, b"plain text")], LogContract())
    reason, fix = LogView(lines, [], "stdout", 33, other_stream=OTLP_STREAM).no_records()
    assert reason == (
        "none of the 1 lines on stdout is a JSON object (LOG-001 fails); its 33 records were exported "
        "as OTLP log records"
    )
    assert fix == "set logs.stream: otlp"
    # otlp named, but JSON lines on stderr.
    reason, fix = LogView([], [], OTLP_STREAM, 4, other_stream="stderr", no_otlp=nothing).no_records()
    assert reason == "the service exported no OTLP log record ...; its 4 records are on stderr"
    assert fix == "set logs.stream: stderr"


def test_records_emitted_during_a_malformed_probe_are_its_own(tmp_path: Path) -> None:
    times = [T0, T0 + 10, T0 + 11, T0 + 12, T0 + 50]
    records = [_record(time_unix_nano=t) for t in times]
    session = _session(tmp_path, _StackDouble("local", records))
    try:
        session._provoked_times.append((T0 + 5, T0 + 20, "malformed X-Request-ID: markup"))
        normal, provoked = session.parsed_logs()
        assert [p.line.number for p in normal] == [1, 5]
        assert [(p.line.number, p.provoked_by) for p in provoked] == [
            (2, "malformed X-Request-ID: markup"),
            (3, "malformed X-Request-ID: markup"),
            (4, "malformed X-Request-ID: markup"),
        ]
        assert session._provoked_records(session.log_lines()) == [
            ProvokedWindow(OTLP_STREAM, 2, 4, "malformed X-Request-ID: markup")
        ]
    finally:
        for client in session._clients:
            client.close()
