"""``conformance diff``: report pairs built with build_report (so they follow the schema)."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from conformance import Finding, RequirementResult, Status, get_requirement
from conformance._requirements import all_requirements
from conformance.cli import main
from conformance.report import RUN_KINDS, build_report, diff_reports


def report(changes: dict[str, tuple[Status, list[str]]]) -> dict[str, Any]:
    """A conformance report where everything passed except ``changes`` (id → status, finding messages)."""
    results = []
    for r in all_requirements():
        if r.id.partition("-")[0] not in RUN_KINDS["conformance"]:
            continue
        status, messages = changes.get(r.id, (Status.PASSED, []))
        evidence = [Finding(r.id, m).to_dict() for m in messages]
        message = f"{len(messages)} finding(s); first: {messages[0]}" if messages else ""
        results.append(RequirementResult(get_requirement(r.id), status, message, evidence))
    built = build_report(
        results,
        profile=None,
        profile_path="p.yaml",
        stack={"mode": "local"},
        started_at=1.0,
        finished_at=2.0,
        today=dt.date(2030, 1, 1),
    )
    built["profile"]["service"] = "svc"
    return built


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in rows]


OLD = report(
    {
        "LOG-004": (Status.FAILED, ["line 3: timestamp '10:00' has no time zone"]),
        "LOG-008": (Status.FAILED, ["line 4: path /users/42 is not a route template"]),
        "MET-002": (Status.ERROR, []),
    }
)
NEW = report(
    {
        "LOG-005": (Status.FAILED, ["line 6: level 'VERBOSE' is not allowed"]),
        "LOG-008": (
            Status.FAILED,
            [
                "line 9: path /users/77 is not a route template",
                "line 12: path /orders/9?x=1 has a query string",
            ],
        ),
        "TRC-001": (Status.ERROR, []),
    }
)


def test_categories() -> None:
    diff = diff_reports(OLD, NEW)
    assert ids(diff.new_failures) == ["LOG-005"]
    assert ids(diff.fixed) == ["LOG-004"]
    assert [(r["id"], r["from"], r["to"]) for r in diff.changed_status] == [
        ("TRC-001", "passed", "error"),
        ("MET-002", "error", "passed"),
    ]
    [changed] = diff.changed_evidence
    assert changed["id"] == "LOG-008"
    # "line 4: path /users/42 …" and "line 9: path /users/77 …" are the same kind of finding
    assert changed["findings_added"] == ["line 12: path /orders/9?x=1 has a query string"]
    assert changed["findings_removed"] == []
    assert diff.added == diff.removed == []
    assert ids(diff.regressions) == ["LOG-005"]


def test_same_findings_on_other_lines_are_not_a_change() -> None:
    again = report({"LOG-004": (Status.FAILED, ["line 17: timestamp '11:30' has no time zone"])})
    before = report({"LOG-004": (Status.FAILED, ["line 3: timestamp '10:00' has no time zone"])})
    assert diff_reports(before, again).changed_evidence == []


def test_added_and_removed_requirements() -> None:
    new = copy.deepcopy(NEW)
    new["results"] = [r for r in new["results"] if r["id"] != "ALR-013"]
    added = copy.deepcopy(new["results"][0])
    added.update(id="LOG-099", status="failed", message="1 finding(s)")
    new["results"].append(added)
    diff = diff_reports(OLD, new)
    assert ids(diff.added) == ["LOG-099"] and ids(diff.removed) == ["ALR-013"]
    assert "LOG-099" in ids(diff.new_failures)


def test_baselined_new_failure_is_listed_but_not_a_regression() -> None:
    new = copy.deepcopy(NEW)
    row = next(r for r in new["results"] if r["id"] == "LOG-005")
    row["baselined"] = {"reason": "SDK default level, OPS-7", "expires": "2030-02-01", "entries": ["x"]}
    diff = diff_reports(OLD, new)
    assert ids(diff.new_failures) == ["LOG-005"] and diff.regressions == []
    assert "[baselined: SDK default level, OPS-7]" in diff.render_text()


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(OLD))
    (tmp_path / "new").mkdir()
    new = tmp_path / "new" / "conformance-report.json"
    new.write_text(json.dumps(NEW))
    return old, new


def test_cli_text_exit_1_on_new_failures(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = files
    assert main(["diff", str(old), str(new.parent)]) == 1  # a report directory works too
    out = capsys.readouterr().out
    assert (
        "New failures (1):\n  LOG-005   MUST   passed → failed  The level is one of the allowed levels" in out
    )
    assert "Fixed (1):\n  LOG-004" in out
    assert "      + line 12: path /orders/9?x=1 has a query string" in out
    assert out.rstrip().endswith("conformance diff: 1 new failure(s): LOG-005")


def test_cli_exit_0_without_new_failures(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, new = files
    assert main(["diff", str(new), str(new)]) == 0
    out = capsys.readouterr().out
    assert "New failures: none" in out and out.rstrip().endswith("conformance diff: no new failures")


def test_cli_fail_on(files: tuple[Path, Path]) -> None:
    old, new = files
    assert main(["diff", str(old), str(new), "--fail-on", "never"]) == 0
    assert main(["diff", str(old), str(new), "--fail-on", "must"]) == 1  # LOG-005 is a MUST
    should = report({"LOG-008": (Status.FAILED, ["line 4: raw path"])})
    new.write_text(json.dumps(should))
    assert main(["diff", str(old), str(new), "--fail-on", "must"]) == 0
    assert main(["diff", str(old), str(new)]) == 0  # LOG-008 failed in both: changed evidence, not new


def test_cli_json_and_markdown(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = files
    main(["diff", str(old), str(new), "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert data["regressions"] == 1 and ids(data["new_failures"]) == ["LOG-005"]
    assert data["old"]["verdict"] == "failed" and data["new"]["counts"]["failed"] == 2
    out = tmp_path / "diff.md"
    main(["diff", str(old), str(new), "--format", "markdown", "--output", str(out)])
    md = out.read_text()
    assert md.startswith("### Conformance diff: svc — FAILED → FAILED")
    assert "| LOG-005 | MUST | passed → failed | The level is one of the allowed levels |" in md
    assert "**Changed evidence (failing in both)** (1)" in md


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        (None, "file not found"),
        ("{not json", "not JSON: Expecting property name enclosed in double quotes at line 1"),
        ('{"schema_version": 1}', "not a conformance report: (top level): 'run_id' is a required property"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(
    tmp_path: Path,
    files: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    expect: str,
) -> None:
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    assert main(["diff", str(bad), str(files[1])]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"conformance: error: {bad}: ") and expect in err and err.count("\n") == 1
