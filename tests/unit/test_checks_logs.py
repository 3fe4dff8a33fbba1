"""LOG-* checks on hand-made log lines: each requirement passes on good
records and fails, under its own id, on the defect it exists for."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance._profile import LogContract, schema_path
from conformance.checks import logs
from conformance.telemetry import HttpExchange, LogLine

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def record(**over: Any) -> dict[str, Any]:
    base = {
        "timestamp": "2025-12-06T10:30:45.123Z",
        "level": "INFO",
        "logger": "svc",
        "message": "request_completed",
        "correlation_id": "c-1",
        "trace_id": TRACE,
        "span_id": SPAN,
        "method": "GET",
        "path": "/users/{user_id}",
        "status_code": 200,
        "duration_ms": 1.5,
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not ...}


def lines(*items: Any) -> list[LogLine]:
    out = []
    for i, item in enumerate(items, 1):
        raw = item if isinstance(item, bytes) else json.dumps(item).encode()
        out.append(LogLine(i, raw))
    return out


def parse(*items: Any, contract: LogContract | None = None) -> list[logs.ParsedLogLine]:
    return logs.parse_log_lines(lines(*items), contract or LogContract())


def schema(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(schema_path(name).read_text())
    return data


def ids(findings: list[Any]) -> set[str]:
    return {f.requirement_id for f in findings}


class TestJsonLines:
    def test_good_lines_pass(self) -> None:
        assert logs.check_json_lines(parse(record(), record(message="other"))) == []

    @pytest.mark.parametrize(
        ("raw", "problem"),
        [
            (b"INFO:     Started server process [1]", "not JSON"),
            (b"[1, 2]", "JSON list, not an object"),
            (b'"just a string"', "JSON str, not an object"),
            (b"\xff\xfe{}", "invalid UTF-8"),
            (b"", "empty line"),
            (b" \t ", "empty line"),
            (b'{"a": 1} trailing', "not JSON (Extra data at column 10)"),
            (b'{"a": tru}', "not JSON (Expecting value at column 7)"),
            (b'{"a": ' * 100_000, "nested too deeply"),
        ],
    )
    def test_each_defect_is_a_log001_finding_with_line_number(self, raw: bytes, problem: str) -> None:
        findings = logs.check_json_lines(parse(record(), raw))
        assert ids(findings) == {"LOG-001"}
        assert findings[0].evidence["line"] == 2
        assert problem in findings[0].message

    def test_whitespace_around_a_record_is_json_s_business(self) -> None:
        (parsed,) = logs.parse_log_lines(lines(b' \t{"message": "m"} '), LogContract())
        assert parsed.record == {"message": "m"} and not parsed.problem

    def test_truncated_line_is_a_finding_not_a_crash(self) -> None:
        parsed = logs.parse_log_lines([LogLine(1, b'{"x": "' + b"a" * 100, truncated=True)], LogContract())
        assert ids(logs.check_json_lines(parsed)) == {"LOG-001"}

    def test_excerpt_masks_pii(self) -> None:
        findings = logs.check_json_lines(parse(b"login by alice.smith@example.com failed"))
        assert "alice.smith@example.com" not in json.dumps(findings[0].evidence)


class TestRecordSchema:
    def test_complete_record_passes(self) -> None:
        assert (
            logs.check_record_schema(parse(record()), LogContract(), schema("log-record.schema.json")) == []
        )

    def test_missing_required_field_fails(self) -> None:
        findings = logs.check_record_schema(
            parse(record(logger=...)), LogContract(), schema("log-record.schema.json")
        )
        assert ids(findings) == {"LOG-002"}
        assert "'logger' is a required property" in findings[0].message

    def test_wrong_type_fails(self) -> None:
        findings = logs.check_record_schema(
            parse(record(message=42)), LogContract(), schema("log-record.schema.json")
        )
        assert ids(findings) == {"LOG-002"}

    def test_profile_can_relax_required_fields(self) -> None:
        contract = LogContract(required_fields=("timestamp", "level", "message"))
        assert (
            logs.check_record_schema(parse(record(logger=...)), contract, schema("log-record.schema.json"))
            == []
        )

    def test_field_mapping_structlog_event(self) -> None:
        contract = LogContract(fields={**LogContract().fields, "message": "event", "level": "severity"})
        raw = {"event": "hi", "severity": "INFO", "timestamp": "2025-01-01T00:00:00Z", "logger": "x"}
        assert (
            logs.check_record_schema(
                parse(raw, contract=contract), contract, schema("log-record.schema.json")
            )
            == []
        )

    def test_custom_schema_applies_to_raw_record(self, tmp_path: Any) -> None:
        custom = {"type": "object", "required": ["svc"]}
        contract = LogContract(schema=tmp_path / "s.json")
        findings = logs.check_record_schema(parse(record()), contract, custom)
        assert ids(findings) == {"LOG-002"}


class TestRequestCompleted:
    def test_complete_passes(self) -> None:
        sch = schema("log-request-completed.schema.json")
        assert logs.check_request_completed(parse(record()), LogContract(), sch) == []

    @pytest.mark.parametrize(
        "field", ["correlation_id", "trace_id", "span_id", "method", "path", "status_code", "duration_ms"]
    )
    def test_each_missing_field_fails(self, field: str) -> None:
        sch = schema("log-request-completed.schema.json")
        findings = logs.check_request_completed(parse(record(**{field: ...})), LogContract(), sch)
        assert ids(findings) == {"LOG-003"}
        assert field in findings[0].message

    def test_other_messages_are_not_request_records(self) -> None:
        sch = schema("log-request-completed.schema.json")
        assert (
            logs.check_request_completed(parse(record(message="startup", method=...)), LogContract(), sch)
            == []
        )

    def test_status_code_as_string_fails(self) -> None:
        sch = schema("log-request-completed.schema.json")
        assert ids(logs.check_request_completed(parse(record(status_code="200")), LogContract(), sch)) == {
            "LOG-003"
        }


class TestTimestamps:
    @pytest.mark.parametrize(
        "ts",
        [
            "2025-12-06T10:30:45.123Z",
            "2025-12-06T10:30:45Z",
            "2025-12-06T10:30:45+05:30",
            "2025-12-06t10:30:45.123456789z",
        ],
    )
    def test_rfc3339_passes(self, ts: str) -> None:
        assert logs.check_timestamps(parse(record(timestamp=ts))) == []

    @pytest.mark.parametrize(
        ("ts", "problem"),
        [
            ("2025-01-15 10:30:45", "does not match"),
            ("2025-01-15T10:30:45", "no time zone"),
            ("2025-13-15T10:30:45Z", "not a real date-time"),
            ("2025-02-30T10:30:45Z", "not a real date-time"),
            (1705318245.123, "not a string"),
            ("yesterday", "does not match"),
        ],
    )
    def test_defects_fail(self, ts: Any, problem: str) -> None:
        findings = logs.check_timestamps(parse(record(timestamp=ts)))
        assert ids(findings) == {"LOG-004"}
        assert problem in findings[0].message


class TestLevels:
    def test_allowed(self) -> None:
        assert logs.check_levels(parse(record(level="WARNING")), LogContract()) == []

    def test_unknown_level_fails(self) -> None:
        assert ids(logs.check_levels(parse(record(level="VERBOSE")), LogContract())) == {"LOG-005"}

    def test_case_rules(self) -> None:
        assert ids(logs.check_levels(parse(record(level="info")), LogContract())) == {"LOG-005"}
        assert logs.check_levels(parse(record(level="info")), LogContract(level_case="lower")) == []
        assert logs.check_levels(parse(record(level="Info")), LogContract(level_case="any")) == []


class TestTraceIds:
    def test_valid(self) -> None:
        assert logs.check_trace_ids(parse(record()), LogContract()) == []

    @pytest.mark.parametrize(
        "over",
        [
            {"trace_id": TRACE.upper()},
            {"trace_id": "00"},
            {"trace_id": TRACE[:-1]},
            {"span_id": "0" * 16},
            {"span_id": SPAN + "00"},
            {"trace_id": 12345},
        ],
    )
    def test_invalid_fails(self, over: dict[str, Any]) -> None:
        assert ids(logs.check_trace_ids(parse(record(**over)), LogContract())) == {"LOG-006"}

    @pytest.mark.parametrize("value", ["0", "0" * 32, 0])
    def test_no_active_trace_placeholders_are_judged_for_format_only(self, value: Any) -> None:
        # OpenTelemetry's Python logging integration writes "0" outside a span, others all zeros.
        [line] = parse(record(message="startup", trace_id=value, span_id="0" * 16))
        assert line.no_trace and "trace_id" not in line.record and "span_id" not in line.record
        assert logs.check_trace_ids([line], LogContract()) == []

    def test_a_profile_adds_its_own_placeholder(self) -> None:
        contract = LogContract(no_trace_values=frozenset({"0", "none"}))
        [line] = parse(record(message="startup", trace_id="none"), contract=contract)
        assert line.no_trace and logs.check_trace_ids([line], contract) == []
        [other] = parse(record(message="startup", trace_id="none"))
        assert ids(logs.check_trace_ids([other], LogContract())) == {"LOG-006"}

    def test_a_request_record_without_a_trace_still_fails_its_own_requirement(self) -> None:
        parsed = parse(record(trace_id="0" * 32))
        assert ids(
            logs.check_request_completed(parsed, LogContract(), schema("log-request-completed.schema.json"))
        ) == {"LOG-003"}

    def test_gcp_trace_format(self) -> None:
        contract = LogContract(
            trace_id_format="gcp-resource",
            fields={**LogContract().fields, "trace_id": "logging.googleapis.com/trace"},
        )
        good = record(trace_id=..., **{"logging.googleapis.com/trace": f"projects/p/traces/{TRACE}"})
        assert logs.check_trace_ids(parse(good, contract=contract), contract) == []
        bad = record(trace_id=..., **{"logging.googleapis.com/trace": TRACE})
        assert ids(logs.check_trace_ids(parse(bad, contract=contract), contract)) == {"LOG-006"}


def exchange(
    cid: str | None, *, method: str = "GET", status: int = 200, path: str = "/users/1"
) -> HttpExchange:
    headers = (("x-correlation-id", cid),) if cid else ()
    return HttpExchange(
        endpoint="e",
        method=method,
        url="http://127.0.0.1" + path,
        path=path,
        request_headers=(),
        status_code=status,
        response_headers=headers,
    )


class TestProvokedLines:
    def test_lines_in_a_probe_window_are_judged_by_log_009_only(self) -> None:
        parsed = parse(record(), b"Invalid HTTP request received.", record(message="after"))
        window = logs.ProvokedWindow("stdout", 2, 2, "malformed X-Correlation-ID: a bare CR")
        normal, provoked = logs.attribute_provoked(parsed, [window])
        assert [p.line.number for p in normal] == [1, 3] and logs.check_json_lines(normal) == []
        [finding] = logs.check_provoked_lines(provoked)
        assert finding.requirement_id == "LOG-009" and "a bare CR" in finding.message
        assert finding.evidence["provoked_by"] == "malformed X-Correlation-ID: a bare CR"

    def test_json_answers_to_probes_pass(self) -> None:
        _, provoked = logs.attribute_provoked(parse(record()), [logs.ProvokedWindow("stdout", 1, 1, "p")])
        assert logs.check_provoked_lines(provoked) == []


class TestRequestCoverage:
    def test_each_request_logged_once(self) -> None:
        parsed = parse(record(correlation_id="a"), record(correlation_id="b"))
        findings = logs.check_request_coverage(
            parsed, [exchange("a"), exchange("b")], LogContract(), "X-Correlation-ID"
        )
        assert findings == []

    def test_missing_and_duplicate(self) -> None:
        parsed = parse(record(correlation_id="a"), record(correlation_id="a"))
        findings = logs.check_request_coverage(
            parsed, [exchange("a"), exchange("b")], LogContract(), "X-Correlation-ID"
        )
        assert ids(findings) == {"LOG-007"}
        assert [f.evidence.get("records", f.evidence.get("logged")) for f in findings] == [2, 0]

    def test_records_without_correlation_id_still_count(self) -> None:
        parsed = parse(record(correlation_id=...), record(correlation_id=...))
        findings = logs.check_request_coverage(
            parsed, [exchange("a"), exchange("b")], LogContract(), "X-Correlation-ID"
        )
        assert findings == []

    def test_without_correlation_header_counts_by_method_and_status(self) -> None:
        parsed = parse(record(correlation_id="zz"))
        xs = [exchange(None), exchange(None)]
        findings = logs.check_request_coverage(parsed, xs, LogContract(), "X-Correlation-ID")
        assert ids(findings) == {"LOG-007"}
        assert findings[0].evidence == {"method": "GET", "status_code": 200, "sent": 2, "logged": 1}
        assert (
            logs.check_request_coverage(
                parse(record(correlation_id="zz")), xs[:1], LogContract(), "X-Correlation-ID"
            )
            == []
        )

    def test_unanswered_requests_are_not_expected_in_logs(self) -> None:
        x = HttpExchange(
            endpoint="e", method="GET", url="u", path="/", request_headers=(), status_code=None, error="boom"
        )
        assert logs.check_request_coverage(parse(record()), [x], LogContract(), "X-Correlation-ID") == []


class TestRouteTemplates:
    def test_template_passes_raw_path_fails(self) -> None:
        templates = {"/users/42": "/users/{user_id}", "/health": "/health"}
        assert logs.check_route_templates(parse(record()), LogContract(), templates) == []
        assert logs.check_route_templates(parse(record(path="/health")), LogContract(), templates) == []
        findings = logs.check_route_templates(parse(record(path="/users/42")), LogContract(), templates)
        assert ids(findings) == {"LOG-008"}
        assert "/users/{user_id}" in findings[0].message


def test_every_log_requirement_is_declared() -> None:
    assert {
        r.id
        for r in (
            logs.LOG_001,
            logs.LOG_002,
            logs.LOG_003,
            logs.LOG_004,
            logs.LOG_005,
            logs.LOG_006,
            logs.LOG_007,
            logs.LOG_008,
        )
    } == {f"LOG-00{i}" for i in range(1, 9)}


# -- the fast field mapping is _canonical's -----------------------------------
_RAW_KEYS = st.sampled_from(
    ["timestamp", "level", "severity", "message", "event", "msg", "trace_id", "traceId", "span_id", "x", "y"]
)
_CONTRACTS = [
    LogContract(),
    LogContract(
        fields={**LogContract().fields, "message": "event", "level": "severity", "trace_id": "traceId"}
    ),
    LogContract(fields={**LogContract().fields, "message": "msg", "span_id": "x"}),
    LogContract(fields={**LogContract().fields, "trace_id": "ctx.trace"}),  # a dotted name: _canonical itself
]


@pytest.mark.parametrize("contract", _CONTRACTS)
@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(
        st.dictionaries(
            _RAW_KEYS, st.one_of(st.none(), st.sampled_from(["0", "00", "a", "0af7"]), st.integers())
        )
        | st.just({"ctx": {"trace": "abc"}, "message": "m"}),
        max_size=6,
    )
)
def test_parsed_records_are_canonical_records(contract: LogContract, records: list[dict[str, Any]]) -> None:
    parsed = logs.parse_log_lines(lines(*records), contract)
    for p, raw in zip(parsed, records, strict=True):
        expected, no_trace = logs._canonical(raw, contract)
        assert p.record == expected and p.no_trace == no_trace
        assert p.raw_record == raw  # a dropped placeholder id stays in the raw record
        if contract.fields != LogContract().fields:  # renamed fields: in _canonical's order too
            assert p.record is not None and list(p.record) == list(expected)
