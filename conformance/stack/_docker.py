"""The Docker engine: is one there (bounded probe), labels, and leftovers of dead runs.

Everything here goes through the Docker SDK (the one testcontainers uses), is
bounded in time, and never raises because no engine is there: a machine
without Docker simply has no containers to reap and runs in local mode.

Every container and network the harness creates carries the labels of
:func:`run_labels`: ``obsconform.run-id`` (the run) and ``obsconform.harness``
(``<pid>:<start time>`` of the harness process, as for child processes in
:mod:`conformance._process`). A run that was SIGKILLed stops nothing, so
:func:`reap_container_leftovers` removes containers and networks whose harness
is no longer alive; ``conformance clean`` and every new run call it.
"""

from __future__ import annotations

import importlib
import os
import socket
import threading
from dataclasses import dataclass
from typing import Any

from conformance._process import RUN_ID, _harness_identity, _start_time

__all__ = [
    "DEFAULT_PROBE_TIMEOUT",
    "LABEL_COMPONENT",
    "LABEL_HARNESS",
    "LABEL_RUN_ID",
    "ContainerLeftover",
    "EngineStatus",
    "docker_available",
    "docker_client",
    "find_container_leftovers",
    "image_present",
    "probe_engine",
    "reap_container_leftovers",
    "run_labels",
]

LABEL_RUN_ID = "obsconform.run-id"
LABEL_HARNESS = "obsconform.harness"
LABEL_COMPONENT = "obsconform.component"

#: Seconds the engine probe may take; ``auto`` mode must decide quickly when no engine is there.
DEFAULT_PROBE_TIMEOUT = 3.0


@dataclass(frozen=True, slots=True)
class EngineStatus:
    available: bool
    version: str = ""
    reason: str = ""


def docker_client(timeout: float = 60.0) -> Any:
    """A Docker SDK client from the environment (``DOCKER_HOST`` or the default socket).

    ``timeout`` bounds each API call. Raises ``docker.errors.DockerException``
    when no engine answers.
    """
    return _docker_sdk().from_env(timeout=max(1, round(timeout)))


def _docker_sdk() -> Any:
    """The Docker SDK module (untyped), imported on first use."""
    return importlib.import_module("docker")


def probe_engine(timeout: float = DEFAULT_PROBE_TIMEOUT) -> EngineStatus:
    """Whether a Docker engine answers within ``timeout`` seconds, with its version or the reason not.

    The probe runs in a daemon thread so that even a socket that accepts and then
    hangs cannot hold the caller past the deadline.
    """
    result: list[EngineStatus] = []
    unreachable = _unix_socket_unreachable(timeout)
    if unreachable:
        return EngineStatus(False, reason=f"no Docker engine answers: {unreachable}")
    try:
        # Imported here, not in the thread: an abandoned thread must never hold a half-imported module.
        sdk = _docker_sdk()
    except ImportError:
        return EngineStatus(
            False, reason="the Docker SDK is not installed (pip install obsconform[containers])"
        )

    def probe() -> None:
        try:
            # A fixed, old API version: no version negotiation round trip before the
            # client exists (so it can always be closed), and every engine since 1.12 speaks it.
            client = sdk.from_env(version="1.24", timeout=max(1, round(timeout)))
            try:
                version = str(client.version().get("Version", "?"))
            finally:
                client.close()
        except Exception as exc:  # any failure means "no usable engine"
            result.append(EngineStatus(False, reason=f"no Docker engine answers: {_why(exc)}"))
            return
        result.append(EngineStatus(True, version=version))

    thread = threading.Thread(target=probe, name="docker-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    if not result:
        return EngineStatus(False, reason=f"the Docker engine did not answer within {timeout:g}s")
    return result[0]


def _unix_socket_unreachable(timeout: float) -> str:
    """Why a ``unix://`` DOCKER_HOST cannot be connected to, or ``""``.

    Checked with a plain socket before the SDK is involved: docker-py leaves the
    socket of a failed connect to the garbage collector, and "no engine" is the
    common case on machines without Docker.
    """
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if not host.startswith("unix://"):
        return ""
    path = host.removeprefix("unix://")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except FileNotFoundError:
            return f"no socket at {host}"
        except ConnectionRefusedError:
            return f"nothing listens on {host}"
        except PermissionError:
            return f"permission denied on {host} (add the user to the docker group)"
        except OSError as exc:
            return f"{host}: {exc.strerror or exc}"
    return ""


def _why(exc: BaseException) -> str:
    """A short reason for a failed engine call: the socket missing, refused, not permitted."""
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    seen: list[BaseException] = []
    pending: list[BaseException] = [exc]
    while pending:  # the SDK wraps the OS error in requests' and urllib3's exceptions
        current = pending.pop()
        seen.append(current)
        pending += [e for e in (current.__cause__, current.__context__) if e is not None and e not in seen]
        pending += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException) and a not in seen]
    for error in seen:
        if isinstance(error, FileNotFoundError):
            return f"no socket at {host}"
        if isinstance(error, ConnectionRefusedError):
            return f"nothing listens on {host}"
        if isinstance(error, PermissionError):
            return f"permission denied on {host} (add the user to the docker group)"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{host}: {text[:200]}"


