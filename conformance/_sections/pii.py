"""The ``pii`` section: where the PII suite puts canaries and what it accepts in output.

The typed values here are shared by the canary collector
(``conformance.collect._canaries``: :class:`InjectionSettings`) and the
checks (``conformance.checks.pii``: :class:`DetectorConfig`,
:class:`RedactedField`). Semantic checks a schema cannot express: endpoint
names exist, custom headers do not clash with the headers the harness sets
itself (the rate-limit client header, the correlation header, trace context,
Authorization, Cookie, User-Agent), path parameters exist, allowlist patterns
compile.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conformance._exceptions import ProfileError
from conformance._profile import Profile

__all__ = [
    "DEFAULT_MARKERS",
    "DETECTOR_KINDS",
    "KEY",
    "DetectorConfig",
    "InjectionSettings",
    "PiiSection",
    "RedactedField",
    "parse",
]

KEY = "pii"

#: Seed 002's redaction markers.
DEFAULT_MARKERS = (
    "[REDACTED_EMAIL]",
    "[REDACTED_PHONE]",
    "[REDACTED_CC]",
    "[REDACTED_SSN]",
    "[REDACTED_JWT]",
    "[REDACTED]",
)
DETECTOR_KINDS = ("email", "phone", "card", "ssn", "jwt", "bearer", "api_key")

#: Headers with a key of their own, or that the harness sets for other reasons.
_RESERVED_HEADERS = ("authorization", "cookie", "user-agent", "traceparent", "tracestate", "content-type")


@dataclass(frozen=True, slots=True)
class InjectionSettings:
    """Where canaries go (``pii.rounds`` … ``pii.path_params``)."""

    rounds: int = 2
    clients: int = 2
    #: Endpoint names that get canaries; empty means every endpoint.
    endpoints: tuple[str, ...] = ()
    query: Mapping[str, str] = field(default_factory=lambda: {"email": "email", "phone": "phone"})
    headers: Mapping[str, str] = field(
        default_factory=lambda: {"X-User-Email": "email", "X-Auth-Token": "api_key"}
    )
    authorization: bool = True
    cookie: str | None = "session"
    user_agent: bool = True
    body_fields: Mapping[str, str] = field(default_factory=dict)
    path_params: Mapping[str, str] = field(default_factory=dict)
    #: Kind for a path parameter ``path_params`` does not name.
    path_param_kind: str = "email"


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """Which detectors run and what they leave alone (``pii.detectors``, ``pii.markers``)."""

    kinds: tuple[str, ...] = DETECTOR_KINDS
    #: A detected value that fully matches one of these is not reported.
    allow: tuple[re.Pattern[str], ...] = ()
    #: Blanked before detection: the service's redaction markers are not PII.
    markers: tuple[str, ...] = DEFAULT_MARKERS
    #: Field names (log fields, span attribute keys, label names) the detectors skip.
    ignore_fields: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class RedactedField:
    """``pii.redacted_fields[]``: the record ``message`` logged for each canary request
    to ``endpoint`` carries ``field`` with every one of ``markers`` in it."""

    endpoint: str
    message: str
    field: str
    markers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PiiSection:
    injection: InjectionSettings = field(default_factory=InjectionSettings)
    detectors: DetectorConfig = field(default_factory=DetectorConfig)
    redacted_fields: tuple[RedactedField, ...] = ()
    #: Seconds to wait for the canary requests' telemetry (default: ``telemetry.timeout``).
    timeout: float = 15.0


def parse(profile: Profile, value: Mapping[str, Any] | None, display: str) -> PiiSection:
    value = value or {}
    names = [ep.name for ep in profile.endpoints]

    def endpoint(name: str, where: str) -> str:
        if name not in names:
            known = ", ".join(names) or "none"
            raise ProfileError(
                display, where, f"{name!r} is not the name of an entry of endpoints (known: {known})"
            )
        return name

    selected = tuple(endpoint(n, f"{KEY}.endpoints[{i}]") for i, n in enumerate(value.get("endpoints", [])))
    return PiiSection(
        injection=_injection(profile, value, selected, display),
        detectors=_detectors(profile, value, display),
        redacted_fields=_redacted_fields(value, selected, endpoint, display),
        timeout=float(value.get("timeout", profile.telemetry.timeout)),
    )


def _injection(
    profile: Profile, value: Mapping[str, Any], selected: tuple[str, ...], display: str
) -> InjectionSettings:
    reserved = {*_RESERVED_HEADERS, profile.correlation_header.lower()}
    if profile.client_header:
        reserved.add(profile.client_header.lower())
    headers = dict(value.get("headers", {"X-User-Email": "email", "X-Auth-Token": "api_key"}))
    for name in headers:
        if name.lower() in reserved:
            raise ProfileError(
                display,
                f"{KEY}.headers.{name}",
                "the harness sets this header itself (Authorization, Cookie and User-Agent have keys of "
                "their own; the rate-limit client header and the correlation header keep their values)",
            )
    params = {p for ep in profile.endpoints for p in ep.path_params}
    path_params = dict(value.get("path_params", {}))
    for name in path_params:
        if name not in params:
            raise ProfileError(
                display, f"{KEY}.path_params.{name}", f"no endpoint has a path parameter {{{name}}}"
            )
    return InjectionSettings(
        rounds=int(value.get("rounds", 2)),
        clients=int(value.get("clients", 2)),
        endpoints=selected,
        query=dict(value.get("query", {"email": "email", "phone": "phone"})),
        headers=headers,
        authorization=bool(value.get("authorization", True)),
        cookie=value.get("cookie", "session"),
        user_agent=bool(value.get("user_agent", True)),
        body_fields=dict(value.get("body_fields", {})),
        path_params=path_params,
    )


def _detectors(profile: Profile, value: Mapping[str, Any], display: str) -> DetectorConfig:
    detectors = value.get("detectors", {})
    allow = []
    for i, pattern in enumerate(detectors.get("allow", [])):
        try:
            allow.append(re.compile(pattern))
        except re.error as exc:
            raise ProfileError(
                display, f"{KEY}.detectors.allow[{i}]", f"not a valid regular expression: {exc}"
            ) from None
    # Random ids are all digits now and then, and 16 digits can pass Luhn.
    id_fields = {profile.logs.fields.get(name, name) for name in ("trace_id", "span_id", "correlation_id")}
    return DetectorConfig(
        kinds=tuple(detectors.get("kinds", DETECTOR_KINDS)),
        allow=tuple(allow),
        markers=tuple(value.get("markers", DEFAULT_MARKERS)),
        ignore_fields=frozenset({*id_fields, *detectors.get("ignore_fields", [])}),
    )


def _redacted_fields(
    value: Mapping[str, Any], selected: tuple[str, ...], endpoint: Any, display: str
) -> tuple[RedactedField, ...]:
    rules = []
    for i, rule in enumerate(value.get("redacted_fields", [])):
        where = f"{KEY}.redacted_fields[{i}].endpoint"
        name = endpoint(rule["endpoint"], where)
        if selected and name not in selected:
            raise ProfileError(display, where, f"{name!r} gets no canaries: it is not in {KEY}.endpoints")
        rules.append(RedactedField(name, rule["message"], rule["field"], tuple(rule["markers"])))
    return tuple(rules)
