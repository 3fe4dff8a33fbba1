"""LOG-*: the service's log stream (see conformance.checks.logs)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pytest

from conformance._exceptions import HarnessError
from conformance._profile import schema_path
from conformance._session import ConformanceSession
from conformance.checks import logs
from conformance.checks.logs import ParsedLogLine
from conformance.collect._otlp_logs import OTLP_STREAM
from conformance.plugin import Verdict


@dataclass(frozen=True)
class LogView:
    """The log stream split for judging: normal traffic, and lines provoked by malformed probes."""

    parsed: list[ParsedLogLine]
    provoked: list[ParsedLogLine]
    stream: str
    other_stream_records: int
    probes_not_sent: str = ""
    #: Where the other records are (``stdout``, ``stderr``, ``otlp``).
    other_stream: str = ""
    #: Why no OTLP log record arrived, and the fix (``logs.stream: otlp``).
    no_otlp: tuple[str, str] | None = None

    @cached_property
    def records(self) -> int:
        return sum(1 for p in self.parsed if p.record is not None)

    def no_records(self) -> tuple[str, str]:
        """Why there is no JSON record to examine, and the fix."""
        otlp = self.stream == OTLP_STREAM
        if self.no_otlp is not None and not self.parsed and not self.other_stream_records:
            return self.no_otlp
        if not self.parsed and otlp:
            reason = (
                self.no_otlp[0]
                if self.no_otlp is not None
                else "every OTLP log record the service exported was written in answer to a malformed probe"
            )
        elif not self.parsed:
            reason = (
                f"the service wrote no log line on {self.stream} (outside the harness's malformed probes)"
            )
        elif otlp:
            reason = f"none of the {len(self.parsed)} OTLP log records could be read (LOG-001 fails)"
        else:
            reason = f"none of the {len(self.parsed)} lines on {self.stream} is a JSON object (LOG-001 fails)"
        if self.other_stream_records:
            other = self.other_stream
            where = "were exported as OTLP log records" if other == OTLP_STREAM else f"are on {other}"
            return f"{reason}; its {self.other_stream_records} records {where}", f"set logs.stream: {other}"
        return reason, "make the service log JSON objects, one per line, on the stream logs.stream names"


@pytest.fixture(scope="module")
def view(conformance_session: ConformanceSession) -> LogView:
    s = conformance_session
    s.after_all_traffic()  # the log checks judge everything the run's probes made the service write
    try:
        s.malformed_probes()  # sent once per run (TRC-008 may have sent them already)
    except HarnessError as exc:
        not_sent = str(exc)
    else:
        not_sent = ""
    parsed, provoked = s.parsed_logs()
    records = sum(1 for p in parsed if p.record is not None)
    other, other_stream = s.other_stream_json_lines() if not records else (0, "")
    stream = s.profile.logs.stream
    no_otlp = s.no_otlp_logs_reason() if stream == OTLP_STREAM and not parsed and not provoked else None
    return LogView(parsed, provoked, stream, other, not_sent, other_stream, no_otlp)


@pytest.fixture
def parsed(view: LogView, verdict: Verdict) -> Sequence[ParsedLogLine]:
    verdict.note(
        stream=view.stream, lines=len(view.parsed), provoked_lines_judged_by_LOG_009=len(view.provoked)
    )
    return view.parsed


def _examined_records(verdict: Verdict, view: LogView, **counts: int) -> None:
    reason, hint = view.no_records()
    verdict.examined(none_because=reason, hint=hint, **counts)


def _schema(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(schema_path(name).read_text(encoding="utf-8"))
    return data


@pytest.mark.requirement("LOG-001")
def test_every_line_is_a_json_object(
    parsed: Sequence[ParsedLogLine], view: LogView, verdict: Verdict
) -> None:
    verdict.examined(lines=len(parsed), none_because=view.no_records()[0], hint=view.no_records()[1])
    verdict.check(logs.check_json_lines(parsed), what=f"{len(parsed)} log lines")


@pytest.mark.requirement("LOG-002")
def test_records_match_the_log_schema(
    parsed: Sequence[ParsedLogLine], view: LogView, verdict: Verdict, conformance_session: ConformanceSession
) -> None:
    _examined_records(verdict, view, records=view.records)
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
    parsed: Sequence[ParsedLogLine], view: LogView, verdict: Verdict, conformance_session: ConformanceSession
) -> None:
    contract = conformance_session.profile.logs
    if view.records:
        completed = len(logs.request_completed_records(parsed, contract))
        verdict.examined(
            request_completed_records=completed,
            none_because=f"no record has {contract.fields.get('message', 'message')} = "
            f"{contract.request_completed_message!r} among {view.records} records (LOG-007 fails for that)",
            hint="set logs.request_completed_message (and logs.fields.message) to the service's "
            "per-request record",
        )
    else:
        _examined_records(verdict, view, request_completed_records=0)
    if contract.request_completed_schema is not None:
        schema = json.loads(contract.request_completed_schema.read_text(encoding="utf-8"))
        verdict.note(schema=str(contract.request_completed_schema))
    else:
        schema = _schema("log-request-completed.schema.json")
        verdict.note(schema="log-request-completed.schema.json")
    verdict.check(logs.check_request_completed(parsed, contract, schema), what="request_completed records")


@pytest.mark.requirement("LOG-004")
def test_timestamps_are_rfc3339(
    parsed: Sequence[ParsedLogLine], view: LogView, verdict: Verdict, conformance_session: ConformanceSession
) -> None:
    _examined_field(verdict, view, conformance_session, parsed, "timestamp")
    verdict.check(logs.check_timestamps(parsed), what="timestamps")


@pytest.mark.requirement("LOG-005")
def test_levels_are_allowed(
    parsed: Sequence[ParsedLogLine], view: LogView, verdict: Verdict, conformance_session: ConformanceSession
) -> None:
    contract = conformance_session.profile.logs
    verdict.note(allowed=list(contract.levels), case=contract.level_case)
    _examined_field(verdict, view, conformance_session, parsed, "level")
    verdict.check(logs.check_levels(parsed, contract), what="levels")


@pytest.mark.requirement("LOG-006")
def test_trace_ids_are_w3c(
    parsed: Sequence[ParsedLogLine], view: LogView, verdict: Verdict, conformance_session: ConformanceSession
) -> None:
    placeholders = sum(1 for p in parsed if p.no_trace)
    verdict.note(lines_outside_a_trace=placeholders)
    _examined_field(verdict, view, conformance_session, parsed, "trace_id", "span_id")
    verdict.check(logs.check_trace_ids(parsed, conformance_session.profile.logs), what="trace/span ids")


@pytest.mark.requirement("LOG-007")
def test_every_request_is_logged_once(
    parsed: Sequence[ParsedLogLine], verdict: Verdict, conformance_session: ConformanceSession
) -> None:
    s = conformance_session
    answered = sum(1 for x in s.exchanges if x.status_code is not None)
    verdict.examined(
        requests=answered,
        none_because=f"none of the {len(s.exchanges)} baseline requests was answered",
        hint="see the service's output in work/ of the report directory",
    )
    findings = logs.check_request_coverage(parsed, s.exchanges, s.profile.logs, s.profile.correlation_header)
    verdict.check(findings, what=f"{len(s.exchanges)} requests")


@pytest.mark.requirement("LOG-008")
def test_paths_are_route_templates(
    parsed: Sequence[ParsedLogLine], view: LogView, verdict: Verdict, conformance_session: ConformanceSession
) -> None:
    s = conformance_session
    completed = logs.request_completed_records(parsed, s.profile.logs)
    with_path = sum(1 for r in completed if isinstance(r.get("path"), str))
    if not view.records:
        _examined_records(verdict, view, request_paths=0)
    else:
        contract = s.profile.logs
        if not completed:
            none_because, hint = (
                f"no record has {contract.fields.get('message', 'message')} = "
                f"{contract.request_completed_message!r} among {view.records} records "
                "(LOG-007 fails for that)",
                "set logs.request_completed_message (and logs.fields.message) to the service's per-request "
                "record",
            )
        else:
            none_because, hint = (
                f"none of {len(completed)} request_completed record(s) has a "
                f"{contract.fields.get('path', 'path')} field",
                "map logs.fields.path to the field that holds the request's path",
            )
        verdict.examined(request_paths=with_path, none_because=none_because, hint=hint)
    verdict.check(logs.check_route_templates(parsed, s.profile.logs, s.templates), what="request paths")


@pytest.mark.requirement("LOG-009")
def test_lines_provoked_by_malformed_requests_keep_the_format(view: LogView, verdict: Verdict) -> None:
    if view.probes_not_sent:
        raise HarnessError(view.probes_not_sent)
    probes = sorted({p.provoked_by for p in view.provoked})
    verdict.note(probes=probes)
    verdict.examined(
        provoked_lines=len(view.provoked),
        none_because="the service wrote no log line in answer to the harness's malformed probes "
        "(malformed correlation ids, each sent alone), so there is nothing to judge",
        hint="expected when the service logs nothing for requests it rejects; declare LOG-009 in "
        "requirements.not_applicable if so",
    )
    verdict.check(logs.check_provoked_lines(view.provoked), what=f"{len(view.provoked)} provoked lines")


def _examined_field(
    verdict: Verdict,
    view: LogView,
    session: ConformanceSession,
    parsed: Sequence[ParsedLogLine],
    *canonical: str,
) -> None:
    """Records that carry the field (LOG-002 judges records that lack it)."""
    if not view.records:
        _examined_records(verdict, view, **{f"records_with_{canonical[0]}": 0})
        return
    have = sum(1 for r in logs.records_of(parsed) if any(name in r for name in canonical))
    names = ", ".join(session.profile.logs.fields.get(name, name) for name in canonical)
    verdict.examined(
        **{f"records_with_{canonical[0]}": have},
        none_because=f"none of the {view.records} records has a {names} field",
        hint=f"map logs.fields.{canonical[0]} to the service's field name",
    )
