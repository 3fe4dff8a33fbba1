"""External mode: the suites against an already-running deployment (staging).

Nothing is started or stopped. The profile's ``containers.external`` names the
service's base URL and, optionally, its metrics URL, the Prometheus that scrapes
it (job ``service``), where its spans can be read (an obsconform receiver's read
API, or a Jaeger query API), and a file holding its log stream. A check whose
source is not configured raises :class:`~conformance._exceptions.StackError`,
so its requirement is ``error`` with the missing key named, never ``passed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from conformance._exceptions import ServiceStartError, StackError, UsageError, WaitTimeout
from conformance._profile import Profile
from conformance._sections.containers import ExternalSection, containers_section
from conformance._wait import wait_until
from conformance.collect._prometheus_api import PrometheusClient
from conformance.collect._receiver_api import ReceiverApiTraceStore
from conformance.collect._traces import TraceStore

__all__ = ["ExternalStack"]


class ExternalStack:
    """A deployment the harness only observes."""

    mode = "external"

    def __init__(self, profile: Profile, workdir: Path) -> None:
        self.profile = profile
        self.workdir = workdir
        self.external: ExternalSection = containers_section(profile).external
        self._store: TraceStore | None = None

    def _missing(self, key: str, what: str) -> StackError:
        return StackError(
            f"external mode has no {what}: containers.external.{key} is not set in {self.profile.path.name}",
            hint=f"add containers.external.{key}, or mark the requirement not applicable",
        )

    @property
    def rejected_rule_files(self) -> Mapping[str, str]:
        """Always empty: the deployment's Prometheus loaded whatever it loaded; the harness loads nothing."""
        return {}

    @property
    def service_url(self) -> str:
        if not self.external.service_url:
            raise self._missing("service_url", "service URL")
        return self.external.service_url.rstrip("/")

    @property
    def metrics_url(self) -> str:
        return self.external.metrics_url or self.service_url + self.profile.metrics.path

    @property
    def trace_store(self) -> TraceStore:
        if self._store is not None:
            return self._store
        kind, url = self.external.trace_store_kind, self.external.trace_store_url
        if not kind or not url:
            raise self._missing("trace_store", "trace store")
        if kind == "receiver":
            self._store = ReceiverApiTraceStore(url, where="external")
        else:
            self._store = _jaeger_store(url, self.profile.telemetry.service_name)
        return self._store

    def prometheus_client(self, client: httpx.Client) -> PrometheusClient:
        if not self.external.prometheus_url:
            raise self._missing("prometheus_url", "Prometheus")
        return PrometheusClient(self.external.prometheus_url.rstrip("/"), client=client)

    def log_path(self, stream: str) -> Path:
        if self.external.log_file is None:
            raise self._missing("log_file", "log source")
        if not self.external.log_file.is_file():
            raise StackError(f"the service's log file {self.external.log_file} does not exist")
        return self.external.log_file

    def service_exit_code(self) -> int | None:
        return None  # not ours to know: a deployment that stops shows up as failed requests

    def start(self) -> None:
        """Only check that the service answers its readiness probe (bounded)."""
        if not self.external.service_url:
            raise UsageError(
                f"{self.profile.path.name}: external mode needs containers.external.service_url "
                "(the running service's base URL)"
            )
        ready = self.profile.service.ready
        url = self.service_url + ready.path

        def probe() -> tuple[bool | None, str]:
            try:
                response = httpx.get(url, timeout=2.0)
            except httpx.HTTPError as exc:
                return None, f"GET {url}: {type(exc).__name__}"
            if response.status_code == ready.status:
                return True, ""
            return None, f"GET {url} answered {response.status_code}"

        try:
            wait_until(probe, awaited=f"the service to answer {ready.status} on {url}", timeout=ready.timeout)
        except WaitTimeout as exc:
            raise ServiceStartError(
                f"the external service is not ready: {exc.last_seen} after {exc.timeout:g}s",
                hint="check containers.external.service_url and service.ready.path",
            ) from None

    def stop(self) -> None:
        if isinstance(self._store, ReceiverApiTraceStore):
            self._store.close()

    def describe(self) -> dict[str, Any]:
        ext = self.external
        components: list[dict[str, Any]] = [
            {
                "name": "service",
                "kind": "external",
                "url": ext.service_url or "",
                "metrics_url": ext.metrics_url or "",
            },
            {
                "name": "prometheus",
                "kind": "external",
                "url": ext.prometheus_url or "",
                **({} if ext.prometheus_url else {"status": "not configured"}),
            },
            {
                "name": "trace-store",
                "kind": "external",
                "url": ext.trace_store_url or "",
                "store": ext.trace_store_kind or "",
                **({} if ext.trace_store_url else {"status": "not configured"}),
                # Where the report links trace ids (conformance.report._links).
                **({"ui_url": ui} if (ui := _jaeger_ui(ext)) else {}),
            },
        ]
        if ext.log_file is not None:
            components.append({"name": "log-file", "kind": "external", "path": str(ext.log_file)})
        return {"mode": self.mode, "components": components}


def _jaeger_ui(ext: ExternalSection) -> str:
    """The team's Jaeger UI: the profile's ``jaeger_ui_url``, else a Jaeger trace store's URL
    (Jaeger's query service serves the UI and its API on one address)."""
    if ext.jaeger_ui_url:
        return ext.jaeger_ui_url
    return (ext.trace_store_url or "") if ext.trace_store_kind == "jaeger" else ""


def _jaeger_store(url: str, service_name: str) -> TraceStore:
    """The Jaeger query client of :mod:`conformance.collect._jaeger`."""
    from conformance.collect._jaeger import JaegerTraceStore

    return JaegerTraceStore(url, client=httpx.Client(timeout=5.0, trust_env=False), service_name=service_name)
