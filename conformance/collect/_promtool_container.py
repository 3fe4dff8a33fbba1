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
from conformance.collect._promtool import (
    DEFAULT_PROMTOOL_TIMEOUT,
    LintMode,
    MetricsCheckResult,
    PromtoolRun,
    RuleCheckResult,
    RuleTestResult,
    parse_check_metrics_output,
    parse_check_rules_output,
    parse_junit,
    parse_test_rules_text,
    rule_test_group_names,
)

__all__ = ["HOST_MOUNT", "ContainerPromtool"]

#: Where host directories appear inside the promtool container.
HOST_MOUNT = "/obsconform/host"


class ContainerPromtool:
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
        self._junit: bool | None = None

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

    def supports_junit(self) -> bool:
        """Whether this promtool has ``test rules --junit`` (Prometheus 2.55+); asked once."""
        if self._junit is None:
            run = self._run(["test", "rules", "--help"])
            self._junit = "--junit" in run.stdout + run.stderr
        return self._junit

    def check_rules(self, files: Sequence[Path], *, lint: LintMode = "all") -> RuleCheckResult:
        checks = []
        for file in files:
            file = Path(file).resolve()
            run = self._run(["check", "rules", f"--lint={lint}", _inside(file)], mounts=[file.parent])
            _refuse_usage_error(run)
            checks.append(parse_check_rules_output(str(file), run))
        return RuleCheckResult(lint=lint, files=tuple(checks))

    def test_rules(self, files: Sequence[Path], *, junit_path: Path | None = None) -> RuleTestResult:
        paths = [Path(f).resolve() for f in files]
        names = [str(p) for p in paths]
        if not paths:
            return RuleTestResult(files=(), cases=(), source="text", runs=())
        if junit_path is not None and self.supports_junit():
            junit_path = junit_path.resolve()
            junit_path.parent.mkdir(parents=True, exist_ok=True)
            mounts = [*_rule_dirs(paths)]
            run = self._run(
                ["test", "rules", f"--junit={_inside(junit_path)}", *map(_inside, paths)],
                mounts=mounts,
                writable=[junit_path.parent],
            )
            _refuse_usage_error(run)
            try:
                xml_text = junit_path.read_text(encoding="utf-8").replace(HOST_MOUNT, "")
            except OSError as exc:
                raise HarnessError(
                    f"promtool test rules exited {run.exit_code} without writing {junit_path}: {exc.strerror}"
                ) from None
            return RuleTestResult(tuple(names), parse_junit(xml_text), "junit", (run,), str(junit_path))
        runs: list[PromtoolRun] = []
        cases = []
        for path in paths:
            run = self._run(["test", "rules", _inside(path)], mounts=_rule_dirs([path]))
            _refuse_usage_error(run)
            runs.append(run)
            cases.extend(parse_test_rules_text(str(path), run, rule_test_group_names(path)))
        return RuleTestResult(tuple(names), tuple(cases), "text", tuple(runs))

    def check_metrics(self, text: str, *, extended: bool = False) -> MetricsCheckResult:
        with tempfile.TemporaryDirectory(prefix="obsconform-promtool-") as tmp:
            exposition = Path(tmp) / "metrics.txt"
            exposition.write_text(text, encoding="utf-8")
            exposition.chmod(0o644)
            Path(tmp).chmod(0o755)
            args = ["check", "metrics", *(["--extended"] if extended else [])]
            command = "exec /bin/promtool " + " ".join(map(shlex.quote, args))
            command += " < " + shlex.quote(_inside(exposition))
            run = self._run(["-c", command], mounts=[Path(tmp)], entrypoint="/bin/sh", shown=args)
        _refuse_usage_error(run)
        return parse_check_metrics_output(run)

    # -- running ---------------------------------------------------------
    def _run(
        self,
        args: Sequence[str],
        *,
        mounts: Sequence[Path] = (),
        writable: Sequence[Path] = (),
        entrypoint: str = "/bin/promtool",
        shown: Sequence[str] | None = None,
    ) -> PromtoolRun:
        import os

        from conformance.stack._docker import run_labels

        volumes = {str(d): {"bind": _inside(d), "mode": "ro"} for d in mounts}
        volumes.update({str(d): {"bind": _inside(d), "mode": "rw"} for d in writable})
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
            stdout.replace(HOST_MOUNT, ""),
            stderr.replace(HOST_MOUNT, ""),
            time.monotonic() - started,
        )


def _inside(path: Path) -> str:
    return f"{HOST_MOUNT}{Path(path).resolve()}"


def _rule_dirs(test_files: Sequence[Path]) -> list[Path]:
    """The unit-test files' directories and those of the rule files they name."""
    import yaml

    dirs: dict[str, Path] = {}
    for test_file in test_files:
        dirs[str(test_file.parent)] = test_file.parent
        try:
            data = yaml.safe_load(test_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        for rule_file in (data or {}).get("rule_files", []) if isinstance(data, dict) else []:
            resolved = (test_file.parent / str(rule_file)).resolve()
            dirs[str(resolved.parent)] = resolved.parent
    # A directory inside another mounted one is covered by it.
    ordered = sorted(dirs.values(), key=lambda p: len(p.parts))
    kept: list[Path] = []
    for directory in ordered:
        if not any(directory.is_relative_to(parent) for parent in kept):
            kept.append(directory)
    return kept


def _refuse_usage_error(run: PromtoolRun) -> None:
    for line in run.stderr.splitlines():
        if line.startswith("promtool: error:"):
            raise HarnessError(f"{' '.join(run.argv)}: {line.removeprefix('promtool: error:').strip()}")
