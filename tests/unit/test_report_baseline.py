"""Baselines: known violations don't fail the run; stale or expired entries do (clock injected)."""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conformance import Finding, ProfileError, RequirementResult, Status, get_requirement, load_profile
from conformance._profile import schema_path
from conformance._requirements import all_requirements
from conformance.report import EXIT_FAILED, EXIT_HARNESS_ERROR, EXIT_OK, RUN_KINDS, write_reports
from conformance.report._baseline import apply_baseline

REPORT_SCHEMA = json.loads(schema_path("conformance-report.schema.json").read_text())
TODAY = dt.date(2030, 6, 15)
HEAD = "version: 1\nservice: {name: svc, command: [x]}\n"


def profile_with(tmp_path: Path, baseline: str, extra_files: dict[str, str] | None = None) -> Any:
    for name, text in (extra_files or {}).items():
        (tmp_path / name).write_text(text)
    path = tmp_path / "conformance.yaml"
    path.write_text(HEAD + baseline)
    return load_profile(path)


def passed_all() -> dict[str, RequirementResult]:
    return {
        r.id: RequirementResult(r, Status.PASSED)
        for r in all_requirements()
        if r.id.partition("-")[0] in RUN_KINDS["conformance"]
    }


def failing(rid: str, *messages: str) -> RequirementResult:
    findings = [Finding(rid, m, {"line": i + 1}).to_dict() for i, m in enumerate(messages)]
    return RequirementResult(
        get_requirement(rid), Status.FAILED, f"{len(messages)} finding(s); first: {messages[0]}", findings
    )


def run(tmp_path: Path, profile: Any, results: dict[str, RequirementResult], today: dt.date = TODAY) -> Any:
    report = write_reports(
        tmp_path / "out",
        profile=profile,
        results=results,
        stack={"mode": "local", "components": []},
        started_at=1.0,
        finished_at=2.0,
        today=today,
    )
    jsonschema.Draft202012Validator(REPORT_SCHEMA).validate(report)
    return report


def entry_states(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["id"], e["state"]) for e in report["baseline"]["entries"]]


LOG_001 = "baseline: {entries: [{id: LOG-001, reason: 'banner, fix in v2 (OPS-12)', expires: 2030-06-30}]}\n"


