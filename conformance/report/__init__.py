"""Reports of a run: JSON (the source of truth), HTML, JUnit XML and Markdown.

Every registered requirement appears in every report. One that no suite
decided is ``error`` ("not evaluated"), never silently absent or passed;
one the profile declares not applicable is ``skipped`` with the reason.

The profile's ``baseline`` (known violations) is applied in
:func:`build_report`, so the CLI and the pytest plugin both get it: a
baselined failure stays ``failed`` but is marked ``baselined`` and does not
count for the exit code; a baseline entry that no longer occurs or has
expired fails the run (``EXIT_FAILED``); see ``conformance.report._baseline``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from conformance._exceptions import HarnessError
from conformance._mask import mask_secrets
from conformance._model import Level, RequirementResult, Status
from conformance._process import RUN_ID
from conformance._profile import Profile
from conformance._requirements import AREAS, all_requirements
from conformance._sections.baseline import Baseline
from conformance.report._baseline import BaselineOutcome, apply_baseline
from conformance.report._diff import ReportDiff, diff_reports, load_report
from conformance.report._html import render_html
from conformance.report._links import trace_ids_in, trace_links

__all__ = [
    "EXIT_FAILED",
    "EXIT_HARNESS_ERROR",
    "EXIT_OK",
    "EXIT_USAGE",
    "HTML_NAME",
    "JUNIT_NAME",
    "MARKDOWN_NAME",
    "REPORT_NAME",
    "RUN_KINDS",
    "ReportDiff",
    "ReportNotWritten",
    "build_report",
    "complete_results",
    "diff_reports",
    "exit_code_for",
    "load_report",
    "render_html",
    "render_junit",
    "render_markdown",
    "write_renderings",
    "write_reports",
]

REPORT_NAME = "conformance-report.json"
HTML_NAME = "conformance-report.html"
JUNIT_NAME = "junit.xml"
MARKDOWN_NAME = "summary.md"
REPORT_SCHEMA_VERSION = 1

#: Every MUST passed (SHOULD failures are reported, not fatal).
EXIT_OK = 0
#: At least one MUST requirement failed: the service does not conform.
EXIT_FAILED = 1
#: The user's mistake: bad profile, bad flag.
EXIT_USAGE = 2
#: No MUST failed, but some requirement could not be decided (harness/stack error).
EXIT_HARNESS_ERROR = 3


#: The kinds of run, and which requirement areas each one decides. The load
#: gate is its own run (``conformance load``), so a PR-mode ``conformance run``
#: does not report PERF-* as "not evaluated".
RUN_KINDS = {
    "conformance": frozenset(p for p in AREAS if p != "PERF"),
    "load": frozenset({"PERF"}),
}


def complete_results(
    results: Mapping[str, RequirementResult],
    *,
    not_applicable: Mapping[str, str],
    stack_error: str = "",
    kind: str = "conformance",
) -> list[RequirementResult]:
    """One result per requirement this kind of run decides, in report order."""
    prefixes = RUN_KINDS[kind]
    out = []
    for req in all_requirements():
        if req.id.partition("-")[0] not in prefixes and req.id not in results:
            continue
        got = results.get(req.id)
        if got is not None:
            out.append(got)
        elif req.id in not_applicable:
            out.append(RequirementResult(req, Status.SKIPPED, f"not applicable: {not_applicable[req.id]}"))
        elif stack_error:
            out.append(RequirementResult(req, Status.ERROR, f"not evaluated: {stack_error}"))
        else:
            out.append(
                RequirementResult(req, Status.ERROR, "not evaluated: no suite test decided it in this run")
            )
    return out


def exit_code_for(results: list[RequirementResult]) -> int:
    if any(r.status is Status.FAILED and r.requirement.level is Level.MUST for r in results):
        return EXIT_FAILED
    if any(r.status is Status.ERROR for r in results):
        return EXIT_HARNESS_ERROR
    return EXIT_OK


def _verdict(code: int) -> str:
    return {EXIT_OK: "passed", EXIT_FAILED: "failed", EXIT_HARNESS_ERROR: "error"}.get(code, "error")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _version() -> str:
    try:
        return metadata.version("obsconform")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def build_report(
    results: list[RequirementResult],
    *,
    profile: Profile | None,
    profile_path: str,
    stack: Mapping[str, Any],
    started_at: float,
    finished_at: float,
    stack_error: str = "",
    kind: str = "conformance",
    today: dt.date | None = None,
) -> dict[str, Any]:
    """The JSON report (``schemas/conformance-report.schema.json``).

    ``today`` (UTC, default: now) is the date baseline expiries are judged against.
    """
    today = today or datetime.now(tz=UTC).date()
    rows = [r.to_dict() for r in results]
    baseline: Baseline = profile.sections.get("baseline", Baseline()) if profile else Baseline()
    outcome = apply_baseline(rows, baseline, today)
    baselined = set(outcome.baselined)
    counted = [r for r in results if r.requirement.id not in baselined]
    code = exit_code_for(counted)
    if outcome.problems:
        code = EXIT_FAILED
    counts = Counter(r.status.value for r in results)
    report: dict[str, Any] = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "run_id": RUN_ID,
        "kind": kind,
        "tool": {"name": "obsconform", "version": _version(), "python": platform.python_version()},
        "profile": {"path": profile_path, "service": profile.service.name if profile else None},
        "started_at": _iso(started_at),
        "finished_at": _iso(finished_at),
        "duration_seconds": round(finished_at - started_at, 3),
        "stack": {**stack, "error": stack_error} if stack_error else dict(stack),
        "summary": {
            "verdict": _verdict(code),
            "exit_code": code,
            "counts": {s.value: counts.get(s.value, 0) for s in Status},
            "failed_must": [
                r.requirement.id
                for r in counted
                if r.status is Status.FAILED and r.requirement.level is Level.MUST
            ],
            "failed_should": [
                r.requirement.id
                for r in counted
                if r.status is Status.FAILED and r.requirement.level is Level.SHOULD
            ],
            "errors": [r.requirement.id for r in results if r.status is Status.ERROR],
            "baselined": list(outcome.baselined),
            "baseline_stale": outcome.ids_in("stale"),
            "baseline_expired": outcome.ids_in("expired"),
        },
        "results": rows,
    }
    if baseline:
        report["baseline"] = _baseline_section(baseline, outcome, today)
    return report


def _baseline_section(baseline: Baseline, outcome: BaselineOutcome, today: dt.date) -> dict[str, Any]:
    return {
        "source": baseline.source,
        "today": today.isoformat(),
        "warn_days": baseline.warn_days,
        "entries": outcome.entries,
    }


def render_junit(report: Mapping[str, Any]) -> str:
    """JUnit XML with one testcase per requirement (classname = area).

    A baselined failure is a ``skipped`` testcase (a known failure, like an
    xfail) whose message names the reason and expiry; each stale or expired
    baseline entry is a failed testcase of classname ``conformance.baseline``,
    so a CI test tab shows why the run failed.
    """
    results = report["results"]
    counts = report["summary"]["counts"]
    problems = [
        e for e in report.get("baseline", {}).get("entries", []) if e.get("state") in ("stale", "expired")
    ]
    baselined = sum(1 for r in results if r["status"] == "failed" and r.get("baselined"))
    suite = ET.Element(
        "testsuite",
        name=f"conformance: {report['profile']['service']}",
        tests=str(len(results) + len(problems)),
        failures=str(counts["failed"] - baselined + len(problems)),
        errors=str(counts["error"]),
        skipped=str(counts["skipped"] + baselined),
        time=str(report["duration_seconds"]),
        timestamp=report["started_at"],
    )
    for r in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"conformance.{r['area']}",
            name=f"{r['id']} [{r['level']}] {r['title']}",
            time=str(r["duration_seconds"]),
        )
        detail = json.dumps(r["evidence"], indent=2, default=str) if r["evidence"] else ""
        if r["status"] == "failed" and r.get("baselined"):
            b = r["baselined"]
            message = f"baselined until {b['expires']}: {b['reason']}; failure: {r['message']}"
            ET.SubElement(case, "skipped", message=message).text = detail
        elif r["status"] == "failed":
            ET.SubElement(case, "failure", message=r["message"], type=r["level"]).text = detail
        elif r["status"] == "error":
            ET.SubElement(case, "error", message=r["message"]).text = detail
        elif r["status"] == "skipped":
            ET.SubElement(case, "skipped", message=r["message"])
        ET.SubElement(case, "properties").extend(
            [
                ET.Element("property", name="source", value=r["source"]),
                ET.Element("property", name="level", value=r["level"]),
            ]
        )
    for e in problems:
        name = f"baseline entry {e['id']} ({e['origin']})"
        case = ET.SubElement(suite, "testcase", classname="conformance.baseline", name=name)
        text = f"reason: {e['reason']}\nexpires: {e['expires']}"
        if e.get("match"):
            text += f"\nmatch: {e['match']}"
        ET.SubElement(case, "failure", message=f"{e['state']}: {e['detail']}", type="baseline").text = text
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


_ICON = {"passed": "✅", "failed": "❌", "error": "⚠️", "skipped": "⏭️"}


def render_markdown(report: Mapping[str, Any]) -> str:
    """A summary short enough for a PR comment: verdict, counts, and only what needs attention."""
    s = report["summary"]
    c = s["counts"]
    baselined = [r for r in report["results"] if r["status"] == "failed" and r.get("baselined")]
    lines = [
        f"### Conformance: {report['profile']['service']} — {s['verdict'].upper()}",
        "",
        f"{c['passed']} passed · {c['failed'] - len(baselined)} failed · {c['error']} error · "
        f"{c['skipped']} skipped"
        + (f" · {len(baselined)} baselined" if baselined else "")
        + f" · mode `{report['stack'].get('mode', '?')}` · {report['duration_seconds']:.1f}s",
        "",
    ]
    failed = [r for r in report["results"] if r["status"] == "failed" and not r.get("baselined")]
    failed.sort(key=lambda r: 0 if r["level"] == "MUST" else 1)
    by_cause: dict[str, list[Mapping[str, Any]]] = {}
    for r in report["results"]:
        if r["status"] == "error":
            by_cause.setdefault(r["message"], []).append(r)
    links = trace_links(report)

    def detail(r: Mapping[str, Any]) -> str:
        text = _md(r["message"])
        if links is None:
            return text
        return links.rewrite(text, trace_ids_in(r.get("evidence", [])), lambda tid, url: f"[{tid}]({url})")

    rows = [[_ICON["failed"], r["id"], r["level"], _md(r["title"]), detail(r)] for r in failed]
    for cause, group in by_cause.items():
        if len(group) >= 3:  # one row per shared cause ("not evaluated: the service exited …")
            ids = ", ".join(r["id"] for r in group)
            rows.append([_ICON["error"], f"{len(group)} requirements", "", _md(ids, 400), _md(cause)])
        else:
            rows += [[_ICON["error"], r["id"], r["level"], _md(r["title"]), detail(r)] for r in group]
    problems = [
        e for e in report.get("baseline", {}).get("entries", []) if e.get("state") in ("stale", "expired")
    ]
    rows += [
        ["❌", e["id"], "baseline", f"{e['state']} entry ({_md(e['origin'])})", _md(e["detail"])]
        for e in problems
    ]
    if rows:
        lines += ["| | ID | Level | Requirement | Detail |", "|---|---|---|---|---|"]
        lines += [f"| {' | '.join(cells)} |" for cells in rows[:MARKDOWN_MAX_ROWS]]
        if len(rows) > MARKDOWN_MAX_ROWS:
            lines.append(f"\n… and {len(rows) - MARKDOWN_MAX_ROWS} more in the HTML report.")
    else:
        lines.append("All requirements passed or are not applicable.")
    if baselined:
        known = ", ".join(f"{r['id']} (until {r['baselined']['expires']})" for r in baselined)
        lines += ["", f"Known violations (baselined, not failing the run): {known}."]
    if links is not None:
        traced = [
            (r["id"], found[:MARKDOWN_TRACES])
            for r in failed
            if (found := trace_ids_in(r.get("evidence", [])))
        ]
        if traced:
            where = links.base if links.ui else f"{links.base}, its query API's JSON: this Jaeger has no UI"
            lines += ["", f"Traces in Jaeger ({where}):"]
            lines += [
                f"- {rid}: " + ", ".join(f"[{tid[:12]}…]({links.url(tid)})" for tid in shown)
                for rid, shown in traced[:MARKDOWN_MAX_ROWS]
            ]
    return "\n".join(lines) + "\n"


#: Trace links listed per failed requirement in the Markdown summary.
MARKDOWN_TRACES = 5


#: Rows of the Markdown summary's table before it says "and N more".
MARKDOWN_MAX_ROWS = 25


def _md(text: str, limit: int = 160) -> str:
    """One table cell: no pipes, newlines, or markup that would break the table or ping people."""
    flat = " ".join(str(text).split()).replace("|", "\\|").replace("<", "&lt;").replace("@", "@\u200b")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def write_reports(
    report_dir: Path,
    *,
    profile: Profile | None,
    results: Mapping[str, RequirementResult],
    stack: Mapping[str, Any],
    started_at: float,
    finished_at: float,
    profile_path: str = "",
    stack_error: str = "",
    kind: str = "conformance",
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Write JSON, HTML, JUnit and Markdown into ``report_dir``; return the JSON report.

    ``today`` is the date baseline expiries are judged against (default: today, UTC).
    """
    complete = complete_results(
        results, not_applicable=profile.not_applicable if profile else {}, stack_error=stack_error, kind=kind
    )
    report = build_report(
        complete,
        profile=profile,
        profile_path=profile_path or (str(profile.path) if profile else ""),
        stack=stack,
        started_at=started_at,
        finished_at=finished_at,
        stack_error=stack_error,
        kind=kind,
        today=today,
    )
    if profile is not None:
        secrets = [profile.service.env[k] for k in profile.service.secret_env]
        report = _mask_tree(report, secrets)
    failures: dict[str, str] = {}
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        _write_atomically(report_dir / REPORT_NAME, json.dumps(report, indent=2, default=str) + "\n")
    except (OSError, ValueError) as exc:
        failures[REPORT_NAME] = _why(exc)
    try:
        write_renderings(report_dir, report)
    except ReportNotWritten as exc:
        failures.update(exc.failures)
    if failures:
        raise ReportNotWritten(report_dir, failures, report)
    return report


