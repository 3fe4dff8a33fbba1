"""promtool in a container: the :class:`~conformance.collect._promtool.PromtoolRunner`
protocol on the Prometheus image (``prom/prometheus`` by default, or the image
the profile's ``containers.prometheus.image`` names).

Each call is one short-lived container (``/bin/promtool`` as entrypoint) with
the directories of the files it reads bind-mounted read-only at
``/obsconform/host/<host path>``, so a unit-test file finds its rule files by
the same relative paths as on the host. promtool's output names those container
paths; they are mapped back to the host paths before the pure parsers of
:mod:`conformance.collect._promtool` read them, so both runners produce
identical results. ``check metrics`` reads stdin: the exposition is written to
a file and redirected by the image's ``/bin/sh`` (present in both the official
busybox-based image and ours).

Every container carries the run's labels and is removed after the call, also
on timeout (then :class:`~conformance._exceptions.HarnessError`).
"""

from __future__ import annotations

import contextlib
import shlex
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from conformance._exceptions import HarnessError
from conformance.collect._promtool import DEFAULT_PROMTOOL_TIMEOUT, PromtoolCommands, PromtoolRun

__all__ = ["HOST_MOUNT", "ContainerPromtool"]

#: Where host directories appear inside the promtool container.
HOST_MOUNT = "/obsconform/host"


class ContainerPromtool(PromtoolCommands):
    """promtool from a Prometheus image, run through the Docker SDK.

    ``client`` is a Docker SDK client (injected; :func:`conformance.stack._docker.docker_client`
    when omitted). The image must already be present or pullable.
    """

    kind = "container"

    def __init__(self, image: str, *, client: Any = None, timeout: float = DEFAULT_PROMTOOL_TIMEOUT) -> None:
        self.image = image
        self.timeout = timeout
        self._client = client
        self._version: str | None = None
        self._junit = None

    def __repr__(self) -> str:
        return f"<ContainerPromtool {self.image}>"

    @property
    def client(self) -> Any:
        if self._client is None:
            from conformance.stack._docker import docker_client

            try:
                self._client = docker_client()
            except Exception as exc:
                raise HarnessError(
                    f"promtool needs a Docker engine to run {self.image}: {exc}",
                    hint="start one (scripts/docker-engine start), or use the local promtool",
                ) from None
        return self._client

    @property
    def version(self) -> str:
        if self._version is None:
            run = self._run(["--version"])
            first = (run.stdout + run.stderr).strip().splitlines()
            words = first[0].split() if first else []
            self._version = words[2] if len(words) > 2 and words[1] == "version" else ""
        return self._version

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "image": self.image,
            "version": self.version,
            "junit": self.supports_junit(),
        }

    def _where(self, path: Path) -> str:
        return f"{HOST_MOUNT}{Path(path).resolve()}"

    def _to_host(self, text: str) -> str:
        return text.replace(HOST_MOUNT, "")

    def _run(
        self,
        args: Sequence[str],
        *,
        stdin: str | None = None,
        reads: Sequence[Path] = (),
        writes: Sequence[Path] = (),
    ) -> PromtoolRun:
        if stdin is None:
            return self._container(args, reads=reads, writes=writes)
        # The SDK's run() has no stdin: the input goes into a mounted file the image's /bin/sh redirects.
        with tempfile.TemporaryDirectory(prefix="obsconform-promtool-") as tmp:
            given = Path(tmp) / "stdin.txt"
            given.write_text(stdin, encoding="utf-8")
            given.chmod(0o644)
            Path(tmp).chmod(0o755)
            command = "exec /bin/promtool " + " ".join(map(shlex.quote, args))
            command += " < " + shlex.quote(self._where(given))
            return self._container(
                ["-c", command], reads=[*reads, Path(tmp)], writes=writes, entrypoint="/bin/sh", shown=args
            )

    def _container(
        self,
        args: Sequence[str],
        *,
        reads: Sequence[Path] = (),
        writes: Sequence[Path] = (),
        entrypoint: str = "/bin/promtool",
        shown: Sequence[str] | None = None,
    ) -> PromtoolRun:
        import os

        from conformance.stack._docker import run_labels

        volumes = {str(d): {"bind": self._where(d), "mode": "ro"} for d in reads}
        volumes.update({str(d): {"bind": self._where(d), "mode": "rw"} for d in writes})
        argv = ("docker-run", self.image, "promtool", *(shown if shown is not None else args))
        started = time.monotonic()
        try:
            container = self.client.containers.run(
                self.image,
                command=list(args),
                entrypoint=entrypoint,
                volumes=volumes,
                labels=run_labels("promtool"),
                user=f"{os.getuid()}:{os.getgid()}",
                network_mode="none",
                detach=True,
            )
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise HarnessError(
                f"cannot run promtool in {self.image}: {first}",
                hint="pull or build the image (scripts/build-images); containers.prometheus.image names it",
            ) from None
        try:
            try:
                status = container.wait(timeout=self.timeout)
            except Exception:
                raise HarnessError(
                    f"promtool {' '.join(args)} in {self.image} did not finish within {self.timeout:g}s"
                    " (removed)",
                    hint="raise alerts.promtool_timeout in the profile",
                ) from None
            stdout = container.logs(stdout=True, stderr=False).decode("utf-8", errors="replace")
            stderr = container.logs(stdout=False, stderr=True).decode("utf-8", errors="replace")
        finally:
            with contextlib.suppress(Exception):  # already gone
                container.remove(force=True)
        return PromtoolRun(
            argv,
            int(status.get("StatusCode", -1)),
            self._to_host(stdout),
            self._to_host(stderr),
            time.monotonic() - started,
        )