def test_baselined_must_failure_does_not_fail_the_run(tmp_path: Path) -> None:
    results = passed_all()
    results["LOG-001"] = failing("LOG-001", "line 1 is not JSON")
    report = run(tmp_path, profile_with(tmp_path, LOG_001), results)
    row = next(r for r in report["results"] if r["id"] == "LOG-001")
    assert row["status"] == "failed"
    assert row["baselined"]["reason"] == "banner, fix in v2 (OPS-12)"
    assert row["baselined"]["expires"] == "2030-06-30"
    s = report["summary"]
    assert (s["exit_code"], s["verdict"]) == (EXIT_OK, "passed")
    assert s["failed_must"] == [] and s["baselined"] == ["LOG-001"]
    assert s["counts"]["failed"] == 1  # the status stays failed
    assert entry_states(report) == [("LOG-001", "matched")]
    # ... and the renderings say the same
    suite = ET.parse(tmp_path / "out/junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    case = next(c for c in suite.iter("testcase") if c.get("name", "").startswith("LOG-001"))
    skipped = case.find("skipped")
    assert skipped is not None and skipped.get("message", "").startswith(
        "baselined until 2030-06-30: banner, fix in v2"
    )
    md = (tmp_path / "out/summary.md").read_text()
    assert (
        "PASSED" in md
        and "Known violations (baselined, not failing the run): LOG-001 (until 2030-06-30)" in md
    )


def test_expiring_soon_only_within_warn_days(tmp_path: Path) -> None:
    results = passed_all()
    results["LOG-001"] = failing("LOG-001", "line 1 is not JSON")
    profile = profile_with(tmp_path, LOG_001)
    far = run(tmp_path, profile, results, today=dt.date(2030, 6, 1))["baseline"]["entries"][0]
    near = run(tmp_path, profile, results, today=dt.date(2030, 6, 20))["baseline"]["entries"][0]
    assert (far["expires_in_days"], "expiring_soon" in far) == (29, False)
    assert (near["expires_in_days"], near["expiring_soon"]) == (10, True)


def test_entry_that_no_longer_occurs_fails_the_run(tmp_path: Path) -> None:
    report = run(tmp_path, profile_with(tmp_path, LOG_001), passed_all())
    s = report["summary"]
    assert (s["exit_code"], s["verdict"]) == (EXIT_FAILED, "failed")
    assert s["baseline_stale"] == ["LOG-001"] and s["failed_must"] == []
    entry = report["baseline"]["entries"][0]
    assert entry["state"] == "stale"
    assert entry["detail"] == "LOG-001 passed: the violation no longer occurs; remove the entry"
    suite = ET.parse(tmp_path / "out/junit.xml").getroot().find("testsuite")
    assert suite is not None
    problem = next(c for c in suite.iter("testcase") if c.get("classname") == "conformance.baseline")
    failure = problem.find("failure")
    assert failure is not None and failure.get("message", "").startswith("stale: LOG-001 passed")
    assert suite.get("failures") == "1" and suite.get("tests") == str(len(report["results"]) + 1)
    md = (tmp_path / "out/summary.md").read_text()
    assert "| ❌ | LOG-001 | baseline | stale entry (profile baseline.entries[0])" in md


def test_expired_entry_fails_the_run_and_no_longer_covers(tmp_path: Path) -> None:
    results = passed_all()
    results["LOG-001"] = failing("LOG-001", "line 1 is not JSON")
    report = run(tmp_path, profile_with(tmp_path, LOG_001), results, today=dt.date(2030, 7, 1))
    s = report["summary"]
    assert s["exit_code"] == EXIT_FAILED
    assert s["baseline_expired"] == ["LOG-001"] and s["failed_must"] == ["LOG-001"] and s["baselined"] == []
    entry = report["baseline"]["entries"][0]
    assert entry["state"] == "expired" and entry["expires_in_days"] == -1
    assert entry["detail"].startswith("expired on 2030-06-30 (1 day(s) ago)")


def test_expiry_day_itself_still_applies(tmp_path: Path) -> None:
    results = passed_all()
    results["LOG-001"] = failing("LOG-001", "line 1 is not JSON")
    report = run(tmp_path, profile_with(tmp_path, LOG_001), results, today=dt.date(2030, 6, 30))
    assert report["summary"]["exit_code"] == EXIT_OK


MATCH = (
    "baseline: {entries: [{id: LOG-005, reason: 'VERBOSE from the SDK', expires: 2030-12-31, "
    "match: \"level 'VERBOSE'\"}]}\n"
)


def test_match_covers_only_its_findings(tmp_path: Path) -> None:
    profile = profile_with(tmp_path, MATCH)
    results = passed_all()
    results["LOG-005"] = failing(
        "LOG-005", "line 3: level 'VERBOSE' is not allowed", "line 9: level 'VERBOSE' …"
    )
    covered = run(tmp_path, profile, results)
    assert covered["summary"]["baselined"] == ["LOG-005"] and covered["summary"]["exit_code"] == EXIT_OK
    assert covered["baseline"]["entries"][0]["detail"] == "covers 2 finding(s)"

    results["LOG-005"] = failing(
        "LOG-005", "line 3: level 'VERBOSE' is not allowed", "line 4: level 'TRACE' …"
    )
    mixed = run(tmp_path, profile, results)
    assert mixed["summary"]["baselined"] == [] and mixed["summary"]["failed_must"] == ["LOG-005"]
    entry = mixed["baseline"]["entries"][0]
    assert entry["state"] == "matched"  # still occurs, so not stale
    assert entry["detail"].endswith("1 other finding(s) of LOG-005 are not covered, so it still fails")

    results["LOG-005"] = failing("LOG-005", "line 4: level 'TRACE' is not allowed")
    moved = run(tmp_path, profile, results)
    assert entry_states(moved) == [("LOG-005", "stale")]
    assert moved["baseline"]["entries"][0]["detail"].startswith("LOG-005 failed, but no finding contains")


def test_undecided_requirement_leaves_the_entry_unverified(tmp_path: Path) -> None:
    results = passed_all()
    results["LOG-001"] = RequirementResult(get_requirement("LOG-001"), Status.ERROR, "stack broke")
    report = run(tmp_path, profile_with(tmp_path, LOG_001), results)
    assert entry_states(report) == [("LOG-001", "unverified")]
    assert report["summary"]["exit_code"] == EXIT_HARNESS_ERROR  # the error, not the baseline


def test_requirement_outside_the_run_kind_is_not_judged(tmp_path: Path) -> None:
    report = write_reports(
        tmp_path / "out",
        profile=profile_with(tmp_path, LOG_001),
        results={},
        stack={"mode": "local", "components": []},
        started_at=1.0,
        finished_at=2.0,
        kind="load",
        today=TODAY,
    )
    assert entry_states(report) == [("LOG-001", "not_in_run")]
    assert report["summary"]["baseline_stale"] == []


def test_should_failure_can_be_baselined_and_its_stale_entry_still_fails(tmp_path: Path) -> None:
    text = "baseline: {entries: [{id: LOG-008, reason: raw paths until the router, expires: 2031-01-01}]}\n"
    profile = profile_with(tmp_path, text)
    results = passed_all()
    results["LOG-008"] = failing("LOG-008", "line 2: path /users/42 is not a route template")
    known = run(tmp_path, profile, results)["summary"]
    assert (known["baselined"], known["failed_should"], known["exit_code"]) == (["LOG-008"], [], EXIT_OK)
    gone = run(tmp_path, profile, passed_all())["summary"]
    assert (gone["baseline_stale"], gone["exit_code"]) == (["LOG-008"], EXIT_FAILED)


def test_entries_from_a_committed_file(tmp_path: Path) -> None:
    file = (
        "version: 1\nentries:\n"
        "  - {id: LOG-001, reason: banner line, expires: 2030-12-31}\n"
        "  - {id: LOG-008, reason: raw paths, expires: '2030-12-31'}\n"
    )
    profile = profile_with(
        tmp_path, "baseline: {file: conformance-baseline.yaml}\n", {"conformance-baseline.yaml": file}
    )
    baseline = profile.section("baseline")
    assert [(e.id, e.origin) for e in baseline.entries] == [
        ("LOG-001", "conformance-baseline.yaml entries[0]"),
        ("LOG-008", "conformance-baseline.yaml entries[1]"),
    ]
    results = passed_all()
    results["LOG-001"] = failing("LOG-001", "line 1 is not JSON")
    results["LOG-008"] = failing("LOG-008", "line 2: path is /users/42")
    report = run(tmp_path, profile, results)
    assert report["baseline"]["source"] == "conformance-baseline.yaml"
    assert report["summary"]["baselined"] == ["LOG-001", "LOG-008"]


@pytest.mark.parametrize(
    ("file", "expect"),
    [
        ("", "file is empty"),
        ("entries: {LOG-001: x}\n", "entries: must be a list"),
        (
            "entries:\n  - {id: LOG-001, reason: banner, expires: 2030-12-31, until: x}\n",
            "entries[0].until: unknown key",
        ),
        ("version: 2\nentries: []\n", "version: must be 1, got 2"),
        (
            "entries:\n  - {id: LOG-001, reason: banner, expires: 31.12.2030}\n",
            "entries[0].expires: must be a date",
        ),
        ("entries:\n  - &a {id: LOG-001, reason: banner, expires: 2030-12-31}\n  - *a\n", "YAML aliases"),
    ],
)
def test_broken_baseline_file_is_one_line_naming_it(tmp_path: Path, file: str, expect: str) -> None:
    with pytest.raises(ProfileError) as info:
        profile_with(tmp_path, "baseline: {file: known.yaml}\n", {"known.yaml": file})
    message = str(info.value)
    assert message.startswith("known.yaml: ") and expect in message and "\n" not in message


def test_profile_without_baseline_reports_no_section(tmp_path: Path) -> None:
    report = run(tmp_path, profile_with(tmp_path, ""), passed_all())
    assert "baseline" not in report
    assert report["summary"]["baselined"] == [] and report["summary"]["exit_code"] == EXIT_OK


def test_apply_baseline_is_pure_over_report_rows() -> None:
    from conformance._sections.baseline import Baseline, BaselineEntry

    rows = [{"id": "LOG-001", "status": "failed", "message": "m", "evidence": []}]
    entry = BaselineEntry("LOG-001", "known", dt.date(2030, 1, 1), origin="x")
    outcome = apply_baseline(rows, Baseline((entry,)), dt.date(2029, 12, 31))
    assert outcome.baselined == ["LOG-001"] and rows[0]["baselined"]["entries"] == ["x"]
