"""Stacks: where the service under test and its telemetry backends run.

Three implementations of :class:`Stack`, one per ``--mode``:

* ``local`` — :class:`~conformance.stack._local.LocalStack`: the service as a
  process, a real Prometheus process, the embedded OTLP receiver and, when
  their binaries are built, the OpenTelemetry Collector and Jaeger as processes;
* ``containers`` — :class:`~conformance.stack._containers.ContainerStack`: the
  service's image, Prometheus, the harness's receiver (and, when their images
  are available, an OpenTelemetry Collector and Jaeger) on one Docker network,
  started and removed with testcontainers;
* ``external`` — :class:`~conformance.stack._external.ExternalStack`: an
  already-running deployment named by URLs in the profile; nothing is started.

``auto`` picks ``containers`` when a Docker engine answers a short bounded
probe, else ``local`` (:func:`resolve_mode`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import httpx

if TYPE_CHECKING:
    from conformance._profile import Profile
    from conformance.collect._prometheus_api import PrometheusClient
    from conformance.collect._traces import TraceStore
    from conformance.stack._telemetry import TelemetryPlan

__all__ = ["MODES", "Stack", "make_stack", "resolve_mode"]

#: Values of ``conformance run --mode``.
MODES = ("auto", "containers", "local", "external")


@runtime_checkable
class Stack(Protocol):
    """What a session needs from a stack, whatever runs it."""

    #: ``local``, ``containers`` or ``external`` (the report's ``stack.mode``).
    mode: str
    #: The run's work directory (logs, generated configs).
    workdir: Path

    @property
    def rejected_rule_files(self) -> Mapping[str, str]:
        """Rule files its Prometheus did not load because promtool rejects them: file → first error."""
        ...

    def start(self) -> None:
        """Bring everything up and wait until ready; on failure tear down what started and raise."""
        ...

    def stop(self) -> None:
        """Stop and remove everything that started; idempotent."""
        ...

    @property
    def service_url(self) -> str: ...

    @property
    def metrics_url(self) -> str: ...

    @property
    def trace_store(self) -> TraceStore: ...

    def prometheus_client(self, client: httpx.Client) -> PrometheusClient: ...

    def log_path(self, stream: str) -> Path:
        """A file holding everything the service wrote to ``stream`` so far."""
        ...

    def service_exit_code(self) -> int | None:
        """The service's exit code once it stopped, ``None`` while it runs."""
        ...

    def describe(self) -> dict[str, Any]:
        """The report's ``stack`` section: mode and components (with images or binaries)."""
        ...


def resolve_mode(mode: str, *, probe_timeout: float | None = None) -> tuple[str, str]:
    """The concrete mode for ``mode`` and why: ``auto`` becomes ``containers``
    when a Docker engine answers within ``probe_timeout`` seconds, else ``local``."""
    if mode != "auto":
        return mode, "requested"
    from conformance.stack._docker import DEFAULT_PROBE_TIMEOUT, probe_engine

    status = probe_engine(DEFAULT_PROBE_TIMEOUT if probe_timeout is None else probe_timeout)
    if status.available:
        return "containers", f"auto: Docker engine {status.version} answered"
    return "local", f"auto: {status.reason}"


def make_stack(
    mode: str,
    profile: Profile,
    workdir: Path,
    *,
    prometheus_binary: str | None = None,
    telemetry: TelemetryPlan | None = None,
) -> Stack:
    """A not-yet-started stack for a concrete mode (``local``, ``containers`` or ``external``).

    ``telemetry`` (local mode) is whether the collector and Jaeger run; decided
    from the environment and the built binaries when not given.
    """
    if mode == "local":
        from conformance.stack._local import LocalStack

        return LocalStack(profile, workdir, prometheus_binary=prometheus_binary, telemetry=telemetry)
    if mode == "containers":
        from conformance.stack._containers import ContainerStack

        return ContainerStack(profile, workdir)
    if mode == "external":
        from conformance.stack._external import ExternalStack

        return ExternalStack(profile, workdir)
    raise ValueError(f"unknown stack mode {mode!r}; expected one of {', '.join(MODES[1:])}")