class ReportNotWritten(HarnessError):
    """One or more reports could not be written (the others were); the run exits 3.

    ``failures`` maps each report's file name to why; ``report`` is the JSON
    report as built, so the caller can still print its summary.
    """

    def __init__(self, report_dir: Path, failures: Mapping[str, str], report: Mapping[str, Any]) -> None:
        self.failures = dict(failures)
        self.report = report
        named = "; ".join(f"{name}: {why}" for name, why in self.failures.items())
        super().__init__(
            f"report(s) not written in {report_dir}: {named}",
            hint="check the report directory's free space and permissions",
        )


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``:
    a reader (or a run killed half-way) sees the old file or the complete new one."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_renderings(report_dir: Path, report: Mapping[str, Any]) -> list[Path]:
    """HTML, JUnit and Markdown from a JSON report (also used by ``conformance report``).

    Each is written atomically; one that cannot be written does not stop the
    others, and :class:`ReportNotWritten` then names every one that is missing.
    """
    written = []
    failures: dict[str, str] = {}
    renderers = ((HTML_NAME, _html_or_apology), (JUNIT_NAME, render_junit), (MARKDOWN_NAME, render_markdown))
    for name, render in renderers:
        path = report_dir / name
        try:
            _write_atomically(path, render(report))
        except (OSError, ValueError) as exc:
            failures[name] = _why(exc)
            continue
        written.append(path)
    if failures:
        raise ReportNotWritten(report_dir, failures, report)
    return written


def _html_or_apology(report: Mapping[str, Any]) -> str:
    """The HTML report; if rendering breaks (a bug), a page that says so, so the run keeps its
    other reports and nobody mistakes an empty page for a verdict."""
    try:
        return render_html(report)
    except Exception as exc:
        from html import escape

        return (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>report not rendered</title>'
            "</head><body><h1>The HTML report could not be rendered</h1>"
            f"<p>{escape(type(exc).__name__)}: {escape(str(exc))[:500]}</p>"
            f"<p>Verdict: {escape(str(report.get('summary', {}).get('verdict', '?')))}. "
            "conformance-report.json next to this file is complete.</p></body></html>\n"
        )


def _mask_tree(node: Any, secrets: list[str]) -> Any:
    """The report with every profile secret (``service.secret_env``) replaced by ``***``."""
    if not secrets:
        return node
    if isinstance(node, str):
        return mask_secrets(node, secrets)
    if isinstance(node, dict):
        return {k: _mask_tree(v, secrets) for k, v in node.items()}
    if isinstance(node, list):
        return [_mask_tree(v, secrets) for v in node]
    return node
