"""The pytest plugin, driven through pytester with exact output lines."""

from __future__ import annotations

import json

import pytest

SUITE = """
import pytest
from conformance import Finding

@pytest.mark.requirement("LOG-001")
def test_pass(verdict):
    verdict.note(stream="stdout")
    verdict.examined(lines=3)
    verdict.check([], what="3 log lines")

@pytest.mark.requirement("LOG-006")
def test_nothing_examined(verdict):
    verdict.examined(records=0, none_because="no JSON record on stdout", hint="set logs.stream")
    verdict.check([], what="trace ids")

@pytest.mark.requirement("LOG-007")
def test_bare_pass(verdict):
    pass

@pytest.mark.requirement("LOG-009")
def test_findings_fail_even_without_evidence(verdict):
    verdict.check([Finding("LOG-009", "line 2 is not JSON")], what="provoked lines")

@pytest.mark.requirement("LOG-002")
def test_fail(verdict):
    verdict.check([Finding("LOG-002", "line 3: logger: is required", {"line": 3})], what="log records")

@pytest.mark.requirement("LOG-003")
def test_error(verdict):
    raise RuntimeError("prometheus went away")

@pytest.mark.requirement("LOG-004")
def test_wrong_id(verdict):
    verdict.check([Finding("LOG-005", "x")], what="timestamps")

@pytest.mark.requirement("LOG-005")
def test_plain_assert(verdict):
    assert 1 == 2, "levels differ"
"""

PROFILE = (
    "version: 1\nservice: {name: demo, command: [x]}\nrequirements: {not_applicable: {LOG-008: no paths}}\n"
)


@pytest.fixture
def run(pytester: pytest.Pytester) -> pytest.RunResult:
    pytester.makepyfile(test_suite=SUITE)
    pytester.makefile(".yaml", conformance=PROFILE)
    return pytester.runpytest(
        "--conformance-profile",
        "conformance.yaml",
        "--conformance-report-dir",
        "out",
        "-p",
        "no:cacheprovider",
    )


def test_outcomes_and_failure_message(run: pytest.RunResult) -> None:
    run.assert_outcomes(passed=2, failed=6)
    run.stdout.fnmatch_lines(
        [
            "E       conformance._exceptions.Failure: LOG-002 (MUST) Every record validates against the "
            "log-record schema: 1 finding(s) in log records",
            "E         - line 3: logger: is required",
        ]
    )


def test_report_statuses(run: pytest.RunResult, pytester: pytest.Pytester) -> None:
    report = json.loads((pytester.path / "out" / "conformance-report.json").read_text())
    status = {r["id"]: (r["status"], r["message"]) for r in report["results"]}
    assert status["LOG-001"] == ("passed", "examined 3 lines")
    assert status["LOG-002"] == ("failed", "1 finding(s); first: line 3: logger: is required")
    assert status["LOG-003"] == ("error", "RuntimeError: prometheus went away")
    assert status["LOG-004"][0] == "error" and "suite wiring" in status["LOG-004"][1]
    assert status["LOG-005"] == ("failed", "AssertionError: levels differ")
    assert status["LOG-008"] == ("skipped", "not applicable: no paths")
    assert status["LOG-006"] == ("error", "no JSON record on stdout (hint: set logs.stream)")
    assert status["LOG-007"][0] == "error" and "without recording what it examined" in status["LOG-007"][1]
    assert status["LOG-009"] == ("failed", "1 finding(s); first: line 2 is not JSON")
    assert status["HLT-001"] == ("error", "not evaluated: no suite test decided it in this run")
    evidence = {r["id"]: r["evidence"] for r in report["results"]}
    assert evidence["LOG-001"] == [{"stream": "stdout"}]
    examined = {r["id"]: r.get("examined") for r in report["results"]}
    assert examined["LOG-001"] == {"lines": 3} and examined["LOG-006"] == {"records": 0}
    assert evidence["LOG-002"] == [
        {"requirement": "LOG-002", "message": "line 3: logger: is required", "line": 3}
    ]


def test_unknown_requirement_id_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile('import pytest\n@pytest.mark.requirement("NOPE-001")\ndef test_x(): pass\n')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stderr.fnmatch_lines(["*unknown requirement id 'NOPE-001'*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_broken_profile_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", bad="version: 1\nservice: {name: x, command: [x], port: http}\n")
    result = pytester.runpytest("--conformance-profile", "bad.yaml", "-p", "no:cacheprovider")
    result.stderr.fnmatch_lines(["ERROR: bad.yaml: service.port: must be an integer or 'auto', got 'http'"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_allure_labels(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    pytester.runpytest("--alluredir", "allure", "-p", "no:cacheprovider")
    results = [json.loads(p.read_text()) for p in (pytester.path / "allure").glob("*-result.json")]
    failing = next(r for r in results if r["name"].startswith("LOG-002"))
    labels = {(label["name"], label["value"]) for label in failing["labels"]}
    assert {
        ("epic", "Logs"),
        ("feature", "LOG-002"),
        ("severity", "critical"),
        ("requirement_level", "MUST"),
    } <= labels
    assert failing["status"] == "failed"
    passing = next(r for r in results if r["name"].startswith("LOG-001"))
    assert [a["name"] for a in passing.get("attachments", [])] == ["evidence"]
