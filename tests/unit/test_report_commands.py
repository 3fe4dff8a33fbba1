"""``conformance report``: re-rendering from the JSON, and tools that are missing say so (exit 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance import RequirementResult, Status, get_requirement
from conformance.cli import main
from conformance.report import write_reports


@pytest.fixture
def report_dir(tmp_path: Path) -> Path:
    out = tmp_path / "report"
    write_reports(
        out,
        profile=None,
        results={
            "LOG-001": RequirementResult(get_requirement("LOG-001"), Status.FAILED, "line 1 is not JSON")
        },
        stack={"mode": "local", "components": []},
        started_at=1.0,
        finished_at=2.0,
        profile_path="p.yaml",
    )
    return out


def test_rerenders_every_format_from_the_json(
    report_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("conformance-report.html", "junit.xml", "summary.md"):
        (report_dir / name).unlink()
    assert (
        main(["report", str(report_dir / "conformance-report.json"), "--out", str(tmp_path / "again")]) == 0
    )
    out = capsys.readouterr().out
    for name in ("conformance-report.html", "junit.xml", "summary.md"):
        assert (tmp_path / "again" / name).is_file()
        assert f"conformance: wrote {tmp_path / 'again' / name}" in out
    assert "LOG-001" in (tmp_path / "again" / "conformance-report.html").read_text()


def test_missing_allure_cli_is_exit_3_with_how_to_install(
    report_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (report_dir / "allure-results").mkdir()
    (report_dir / "allure-results" / "x-result.json").write_text("{}")
    code = main(["report", str(report_dir), "--allure-html", "--allure-bin", str(report_dir / "no-allure")])
    err = capsys.readouterr().err
    assert code == 3
    assert err.startswith(
        f"conformance: error: the Allure CLI was not found (looked for {report_dir / 'no-allure'})"
    )
    assert "npm install -g allure-commandline" in err and "Java" in err
    assert not (report_dir / "allure-report").exists()


def test_allure_without_results_is_a_usage_error(
    report_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(report_dir), "--allure-html"]) == 2
    assert (
        "no Allure results (conformance run writes them to REPORT_DIR/allure-results)"
        in capsys.readouterr().err
    )


def test_missing_chromium_is_exit_3_with_how_to_install(
    report_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["report", str(report_dir), "--screenshot", "--chromium-bin", "/nonexistent/chromium"])
    err = capsys.readouterr().err
    assert code == 3
    assert "no headless Chromium found (looked for /nonexistent/chromium)" in err
    assert "apt-get install -y --no-install-recommends chromium" in err


def test_not_a_report_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "conformance-report.json").write_text(json.dumps({"hello": 1}))
    assert main(["report", str(tmp_path)]) == 2
    assert "not a conformance report" in capsys.readouterr().err
