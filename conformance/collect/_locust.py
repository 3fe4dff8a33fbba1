"""Run Locust headless as child processes and read its statistics back.

Locust imports gevent, which monkey-patches the process that imports it, so
the harness never imports Locust: it starts ``python -m locust`` (one local
process, or a master and N workers) through
:class:`~conformance._process.ManagedProcess` and reads the files Locust
writes: the statistics CSV (per-scenario and Aggregated rows with Locust's own
percentiles), the failures CSV and the HTML report (and, on request, the JSON stats).

Locust rewrites ``<prefix>_stats.csv`` once a second while it runs, not after
the users stopped, so that file can miss the last second of requests (and the
service's counter would seem to count too many). ``loadtests/locustfile.py``
writes ``<prefix>_final_stats.csv`` with Locust's own ``StatsCSV`` on its
``quit`` event; :attr:`LocustRun.final` says which one was read.

Every run is bounded: Locust's ``--run-time`` and ``--stop-timeout``, and a
deadline after which the harness stops the processes and raises.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from conformance._exceptions import HarnessError, StackError, WaitTimeout
from conformance._mask import excerpt
from conformance._ports import LOOPBACK, free_port
from conformance._process import ManagedProcess
from conformance._wait import wait_until
from conformance.telemetry import LoadStatsEntry

__all__ = [
    "LOCUST_COMMAND_ENV",
    "LocustFailure",
    "LocustRun",
    "LocustRunConfig",
    "locust_command",
    "read_failures",
    "read_stats",
    "run_locust",
]

#: A command (shell-style) that runs Locust instead of ``<this python> -m locust``.
LOCUST_COMMAND_ENV = "OBSCONFORM_LOCUST_COMMAND"

_INSTALL_HINT = "install the load extra: pip install 'obsconform[load]'"
_STATS_PREFIX = "locust"


@dataclass(frozen=True, slots=True)
class LocustRunConfig:
    """One headless Locust run against ``host`` (always a 127.0.0.1 URL)."""

    locustfile: Path
    host: str
    users: int
    spawn_rate: float
    run_time: int
    stop_timeout: int = 5
    workers: int = 0
    #: Extra environment for every Locust process (e.g. the plan path).
    env: Mapping[str, str] = field(default_factory=dict)
    start_timeout: float = 30.0
    finish_timeout: float = 60.0
    #: Also write Locust's ``--json-file`` stats. Off for the gate: Locust serialises them with
    #: ``get_stripped_report()``, which empties its statistics before the locustfile's ``quit``
    #: listener can write the final CSV.
    json_stats: bool = False

    @property
    def processes(self) -> int:
        """Processes generating load: the workers, or the one local process."""
        return max(1, self.workers)


@dataclass(frozen=True, slots=True)
class LocustFailure:
    """One row of Locust's failures CSV: a distinct error and how often it happened."""

    method: str
    name: str
    error: str
    occurrences: int


@dataclass(frozen=True, slots=True)
class LocustRun:
    stats: tuple[LoadStatsEntry, ...]
    failures: tuple[LocustFailure, ...]
    output_dir: Path
    started_at: float
    finished_at: float
    processes: int
    command: tuple[str, ...]
    #: The statistics are Locust's end-of-run ones (``_final_stats.csv``), not its last periodic write.
    final: bool = True

    def entry(self, name: str) -> LoadStatsEntry | None:
        return next((e for e in self.stats if e.name == name and not e.is_aggregate), None)

    @property
    def aggregate(self) -> LoadStatsEntry | None:
        return next((e for e in self.stats if e.is_aggregate), None)

    @property
    def csv_prefix(self) -> Path:
        return self.output_dir / _STATS_PREFIX

    @property
    def html_report(self) -> Path:
        return self.output_dir / "report.html"

    def artifacts(self) -> list[str]:
        return sorted(p.name for p in self.output_dir.iterdir() if p.is_file())


def locust_command() -> list[str]:
    """How to start Locust: ``$OBSCONFORM_LOCUST_COMMAND``, else this interpreter's ``-m locust``.

    Raises :class:`StackError` when Locust is not installed (``find_spec``
    locates the package without importing it, so gevent stays out of this process).
    """
    override = os.environ.get(LOCUST_COMMAND_ENV, "").strip()
    if override:
        return shlex.split(override)
    if importlib.util.find_spec("locust") is None:
        raise StackError(f"Locust is not installed in {sys.executable}", hint=_INSTALL_HINT)
    return [sys.executable, "-m", "locust"]


