"""The ``rate_limits`` section: the rules the RL suite bursts and the 429 contract.

Each rule points at an entry of ``endpoints`` (the request to repeat) and
says its ``limit`` per ``window`` seconds. The window is the one the service
under test runs with, so a test build uses a short one (the reference
profile sets ``REFSVC_RATE_LIMIT_WINDOW_SECONDS: 5`` and ``window: 5``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from conformance._exceptions import ProfileError
from conformance._profile import Endpoint, Profile

__all__ = [
    "CLIENT_KEYS",
    "KEY",
    "RateLimitMetric",
    "RateLimitRule",
    "RateLimitSection",
    "parse",
]

KEY = "rate_limits"

#: How the harness makes a fresh client and a second one: see the schema's description.
CLIENT_KEYS = ("header", "forwarded-for", "source-address")


@dataclass(frozen=True, slots=True)
class RateLimitRule:
    name: str
    endpoint: Endpoint
    limit: int
    window: int
    client_key: str = "header"


@dataclass(frozen=True, slots=True)
class RateLimitMetric:
    """The counter that counts 429s: samples called ``name`` carrying every label in ``labels``."""

    name: str = "http_requests_total"
    labels: Mapping[str, str] = field(default_factory=lambda: {"status_code": "429"})


@dataclass(frozen=True, slots=True)
class RateLimitSection:
    rules: tuple[RateLimitRule, ...] = ()
    client_key: str = "header"
    forwarded_for_header: str = "X-Forwarded-For"
    margin: int = 2
    recovery_margin: float = 2.0
    #: ``None``: the built-in ``schemas/rate-limit-error.schema.json``.
    error_schema: Path | None = None
    #: Dotted path of the body field repeating Retry-After; ``""``: none.
    body_retry_after_field: str = "retry_after"
    metric: RateLimitMetric = field(default_factory=RateLimitMetric)
    telemetry_timeout: float = 10.0


def parse(profile: Profile, value: Mapping[str, Any] | None, display: str) -> RateLimitSection:
    value = value or {}
    default_key = "header" if profile.client_header else "source-address"
    client_key = str(value.get("client_key", default_key))
    _require_client_header(profile, client_key, display, f"{KEY}.client_key")
    endpoints = {ep.name: ep for ep in profile.endpoints}
    rules: list[RateLimitRule] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(value.get("rules", ())):
        where = f"{KEY}.rules[{i}]"
        name = str(raw["name"])
        if name in seen:
            raise ProfileError(display, f"{where}.name", f"duplicate of {KEY}.rules[{seen[name]}]")
        seen[name] = i
        endpoint = endpoints.get(raw["endpoint"])
        if endpoint is None:
            known = ", ".join(sorted(endpoints)) or "none"
            raise ProfileError(
                display, f"{where}.endpoint", f"no endpoint named {raw['endpoint']!r}; known: {known}"
            )
        if 429 in endpoint.expect_status:
            raise ProfileError(
                display,
                f"{where}.endpoint",
                f"endpoint {endpoint.name!r} expects status 429; a rate-limited endpoint must expect "
                "its success status",
            )
        rule_key = str(raw.get("client_key", client_key))
        if "client_key" in raw:
            _require_client_header(profile, rule_key, display, f"{where}.client_key")
        rules.append(RateLimitRule(name, endpoint, int(raw["limit"]), int(raw["window"]), rule_key))
    metric = value.get("metric", {})
    defaults = RateLimitSection()
    return RateLimitSection(
        rules=tuple(rules),
        client_key=client_key,
        forwarded_for_header=str(value.get("forwarded_for_header", defaults.forwarded_for_header)),
        margin=int(value.get("margin", defaults.margin)),
        recovery_margin=float(value.get("recovery_margin", defaults.recovery_margin)),
        error_schema=_error_schema(profile.directory, value.get("error_schema"), display),
        body_retry_after_field=str(value.get("body_retry_after_field", defaults.body_retry_after_field)),
        metric=RateLimitMetric(
            name=str(metric.get("name", defaults.metric.name)),
            labels={str(k): str(v) for k, v in metric.get("labels", defaults.metric.labels).items()},
        ),
        telemetry_timeout=float(value.get("telemetry_timeout", defaults.telemetry_timeout)),
    )


def _require_client_header(profile: Profile, client_key: str, display: str, where: str) -> None:
    if client_key == "header" and not profile.client_header:
        raise ProfileError(
            display,
            where,
            "'header' needs traffic.client_header (the header the service keys clients by); "
            "use forwarded-for or source-address for services that key by address",
        )


def _error_schema(base: Path, value: str | None, display: str) -> Path | None:
    if value is None:
        return None
    where = f"{KEY}.error_schema"
    path = (base / value).resolve()
    if not path.is_file():
        raise ProfileError(display, where, f"file not found: {value} (looked at {path})")
    try:
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, jsonschema.SchemaError) as exc:
        first = str(exc).splitlines()[0]
        raise ProfileError(display, where, f"{value} is not a valid JSON Schema: {first}") from None
    return path
