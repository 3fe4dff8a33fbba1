"""Asking the health probes, on the running service and on a second instance
in which a dependency fails.

:func:`fetch_probes` sends one timed request per probe of the profile's
``health`` section to the running service. :func:`probe_with_dependency_failure`
starts a second instance of the service (local mode: the same command on a
fresh port; container mode: another container of the service image; both with
the stack's environment plus ``dependency_failure.env``),
waits until it answers any HTTP status on ``service.ready.path`` (a readiness
probe that fails answers 503, which the stack's own wait would never accept),
asks its readiness and liveness probes once each, and always stops it.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from conformance._exceptions import HarnessError, ServiceStartError
from conformance._mask import mask_secrets
from conformance._ports import LOOPBACK, free_port
from conformance._process import ManagedProcess
from conformance._profile import Profile
from conformance._readiness import Exited, wait_answering
from conformance._sections.health import DependencyFailure, HealthProbe
from conformance.collect._traffic import send
from conformance.stack import Stack
from conformance.telemetry import ProbeAnswer

if TYPE_CHECKING:
    from conformance.stack._containers import ContainerStack
    from conformance.stack._local import LocalStack

__all__ = [
    "NO_SECOND_INSTANCE",
    "SECOND_INSTANCE",
    "DependencyFailureRun",
    "fetch_probes",
    "probe_with_dependency_failure",
]

#: Name of the second instance: its ManagedProcess and its log directory under the run's workdir.
SECOND_INSTANCE = "service-dependency-failure"

NO_SECOND_INSTANCE = (
    "the dependency-failure probe starts a second service instance, which local and container mode can do; "
    "external mode cannot: run with --mode local or declare HLT-002/HLT-003 not_applicable"
)


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

    Raises :class:`HarnessError` in external mode (nothing to start),
    :class:`ServiceStartError` when the instance cannot start, exits during
    start-up, or answers nothing on ``service.ready.path`` within
    ``failure.timeout``.
    """
    from conformance.stack._containers import ContainerStack
    from conformance.stack._local import LocalStack

    instance: AbstractContextManager[tuple[str, Exited, Path]]  # base URL, exit watch, output directory
    if isinstance(stack, ContainerStack):
        instance = _container_instance(stack, profile, failure)
    elif isinstance(stack, LocalStack):
        instance = _process_instance(stack, profile, failure)
    else:
        raise HarnessError(NO_SECOND_INSTANCE)
    started = time.monotonic()
    with instance as (url, exited, log_dir):
        wait_answering(
            url + profile.service.ready.path,
            what="the second service instance (dependency failure)",
            exited=exited,
            timeout=failure.timeout,
            hint="raise health.dependency_failure.timeout, or check service.ready.path",
            output_hint=f"full output in {log_dir}",
            gave_up=f"never answered on {profile.service.ready.path}",
        )
        startup = time.monotonic() - started
        with httpx.Client(base_url=url, timeout=profile.request_timeout) as client:
            ready = _ask(client, failure.ready)
            live = _ask(client, failure.live)
    return DependencyFailureRun(
        ready=ready,
        live=live,
        env_keys=tuple(failure.env),
        url=url,
        startup_seconds=startup,
        log_dir=log_dir,
    )


@contextlib.contextmanager
def _process_instance(
    stack: LocalStack, profile: Profile, failure: DependencyFailure
) -> Iterator[tuple[str, Exited, Path]]:
    """Local mode: the profile's command again, on a fresh port, stopped on exit."""
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
    secrets = _secrets(profile, failure)
    log_dir = stack.workdir / SECOND_INSTANCE
    process = ManagedProcess(
        SECOND_INSTANCE,
        [_fill(part, values) for part in svc.command],
        stdout_path=log_dir / "stdout.log",
        stderr_path=log_dir / "stderr.log",
        env=env,
        cwd=svc.cwd or profile.directory,
    )

    def exited() -> tuple[int | None, str]:
        code = process.poll()
        return code, "" if code is None else mask_secrets(
            process.stderr_tail() or process.stdout_tail(), secrets
        )

    try:
        try:
            process.start()
        except OSError as exc:
            raise ServiceStartError(
                f"cannot start the second service instance ({process.argv[0]}): {exc.strerror or exc}",
                hint="check service.command in the profile or --service-command",
            ) from None
        yield f"http://{LOOPBACK}:{port}", exited, log_dir
    finally:
        process.stop(timeout=svc.shutdown_timeout)


@contextlib.contextmanager
def _container_instance(
    stack: ContainerStack, profile: Profile, failure: DependencyFailure
) -> Iterator[tuple[str, Exited, Path]]:
    """Container mode: another container of the service image, removed on exit (its output kept)."""
    secrets = _secrets(profile, failure)
    log_dir = stack.workdir / SECOND_INSTANCE

    def exited() -> tuple[int | None, str]:
        code = stack.instance_exit_code(SECOND_INSTANCE)
        return code, "" if code is None else mask_secrets(stack.instance_logs(SECOND_INSTANCE), secrets)

    try:
        url = stack.start_service_instance(SECOND_INSTANCE, {k: str(v) for k, v in failure.env.items()})
        yield url, exited, log_dir
    finally:
        log_dir.mkdir(parents=True, exist_ok=True)
        (log_dir / "output.log").write_text(stack.instance_logs(SECOND_INSTANCE, 1 << 20), encoding="utf-8")
        stack.remove_instance(SECOND_INSTANCE)


def _secrets(profile: Profile, failure: DependencyFailure) -> list[str]:
    return [profile.service.env[k] for k in profile.service.secret_env] + list(failure.env.values())


def _ask(client: httpx.Client, probe: HealthProbe | None) -> ProbeAnswer | None:
    if probe is None:
        return None
    return ProbeAnswer(probe, send(client, probe.endpoint, traceparent=False), dependency_failing=True)


def _fill(template: str, values: Mapping[str, str]) -> str:
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", value)
    return out
