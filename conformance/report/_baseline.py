"""Applying the profile's baseline (known violations) to a run's results.

A failed requirement is *baselined* when every one of its findings is
covered by an unexpired entry for its id (an entry without ``match`` covers
them all). It keeps status ``failed`` and gains ``baselined`` (reason,
expiry), and the exit code ignores it. Each entry gets a state:

* ``matched``    — it covers at least one finding of a failed requirement;
* ``stale``      — the requirement passed, or none of its findings contains ``match``:
  the violation no longer occurs, so the entry must go (**fails the run**);
* ``expired``    — today (UTC) is after ``expires`` (**fails the run**), whatever else;
* ``unverified`` — the requirement was not decided in this run (error, skipped,
  not evaluated), so nobody can tell;
* ``not_in_run`` — this kind of run does not decide the requirement (a load run and LOG-001).

Problems (stale, expired) are a section of their own in the report
(``baseline`` and ``summary.baseline_stale``/``baseline_expired``), not a
requirement: the registry holds the service's obligations, and a stale
entry is the profile's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conformance._sections.baseline import Baseline, BaselineEntry

__all__ = ["BaselineOutcome", "apply_baseline", "finding_messages"]

PROBLEM_STATES = ("stale", "expired")


@dataclass(slots=True)
class BaselineOutcome:
    """What the baseline did to one run: the ids it baselined and each entry's state."""

    baselined: list[str] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)

    def ids_in(self, state: str) -> list[str]:
        return [e["id"] for e in self.entries if e["state"] == state]

    @property
    def problems(self) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["state"] in PROBLEM_STATES]


def finding_messages(result: Mapping[str, Any]) -> list[str]:
    """The messages of a failed result's findings (its own message when it has none)."""
    found = [
        str(item["message"])
        for item in result.get("evidence", [])
        if isinstance(item, Mapping) and item.get("requirement") == result["id"] and "message" in item
    ]
    return found or [str(result.get("message", ""))]


def apply_baseline(results: list[dict[str, Any]], baseline: Baseline, today: dt.date) -> BaselineOutcome:
    """Mark baselined results in place (``result["baselined"]``) and judge every entry."""
    outcome = BaselineOutcome()
    by_id = {r["id"]: r for r in results}
    covered_by: dict[int, list[str]] = {}
    for index, entry in enumerate(baseline.entries):
        result = by_id.get(entry.id)
        days_left = (entry.expires - today).days
        state, detail, covered = _judge(entry, result, days_left)
        covered_by[index] = covered
        row = {**entry.to_dict(), "state": state, "detail": detail, "expires_in_days": days_left}
        if state == "matched" and days_left <= baseline.warn_days:
            row["expiring_soon"] = True
        outcome.entries.append(row)

    for result in results:
        if result["status"] != "failed":
            continue
        live = [
            (i, e)
            for i, e in enumerate(baseline.entries)
            if e.id == result["id"] and outcome.entries[i]["state"] == "matched"
        ]
        if not live:
            continue
        messages = finding_messages(result)
        if all(any(e.covers(m) for _, e in live) for m in messages):
            using = [e for i, e in live if covered_by[i]]
            result["baselined"] = {
                "reason": "; ".join(dict.fromkeys(e.reason for e in using)),
                "expires": min(e.expires for e in using).isoformat(),
                "entries": [e.origin for e in using],
            }
            outcome.baselined.append(result["id"])
        else:
            uncovered = sum(1 for m in messages if not any(e.covers(m) for _, e in live))
            for i, _ in live:
                outcome.entries[i]["detail"] += (
                    f"; {uncovered} other finding(s) of {result['id']} are not covered, so it still fails"
                )
    return outcome


def _judge(
    entry: BaselineEntry, result: Mapping[str, Any] | None, days_left: int
) -> tuple[str, str, list[str]]:
    if days_left < 0:
        when = f"expired on {entry.expires.isoformat()} ({-days_left} day(s) ago)"
        return "expired", f"{when}: fix the violation or renew the entry with a new reason", []
    if result is None:
        return "not_in_run", "this kind of run does not decide this requirement", []
    status = result["status"]
    if status == "passed":
        return "stale", f"{entry.id} passed: the violation no longer occurs; remove the entry", []
    if status != "failed":
        return "unverified", f"{entry.id} was not decided in this run ({status}): {result['message']}", []
    covered = [m for m in finding_messages(result) if entry.covers(m)]
    if not covered:
        return (
            "stale",
            f"{entry.id} failed, but no finding contains {entry.match!r}: "
            "that violation no longer occurs; remove or update the entry",
            [],
        )
    return "matched", f"covers {len(covered)} finding(s)", covered
