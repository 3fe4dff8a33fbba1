"""Requirements, findings and results: the vocabulary of every report."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Finding", "Level", "Requirement", "RequirementResult", "Status", "describe_examined"]


class Level(enum.StrEnum):
    """RFC 2119 strength: a failed MUST fails the run, a failed SHOULD is reported."""

    MUST = "MUST"
    SHOULD = "SHOULD"


class Status(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    #: The check could not run (stack broke, data missing); never counts as passed.
    ERROR = "error"
    #: Not applicable to this profile, with the reason recorded.
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Requirement:
    """A numbered, sourced obligation, e.g. ``LOG-001``.

    ``source`` names where the obligation comes from (a seed document and
    section, or a spec clause) so a reader of the report can check it.
    """

    id: str
    level: Level
    title: str
    source: str
    area: str

    def __post_init__(self) -> None:
        prefix, _, number = self.id.partition("-")
        if not (prefix.isalpha() and prefix.isupper() and number.isdigit() and len(number) == 3):
            raise ValueError(f"requirement id must look like ABC-001, got {self.id!r}")


@dataclass(frozen=True, slots=True)
class Finding:
    """One concrete way the service misses a requirement.

    ``evidence`` holds small JSON-able facts (line number, excerpt, field path);
    anything taken from the service's output is already masked/truncated.
    """

    requirement_id: str
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"requirement": self.requirement_id, "message": self.message, **dict(self.evidence)}


@dataclass(slots=True)
class RequirementResult:
    """The verdict on one requirement in one run."""

    requirement: Requirement
    status: Status
    message: str = ""
    evidence: list[dict[str, Any]] = field(default_factory=list)
    duration_seconds: float = 0.0
    #: What the verdict rests on: counts by kind ({"lines": 412, "requests": 37}).
    examined: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        req = self.requirement
        return {
            "id": req.id,
            "level": req.level.value,
            "title": req.title,
            "source": req.source,
            "area": req.area,
            "status": self.status.value,
            "message": self.message,
            "evidence": self.evidence,
            "examined": self.examined,
            "duration_seconds": round(self.duration_seconds, 4),
        }


def describe_examined(examined: Mapping[str, int]) -> str:
    """``{"lines": 412, "requests": 37}`` → ``412 lines, 37 requests``."""
    return ", ".join(f"{count} {kind}" for kind, count in examined.items())
