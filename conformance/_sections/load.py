"""``load``: the Locust load gate's scenario mix, targets, modes and telemetry comparison.

A scenario repeats an entry of ``endpoints`` or describes its own request; its
weight sets how often a Locust user picks it. Targets are thresholds on
Locust's own statistics (response-time percentiles in ms, requests per
second, failure ratio), per scenario and for the whole run. A mode says how
hard and how long: ``users`` x ``throughput_per_user`` is the offered load,
and Locust's ``constant_throughput`` pacing makes it an upper bound, so every
run is bounded in requests as well as in time.

The section also builds the *plan* the locustfile runs (:meth:`LoadSection.plan`):
plain JSON, so the harness never imports Locust (gevent monkey-patches the
process that imports it) and the locustfile never needs the harness's state.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from conformance._exceptions import ProfileError
from conformance._profile import Endpoint, Profile

__all__ = [
    "DEFAULT_EXPORT_ERROR_PATTERNS",
    "KEY",
    "LATENCY_KEYS",
    "MODES",
    "PLAN_ENV",
    "PLAN_VERSION",
    "PROFILE_ENV",
    "PROFILE_MODE_ENV",
    "LoadMode",
    "LoadSection",
    "LoadTelemetry",
    "Scenario",
    "Targets",
    "Tolerance",
    "parse",
]

KEY = "load"

#: Path of the JSON plan the harness writes for the locustfile.
PLAN_ENV = "OBSCONFORM_LOAD_PLAN"
#: Profile the locustfile reads when run standalone (``locust -f loadtests/locustfile.py``).
PROFILE_ENV = "OBSCONFORM_PROFILE"
#: Mode the locustfile takes from that profile when standalone (``pr`` unless set).
PROFILE_MODE_ENV = "OBSCONFORM_LOAD_MODE"
PLAN_VERSION = 1

MODES = ("pr", "nightly")

#: Latency target keys → Locust's percentile (its CSV columns 50%, 75%, ...).
LATENCY_KEYS: Mapping[str, float] = {"p50": 0.50, "p75": 0.75, "p90": 0.90, "p95": 0.95, "p99": 0.99}

#: What the OpenTelemetry SDK logs when an export fails or spans are dropped.
DEFAULT_EXPORT_ERROR_PATTERNS = (
    r"failed to export",
    r"exception while exporting",
    r"error \S+ encountered while exporting",
    r"queue (is )?full",
    r"dropping \w+ batch",
    r"failed to encode \w+ batch",
)


@dataclass(frozen=True, slots=True)
class Targets:
    """Thresholds; ``None`` means "not checked". Latencies in ms."""

    latency_ms: Mapping[str, float] = field(default_factory=dict)
    min_rps: float | None = None
    max_failure_ratio: float | None = None

    def over(self, defaults: Targets) -> Targets:
        """These targets with ``defaults`` filling the keys left out."""
        return Targets(
            latency_ms={**defaults.latency_ms, **self.latency_ms},
            min_rps=self.min_rps if self.min_rps is not None else defaults.min_rps,
            max_failure_ratio=self.max_failure_ratio
            if self.max_failure_ratio is not None
            else defaults.max_failure_ratio,
        )

    @property
    def empty(self) -> bool:
        return not self.latency_ms and self.min_rps is None and self.max_failure_ratio is None


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    endpoint: Endpoint
    weight: int = 1
    targets: Targets = field(default_factory=Targets)

    @property
    def route(self) -> tuple[str, str]:
        """(method, route template): how the service labels this scenario's requests."""
        return self.endpoint.method, self.endpoint.path


@dataclass(frozen=True, slots=True)
class LoadMode:
    name: str
    users: int
    spawn_rate: float
    run_time: float
    throughput_per_user: float = 1.0
    max_requests: int = 0
    rps_scale: float = 1.0
    latency_scale: float = 1.0

    @property
    def offered_rps(self) -> float:
        return self.users * self.throughput_per_user


