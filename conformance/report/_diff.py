"""Comparing two JSON reports: what a release changed.

:func:`diff_reports` sorts every requirement into one of:

* **new failures** — failed now, not failed before (including requirements new in this
  release that fail); a baselined one is listed but marked, and does not count;
* **fixed** — failed before, passed now;
* **changed status** — any other status change (passed → error, error → passed, …);
* **changed evidence** — failed in both, but the findings differ: a kind of finding
  appeared or went away, or became more or less frequent. Findings are compared with
  numbers and long hex ids blanked out, so "line 12: …" and "line 14: …" of the same
  problem on another run are not a change;
* **added** / **removed** — requirements only one of the reports has.

Evidence of passed requirements is not compared: it holds run-specific values
(ports, trace ids, timings) that differ on every run.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from conformance._exceptions import UsageError

__all__ = ["ReportDiff", "diff_reports", "load_report"]

_MAX_FINDINGS = 10


@cache
def _validator() -> jsonschema.Draft202012Validator:
    from conformance._profile import schema_path

    schema = json.loads(schema_path("conformance-report.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def load_report(path: str | Path) -> dict[str, Any]:
    """A JSON report from a file or a report directory; :class:`UsageError` when it is not one."""
    path = Path(path)
    if path.is_dir():
        path = path / "conformance-report.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not JSON: {exc.msg} at line {exc.lineno}") from None
    error = next(iter(sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.path)))), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise UsageError(f"{path}: not a conformance report: {where}: {error.message[:200]}")
    if not isinstance(data, dict):  # pragma: no cover - the schema says object
        raise UsageError(f"{path}: not a conformance report")
    return data


def _findings(result: Mapping[str, Any]) -> list[str]:
    from conformance.report._baseline import finding_messages

    return finding_messages(result)


_HEX_ID = re.compile(r"\b[0-9a-fA-F-]{16,}\b")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _kind(message: str) -> str:
    """A finding's message with run-specific values blanked, for comparison."""
    return _NUMBER.sub("<n>", _HEX_ID.sub("<id>", message))


def _finding_changes(was: list[str], now: list[str]) -> tuple[list[str], list[str]]:
    """(appeared, went away): one example message per kind of finding, with xN when several."""
    before, after = Counter(map(_kind, was)), Counter(map(_kind, now))
    example = {_kind(m): m for m in [*was, *now]}

    def listed(a: Counter[str], b: Counter[str]) -> list[str]:
        out = []
        for kind, n in a.items():
            extra = n - b.get(kind, 0)
            if extra > 0:
                out.append(example[kind] + (f" (x{extra})" if extra > 1 else ""))
        return out

    return listed(after, before), listed(before, after)


