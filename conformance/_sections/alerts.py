"""``alerts``: what the alert-rule family (ALR) checks and how it live-fires.

The rule files and unit-test files themselves are core keys
(``prometheus.rule_files`` / ``prometheus.rule_tests``); this section holds
the lint policy (severities, annotations), what the selector check may
ignore (target labels, metrics from elsewhere), and the live-fire recipes:
which alerts to fire, with which traffic, to which state, within how long,
plus the normal traffic under which they must stay quiet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from conformance._exceptions import ProfileError
from conformance._profile import Endpoint, Profile

__all__ = [
    "DEFAULT_ANNOTATIONS",
    "DEFAULT_SEVERITIES",
    "DEFAULT_TARGET_LABELS",
    "KEY",
    "AlertsSection",
    "Baseline",
    "LiveFire",
    "parse",
]

KEY = "alerts"

DEFAULT_SEVERITIES = ("critical", "warning", "info")
DEFAULT_ANNOTATIONS = ("summary", "description", "runbook_url")
DEFAULT_TARGET_LABELS = ("job", "instance")


@dataclass(frozen=True, slots=True)
class LiveFire:
    """Fire ``alert`` by sending ``endpoint`` at ``rate``/s (at most ``max_requests``)
    until it is ``expect`` (pending or firing), within ``timeout`` seconds."""

    alert: str
    endpoint: Endpoint
    rate: float = 5.0
    max_requests: int = 200
    expect: str = "firing"
    timeout: float = 30.0
    labels: Mapping[str, str] = field(default_factory=dict)
    #: Statuses the traffic should get; empty means any.
    expect_status: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Baseline:
    """Normal traffic (``endpoints`` round robin) under which the live-fired alerts stay inactive."""

    endpoints: tuple[Endpoint, ...] = ()
    rate: float = 5.0
    duration: float = 3.0
    timeout: float = 15.0


@dataclass(frozen=True, slots=True)
class AlertsSection:
    severities: tuple[str, ...] = DEFAULT_SEVERITIES
    required_annotations: tuple[str, ...] = DEFAULT_ANNOTATIONS
    target_labels: tuple[str, ...] = DEFAULT_TARGET_LABELS
    external_metrics: tuple[str, ...] = ()
    promtool_timeout: float = 60.0
    rules_timeout: float = 15.0
    live_fire: tuple[LiveFire, ...] = ()
    baseline: Baseline = field(default_factory=Baseline)


def parse(profile: Profile, value: dict[str, Any] | None, display: str) -> AlertsSection:
    value = value or {}
    by_name = {ep.name: ep for ep in profile.endpoints}
    known_alerts = _alert_names(profile.prometheus.rule_files)
    recipes: list[LiveFire] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(value.get("live_fire", [])):
        where = f"alerts.live_fire[{i}]"
        alert = raw["alert"]
        if alert in seen:
            raise ProfileError(display, f"{where}.alert", f"duplicate of alerts.live_fire[{seen[alert]}]")
        seen[alert] = i
        if ("endpoint" in raw) == ("request" in raw):
            raise ProfileError(
                display, where, "needs exactly one of endpoint (a name in endpoints) or request"
            )
        if "endpoint" in raw:
            endpoint = _endpoint(by_name, raw["endpoint"], display, f"{where}.endpoint")
            expect_status = endpoint.expect_status
        else:
            endpoint, expect_status = _request(alert, raw["request"])
        recipes.append(
            LiveFire(
                alert=alert,
                endpoint=endpoint,
                rate=float(raw.get("rate", 5.0)),
                max_requests=int(raw.get("max_requests", 200)),
                expect=raw.get("expect", "firing"),
                timeout=float(raw.get("timeout", 30.0)),
                labels=dict(raw.get("labels", {})),
                expect_status=expect_status,
            )
        )
    for i, recipe in enumerate(recipes):
        if known_alerts is not None and recipe.alert not in known_alerts:
            files = ", ".join(p.name for p in profile.prometheus.rule_files) or "no rule files"
            raise ProfileError(
                display,
                f"alerts.live_fire[{i}].alert",
                f"no alert named {recipe.alert!r} in prometheus.rule_files ({files})",
            )
    base = value.get("baseline", {})
    names = base.get("endpoints")
    endpoints = (
        tuple(_endpoint(by_name, n, display, f"alerts.baseline.endpoints[{i}]") for i, n in enumerate(names))
        if names is not None
        else profile.endpoints
    )
    return AlertsSection(
        severities=tuple(value.get("severities", DEFAULT_SEVERITIES)),
        required_annotations=tuple(value.get("required_annotations", DEFAULT_ANNOTATIONS)),
        target_labels=tuple(value.get("target_labels", DEFAULT_TARGET_LABELS)),
        external_metrics=tuple(value.get("external_metrics", ())),
        promtool_timeout=float(value.get("promtool_timeout", 60.0)),
        rules_timeout=float(value.get("rules_timeout", 15.0)),
        live_fire=tuple(recipes),
        baseline=Baseline(
            endpoints=endpoints,
            rate=float(base.get("rate", 5.0)),
            duration=float(base.get("duration", 3.0)),
            timeout=float(base.get("timeout", 15.0)),
        ),
    )


def _endpoint(by_name: Mapping[str, Endpoint], name: str, display: str, where: str) -> Endpoint:
    if name not in by_name:
        known = ", ".join(by_name) or "none"
        raise ProfileError(display, where, f"no endpoint named {name!r} in endpoints (known: {known})")
    return by_name[name]


def _request(alert: str, raw: Mapping[str, Any]) -> tuple[Endpoint, tuple[int, ...]]:
    expect = raw.get("expect_status", ())
    statuses = tuple(expect) if isinstance(expect, list) else ((expect,) if expect else ())
    endpoint = Endpoint(
        name=f"live-fire {alert}",
        path=raw["path"],
        method=raw.get("method", "GET"),
        query=dict(raw.get("query", {})),
        headers=dict(raw.get("headers", {})),
        json=raw.get("json"),
        has_json="json" in raw,
        expect_status=statuses or (200,),
        traced=True,
    )
    return endpoint, statuses


def _alert_names(rule_files: tuple[Path, ...]) -> set[str] | None:
    """Alert names in the rule files, or ``None`` when a file cannot be read
    (then ALR-001 reports it; the profile is not the problem)."""
    names: set[str] = set()
    for path in rule_files:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return None
        groups = data.get("groups") if isinstance(data, dict) else None
        for group in groups if isinstance(groups, list) else []:
            rules = group.get("rules") if isinstance(group, dict) else None
            for rule in rules if isinstance(rules, list) else []:
                if isinstance(rule, dict) and isinstance(rule.get("alert"), str):
                    names.add(rule["alert"])
    return names