@dataclass(frozen=True, slots=True)
class Tolerance:
    absolute: float = 0.0
    ratio: float = 0.0

    def allowed(self, measured: float) -> float:
        return self.absolute + self.ratio * abs(measured)


@dataclass(frozen=True, slots=True)
class LoadTelemetry:
    requests_metric: str = "http_requests_total"
    duration_metric: str = "http_request_duration_seconds"
    method_label: str = "method"
    route_label: str = "endpoint"
    count_tolerance: Tolerance = field(default_factory=lambda: Tolerance(absolute=0, ratio=0.01))
    p95_tolerance: Tolerance = field(default_factory=lambda: Tolerance(absolute=50, ratio=0.5))
    min_samples: int = 50
    export_error_patterns: tuple[str, ...] = DEFAULT_EXPORT_ERROR_PATTERNS
    scrape_timeout: float = 15.0


_MODE_DEFAULTS: Mapping[str, Mapping[str, float]] = {
    "pr": {"users": 5, "run_time": 20},
    "nightly": {"users": 20, "run_time": 300},
}


@dataclass(frozen=True, slots=True)
class LoadSection:
    scenarios: tuple[Scenario, ...] = ()
    aggregate: Targets = field(default_factory=Targets)
    modes: Mapping[str, LoadMode] = field(default_factory=dict)
    service_env: Mapping[str, str] = field(default_factory=dict)
    workers: int = 0
    stop_timeout: float = 5.0
    start_timeout: float = 30.0
    finish_timeout: float = 60.0
    telemetry: LoadTelemetry = field(default_factory=LoadTelemetry)

    @property
    def configured(self) -> bool:
        return bool(self.scenarios)

    def mode(self, name: str, *, run_time: float | None = None) -> LoadMode:
        """The named mode, with ``--run-time`` applied when given (the request cap follows)."""
        mode = self.modes[name]
        if run_time is not None:
            mode = replace(
                mode, run_time=run_time, max_requests=_request_bound(mode, run_time, self.stop_timeout)
            )
        return mode

    def plan(
        self,
        profile: Profile,
        mode: LoadMode,
        *,
        client_prefix: str,
        processes: int = 1,
    ) -> dict[str, Any]:
        """The JSON plan ``loadtests/locustfile.py`` runs: requests, weights, pacing, the cap.

        ``processes`` is how many Locust processes generate load (the workers,
        or 1); each enforces its share of ``mode.max_requests``.
        """
        return {
            "version": PLAN_VERSION,
            "mode": mode.name,
            "throughput_per_user": mode.throughput_per_user,
            "max_requests_per_process": math.ceil(mode.max_requests / max(1, processes)),
            "request_timeout": profile.request_timeout,
            "client_header": profile.client_header,
            "client_prefix": client_prefix,
            "scenarios": [
                {
                    "name": s.name,
                    "weight": s.weight,
                    "method": s.endpoint.method,
                    "path": s.endpoint.concrete_path(),
                    "route": s.endpoint.path,
                    "query": dict(s.endpoint.query),
                    "headers": dict(s.endpoint.headers),
                    "json": s.endpoint.json,
                    "has_json": s.endpoint.has_json,
                    "expect_status": list(s.endpoint.expect_status),
                }
                for s in self.scenarios
            ],
        }


def parse(profile: Profile, value: Mapping[str, Any] | None, display: str) -> LoadSection:
    if value is None:
        return LoadSection(modes=_modes({}, 5.0, display))
    stop_timeout = float(value.get("stop_timeout", 5.0))
    scenarios = _scenarios(
        profile, value.get("scenarios", ()), _targets(value.get("default_targets")), display
    )
    modes = _modes(value.get("modes", {}), stop_timeout, display)
    aggregate = _targets(value.get("aggregate"))
    section = LoadSection(
        scenarios=scenarios,
        aggregate=aggregate,
        modes=modes,
        service_env={str(k): _env_str(v) for k, v in value.get("service_env", {}).items()},
        workers=int(value.get("workers", 0)),
        stop_timeout=stop_timeout,
        start_timeout=float(value.get("start_timeout", 30.0)),
        finish_timeout=float(value.get("finish_timeout", 60.0)),
        telemetry=_telemetry(value.get("telemetry", {}), display),
    )
    _check_reachable(section, display)
    return section