@dataclass(slots=True)
class ReportDiff:
    """The difference between an old and a new report, in plain data."""

    old: dict[str, Any]
    new: dict[str, Any]
    new_failures: list[dict[str, Any]] = field(default_factory=list)
    fixed: list[dict[str, Any]] = field(default_factory=list)
    changed_status: list[dict[str, Any]] = field(default_factory=list)
    changed_evidence: list[dict[str, Any]] = field(default_factory=list)
    added: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def regressions(self) -> list[dict[str, Any]]:
        """New failures that count: not baselined in the new report."""
        return [f for f in self.new_failures if not f.get("baselined")]

    def to_dict(self) -> dict[str, Any]:
        def head(report: Mapping[str, Any]) -> dict[str, Any]:
            s = report["summary"]
            return {
                "service": report["profile"]["service"] or "(no profile)",
                "run_id": report["run_id"],
                "started_at": report["started_at"],
                "tool_version": report["tool"]["version"],
                "verdict": s["verdict"],
                "counts": s["counts"],
            }

        return {
            "old": head(self.old),
            "new": head(self.new),
            "regressions": len(self.regressions),
            "new_failures": self.new_failures,
            "fixed": self.fixed,
            "changed_status": self.changed_status,
            "changed_evidence": self.changed_evidence,
            "added": self.added,
            "removed": self.removed,
        }

    # ------------------------------------------------------------------ renderings

    def render_text(self) -> str:
        d = self.to_dict()
        o, n = d["old"], d["new"]
        lines = [
            f"conformance diff: {o['service']} {o['verdict'].upper()} ({o['started_at']}, run {o['run_id']}) "
            f"→ {n['service']} {n['verdict'].upper()} ({n['started_at']}, run {n['run_id']})",
            "counts: " + ", ".join(f"{k} {o['counts'].get(k, 0)} → {v}" for k, v in n["counts"].items()),
            "",
        ]
        for title, rows in self._sections():
            lines.append(f"{title} ({len(rows)}):" if rows else f"{title}: none")
            for row in rows:
                lines.append(f"  {self._line(row)}")
                for f in row.get("findings_added", []):
                    lines.append(f"      + {f}")
                for f in row.get("findings_removed", []):
                    lines.append(f"      - {f}")
        lines += ["", self._verdict_line()]
        return "\n".join(lines) + "\n"

    def render_markdown(self) -> str:
        d = self.to_dict()
        o, n = d["old"], d["new"]
        lines = [
            f"### Conformance diff: {_md(n['service'])} — {o['verdict'].upper()} → {n['verdict'].upper()}",
            "",
            f"old run `{o['run_id']}` ({o['started_at']}) → new run `{n['run_id']}` ({n['started_at']})",
            "",
        ]
        for title, rows in self._sections():
            if not rows:
                continue
            lines += [
                f"**{title}** ({len(rows)})",
                "",
                "| ID | Level | Status | Requirement | Detail |",
                "|---|---|---|---|---|",
            ]
            for row in rows:
                detail = row.get("message", "")
                if row.get("findings_added"):
                    detail = f"+{len(row['findings_added'])} finding(s): {row['findings_added'][0]}"
                if row.get("baselined"):
                    detail = f"baselined: {row['baselined'].get('reason', '')}; {detail}"
                lines.append(
                    f"| {row['id']} | {row.get('level', '')} | {row.get('from', '—')} → {row.get('to', '—')} "
                    f"| {_md(row.get('title', ''))} | {_md(detail)} |"
                )
            lines.append("")
        if not any(rows for _, rows in self._sections()):
            lines += ["No requirement changed status or findings.", ""]
        lines.append(self._verdict_line())
        return "\n".join(lines) + "\n"

    def _sections(self) -> list[tuple[str, list[dict[str, Any]]]]:
        return [
            ("New failures", self.new_failures),
            ("Fixed", self.fixed),
            ("Changed status", self.changed_status),
            ("Changed evidence (failing in both)", self.changed_evidence),
            ("Added requirements", self.added),
            ("Removed requirements", self.removed),
        ]

    @staticmethod
    def _line(row: Mapping[str, Any]) -> str:
        change = f"{row.get('from') or '—'} → {row.get('to') or '—'}"
        text = f"{row['id']:<9} {row.get('level', ''):<6} {change}  {row.get('title', '')}"
        if row.get("baselined"):
            text += f"  [baselined: {row['baselined'].get('reason', '')}]"
        if row.get("message") and row.get("to") in ("failed", "error"):
            text += f"\n            {row['message']}"
        return text

    def _verdict_line(self) -> str:
        n = len(self.regressions)
        if n:
            return f"conformance diff: {n} new failure(s): {', '.join(r['id'] for r in self.regressions)}"
        return "conformance diff: no new failures"


def _md(text: str, limit: int = 160) -> str:
    flat = " ".join(str(text).split()).replace("|", "\\|").replace("<", "&lt;")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _row(
    result: Mapping[str, Any], old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": result["id"],
        "level": result.get("level", ""),
        "title": result.get("title", ""),
        "area": result.get("area", ""),
        "from": old["status"] if old else None,
        "to": new["status"] if new else None,
        "message": (new or old or {}).get("message", ""),
    }
    if new is not None and new.get("baselined"):
        row["baselined"] = new["baselined"]
    return row


def diff_reports(old: Mapping[str, Any], new: Mapping[str, Any]) -> ReportDiff:
    """What changed from ``old`` to ``new`` (both JSON report dicts)."""
    diff = ReportDiff(dict(old), dict(new))
    before = {r["id"]: r for r in old["results"]}
    after = {r["id"]: r for r in new["results"]}
    for rid, n in after.items():
        o = before.get(rid)
        if o is None:
            row = _row(n, None, n)
            diff.added.append(row)
            if n["status"] == "failed":
                diff.new_failures.append(row)
            continue
        if o["status"] != n["status"]:
            row = _row(n, o, n)
            if n["status"] == "failed":
                diff.new_failures.append(row)
            elif o["status"] == "failed" and n["status"] == "passed":
                diff.fixed.append(row)
            else:
                diff.changed_status.append(row)
        elif n["status"] == "failed":
            added, gone = _finding_changes(_findings(o), _findings(n))
            if added or gone:
                row = _row(n, o, n)
                row["findings_added"] = added[:_MAX_FINDINGS]
                row["findings_removed"] = gone[:_MAX_FINDINGS]
                row["findings_added_total"] = len(added)
                row["findings_removed_total"] = len(gone)
                diff.changed_evidence.append(row)
    for rid, o in before.items():
        if rid not in after:
            diff.removed.append(_row(o, o, None))
    return diff
