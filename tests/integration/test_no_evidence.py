"""No verdict without evidence, end to end: every requirement against a service
that emits nothing (tests/data/silent_service: no log line, no span, no metric;
it answers every request 200 ``{}``). Nothing may pass.

The rule lives in the shared verdict machinery (``conformance.plugin.Verdict``);
this test is what keeps a new requirement from slipping past it: it runs every
requirement ID the registry knows, and fails naming any that passed.
"""

from __future__ import annotations

import pytest

from conformance._requirements import all_requirements

from .conftest import REPO, CliRun, cli_run

pytestmark = pytest.mark.integration

SILENT_PROFILE = REPO / "tests/data/silent_service/conformance.yaml"


@pytest.fixture(scope="module")
def silent_run(tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    return cli_run(tmp_path_factory.mktemp("silent"), "--mode", "local", profile=SILENT_PROFILE)


#: Requirements judged on the HTTP answer alone, which the silent service does give: HLT-004 times
#: the health probe's answer. Nothing judged on telemetry may pass.
ON_THE_ANSWER_ALONE = {"HLT-004"}


def test_nothing_passes_on_empty_telemetry(silent_run: CliRun) -> None:
    statuses = silent_run.statuses()
    conformance_ids = {r.id for r in all_requirements() if not r.id.startswith("PERF-")}
    assert conformance_ids <= set(statuses), f"not in the report: {sorted(conformance_ids - set(statuses))}"
    passed = {
        r["id"]: r["message"]
        for r in silent_run.report["results"]
        if r["status"] == "passed" and r["id"] not in ON_THE_ANSWER_ALONE
    }
    assert not passed, f"passed on a service that emits nothing: {passed}"


def test_every_error_says_why(silent_run: CliRun) -> None:
    vague = [
        r["id"] for r in silent_run.report["results"] if r["status"] == "error" and len(r["message"]) < 20
    ]
    assert not vague, f"errors without a reason: {vague}"


def test_the_log_errors_name_the_stream_and_the_fix(silent_run: CliRun) -> None:
    by_id = {r["id"]: r for r in silent_run.report["results"]}
    for rid in ("LOG-002", "LOG-004", "LOG-006"):
        assert by_id[rid]["status"] == "error"
        assert "wrote no log line on stdout" in by_id[rid]["message"], by_id[rid]["message"]
    assert by_id["LOG-006"]["examined"] == {"records_with_trace_id": 0}


def test_span_requirements_say_once_that_no_span_came(silent_run: CliRun) -> None:
    by_id = {r["id"]: r for r in silent_run.report["results"]}
    assert by_id["TRC-001"]["status"] == "failed"
    assert "exports no spans" in by_id["TRC-001"]["message"]
    for rid in ("TRC-003", "TRC-012", "SEM-001", "SEM-002", "SEM-003", "SEM-005"):
        assert by_id[rid]["status"] == "error" and "exports no spans" in by_id[rid]["message"]


@pytest.fixture(scope="module")
def silent_otlp_run(tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    """The silent service judged by its OTLP log records (``logs.stream: otlp``): none arrive."""
    tmp = tmp_path_factory.mktemp("silent-otlp")
    here = SILENT_PROFILE.parent
    text = SILENT_PROFILE.read_text(encoding="utf-8").replace("{profile_dir}", str(here))
    text = text.replace("schema: health.schema.json", f"schema: {here / 'health.schema.json'}")
    profile = tmp / "conformance.yaml"
    profile.write_text(text + "logs: {stream: otlp}\n", encoding="utf-8")
    return cli_run(tmp, "--mode", "local", "-k", "test_logs or test_log_lines", profile=profile)


def test_no_otlp_log_record_is_an_error_with_the_exporter_fix(silent_otlp_run: CliRun) -> None:
    by_id = {r["id"]: r for r in silent_otlp_run.report["results"]}
    for rid in ("LOG-001", "LOG-002", "LOG-003", "LOG-004", "LOG-005", "LOG-006", "LOG-008"):
        message = by_id[rid]["message"]
        assert by_id[rid]["status"] == "error", (rid, message)
        assert "exported no OTLP log record to the harness's receiver" in message, (rid, message)
        assert "OTEL_LOGS_EXPORTER" in message, (rid, message)
    assert by_id["LOG-001"]["examined"] == {"lines": 0}
    assert not [r["id"] for r in silent_otlp_run.report["results"] if r["status"] == "passed"]
