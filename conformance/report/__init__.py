"""Reports of a run: JSON (the source of truth), JUnit XML and Markdown.

Every registered requirement appears in every report. One that no suite
decided is ``error`` ("not evaluated"), never silently absent or passed;
one the profile declares not applicable is ``skipped`` with the reason.
"""

from __future__ import annotations

import json
import platform
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from conformance._mask import mask_secrets
from conformance._model import Level, RequirementResult, Status
from conformance._process import RUN_ID
from conformance._profile import Profile
from conformance._requirements import AREAS, all_requirements

__all__ = [
    "EXIT_FAILED",
    "EXIT_HARNESS_ERROR",
    "EXIT_OK",
    "EXIT_USAGE",
    "REPORT_NAME",
    "RUN_KINDS",
    "build_report",
    "complete_results",
    "exit_code_for",
    "render_junit",
    "render_markdown",
    "write_reports",
]

REPORT_NAME = "conformance-report.json"
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
) -> dict[str, Any]:
    """The JSON report (``schemas/conformance-report.schema.json``)."""
    code = exit_code_for(results)
    counts = Counter(r.status.value for r in results)
    return {
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
                for r in results
                if r.status is Status.FAILED and r.requirement.level is Level.MUST
            ],
            "failed_should": [
                r.requirement.id
                for r in results
                if r.status is Status.FAILED and r.requirement.level is Level.SHOULD
            ],
            "errors": [r.requirement.id for r in results if r.status is Status.ERROR],
        },
        "results": [r.to_dict() for r in results],
    }


def render_junit(report: Mapping[str, Any]) -> str:
    """JUnit XML with one testcase per requirement (classname = area)."""
    results = report["results"]
    counts = report["summary"]["counts"]
    suite = ET.Element(
        "testsuite",
        name=f"conformance: {report['profile']['service']}",
        tests=str(len(results)),
        failures=str(counts["failed"]),
        errors=str(counts["error"]),
        skipped=str(counts["skipped"]),
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
        if r["status"] == "failed":
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
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


_ICON = {"passed": "✅", "failed": "❌", "error": "⚠️", "skipped": "⏭️"}


def render_markdown(report: Mapping[str, Any]) -> str:
    """A summary short enough for a PR comment: verdict, counts, and only what needs attention."""
    s = report["summary"]
    c = s["counts"]
    lines = [
        f"### Conformance: {report['profile']['service']} — {s['verdict'].upper()}",
        "",
        f"{c['passed']} passed · {c['failed']} failed · {c['error']} error · {c['skipped']} skipped "
        f"· mode `{report['stack'].get('mode', '?')}` · {report['duration_seconds']:.1f}s",
        "",
    ]
    attention = [r for r in report["results"] if r["status"] in ("failed", "error")]
    if attention:
        lines += ["| | ID | Level | Requirement | Detail |", "|---|---|---|---|---|"]
        for r in attention:
            detail = r["message"].replace("|", "\\|").replace("\n", " ")[:160]
            lines.append(f"| {_ICON[r['status']]} | {r['id']} | {r['level']} | {r['title']} | {detail} |")
    else:
        lines.append("All requirements passed or are not applicable.")
    return "\n".join(lines) + "\n"


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
) -> dict[str, Any]:
    """Write JSON, JUnit and Markdown into ``report_dir``; return the JSON report."""
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
    )
    if profile is not None:
        secrets = [profile.service.env[k] for k in profile.service.secret_env]
        report = _mask_tree(report, secrets)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / REPORT_NAME).write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    (report_dir / "junit.xml").write_text(render_junit(report), encoding="utf-8")
    (report_dir / "summary.md").write_text(render_markdown(report), encoding="utf-8")
    return report


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
