"""Asking the health probes, on the running service and on a second instance
in which a dependency fails.

:func:`fetch_probes` sends one timed request per probe of the profile's
``health`` section to the running service. :func:`probe_with_dependency_failure`
starts a second instance of the service (local mode only: the same command
on a fresh port, the stack's environment plus ``dependency_failure.env``),
waits until it answers any HTTP status on ``service.ready.path`` (a readiness
probe that fails answers 503, which the stack's own wait would never accept),
asks its readiness and liveness probes once each, and always stops it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from conformance._exceptions import HarnessError, ServiceStartError, WaitTimeout
from conformance._mask import excerpt, mask_secrets
from conformance._ports import LOOPBACK, free_port
from conformance._process import ManagedProcess
from conformance._profile import Profile
from conformance._sections.health import DependencyFailure, HealthProbe
from conformance._wait import wait_until
from conformance.collect._traffic import send
from conformance.stack import Stack
from conformance.telemetry import HttpExchange

if TYPE_CHECKING:
    from conformance.stack._containers import ContainerStack

__all__ = [
    "LOCAL_MODE_ONLY",
    "SECOND_INSTANCE",
    "DependencyFailureRun",
    "ProbeAnswer",
    "fetch_probes",
    "probe_with_dependency_failure",
]

#: Name of the second instance: its ManagedProcess and its log directory under the run's workdir.
SECOND_INSTANCE = "service-dependency-failure"

LOCAL_MODE_ONLY = (
    "the dependency-failure probe starts a second service instance, which local and container mode can do; "
    "external mode cannot: run with --mode local or declare HLT-002/HLT-003 not_applicable"
)


@dataclass(frozen=True, slots=True)
class ProbeAnswer:
    """One request to a health probe and what came back (``exchange.elapsed_seconds`` is its time)."""

    probe: HealthProbe
    exchange: HttpExchange
    #: True when asked on the second instance, in which a dependency fails.
    dependency_failing: bool = False


@dataclass(frozen=True, slots=True)
class DependencyFailureRun:
    """What the second instance answered; ``None`` for a probe the profile does not name."""

    ready: ProbeAnswer | None
    live: ProbeAnswer | None
    #: Names (not values: they may be credentials) of the env the second instance got on top of the stack's.
    env_keys: tuple[str, ...]
    url: str
    startup_seconds: float
    log_dir: Path

    @property
    def answers(self) -> list[ProbeAnswer]:
        return [a for a in (self.ready, self.live) if a is not None]


def fetch_probes(client: httpx.Client, probes: Iterable[HealthProbe]) -> list[ProbeAnswer]:
    """One timed request per probe, in order; a transport error is recorded, not raised."""
    return [ProbeAnswer(probe, send(client, probe.endpoint, traceparent=False)) for probe in probes]


def probe_with_dependency_failure(
    stack: Stack, profile: Profile, failure: DependencyFailure
) -> DependencyFailureRun:
    """Start the second instance, ask its probes, stop it (whatever happens).

    Raises :class:`HarnessError` when the stack is not local,
    :class:`ServiceStartError` when the instance cannot start, exits during
    start-up, or answers nothing on ``service.ready.path`` within
    ``failure.timeout``.
    """
    from conformance.stack._containers import ContainerStack
    from conformance.stack._local import LocalStack

    if isinstance(stack, ContainerStack):
        return _in_container(stack, profile, failure)
    if not isinstance(stack, LocalStack):
        raise HarnessError(LOCAL_MODE_ONLY)
    svc = profile.service
    if not svc.command:
        raise HarnessError(
            f"profile {profile.path.name} has no service.command, which the second instance needs",
            hint="add service.command, or pass --service-command",
        )
    port = free_port()
    values = {
        "port": str(port),
        "metrics_port": str(free_port() if profile.metrics.separate_port else port),
        "python": sys.executable,
        "profile_dir": str(profile.directory),
    }
    # The stack's environment (its OTLP endpoint, the profile's env with the stack's ports filled in),
    # the profile's env again with this instance's ports, then the dependency failure.
    env = stack.service_env()
    env.update({k: _fill(v, values) for k, v in svc.env.items()})
    env.update({k: _fill(v, values) for k, v in failure.env.items()})
    secrets = [svc.env[k] for k in svc.secret_env] + list(failure.env.values())
    log_dir = stack.workdir / SECOND_INSTANCE
    process = ManagedProcess(
        SECOND_INSTANCE,
        [_fill(part, values) for part in svc.command],
        stdout_path=log_dir / "stdout.log",
        stderr_path=log_dir / "stderr.log",
        env=env,
        cwd=svc.cwd or profile.directory,
    )
    url = f"http://{LOOPBACK}:{port}"
    client = httpx.Client(base_url=url, timeout=profile.request_timeout)
    started = time.monotonic()
    try:
        try:
            process.start()
        except OSError as exc:
            raise ServiceStartError(
                f"cannot start the second service instance ({process.argv[0]}): {exc.strerror or exc}",
                hint="check service.command in the profile or --service-command",
            ) from None
        _wait_answering(process, client, svc.ready.path, failure.timeout, secrets)
        startup = time.monotonic() - started
        ready = _ask(client, failure.ready)
        live = _ask(client, failure.live)
    finally:
        client.close()
        process.stop(timeout=svc.shutdown_timeout)
    return DependencyFailureRun(
        ready=ready,
        live=live,
        env_keys=tuple(failure.env),
        url=url,
        startup_seconds=startup,
        log_dir=log_dir,
    )


def _in_container(
    stack: ContainerStack, profile: Profile, failure: DependencyFailure
) -> DependencyFailureRun:
    """Container mode: the second instance is another container of the service image."""
    svc = profile.service
    secrets = [svc.env[k] for k in svc.secret_env] + list(failure.env.values())
    started = time.monotonic()
    try:
        url = stack.start_service_instance(SECOND_INSTANCE, {k: str(v) for k, v in failure.env.items()})
        with httpx.Client(base_url=url, timeout=profile.request_timeout) as client:

            def answering() -> tuple[int | None, str]:
                code = stack.instance_exit_code(SECOND_INSTANCE)
                if code is not None:
                    tail = mask_secrets(stack.instance_logs(SECOND_INSTANCE), secrets)
                    raise ServiceStartError(
                        f"the second service container (dependency failure) exited with code {code} "
                        f"during start-up; last output: {excerpt(tail, 300) or '(none)'}"
                    )
                try:
                    return client.get(svc.ready.path, timeout=2.0).status_code, ""
                except httpx.HTTPError as exc:
                    return None, f"GET {svc.ready.path}: {type(exc).__name__}"

            try:
                wait_until(
                    answering, awaited="the second service container to answer", timeout=failure.timeout
                )
            except WaitTimeout as exc:
                raise ServiceStartError(
                    f"the second service container (dependency failure) never answered on "
                    f"{svc.ready.path}: {exc.last_seen} after {exc.timeout:g}s",
                    hint="raise health.dependency_failure.timeout, or check service.ready.path",
                ) from None
            startup = time.monotonic() - started
            ready = _ask(client, failure.ready)
            live = _ask(client, failure.live)
    finally:
        stack.remove_instance(SECOND_INSTANCE)
    return DependencyFailureRun(
        ready=ready,
        live=live,
        env_keys=tuple(failure.env),
        url=url,
        startup_seconds=startup,
        log_dir=stack.workdir / SECOND_INSTANCE,
    )


def _ask(client: httpx.Client, probe: HealthProbe | None) -> ProbeAnswer | None:
    if probe is None:
        return None
    return ProbeAnswer(probe, send(client, probe.endpoint, traceparent=False), dependency_failing=True)


def _wait_answering(
    process: ManagedProcess, client: httpx.Client, path: str, timeout: float, secrets: list[str]
) -> None:
    def probe() -> tuple[int | None, str]:
        code = process.poll()
        if code is not None:
            tail = mask_secrets(process.stderr_tail() or process.stdout_tail(), secrets)
            raise ServiceStartError(
                f"the second service instance (dependency failure) exited with code {code} during "
                f"start-up; last output: {excerpt(tail, 300) or '(none)'}",
                hint=f"full output in {process.stderr_path.parent}",
            )
        try:
            response = client.get(path, timeout=2.0)
        except httpx.HTTPError as exc:
            return None, f"GET {path}: {type(exc).__name__}"
        return response.status_code, ""

    try:
        wait_until(probe, awaited=f"the second service instance to answer on {path}", timeout=timeout)
    except WaitTimeout as exc:
        raise ServiceStartError(
            f"the second service instance (dependency failure) never answered on {path}: "
            f"{exc.last_seen} after {exc.timeout:g}s",
            hint="raise health.dependency_failure.timeout, or check service.ready.path",
        ) from None


def _fill(template: str, values: Mapping[str, str]) -> str:
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", value)
    return out
