"""The MET keys of the ``metrics`` section: required metrics, forbidden labels,
the cardinality probe and whether ``/metrics`` is internal.

The stack's keys of the same section (``path``, ``port``, ``format``,
``bearer_token_env``) are parsed by ``_profile`` into ``profile.metrics``;
this module reads only the MET family's keys, so the two never disagree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conformance._exceptions import ProfileError
from conformance._profile import Profile

__all__ = [
    "DEFAULT_BODY_FIELDS",
    "DEFAULT_FORBIDDEN_LABELS",
    "DEFAULT_PROBE_HEADERS",
    "KEY",
    "CardinalityProbe",
    "MetricsContract",
    "RequiredMetric",
    "parse",
]

KEY = "metrics"

#: Seed 002 §Cardinality Protection: "NEVER used as metric labels".
DEFAULT_FORBIDDEN_LABELS = ("user_id", "session_id", "request_id", "email", "full_path")
#: Headers that commonly end up in labels when a service labels by request data.
DEFAULT_PROBE_HEADERS = ("X-Request-ID", "X-Session-ID", "X-User-ID", "User-Agent")
#: JSON body fields that identify a user or a session.
DEFAULT_BODY_FIELDS = ("email", "user_id", "username", "session_id")


@dataclass(frozen=True, slots=True)
class RequiredMetric:
    """One metric of the contract (``metrics.required[]``)."""

    name: str
    type: str
    #: ``None``: labels are not checked; ``()``: the metric has no labels.
    labels: tuple[str, ...] | None = None
    extra_labels: bool = False
    unit: str | None = None
    buckets: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class CardinalityProbe:
    """``metrics.cardinality``: how the probe drives traffic and what it tolerates."""

    requests: int = 200
    clients: int = 4
    #: Endpoint names to drive; empty means every endpoint of the profile.
    endpoints: tuple[str, ...] = ()
    unmatched_path: bool = True
    headers: tuple[str, ...] = DEFAULT_PROBE_HEADERS
    body_fields: tuple[str, ...] = DEFAULT_BODY_FIELDS
    max_series_per_request: float = 0.01
    default_budget: int = 2000
    budgets: Mapping[str, int] = field(default_factory=dict)
    timeout: float = 10.0
    max_throttled_share: float = 0.5

    def budget(self, metric: str) -> int:
        return self.budgets.get(metric, self.default_budget)


@dataclass(frozen=True, slots=True)
class MetricsContract:
    """The MET family's view of the ``metrics`` section, defaults applied."""

    internal: bool = False
    required: tuple[RequiredMetric, ...] = ()
    forbidden_labels: tuple[str, ...] = DEFAULT_FORBIDDEN_LABELS
    cardinality: CardinalityProbe = field(default_factory=CardinalityProbe)


def parse(profile: Profile, value: Mapping[str, Any] | None, display: str) -> MetricsContract:
    value = value or {}
    required = tuple(_required(display, i, raw) for i, raw in enumerate(value.get("required", ())))
    seen: dict[str, int] = {}
    for i, metric in enumerate(required):
        if metric.name in seen:
            raise ProfileError(
                display, f"{KEY}.required[{i}].name", f"duplicate of {KEY}.required[{seen[metric.name]}]"
            )
        seen[metric.name] = i
    return MetricsContract(
        internal=bool(value.get("internal", False)),
        required=required,
        forbidden_labels=tuple(value.get("forbidden_labels", DEFAULT_FORBIDDEN_LABELS)),
        cardinality=_cardinality(profile, display, value.get("cardinality") or {}),
    )


def _required(display: str, i: int, raw: Mapping[str, Any]) -> RequiredMetric:
    where = f"{KEY}.required[{i}]"
    name, kind = str(raw["name"]), str(raw["type"])
    if kind == "counter" and not name.endswith("_total"):
        raise ProfileError(display, f"{where}.name", f"a counter is stored as <name>_total; got {name!r}")
    if kind in ("histogram", "summary") and re.search(r"_(bucket|sum|count)$", name):
        raise ProfileError(
            display, f"{where}.name", f"name the {kind} without its _bucket/_sum/_count suffix"
        )
    buckets = tuple(float(b) for b in raw.get("buckets", ()))
    if buckets and kind != "histogram":
        raise ProfileError(
            display, f"{where}.buckets", f"only histograms have buckets; this metric is a {kind}"
        )
    unit = raw.get("unit")
    if unit is not None:
        stem = name.removesuffix("_total") if kind == "counter" else name
        if not stem.endswith(f"_{unit}"):
            raise ProfileError(display, f"{where}.unit", f"{name!r} does not end with _{unit}")
    labels = raw.get("labels")
    return RequiredMetric(
        name=name,
        type=kind,
        labels=tuple(labels) if labels is not None else None,
        extra_labels=bool(raw.get("extra_labels", False)),
        unit=unit,
        buckets=buckets,
    )


def _cardinality(profile: Profile, display: str, raw: Mapping[str, Any]) -> CardinalityProbe:
    known = {ep.name for ep in profile.endpoints}
    endpoints = tuple(raw.get("endpoints", ()))
    for i, name in enumerate(endpoints):
        if name not in known:
            raise ProfileError(
                display,
                f"{KEY}.cardinality.endpoints[{i}]",
                f"no endpoint named {name!r} (endpoints: {', '.join(sorted(known)) or 'none'})",
            )
    defaults = CardinalityProbe()
    return CardinalityProbe(
        requests=int(raw.get("requests", defaults.requests)),
        clients=int(raw.get("clients", defaults.clients)),
        endpoints=endpoints,
        unmatched_path=bool(raw.get("unmatched_path", defaults.unmatched_path)),
        headers=tuple(raw.get("headers", defaults.headers)),
        body_fields=tuple(raw.get("body_fields", defaults.body_fields)),
        max_series_per_request=float(raw.get("max_series_per_request", defaults.max_series_per_request)),
        default_budget=int(raw.get("default_budget", defaults.default_budget)),
        budgets={str(k): int(v) for k, v in (raw.get("budgets") or {}).items()},
        timeout=float(raw.get("timeout", defaults.timeout)),
        max_throttled_share=float(raw.get("max_throttled_share", defaults.max_throttled_share)),
    )
