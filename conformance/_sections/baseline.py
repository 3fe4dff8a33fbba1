"""``baseline``: known violations that do not fail the run, each with a reason and an expiry.

Entries come from a committed file (``baseline.file``, e.g.
``conformance-baseline.yaml`` next to the profile) and/or inline
(``baseline.entries``). The file is read and validated when the profile
loads, so a typo surfaces before a run; whether an entry still occurs or has
expired is decided when the report is built (``conformance.report``), against
an injectable date.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from conformance._exceptions import ProfileError
from conformance._profile import Profile, _read_yaml, _schema_problem, _schema_registry

__all__ = ["KEY", "Baseline", "BaselineEntry", "parse"]

KEY = "baseline"

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class BaselineEntry:
    """One accepted violation: ``id``'s findings (those containing ``match``, if given)
    do not fail the run through ``expires`` (inclusive, UTC)."""

    id: str
    reason: str
    expires: dt.date
    match: str | None = None
    #: Where the entry is written, for messages: ``conformance-baseline.yaml entries[2]``.
    origin: str = ""

    def covers(self, finding_message: str) -> bool:
        return self.match is None or self.match in finding_message

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "reason": self.reason, "expires": self.expires.isoformat()}
        if self.match is not None:
            out["match"] = self.match
        out["origin"] = self.origin
        return out


@dataclass(frozen=True, slots=True)
class Baseline:
    """The profile's known violations (empty when the profile has no ``baseline``)."""

    entries: tuple[BaselineEntry, ...] = ()
    file: Path | None = None
    warn_days: int = 14

    def __bool__(self) -> bool:
        return bool(self.entries) or self.file is not None

    @property
    def source(self) -> str:
        return self.file.name if self.file is not None else "profile"


def parse(profile: Profile, value: Mapping[str, Any] | None, display: str) -> Baseline:
    if value is None:
        return Baseline()
    entries: list[tuple[BaselineEntry, str, str]] = []
    file: Path | None = None
    if "file" in value:
        file = (profile.directory / value["file"]).resolve()
        if not file.is_file():
            raise ProfileError(display, f"{KEY}.file", f"file not found: {value['file']} (looked at {file})")
        entries += _read_file(file, value["file"])
    inline = value.get("entries", [])
    entries += _entries(inline, display, f"{KEY}.entries", origin_prefix=f"profile {KEY}.entries")
    _check_entries(profile, entries)
    return Baseline(tuple(e for e, _, _ in entries), file, int(value.get("warn_days", 14)))


def _read_file(path: Path, display: str) -> list[tuple[BaselineEntry, str, str]]:
    data = _read_yaml(path, display)
    if data is None:
        raise ProfileError(display, "", "file is empty (expected a mapping with `entries`)")
    schema = {"$ref": "https://obsconform.dev/schemas/profile-baseline.schema.json#/$defs/file"}
    validator = jsonschema.Draft202012Validator(schema, registry=_schema_registry())
    errors = sorted(
        validator.iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), str(e.validator))
    )
    if errors:
        where, problem = _schema_problem(errors[0])
        raise ProfileError(display, where, problem)
    return _entries(data["entries"], display, "entries", origin_prefix=f"{path.name} entries")


def _entries(
    raw: Sequence[Mapping[str, Any]], display: str, where: str, *, origin_prefix: str
) -> list[tuple[BaselineEntry, str, str]]:
    """Entries with the (file, path) each one's problems are reported at."""
    out = []
    for i, item in enumerate(raw):
        entry = BaselineEntry(
            id=item["id"],
            reason=" ".join(str(item["reason"]).split()),
            expires=_date(item["expires"], display, f"{where}[{i}].expires"),
            match=item.get("match"),
            origin=f"{origin_prefix}[{i}]",
        )
        out.append((entry, display, f"{where}[{i}]"))
    return out


def _date(value: Any, display: str, where: str) -> dt.date:
    # YAML reads an unquoted 2025-09-30 as a date, a quoted one as a string: both are fine.
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _DATE.match(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    shown = repr(value) if isinstance(value, str) else str(value)
    raise ProfileError(display, where, f"must be a date YYYY-MM-DD, got {shown[:60]}")


def _check_entries(profile: Profile, entries: list[tuple[BaselineEntry, str, str]]) -> None:
    from conformance._requirements import all_requirements

    known = {r.id for r in all_requirements()}
    seen: dict[tuple[str, str | None], str] = {}
    for entry, file, where in entries:
        if entry.id not in known:
            raise ProfileError(file, f"{where}.id", f"unknown requirement id {entry.id!r}")
        if entry.id in profile.not_applicable:
            raise ProfileError(
                file,
                f"{where}.id",
                f"{entry.id} is also in requirements.not_applicable, so it is never checked; "
                "keep one of the two",
            )
        key = (entry.id, entry.match)
        if key in seen:
            raise ProfileError(file, where, f"duplicate of {seen[key]} (same id and match)")
        seen[key] = entry.origin
