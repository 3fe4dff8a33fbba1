"""The ``traces`` section: how the TRC suite probes propagation and correlation ids.

The correlation header's name is the profile's ``correlation.header``
(``Profile.correlation_header``); this section only says where to probe and
what a generated id must look like.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conformance._exceptions import ProfileError
from conformance._profile import Endpoint, Profile

__all__ = ["CORRELATION_ID_FORMATS", "DEFAULT_TRACESTATE", "KEY", "TracesSection", "parse"]

KEY = "traces"

CORRELATION_ID_FORMATS = ("uuid", "any")

#: Two members in W3C's own example shapes (Base64-ish opaque value, a parent id).
DEFAULT_TRACESTATE = "obsconform=t61rcWkgMzE,rojo=00f067aa0ba902b7"


@dataclass(frozen=True, slots=True)
class TracesSection:
    #: Where vectors and correlation probes go; ``None`` when the profile has no traced GET endpoint.
    probe_endpoint: Endpoint | None = None
    tracestate: str = DEFAULT_TRACESTATE
    correlation_id_format: str = "uuid"
    uniqueness_requests: int = 1000
    uniqueness_timeout: float = 20.0
    requests_per_client: int = 50
    concurrency: int = 8


def parse(profile: Profile, value: Mapping[str, Any] | None, display: str) -> TracesSection:
    value = value or {}
    endpoints = {ep.name: ep for ep in profile.endpoints}
    if "probe_endpoint" in value:
        name = str(value["probe_endpoint"])
        where = f"{KEY}.probe_endpoint"
        if name not in endpoints:
            known = ", ".join(endpoints) or "none"
            raise ProfileError(
                display, where, f"{name!r} is not the name of an entry of endpoints (known: {known})"
            )
        probe: Endpoint | None = endpoints[name]
        if not endpoints[name].traced:
            raise ProfileError(
                display, where, f"endpoint {name!r} is not traced (traced: false); name a traced one"
            )
    else:
        probe = next((ep for ep in profile.endpoints if ep.traced and ep.method == "GET"), None)
    return TracesSection(
        probe_endpoint=probe,
        tracestate=str(value.get("tracestate", DEFAULT_TRACESTATE)),
        correlation_id_format=str(value.get("correlation_id_format", "uuid")),
        uniqueness_requests=int(value.get("uniqueness_requests", 1000)),
        uniqueness_timeout=float(value.get("uniqueness_timeout", 20.0)),
        requests_per_client=int(value.get("requests_per_client", 50)),
        concurrency=int(value.get("concurrency", 8)),
    )
