"""Reports: every requirement appears; statuses map to exit codes; formats agree."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema

from conformance import RequirementResult, Status, all_requirements, get_requirement, load_profile
from conformance._profile import schema_path
from conformance.report import (
    EXIT_FAILED,
    EXIT_HARNESS_ERROR,
    EXIT_OK,
    complete_results,
    exit_code_for,
    write_reports,
)

REPORT_SCHEMA = json.loads(schema_path("conformance-report.schema.json").read_text())


def passed_all() -> dict[str, RequirementResult]:
    return {r.id: RequirementResult(r, Status.PASSED) for r in all_requirements()}


def test_unevaluated_requirements_are_errors_not_passes() -> None:
    results = complete_results({}, not_applicable={})
    assert {r.status for r in results} == {Status.ERROR}
    assert all("not evaluated" in r.message for r in results)
    assert [r.requirement.id for r in results] == [
        r.id for r in all_requirements() if not r.id.startswith("PERF")
    ]


def test_not_applicable_is_skipped_with_reason() -> None:
    results = complete_results({}, not_applicable={"LOG-008": "logs raw paths by design"})
    skipped = [r for r in results if r.status is Status.SKIPPED]
    assert [(r.requirement.id, r.message) for r in skipped] == [
        ("LOG-008", "not applicable: logs raw paths by design")
    ]


def test_exit_codes() -> None:
    results = passed_all()
    assert exit_code_for(list(results.values())) == EXIT_OK
    results["LOG-008"] = RequirementResult(get_requirement("LOG-008"), Status.FAILED)  # SHOULD
    assert exit_code_for(list(results.values())) == EXIT_OK
    results["LOG-002"] = RequirementResult(get_requirement("LOG-002"), Status.ERROR)
    assert exit_code_for(list(results.values())) == EXIT_HARNESS_ERROR
    results["LOG-001"] = RequirementResult(get_requirement("LOG-001"), Status.FAILED)  # MUST
    assert exit_code_for(list(results.values())) == EXIT_FAILED


def test_written_reports_agree(tmp_path: Path) -> None:
    profile_path = Path(__file__).resolve().parents[2] / "fixtures/reference_service/conformance.yaml"
    profile = load_profile(profile_path)
    results = passed_all()
    results["LOG-001"] = RequirementResult(
        get_requirement("LOG-001"), Status.FAILED, "1 finding(s)", [{"line": 3, "excerpt": "INFO: started"}]
    )
    stack = {"mode": "local", "components": [{"name": "prometheus", "kind": "process", "version": "2.42.0"}]}
    report = write_reports(
        tmp_path, profile=profile, results=results, stack=stack, started_at=1000.0, finished_at=1002.5
    )
    on_disk = json.loads((tmp_path / "conformance-report.json").read_text())
    assert on_disk == report
    jsonschema.Draft202012Validator(REPORT_SCHEMA).validate(on_disk)
    assert report["summary"]["verdict"] == "failed"
    assert report["summary"]["failed_must"] == ["LOG-001"]
    assert report["duration_seconds"] == 2.5

    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == len(all_requirements())
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name", "").split()[0] for c in failed] == ["LOG-001"]
    assert suite.get("failures") == "1"

    md = (tmp_path / "summary.md").read_text()
    assert "FAILED" in md and "LOG-001" in md and "LOG-002" not in md


def test_stack_error_marks_everything_error(tmp_path: Path) -> None:
    report = write_reports(
        tmp_path,
        profile=None,
        results={},
        stack={"mode": "local", "components": []},
        started_at=1.0,
        finished_at=2.0,
        profile_path="p.yaml",
        stack_error="the service exited with code 3 during start-up",
    )
    jsonschema.Draft202012Validator(REPORT_SCHEMA).validate(report)
    assert report["summary"]["exit_code"] == EXIT_HARNESS_ERROR
    assert report["stack"]["error"].startswith("the service exited")
    assert all(r["message"].startswith("not evaluated: the service exited") for r in report["results"])


def test_profile_secrets_never_reach_the_reports(tmp_path: Path) -> None:
    profile_file = tmp_path / "p.yaml"
    profile_file.write_text(
        "version: 1\nservice: {name: x, command: [x], env: {API_TOKEN: s3cr3t-t0ken-value},"
        " secret_env: [API_TOKEN]}\n"
    )
    profile = load_profile(profile_file)
    leak = RequirementResult(
        get_requirement("LOG-001"),
        Status.FAILED,
        "saw s3cr3t-t0ken-value in a log line",
        [{"excerpt": "token=s3cr3t-t0ken-value"}],
    )
    write_reports(
        tmp_path / "out",
        profile=profile,
        results={"LOG-001": leak},
        stack={
            "mode": "local",
            "components": [
                {"name": "service", "kind": "process", "command": ["--token", "s3cr3t-t0ken-value"]}
            ],
        },
        started_at=1.0,
        finished_at=2.0,
        stack_error="",
    )
    for name in ("conformance-report.json", "junit.xml", "summary.md"):
        text = (tmp_path / "out" / name).read_text()
        assert "s3cr3t-t0ken-value" not in text, name
    assert "***" in (tmp_path / "out" / "conformance-report.json").read_text()
