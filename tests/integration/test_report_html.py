"""Reports of real runs of the reference service: every format is written, the HTML renders in
headless Chromium (Debian ``chromium``; missing → the test fails with the install hint, it never
skips), a baseline entry that no longer occurs fails the run, a baselined failure does not, and
``conformance diff`` shows a seeded regression (``REFSVC_BREAK=bad-level``).

Set ``OBSCONFORM_ARTIFACT_DIR`` (CI does) to keep the screenshot and the HTML as artifacts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conformance._exceptions import HarnessError
from conformance._profile import schema_path
from conformance._requirements import all_requirements
from conformance.report import RUN_KINDS, render_html
from conformance.report._tools import chromium_dump_dom, chromium_screenshot, find_allure

from .conftest import REPO, CliRun, cli_env, variant_profile

pytestmark = pytest.mark.integration

RunCli = Callable[..., CliRun]
#: Where CI keeps the screenshot and the HTML of the reference run (unset: only tmp_path).
ARTIFACT_DIR_ENV = "OBSCONFORM_ARTIFACT_DIR"
REPORT_SCHEMA = json.loads(schema_path("conformance-report.schema.json").read_text())
FAR_FUTURE = "2099-12-31"


def decided_by(suites: Iterable[str]) -> set[str]:
    """The requirement ids the given suite modules decide (their @pytest.mark.requirement marks)."""
    ids: set[str] = set()
    for suite in suites:
        ids |= set(
            re.findall(r'requirement\("([A-Z]+-\d{3})"\)', (REPO / f"suites/test_{suite}.py").read_text())
        )
    return ids


def only_suites(
    suites: Iterable[str], baseline: list[dict[str, str]] | None = None
) -> Callable[[dict[str, Any]], None]:
    """Profile changes: everything the suites do not decide is not applicable (so exit codes are
    about what ran), plus an optional baseline."""
    keep = decided_by(suites)
    others = {
        r.id: "outside the suites this test runs"
        for r in all_requirements()
        if r.id.partition("-")[0] in RUN_KINDS["conformance"] and r.id not in keep
    }

    def change(data: dict[str, Any]) -> None:
        data.setdefault("requirements", {})["not_applicable"] = others
        data.pop("baseline", None)
        if baseline is not None:
            data["baseline"] = {"entries": baseline}

    return change


def keyword(suites: Iterable[str]) -> str:
    return " or ".join(f"test_{s}" for s in suites)


def chromium_or_fail(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except HarnessError as exc:
        pytest.fail(f"headless Chromium is needed for this test: {exc}")


def keep_artifacts(*paths: Path) -> None:
    target = os.environ.get(ARTIFACT_DIR_ENV)
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for path in paths:
            shutil.copy2(path, Path(target) / path.name)


def test_reference_run_writes_every_format_and_renders_in_chromium(run_cli: RunCli, tmp_path: Path) -> None:
    suites = ("logs", "exports")
    stale = {"id": "LOG-005", "reason": "levels were lowercase until v2 (OPS-7)", "expires": FAR_FUTURE}
    profile = variant_profile(tmp_path, only_suites(suites, [stale]))
    run = run_cli("--mode", "local", "-k", keyword(suites), profile=profile)

    report = run.report
    jsonschema.Draft202012Validator(REPORT_SCHEMA).validate(report)
    decided = decided_by(suites)
    assert {r["id"]: r["status"] for r in report["results"] if r["id"] in decided} == dict.fromkeys(
        sorted(decided, key=[r["id"] for r in report["results"]].index), "passed"
    ), run.stdout[-3000:]
    # Everything passed, but the baseline entry no longer occurs: that alone fails the run.
    assert run.returncode == 1, run.stderr[-2000:]
    s = report["summary"]
    assert (s["verdict"], s["failed_must"], s["baseline_stale"]) == ("failed", [], ["LOG-005"])

    d = run.report_dir
    for name in ("conformance-report.html", "junit.xml", "summary.md"):
        assert (d / name).stat().st_size > 0, name
    assert any((d / "allure-results").glob("*-result.json"))
    suite = ET.parse(d / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"  # the stale baseline entry
    assert "| ❌ | LOG-005 | baseline | stale entry" in (d / "summary.md").read_text()

    html_path = d / "conformance-report.html"
    dom = chromium_or_fail(lambda: chromium_dump_dom(html_path))
    assert re.search(r'<header class="verdict failed" id="verdict">', dom)
    assert '<span id="verdict-word">FAILED</span>' in dom
    assert "1 baseline entry no longer valid" in dom
    for r in report["results"]:
        assert f'id="req-{r["id"]}"' in dom, r["id"]
    matrix = dom[dom.index('id="matrix"') : dom.index('id="attention"')]
    for area in {r["area"] for r in report["results"]}:
        assert f">{area}</a></th>" in matrix, area
    assert '<span class="badge stale">stale</span>' in dom
    assert "<script" not in dom
    png = chromium_or_fail(lambda: chromium_screenshot(html_path, d / "conformance-report.png"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep_artifacts(html_path, png)

    try:
        find_allure()
    except HarnessError:
        return  # the Allure site is optional; test_report_commands covers the "not installed" answer
    done = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "report", str(d), "--allure-html"],
        capture_output=True,
        text=True,
        timeout=180,
        env=cli_env(),
    )
    assert done.returncode == 0, done.stderr
    assert (d / "allure-report" / "index.html").is_file()


def test_seeded_regression_shows_in_diff(run_cli: RunCli, tmp_path: Path) -> None:
    profile = variant_profile(tmp_path, only_suites(["logs"]))
    good = run_cli("--mode", "local", "-k", "test_logs", profile=profile)
    assert good.returncode == 0, good.stdout[-3000:]
    old = tmp_path / "old.json"
    shutil.copy2(good.report_dir / "conformance-report.json", old)

    bad = run_cli("--mode", "local", "-k", "test_logs", profile=profile, env={"REFSVC_BREAK": "bad-level"})
    assert bad.returncode == 1
    new = bad.report_dir / "conformance-report.json"

    def diff(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "conformance.cli", "diff", str(old), str(new), *extra],
            capture_output=True,
            text=True,
            timeout=60,
            env=cli_env(),
        )

    text = diff()
    assert text.returncode == 1, text.stderr
    assert (
        "New failures (1):\n  LOG-005   MUST   passed → failed  The level is one of the allowed levels"
        in text.stdout
    )
    assert "level 'VERBOSE' is not one of" in text.stdout
    assert text.stdout.rstrip().endswith("conformance diff: 1 new failure(s): LOG-005")
    as_json = json.loads(diff("--format", "json").stdout)
    assert [r["id"] for r in as_json["new_failures"]] == ["LOG-005"] and as_json["fixed"] == []
    md = diff("--format", "markdown").stdout
    assert "| LOG-005 | MUST | passed → failed |" in md


def test_baselined_failure_does_not_fail_the_run(run_cli: RunCli, tmp_path: Path) -> None:
    known = {
        "id": "LOG-005",
        "reason": "the SDK logs VERBOSE until v2 (OPS-7)",
        "expires": FAR_FUTURE,
        "match": "level 'VERBOSE'",
    }
    profile = variant_profile(tmp_path, only_suites(["logs"], [known]))
    run = run_cli("--mode", "local", "-k", "test_logs", profile=profile, env={"REFSVC_BREAK": "bad-level"})
    assert run.returncode == 0, run.stdout[-3000:]
    row = next(r for r in run.report["results"] if r["id"] == "LOG-005")
    assert row["status"] == "failed" and row["baselined"]["reason"] == known["reason"]
    s = run.report["summary"]
    assert (s["verdict"], s["baselined"], s["failed_must"]) == ("passed", ["LOG-005"], [])
    assert [e["state"] for e in run.report["baseline"]["entries"]] == ["matched"]


def test_hostile_report_with_charts_in_chromium(tmp_path: Path) -> None:
    """What the service wrote cannot add elements or run script in the report; the charts render."""
    payload = (
        "<script>document.body.setAttribute('data-pwned','1')</script>"
        "<img src=x onerror=\"document.title='pwned'\">"
    )
    result = {
        "id": "LOG-001",
        "level": "MUST",
        "title": "t",
        "source": "s",
        "area": "Logs",
        "status": "failed",
        "message": payload,
        "duration_seconds": 0.1,
        "evidence": [
            {"requirement": "LOG-001", "message": payload, "stream": "stdout", "line": 1, "excerpt": payload}
        ],
    }
    load = {
        "id": "PERF-001",
        "level": "MUST",
        "title": "latency",
        "source": "s",
        "area": "Load",
        "status": "passed",
        "message": "",
        "duration_seconds": 60,
        "evidence": [
            {
                "latency": [
                    {"endpoint": "GET /health", "p50_ms": 2, "p95_ms": 5, "p99_ms": 9, "rps": 120},
                    {
                        "endpoint": payload,
                        "p50_ms": 410,
                        "p95_ms": 1500,
                        "p99_ms": 2300,
                        "p95_target_ms": 2000,
                    },
                ]
            }
        ],
    }
    growth = {
        "id": "MET-008",
        "level": "MUST",
        "title": "growth",
        "source": "s",
        "area": "Metrics",
        "status": "failed",
        "message": "1 finding(s)",
        "duration_seconds": 3,
        "evidence": [
            {
                "top_growth": [
                    {
                        "metric": payload,
                        "series_before": 10,
                        "series_after_first_half": 60,
                        "series_after": 110,
                    },
                    {
                        "metric": "http_requests_total",
                        "series_before": 40,
                        "series_after_first_half": 52,
                        "series_after": 52,
                    },
                ]
            }
        ],
    }
    report = {
        "schema_version": 1,
        "run_id": "r",
        "kind": "conformance",
        "tool": {"name": "obsconform", "version": "0"},
        "profile": {"path": payload, "service": payload},
        "started_at": "2030-01-01T00:00:00Z",
        "finished_at": "2030-01-01T00:00:01Z",
        "duration_seconds": 1,
        "stack": {"mode": "local", "components": [{"name": payload, "kind": "process", "version": payload}]},
        "summary": {
            "verdict": "failed",
            "exit_code": 1,
            "counts": {"passed": 1, "failed": 2, "error": 0, "skipped": 0},
            "failed_must": ["LOG-001", "MET-008"],
            "failed_should": [],
            "errors": [],
        },
        "results": [result, growth, load],
    }
    jsonschema.Draft202012Validator(REPORT_SCHEMA).validate(report)
    page = tmp_path / "hostile.html"
    page.write_text(render_html(report), encoding="utf-8")
    dom = chromium_or_fail(lambda: chromium_dump_dom(page))
    assert "data-pwned" not in dom.split("<body", 1)[1].split(">", 1)[0]
    assert "<script" not in dom and "<img" not in dom
    assert "&lt;script&gt;document.body.setAttribute" in dom
    for chart in ("chart-latency", "chart-growth"):
        section = dom[dom.index(f'id="{chart}"') :]
        assert section.index("<svg") < section.index("</div>"), chart
    assert dom.count('class="after grew"') == 2  # the legend and the metric still growing
    png = chromium_or_fail(lambda: chromium_screenshot(page, tmp_path / "charts.png", height=1400))
    keep_artifacts(png)
