"""LOG-*: the service's log stream (see conformance.checks.logs)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from conformance._profile import schema_path
from conformance._session import ConformanceSession
from conformance.checks import logs
from conformance.checks.logs import ParsedLogLine
from conformance.plugin import Verdict


@pytest.fixture
def parsed(conformance_session: ConformanceSession, verdict: Verdict) -> Sequence[ParsedLogLine]:
    lines = conformance_session.log_lines()
    contract = conformance_session.profile.logs
    verdict.note(stream=contract.stream, lines=len(lines))
    if not lines:
        # No output at all is not conformance: it means we captured the wrong stream.
        raise AssertionError(
            f"the service wrote nothing to {contract.stream}; if its JSON logs go to the other stream, "
            "set logs.stream in the profile"
        )
    return logs.parse_log_lines(lines, contract)


def _schema(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(schema_path(name).read_text(encoding="utf-8"))
    return data


@pytest.mark.requirement("LOG-001")
def test_every_line_is_a_json_object(parsed: Sequence[ParsedLogLine], verdict: Verdict) -> None:
    verdict.check(logs.check_json_lines(parsed), what=f"{len(parsed)} log lines")


@pytest.mark.requirement("LOG-002")
def test_records_match_the_log_schema(
    parsed: Sequence[ParsedLogLine], verdict: Verdict, conformance_session: ConformanceSession
) -> None:
    contract = conformance_session.profile.logs
    if contract.schema is not None:
        schema = json.loads(contract.schema.read_text(encoding="utf-8"))
        verdict.note(schema=str(contract.schema))
    else:
        schema = _schema("log-record.schema.json")
        verdict.note(schema="log-record.schema.json", required=list(contract.required_fields))
    verdict.check(logs.check_record_schema(parsed, contract, schema), what="log records")


@pytest.mark.requirement("LOG-003")
def test_request_completed_records_are_complete(
    parsed: Sequence[ParsedLogLine], verdict: Verdict, conformance_session: ConformanceSession
) -> None:
    contract = conformance_session.profile.logs
    if contract.request_completed_schema is not None:
        schema = json.loads(contract.request_completed_schema.read_text(encoding="utf-8"))
        verdict.note(schema=str(contract.request_completed_schema))
    else:
        schema = _schema("log-request-completed.schema.json")
        verdict.note(schema="log-request-completed.schema.json")
    verdict.check(logs.check_request_completed(parsed, contract, schema), what="request_completed records")


@pytest.mark.requirement("LOG-004")
def test_timestamps_are_rfc3339(parsed: Sequence[ParsedLogLine], verdict: Verdict) -> None:
    verdict.check(logs.check_timestamps(parsed), what="timestamps")


@pytest.mark.requirement("LOG-005")
def test_levels_are_allowed(
    parsed: Sequence[ParsedLogLine], verdict: Verdict, conformance_session: ConformanceSession
) -> None:
    contract = conformance_session.profile.logs
    verdict.note(allowed=list(contract.levels), case=contract.level_case)
    verdict.check(logs.check_levels(parsed, contract), what="levels")


@pytest.mark.requirement("LOG-006")
def test_trace_ids_are_w3c(
    parsed: Sequence[ParsedLogLine], verdict: Verdict, conformance_session: ConformanceSession
) -> None:
    verdict.check(logs.check_trace_ids(parsed, conformance_session.profile.logs), what="trace/span ids")


@pytest.mark.requirement("LOG-007")
def test_every_request_is_logged_once(
    parsed: Sequence[ParsedLogLine], verdict: Verdict, conformance_session: ConformanceSession
) -> None:
    s = conformance_session
    verdict.note(requests=len(s.exchanges))
    findings = logs.check_request_coverage(parsed, s.exchanges, s.profile.logs, s.profile.correlation_header)
    verdict.check(findings, what=f"{len(s.exchanges)} requests")


@pytest.mark.requirement("LOG-008")
def test_paths_are_route_templates(
    parsed: Sequence[ParsedLogLine], verdict: Verdict, conformance_session: ConformanceSession
) -> None:
    s = conformance_session
    verdict.check(logs.check_route_templates(parsed, s.profile.logs, s.templates), what="request paths")