def docker_available(timeout: float = DEFAULT_PROBE_TIMEOUT) -> bool:
    """``True`` when a Docker engine answers within ``timeout`` seconds."""
    return probe_engine(timeout).available


def run_labels(component: str = "") -> dict[str, str]:
    """Labels for a container or network this harness process creates."""
    labels = {LABEL_RUN_ID: RUN_ID, LABEL_HARNESS: _harness_identity(os.getpid())}
    if component:
        labels[LABEL_COMPONENT] = component
    return labels


def image_present(client: Any, image: str) -> bool:
    """Whether ``image`` exists in the engine's local store (nothing is pulled)."""
    docker = _docker_sdk()
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return False
    return True


@dataclass(frozen=True, slots=True)
class ContainerLeftover:
    """A container or network of a run whose harness is gone."""

    kind: str  # "container" or "network"
    name: str
    run_id: str


def _harness_alive(identity: str) -> bool:
    pid_text, _, started = identity.partition(":")
    return pid_text.isdigit() and _start_time(int(pid_text)) == started


def _dead_run(labels: dict[str, str] | None) -> bool:
    labels = labels or {}
    if labels.get(LABEL_RUN_ID) == RUN_ID:
        return False
    return not _harness_alive(labels.get(LABEL_HARNESS, ""))


def find_container_leftovers(timeout: float = DEFAULT_PROBE_TIMEOUT) -> list[ContainerLeftover]:
    """Containers and networks labelled by a run whose harness died; [] without an engine."""
    if not docker_available(timeout):
        return []
    client = docker_client(30.0)
    try:
        found = [
            ContainerLeftover("container", c.name, c.labels.get(LABEL_RUN_ID, "?"))
            for c in client.containers.list(all=True, filters={"label": LABEL_RUN_ID})
            if _dead_run(c.labels)
        ]
        found += [
            ContainerLeftover("network", n.name, (n.attrs.get("Labels") or {}).get(LABEL_RUN_ID, "?"))
            for n in client.networks.list(filters={"label": LABEL_RUN_ID})
            if _dead_run(n.attrs.get("Labels"))
        ]
        return found
    finally:
        client.close()


def reap_container_leftovers(timeout: float = DEFAULT_PROBE_TIMEOUT) -> list[ContainerLeftover]:
    """Remove (force) the containers, then the networks, of dead runs; returns what was removed."""
    docker = _docker_sdk()
    leftovers = find_container_leftovers(timeout)
    if not leftovers:
        return []
    client = docker_client(30.0)
    removed: list[ContainerLeftover] = []
    try:
        for item in leftovers:
            try:
                if item.kind == "container":
                    client.containers.get(item.name).remove(force=True, v=True)
                else:
                    client.networks.get(item.name).remove()
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError:
                continue  # e.g. a network still in use by a container we could not remove
            removed.append(item)
    finally:
        client.close()
    return removed