def run_locust(config: LocustRunConfig, output_dir: Path) -> LocustRun:
    """Run Locust headless to the end and read its statistics; stop everything in any case.

    Raises :class:`HarnessError` when Locust does not start, exits with an
    error, runs past its deadline, or leaves no statistics behind.
    """
    if not config.host.startswith(f"http://{LOOPBACK}:"):
        raise HarnessError(f"refusing to load-test {config.host!r}: the load gate only targets {LOOPBACK}")
    output_dir.mkdir(parents=True, exist_ok=True)
    base = [*locust_command(), "-f", str(config.locustfile)]
    env = {**os.environ, **config.env}
    master_argv = [
        *base,
        "--headless",
        "--only-summary",
        "--host",
        config.host,
        "--users",
        str(config.users),
        "--spawn-rate",
        f"{config.spawn_rate:g}",
        "--run-time",
        f"{config.run_time}s",
        "--stop-timeout",
        str(config.stop_timeout),
        "--exit-code-on-error",
        "0",
        "--csv",
        str(output_dir / _STATS_PREFIX),
        "--html",
        str(output_dir / "report.html"),
    ]
    if config.json_stats:
        master_argv += ["--json-file", str(output_dir / _STATS_PREFIX)]
    port = free_port() if config.workers else 0
    if config.workers:
        master_argv += [
            "--master",
            "--master-bind-host",
            LOOPBACK,
            "--master-bind-port",
            str(port),
            "--expect-workers",
            str(config.workers),
            "--expect-workers-max-wait",
            str(max(1, round(config.start_timeout))),
        ]
    master = ManagedProcess(
        "locust-master" if config.workers else "locust",
        master_argv,
        stdout_path=output_dir / "locust.stdout.log",
        stderr_path=output_dir / "locust.stderr.log",
        env=env,
    )
    workers = [
        ManagedProcess(
            f"locust-worker-{i}",
            [*base, "--worker", "--master-host", LOOPBACK, "--master-port", str(port)],
            stdout_path=output_dir / f"worker-{i}.stdout.log",
            stderr_path=output_dir / f"worker-{i}.stderr.log",
            env=env,
        )
        for i in range(1, config.workers + 1)
    ]
    started = time.time()
    try:
        _start(master)
        for worker in workers:
            _start(worker)
        code = _wait_for_exit(master, workers, config)
    finally:
        for process in (master, *workers):
            process.stop(timeout=config.stop_timeout + 5)
    finished = time.time()
    if code != 0:
        raise HarnessError(
            f"Locust exited with code {code}: {excerpt(master.stderr_tail(800), 400) or '(no output)'}",
            hint=f"its output is in {output_dir}",
        )
    final_file = output_dir / f"{_STATS_PREFIX}_final_stats.csv"
    final = final_file.is_file()
    stats_file = final_file if final else output_dir / f"{_STATS_PREFIX}_stats.csv"
    failures_file = output_dir / f"{_STATS_PREFIX}_{'final_failures' if final else 'failures'}.csv"
    if not stats_file.is_file():
        raise HarnessError(
            f"Locust wrote no statistics ({stats_file.name} missing): "
            f"{excerpt(master.stderr_tail(800), 400) or '(no output)'}",
            hint=f"its output is in {output_dir}",
        )
    return LocustRun(
        stats=tuple(read_stats(stats_file)),
        failures=tuple(read_failures(failures_file)),
        output_dir=output_dir,
        started_at=started,
        finished_at=finished,
        processes=config.processes,
        command=tuple(master_argv),
        final=final,
    )


def _start(process: ManagedProcess) -> None:
    try:
        process.start()
    except OSError as exc:
        raise StackError(
            f"cannot start Locust ({process.argv[0]}): {exc.strerror or exc}", hint=_INSTALL_HINT
        ) from None


def _wait_for_exit(master: ManagedProcess, workers: Sequence[ManagedProcess], config: LocustRunConfig) -> int:
    deadline = config.start_timeout + config.run_time + config.stop_timeout + config.finish_timeout

    def probe() -> tuple[int | None, str]:
        code = master.poll()
        if code is not None:
            return code, f"exited {code}"
        dead = [w.name for w in workers if w.poll() is not None]
        return None, f"running; {len(dead)} worker(s) exited: {', '.join(dead)}" if dead else "running"

    try:
        return wait_until(
            probe,
            awaited=f"Locust to finish a {config.run_time}s run",
            timeout=deadline,
            interval=0.2,
            max_interval=1.0,
        )
    except WaitTimeout as exc:
        raise HarnessError(
            f"Locust did not finish within {deadline:g}s ({exc.last_seen}); it was stopped",
            hint="raise load.finish_timeout, or look at the Locust logs in the report's locust/ directory",
        ) from None


def _number(text: str) -> float | None:
    text = text.strip()
    if not text or text == "N/A":
        return None
    return float(text)


def read_stats(path: Path) -> list[LoadStatsEntry]:
    """Rows of Locust's ``_stats.csv``: what Locust itself computed, nothing recomputed."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    entries = []
    for row in rows:
        try:
            percentiles = {
                float(column[:-1]) / 100: _number(value)
                for column, value in row.items()
                if column.endswith("%") and column[:-1].replace(".", "", 1).isdigit()
            }
            entries.append(
                LoadStatsEntry(
                    name=row["Name"],
                    method=row["Type"] or "",
                    requests=int(row["Request Count"]),
                    failures=int(row["Failure Count"]),
                    rps=float(row["Requests/s"]),
                    percentiles_ms=percentiles,
                    average_ms=_number(row["Average Response Time"]) or 0.0,
                    max_ms=_number(row["Max Response Time"]) or 0.0,
                )
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise HarnessError(f"{path.name}: unexpected Locust statistics row {row!r}: {exc}") from None
    return entries


def read_failures(path: Path) -> list[LocustFailure]:
    """Rows of Locust's ``_failures.csv`` (absent or empty when nothing failed)."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return [
            LocustFailure(
                method=row.get("Method", ""),
                name=row.get("Name", ""),
                error=row.get("Error", ""),
                occurrences=int(row.get("Occurrences") or 0),
            )
            for row in csv.DictReader(f)
        ]