def _targets(raw: Mapping[str, Any] | None) -> Targets:
    raw = raw or {}
    return Targets(
        latency_ms={k: float(raw[k]) for k in LATENCY_KEYS if k in raw},
        min_rps=float(raw["min_rps"]) if "min_rps" in raw else None,
        max_failure_ratio=float(raw["max_failure_ratio"]) if "max_failure_ratio" in raw else None,
    )


def _scenarios(profile: Profile, raw_scenarios: Any, defaults: Targets, display: str) -> tuple[Scenario, ...]:
    endpoints = {ep.name: ep for ep in profile.endpoints}
    out: list[Scenario] = []
    names: dict[str, int] = {}
    routes: dict[tuple[str, str], int] = {}
    for i, raw in enumerate(raw_scenarios):
        where = f"{KEY}.scenarios[{i}]"
        name = str(raw["name"])
        if name in names:
            raise ProfileError(display, f"{where}.name", f"duplicate of {KEY}.scenarios[{names[name]}]")
        names[name] = i
        inline = sorted(
            k
            for k in ("method", "path", "path_params", "query", "headers", "json", "expect_status")
            if k in raw
        )
        if "endpoint" in raw:
            if inline:
                raise ProfileError(
                    display, f"{where}.{inline[0]}", "give either endpoint or an inline request, not both"
                )
            endpoint = endpoints.get(str(raw["endpoint"]))
            if endpoint is None:
                known = ", ".join(endpoints) or "none"
                raise ProfileError(
                    display, f"{where}.endpoint", f"no endpoint named {raw['endpoint']!r}; known: {known}"
                )
        elif "path" in raw:
            endpoint = _inline_endpoint(name, raw, display, where)
        else:
            raise ProfileError(display, where, "needs an endpoint (a name from endpoints) or a path")
        route = (endpoint.method, endpoint.path)
        if route in routes:
            raise ProfileError(
                display,
                where,
                f"sends {route[0]} {route[1]} like {KEY}.scenarios[{routes[route]}]; give each scenario "
                "its own route (Locust's statistics and the service's telemetry are compared per route)",
            )
        routes[route] = i
        out.append(
            Scenario(
                name=name,
                endpoint=endpoint,
                weight=int(raw.get("weight", 1)),
                targets=_targets(raw.get("targets")).over(defaults),
            )
        )
    return tuple(out)


def _inline_endpoint(name: str, raw: Mapping[str, Any], display: str, where: str) -> Endpoint:
    params = {k: str(v) for k, v in raw.get("path_params", {}).items()}
    missing = sorted(set(re.findall(r"{([^}]+)}", raw["path"])) - set(params))
    if missing:
        raise ProfileError(display, f"{where}.path_params", f"no value for {{{missing[0]}}}")
    expect = raw.get("expect_status", 200)
    return Endpoint(
        name=name,
        path=raw["path"],
        method=raw.get("method", "GET"),
        path_params=params,
        query=dict(raw.get("query", {})),
        headers=dict(raw.get("headers", {})),
        json=raw.get("json"),
        has_json="json" in raw,
        expect_status=tuple(expect) if isinstance(expect, list) else (expect,),
    )


def _request_bound(mode: LoadMode, run_time: float, stop_timeout: float) -> int:
    """Most requests a paced run can send: each user starts at most throughput tasks per
    second for the run and its stop timeout, plus the one it may be in when it starts."""
    return math.ceil(mode.users * mode.throughput_per_user * (run_time + stop_timeout)) + mode.users


