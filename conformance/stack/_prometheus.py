"""A real Prometheus server run as a local process (the embedded, no-Docker stack).

:class:`LocalPrometheus` writes a generated config into its work directory,
starts ``prometheus`` through :class:`~conformance._process.ManagedProcess` on
a free loopback port, and waits (bounded) for ``/-/ready``. If Prometheus exits
during start-up (bad config, bad rule file) the :class:`StackError` quotes its
own error lines.

Durations: Prometheus 2.42 parses ``1s``, ``500ms`` or ``1s500ms`` but not
``0.5s``, so intervals given in seconds are rendered as whole milliseconds.
Sub-second scrape intervals are accepted by 2.42; the default stays at 1s.

Note that Prometheus 2.42 hands new targets to its scrape manager on a fixed
5-second tick, so the first scrape comes a few seconds after ``/-/ready``; wait
for it with :func:`conformance.collect._prometheus_api.wait_for_target_up`.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import yaml

from conformance._exceptions import StackError
from conformance._ports import LOOPBACK, free_port
from conformance._process import ManagedProcess
from conformance._wait import wait_until

__all__ = [
    "BOOTSTRAP_HINT",
    "PROMETHEUS_BIN_ENV",
    "PROMTOOL_BIN_ENV",
    "LocalPrometheus",
    "ScrapeTarget",
    "binary_version",
    "find_prometheus_binary",
    "render_config",
]

#: Path of the ``prometheus`` binary to use instead of the one on ``PATH``.
PROMETHEUS_BIN_ENV = "OBSCONFORM_PROMETHEUS_BIN"
#: Path of the ``promtool`` binary to use instead of the one on ``PATH``.
PROMTOOL_BIN_ENV = "OBSCONFORM_PROMTOOL_BIN"

BOOTSTRAP_HINT = "run scripts/bootstrap, which installs Debian's prometheus package"

_BIN_ENVS = {"prometheus": PROMETHEUS_BIN_ENV, "promtool": PROMTOOL_BIN_ENV}
_VERSION_RE = re.compile(r"\bversion\s+(\S+)")
_PORT_ATTEMPTS = 3


def find_prometheus_binary(name: str = "prometheus") -> str:
    """The path of ``prometheus`` (or ``promtool``): the environment override, else ``PATH``.

    The override variable is read at each call, never at import.
    """
    env_name = _BIN_ENVS.get(name)
    override = os.environ.get(env_name, "") if env_name else ""
    if override:
        if os.path.isfile(override) and os.access(override, os.X_OK):
            return override
        raise StackError(
            f"{env_name}={override!r} is not an executable file",
            hint=f"fix or unset {env_name}, or {BOOTSTRAP_HINT}",
        )
    found = shutil.which(name)
    if found is None:
        where = f" (and {env_name} is not set)" if env_name else ""
        raise StackError(f"{name} not found on PATH{where}", hint=BOOTSTRAP_HINT)
    return found


def binary_version(path: str) -> str:
    """The version a Prometheus binary reports, e.g. ``2.42.0+ds``."""
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StackError(f"could not run {path} --version: {exc}", hint=BOOTSTRAP_HINT) from exc
    output = (done.stdout or "") + (done.stderr or "")
    first = output.strip().splitlines()[0] if output.strip() else ""
    match = _VERSION_RE.search(first)
    if done.returncode != 0 or match is None:
        raise StackError(
            f"{path} --version exited {done.returncode} without a version line: {first!r}",
            hint=BOOTSTRAP_HINT,
        )
    return match.group(1)


@dataclass(frozen=True, slots=True)
class ScrapeTarget:
    """One endpoint for Prometheus to scrape, as its own job.

    ``params`` become the scrape URL's query string; ``bearer_token`` is sent as
    ``Authorization: Bearer ...`` (arbitrary scrape headers need Prometheus
    2.55+, so 2.42 offers only this). ``labels`` are attached to every series.
    """

    job: str
    address: str
    metrics_path: str = "/metrics"
    scheme: str = "http"
    params: Mapping[str, Sequence[str]] = field(default_factory=dict)
    bearer_token: str | None = field(default=None, repr=False)
    labels: Mapping[str, str] = field(default_factory=dict)
    #: Prometheus's per-job limits (0 / None: Prometheus's defaults): samples per scrape,
    #: uncompressed body bytes, and the scrape deadline (capped at the scrape interval).
    sample_limit: int = 0
    body_size_limit: int = 0
    scrape_timeout: float | None = None

    def __post_init__(self) -> None:
        if not self.job:
            raise ValueError("ScrapeTarget.job must not be empty")
        host, sep, port = self.address.rpartition(":")
        if not (sep and host and port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"ScrapeTarget.address must be HOST:PORT, got {self.address!r}")
        if not self.metrics_path.startswith("/"):
            raise ValueError(f"ScrapeTarget.metrics_path must start with '/', got {self.metrics_path!r}")
        if self.scheme not in ("http", "https"):
            raise ValueError(f"ScrapeTarget.scheme must be http or https, got {self.scheme!r}")

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.address}{self.metrics_path}"


def render_config(
    targets: Sequence[ScrapeTarget],
    *,
    scrape_interval: float,
    evaluation_interval: float,
    rule_files: Sequence[str | os.PathLike[str]] = (),
) -> str:
    """The ``prometheus.yml`` text for ``targets`` (one job each); pure.

    The scrape timeout equals the interval (Prometheus refuses a longer one).
    Rule file paths are written as given; relative ones resolve against the
    config file's directory.
    """
    interval = _duration(scrape_interval, "scrape_interval")
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "evaluation_interval": _duration(evaluation_interval, "evaluation_interval"),
        },
    }
    if rule_files:
        config["rule_files"] = [os.fspath(p) for p in rule_files]
    jobs: set[str] = set()
    scrape_configs: list[dict[str, Any]] = []
    for target in targets:
        if target.job in jobs:
            raise ValueError(f"duplicate scrape job name {target.job!r}")
        jobs.add(target.job)
        static: dict[str, Any] = {"targets": [target.address]}
        if target.labels:
            static["labels"] = dict(target.labels)
        job: dict[str, Any] = {
            "job_name": target.job,
            "metrics_path": target.metrics_path,
            "scheme": target.scheme,
        }
        if target.scrape_timeout is not None:
            job["scrape_timeout"] = _duration(min(target.scrape_timeout, scrape_interval), "scrape_timeout")
        if target.sample_limit:
            job["sample_limit"] = target.sample_limit
        if target.body_size_limit:
            job["body_size_limit"] = f"{target.body_size_limit}B"
        if target.params:
            job["params"] = {k: list(v) for k, v in target.params.items()}
        if target.bearer_token:
            job["authorization"] = {"type": "Bearer", "credentials": target.bearer_token}
        job["static_configs"] = [static]
        scrape_configs.append(job)
    config["scrape_configs"] = scrape_configs
    header = "# Generated by obsconform for one run; edits are overwritten.\n"
    return header + yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


def _duration(seconds: float, what: str) -> str:
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{what} must be a positive number of seconds, got {seconds!r}")
    ms = round(seconds * 1000)
    if ms < 1:
        raise ValueError(f"{what} must be at least 1ms, got {seconds!r}s")
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


class LocalPrometheus:
    """A Prometheus server in ``workdir`` scraping ``targets``; use as a context manager.

    Each :meth:`start` begins with an empty TSDB (``workdir/data`` is wiped), so
    queries never see a previous run. Logs go to ``workdir/prometheus.stderr.log``.
    """

    name = "prometheus"

    def __init__(
        self,
        workdir: Path,
        targets: Sequence[ScrapeTarget],
        *,
        binary: str | None = None,
        scrape_interval: float = 1.0,
        evaluation_interval: float = 1.0,
        rule_files: Sequence[str | os.PathLike[str]] = (),
        startup_timeout: float = 20.0,
    ) -> None:
        self.workdir = Path(workdir)
        self.targets = tuple(targets)
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.rule_files = tuple(Path(p) for p in rule_files)
        self.startup_timeout = startup_timeout
        self.binary = binary
        self.version = ""
        #: Seconds from launching the process to ``/-/ready`` answering 200.
        self.startup_seconds: float | None = None
        self._port: int | None = None
        self._process: ManagedProcess | None = None
        self._http: httpx.Client | None = None
        # Fail on bad intervals or duplicate jobs now rather than at start().
        self._render()

    def __repr__(self) -> str:
        return f"<LocalPrometheus {self._port and self.url} pid={self.pid}>"

    @property
    def config_path(self) -> Path:
        return self.workdir / "prometheus.yml"

    @property
    def data_path(self) -> Path:
        return self.workdir / "data"

    @property
    def stderr_path(self) -> Path:
        return self.workdir / "prometheus.stderr.log"

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("LocalPrometheus has not been started")
        return f"http://{LOOPBACK}:{self._port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    def start(self) -> None:
        """Write the config, launch Prometheus and wait for ``/-/ready``.

        Raises :class:`StackError` (with Prometheus's error lines) if it exits
        during start-up, :class:`~conformance._exceptions.WaitTimeout` if it
        is not ready within ``startup_timeout``; either way nothing is left running.
        """
        if self._process is not None:
            raise RuntimeError("LocalPrometheus.start() called twice")
        self.binary = self.binary or find_prometheus_binary()
        self.version = binary_version(self.binary)
        self.workdir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.data_path, ignore_errors=True)
        self.config_path.write_text(self._render(), encoding="utf-8")
        self.config_path.chmod(0o600)  # may hold a bearer token
        self._http = httpx.Client(timeout=2.0, trust_env=False)
        try:
            for attempt in range(_PORT_ATTEMPTS):
                if self._launch(last_attempt=attempt == _PORT_ATTEMPTS - 1):
                    return
        except BaseException:
            self.stop()
            raise

    def _render(self) -> str:
        return render_config(
            self.targets,
            scrape_interval=self.scrape_interval,
            evaluation_interval=self.evaluation_interval,
            rule_files=[p.resolve() for p in self.rule_files],
        )

    def _launch(self, *, last_attempt: bool) -> bool:
        """One start on a fresh port; ``False`` if the port was taken meanwhile (retry)."""
        assert self.binary is not None
        self._port = free_port()
        argv = [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_path}",
            f"--web.listen-address={LOOPBACK}:{self._port}",
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=1h",
            "--log.level=warn",
        ]
        process = ManagedProcess(
            self.name,
            argv,
            stdout_path=self.workdir / "prometheus.stdout.log",
            stderr_path=self.stderr_path,
            cwd=self.workdir,
        )
        self._process = process
        launched = time.monotonic()
        process.start()
        try:
            self._wait_ready(process)
        except StackError as exc:
            if not last_attempt and "address already in use" in str(exc):
                process.stop()
                self._process = None
                return False
            raise
        self.startup_seconds = time.monotonic() - launched
        return True

    def _wait_ready(self, process: ManagedProcess) -> None:
        http = self._http
        assert http is not None
        ready_url = f"{self.url}/-/ready"

        def probe() -> tuple[bool | None, str]:
            code = process.poll()
            if code is not None:
                raise StackError(
                    f"prometheus exited with code {code} during start-up: {_error_lines(process)}",
                    hint=f"config: {self.config_path}; full log: {self.stderr_path}",
                )
            try:
                response = http.get(ready_url)
            except httpx.TransportError as exc:
                return None, f"{type(exc).__name__}: {exc}"
            if response.status_code == 200:
                return True, "ready"
            return None, f"HTTP {response.status_code}: {response.text.strip()[:200]}"

        wait_until(
            probe,
            awaited=f"Prometheus at {ready_url} to be ready",
            timeout=self.startup_timeout,
            hint=f"see {self.stderr_path}",
        )

    def reload(self) -> None:
        """Re-read the config and rule files (``POST /-/reload``); raises with Prometheus's reason.

        On failure Prometheus keeps running with the previous rules and config.
        """
        if self._http is None or not self.running:
            raise StackError("cannot reload: Prometheus is not running")
        log_offset = self.stderr_path.stat().st_size if self.stderr_path.exists() else 0
        try:
            response = self._http.post(f"{self.url}/-/reload", timeout=30.0)
        except httpx.HTTPError as exc:
            raise StackError(f"Prometheus reload request failed: {exc}") from exc
        if response.status_code != 200:
            # The response only says that something failed; the log says what.
            with self.stderr_path.open("rb") as log:
                log.seek(log_offset)
                new_log = log.read().decode("utf-8", errors="replace")
            raise StackError(
                f"Prometheus rejected the reload (HTTP {response.status_code}): "
                f"{_summarise_errors(new_log) or response.text.strip()}",
                hint=f"see {self.stderr_path}",
            )

    def stop(self) -> None:
        """Stop Prometheus (SIGTERM to its group, SIGKILL if it lingers); idempotent."""
        if self._process is not None:
            self._process.stop()
        if self._http is not None:
            self._http.close()
            self._http = None

    def describe(self) -> dict[str, Any]:
        """What the report's stack section shows about this component."""
        return {
            "name": self.name,
            "kind": "process",
            "binary": self.binary or "",
            "version": self.version,
            "url": self.url if self._port is not None else "",
            "scrape_interval": self.scrape_interval,
            "evaluation_interval": self.evaluation_interval,
            "config_file": str(self.config_path),
            "startup_seconds": self.startup_seconds,
        }

    def __enter__(self) -> LocalPrometheus:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _error_lines(process: ManagedProcess) -> str:
    """Prometheus's error log lines, readable, else the raw end of its stderr."""
    tail = process.stderr_tail(8000)
    return _summarise_errors(tail) or tail[-2000:] or "(no output)"


_LOGFMT_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def _summarise_errors(log: str) -> str:
    """``msg: err`` of each ``level=error`` logfmt line, unquoted, joined with ``; ``."""
    found: list[str] = []
    for line in log.splitlines():
        if "level=error" not in line:
            continue
        fields = {key: _unquote(value) for key, value in _LOGFMT_PAIR.findall(line)}
        text = ": ".join(part for part in (fields.get("msg", ""), fields.get("err", "")) if part)
        if text and text not in found:
            found.append(text)
    return "; ".join(found)[-2000:]


def _unquote(value: str) -> str:
    if not value.startswith('"'):
        return value
    try:
        unquoted = json.loads(value)
    except ValueError:
        return value.strip('"')
    return unquoted if isinstance(unquoted, str) else value
