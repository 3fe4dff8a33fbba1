"""``health``: the service's health probes and how they answer while a dependency fails.

Each probe names an entry of ``endpoints`` and a JSON Schema file for its
body; the file is read and checked as a schema when the profile loads, so a
typo or a broken schema never reaches a run. ``dependency_failure`` describes
a second instance of the service (extra environment that makes a dependency
fail) for HLT-002 and HLT-003; without it those requirements cannot run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.validators import validator_for

from conformance._exceptions import ProfileError
from conformance._profile import Endpoint, Profile, _env_str, schema_path

__all__ = [
    "DEFAULT_MAX_SECONDS",
    "HARNESS_SCHEMAS",
    "KEY",
    "DependencyFailure",
    "HealthProbe",
    "HealthSection",
    "parse",
]

KEY = "health"

#: Seed 002 §Timeout Configuration: the database check gives up after 2 s; 1 s margin.
DEFAULT_MAX_SECONDS = 3.0
DEFAULT_STARTUP_TIMEOUT = 30.0
#: Placeholder in a schema path for the schemas shipped with the harness, so a copied
#: profile still finds them (a path relative to the profile would not).
HARNESS_SCHEMAS = "{harness_schemas}"


@dataclass(frozen=True, slots=True)
class HealthProbe:
    """A health endpoint and the answer it must give: ``status`` and, when
    ``schema`` is set, a JSON body valid against it."""

    endpoint: Endpoint
    status: int = 200
    schema: Mapping[str, Any] | None = None
    schema_file: Path | None = None

    def describe(self) -> str:
        """``GET /health/ready (health_ready)``, for messages."""
        return f"{self.endpoint.method} {self.endpoint.concrete_path()} ({self.endpoint.name})"


@dataclass(frozen=True, slots=True)
class DependencyFailure:
    """A second instance of the service started with ``env`` added, in which a dependency fails."""

    env: Mapping[str, str] = field(default_factory=dict)
    ready: HealthProbe | None = None
    live: HealthProbe | None = None
    timeout: float = DEFAULT_STARTUP_TIMEOUT


@dataclass(frozen=True, slots=True)
class HealthSection:
    probes: tuple[HealthProbe, ...] = ()
    dependency_failure: DependencyFailure | None = None
    max_seconds: float = DEFAULT_MAX_SECONDS


def parse(profile: Profile, value: Mapping[str, Any] | None, display: str) -> HealthSection:
    if value is None:
        return HealthSection()
    endpoints = {ep.name: ep for ep in profile.endpoints}
    probes: list[HealthProbe] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(value.get("probes", [])):
        where = f"{KEY}.probes[{i}]"
        probe = _probe(profile, endpoints, raw, where, display, default_status=200)
        if probe.endpoint.name in seen:
            raise ProfileError(
                display, f"{where}.endpoint", f"duplicate of {KEY}.probes[{seen[probe.endpoint.name]}]"
            )
        seen[probe.endpoint.name] = i
        probes.append(probe)
    failure = None
    raw_failure = value.get("dependency_failure")
    if raw_failure is not None:
        where = f"{KEY}.dependency_failure"
        if "ready" not in raw_failure and "live" not in raw_failure:
            raise ProfileError(display, where, "names neither a ready nor a live probe; add one or both")
        failure = DependencyFailure(
            env={k: _env_str(v) for k, v in raw_failure["env"].items()},
            ready=_optional_probe(profile, endpoints, raw_failure, "ready", display, default_status=503),
            live=_optional_probe(profile, endpoints, raw_failure, "live", display, default_status=200),
            timeout=float(raw_failure.get("timeout", DEFAULT_STARTUP_TIMEOUT)),
        )
    return HealthSection(
        probes=tuple(probes),
        dependency_failure=failure,
        max_seconds=float(value.get("max_seconds", DEFAULT_MAX_SECONDS)),
    )


def _optional_probe(
    profile: Profile,
    endpoints: Mapping[str, Endpoint],
    raw_failure: Mapping[str, Any],
    key: str,
    display: str,
    *,
    default_status: int,
) -> HealthProbe | None:
    if key not in raw_failure:
        return None
    where = f"{KEY}.dependency_failure.{key}"
    return _probe(profile, endpoints, raw_failure[key], where, display, default_status=default_status)


def _probe(
    profile: Profile,
    endpoints: Mapping[str, Endpoint],
    raw: Mapping[str, Any],
    where: str,
    display: str,
    *,
    default_status: int,
) -> HealthProbe:
    name = str(raw["endpoint"])
    if name not in endpoints:
        known = ", ".join(endpoints) or "none"
        raise ProfileError(
            display,
            f"{where}.endpoint",
            f"{name!r} is not the name of an entry of endpoints (known: {known})",
        )
    schema_file: Path | None = None
    schema: dict[str, Any] | None = None
    if "schema" in raw:
        schema_file, schema = _load_schema(profile, str(raw["schema"]), f"{where}.schema", display)
    return HealthProbe(
        endpoint=endpoints[name],
        status=int(raw.get("status", default_status)),
        schema=schema,
        schema_file=schema_file,
    )


def _load_schema(profile: Profile, value: str, where: str, display: str) -> tuple[Path, dict[str, Any]]:
    if value.startswith(HARNESS_SCHEMAS):
        base = schema_path("profile.schema.json").parent
        path = (base / value.removeprefix(HARNESS_SCHEMAS).lstrip("/")).resolve()
    else:
        path = (profile.directory / value).resolve()
    if not path.is_file():
        raise ProfileError(display, where, f"file not found: {value} (looked at {path})")
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ProfileError(display, where, f"{value} is not JSON: {first}") from None
    if not isinstance(schema, dict):
        raise ProfileError(display, where, f"{value} is not a JSON Schema: the top level is not an object")
    try:
        validator_for(schema, default=jsonschema.Draft202012Validator).check_schema(schema)
    except jsonschema.SchemaError as exc:
        path_in_schema = "/".join(str(p) for p in exc.absolute_path)
        at = f" at /{path_in_schema}" if path_in_schema else ""
        raise ProfileError(
            display, where, f"{value} is not a valid JSON Schema{at}: {exc.message.splitlines()[0]}"
        ) from None
    return path, schema