def _modes(raw: Mapping[str, Any], stop_timeout: float, display: str) -> dict[str, LoadMode]:
    modes: dict[str, LoadMode] = {}
    for name in MODES:
        given = raw.get(name, {})
        users = int(given.get("users", _MODE_DEFAULTS[name]["users"]))
        mode = LoadMode(
            name=name,
            users=users,
            spawn_rate=float(given.get("spawn_rate", users)),
            run_time=float(given.get("run_time", _MODE_DEFAULTS[name]["run_time"])),
            throughput_per_user=float(given.get("throughput_per_user", 1.0)),
            rps_scale=float(given.get("rps_scale", 1.0)),
            latency_scale=float(given.get("latency_scale", 1.0)),
        )
        bound = _request_bound(mode, mode.run_time, stop_timeout)
        cap = int(given.get("max_requests", bound))
        if cap < bound:
            raise ProfileError(
                display,
                f"{KEY}.modes.{name}.max_requests",
                f"{cap} is below what the mode can send: {users} users x {mode.throughput_per_user:g}/s x "
                f"({mode.run_time:g}s run + {stop_timeout:g}s stop) = {bound}; "
                "lower users, throughput_per_user or run_time, or raise max_requests",
            )
        modes[name] = replace(mode, max_requests=cap)
    return modes


def _check_reachable(section: LoadSection, display: str) -> None:
    """Refuse RPS targets the mix cannot offer: they would fail every run, whatever the service does."""
    total_weight = sum(s.weight for s in section.scenarios)
    if not total_weight:
        return
    for mode in section.modes.values():
        for i, s in enumerate(section.scenarios):
            if s.targets.min_rps is None:
                continue
            offered = mode.offered_rps * s.weight / total_weight
            needed = s.targets.min_rps * mode.rps_scale
            if needed > offered:
                raise ProfileError(
                    display,
                    f"{KEY}.scenarios[{i}].targets.min_rps",
                    f"{needed:g} req/s in {mode.name} mode is more than the mix offers this scenario: "
                    f"{mode.users} users x {mode.throughput_per_user:g}/s x weight {s.weight}/{total_weight} "
                    f"= {offered:.3g} req/s",
                )
        if (
            section.aggregate.min_rps is not None
            and section.aggregate.min_rps * mode.rps_scale > mode.offered_rps
        ):
            raise ProfileError(
                display,
                f"{KEY}.aggregate.min_rps",
                f"{section.aggregate.min_rps * mode.rps_scale:g} req/s in {mode.name} mode is more than "
                f"{mode.users} users x {mode.throughput_per_user:g}/s = {mode.offered_rps:g} req/s offer",
            )


def _telemetry(raw: Mapping[str, Any], display: str) -> LoadTelemetry:
    defaults = LoadTelemetry()
    patterns = tuple(raw.get("export_error_patterns", defaults.export_error_patterns))
    for i, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ProfileError(
                display,
                f"{KEY}.telemetry.export_error_patterns[{i}]",
                f"not a valid regular expression: {exc}",
            ) from None

    def tolerance(key: str, default: Tolerance) -> Tolerance:
        given = raw.get(key, {})
        return Tolerance(
            absolute=float(given.get("absolute", default.absolute)),
            ratio=float(given.get("ratio", default.ratio)),
        )

    return LoadTelemetry(
        requests_metric=raw.get("requests_metric", defaults.requests_metric),
        duration_metric=raw.get("duration_metric", defaults.duration_metric),
        method_label=raw.get("method_label", defaults.method_label),
        route_label=raw.get("route_label", defaults.route_label),
        count_tolerance=tolerance("count_tolerance", defaults.count_tolerance),
        p95_tolerance=tolerance("p95_tolerance", defaults.p95_tolerance),
        min_samples=int(raw.get("min_samples", defaults.min_samples)),
        export_error_patterns=patterns,
        scrape_timeout=float(raw.get("scrape_timeout", defaults.scrape_timeout)),
    )


def _env_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
