"""The hostile corpus: services that attack the harness, each one way (tests/hostile/hostile_service.py).

Each case runs ``conformance run --mode local`` on one service with small limits in its
profile and asserts what issue 21 promises: the run ends (pytest-timeout bounds it; no timed
assertion), every report is written and parses, the requirement the misbehaviour affects is
``error`` or ``failed`` with the cause named in its message, nothing the service started is
left running, and nothing it wrote reaches the console or the reports unescaped.

The collector and Jaeger are left out (``OBSCONFORM_TELEMETRY=embedded``): these runs test the
harness's own defences, and a shorter stack keeps the tier fast.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.integration.conftest import CliRun, cli_run, processes_with_run_id

pytestmark = pytest.mark.hostile

HERE = Path(__file__).resolve().parent
ENV = {"OBSCONFORM_TELEMETRY": "embedded"}
LOGS = "test_logs"
SCRAPE = "test_metrics_are_scraped_by_prometheus"


@dataclass(frozen=True)
class Case:
    mode: str
    keyword: str  # the suite tests the misbehaviour affects (conformance run -k)
    requirement: str
    status: str
    cause: str  # a regular expression the requirement's message must match


CASES = [
    Case("log-flood", LOGS, "LOG-001", "error",
         r"log stream stdout exceeded 8 MiB \(.* MiB more written and dropped, the first 8 MiB kept\) "
         r"after \d+ s; raise logs\.max_bytes or fix the flood"),
    Case("huge-line", LOGS, "LOG-001", "failed", r"longer than 1048576 bytes"),
    Case("log-burst", LOGS, "LOG-001", "passed", r""),  # 6 of 8 MiB: read in full, in bounded time
    Case("metrics-series", SCRAPE, "MET-001", "error",
         r"exceeded 50000 samples .* raise prometheus\.sample_limit"),
    Case("metrics-huge", SCRAPE, "MET-001", "error",
         r"exceeded 8 MiB \(read stopped at 8 MiB\) .*raise prometheus\.body_size_limit"),
    Case("metrics-endless", SCRAPE, "MET-001", "error",
         r"exceeded its 3 s deadline \(\d+ bytes received\) .*raise prometheus\.scrape_timeout"),
    Case("hang-after-headers", SCRAPE, "MET-001", "error",
         r"exceeded its 3 s deadline \(ReadTimeout\) .*raise prometheus\.scrape_timeout"),
    Case("close-mid-body", SCRAPE, "MET-001", "error",
         r"peer closed connection without sending complete message body"),
    Case("stop-answering", SCRAPE, "MET-001", "error", r"raise prometheus\.scrape_timeout"),
    Case("exit-mid-run", SCRAPE, "MET-001", "error", r"the service exited with code 3 during the run"),
    Case("hostile-text", LOGS, "LOG-001", "failed", r"invalid UTF-8"),
    Case("fork-orphans", LOGS, "LOG-001", "passed", r""),  # the point: nothing left (cli_run checks)
    Case("ignore-sigterm", LOGS, "LOG-001", "passed", r""),
]  # fmt: skip


def _run(tmp_path: Path, case: Case) -> CliRun:
    """The run; ``cli_run`` itself asserts that no process carrying the run's id is left."""
    return cli_run(
        tmp_path,
        "--mode",
        "local",
        "-k",
        case.keyword,
        env=ENV,
        profile=HERE / case.mode / "conformance.yaml",
    )


def _assert_reports_complete(run: CliRun) -> None:
    report_dir = run.report_dir
    assert run.report["summary"]["verdict"]
    ET.parse(report_dir / "junit.xml")
    HTMLParser().feed((report_dir / "conformance-report.html").read_text(encoding="utf-8"))
    assert (report_dir / "summary.md").read_text(encoding="utf-8").strip()
    allure = list((report_dir / "allure-results").glob("*-result.json"))
    assert allure, "no Allure result written"
    for result in allure:
        json.loads(result.read_text(encoding="utf-8"))
    assert not list(report_dir.glob(".*.tmp")), "a report was left half-written"


@pytest.mark.timeout(150)
@pytest.mark.parametrize("case", CASES, ids=[c.mode for c in CASES])
def test_hostile_service_gets_a_named_verdict_and_nothing_is_lost(tmp_path: Path, case: Case) -> None:
    run = _run(tmp_path, case)
    assert run.returncode in (1, 3), run.stderr[-2000:]
    _assert_reports_complete(run)
    result = next(r for r in run.report["results"] if r["id"] == case.requirement)
    assert result["status"] == case.status, result
    assert re.search(case.cause, result["message"]), result["message"]
    assert not processes_with_run_id(run.report["run_id"])


def test_the_flood_is_counted_in_the_report(tmp_path: Path) -> None:
    run = _run(tmp_path, CASES[0])
    service = run.report["stack"]["components"][0]
    dropped = service["output_dropped"]["stdout"]
    assert dropped["kept_bytes"] == 8 * 1024 * 1024
    assert dropped["dropped_bytes"] > 0
    assert (tmp_path / "report/work/service/stdout.log").stat().st_size == 8 * 1024 * 1024


#: What hostile-text writes and nothing may pass on unescaped: ESC (terminal control), NUL,
#: the bidi override U+202E, and a script element.
RAW = ("\x1b", "\x00", "\u202e")


def test_hostile_text_is_shown_never_obeyed(tmp_path: Path) -> None:
    run = _run(tmp_path, next(c for c in CASES if c.mode == "hostile-text"))
    _assert_reports_complete(run)
    console = run.stdout + run.stderr
    for raw in RAW:
        assert raw not in console, f"{raw!r} reached the console"
    report_dir = run.report_dir
    for name in ("conformance-report.html", "summary.md", "junit.xml", "conformance-report.json"):
        text = (report_dir / name).read_text(encoding="utf-8")
        for raw in RAW:
            assert raw not in text, f"{raw!r} reached {name}"
    html = (report_dir / "conformance-report.html").read_text(encoding="utf-8")
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert" in html  # it is there, escaped: the evidence is kept


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["fork-orphans", "ignore-sigterm"])
def test_escaped_children_are_stopped(tmp_path: Path, mode: str) -> None:
    run = _run(tmp_path, next(c for c in CASES if c.mode == mode))
    log = (run.report_dir / "work/service/stdout.log").read_text(encoding="utf-8").splitlines()
    orphans = [json.loads(line)["pid"] for line in log if '"orphan"' in line]
    assert len(orphans) == 2, log  # both grandchildren ran, outside the service's process group
    for pid in orphans:
        assert not _alive(pid), f"orphan {pid} of {mode} is still running"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.timeout(120)
def test_a_report_that_cannot_be_written_exits_3_naming_it(tmp_path: Path) -> None:
    (tmp_path / "report/junit.xml").mkdir(parents=True)  # renaming a file over a directory fails
    run = _run(tmp_path, next(c for c in CASES if c.mode == "fork-orphans"))
    assert run.returncode == 3
    assert "report(s) not written" in run.stderr
    assert "junit.xml" in run.last_stderr_line
    # The others were written, complete.
    assert run.report["summary"]["verdict"]
    HTMLParser().feed((run.report_dir / "conformance-report.html").read_text(encoding="utf-8"))
