"""``conformance load``: the Locust load gate (PERF-*).

::

    conformance load --profile P [--mode pr|nightly] [--workers N] [--run-time S] --report-dir D

  load_profile(P); the ``load`` section must define scenarios      ProfileError/UsageError → exit 2
  the service gets ``load.service_env`` on top of ``service.env``
  ConformanceSession.open (the same stack as ``conformance run``)   HarnessError → report (all error), exit 3
  wait for a Prometheus scrape newer than the baseline traffic      (the window opens)
  Locust headless: one process, or a master + N workers            → D/locust/ (CSV, HTML, JSON, logs)
  wait for a scrape newer than Locust's last response              (the window closes)
  PERF-001..004 from Locust's CSV; PERF-005/006 from Prometheus; PERF-007 from the service's output
  session.close(); write_reports(kind="load"); print the target table
  exit 0 / 1 (a MUST failed) / 3 (something could not be checked) / 130 (interrupted)

Locust never runs in this process (gevent would monkey-patch it): see
:mod:`conformance.collect._locust`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conformance._exceptions import HarnessError, UsageError
from conformance._mask import excerpt
from conformance._model import Finding, RequirementResult, Status
from conformance._process import RUN_ID, install_termination_handlers, stop_all
from conformance._profile import Profile, load_profile
from conformance._requirements import get_requirement
from conformance._sections.load import KEY, MODES, PLAN_ENV, LoadMode, LoadSection
from conformance.checks.perf import (
    TargetResult,
    check_aggregate_targets,
    check_export_errors,
    check_failure_targets,
    check_latency_targets,
    check_request_counts,
    check_server_p95,
    check_throughput_targets,
    evaluate_targets,
)
from conformance.collect._load_telemetry import served_requests, server_p95_seconds, wait_for_scrape_after
from conformance.collect._locust import LocustRun, LocustRunConfig, locust_command, run_locust
from conformance.collect._logs import read_log_lines
from conformance.report import EXIT_HARNESS_ERROR, REPORT_NAME, write_reports

if TYPE_CHECKING:
    from conformance._session import ConformanceSession

__all__ = ["EXIT_INTERRUPTED", "TARGETS_NAME", "default_locustfile", "register", "render_target_table"]

EXIT_INTERRUPTED = 130
#: The target table, also written next to the reports.
TARGETS_NAME = "load-targets.md"
#: Evidence items kept per requirement.
MAX_EVIDENCE = 50


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "load", help="the load gate: start the stack, run Locust headless, check the profile's load targets"
    )
    parser.add_argument("--profile", required=True, help="the service's conformance profile (YAML)")
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="pr",
        help="pr: short, few users, catches gross regressions; nightly: the profile's long run "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--workers", type=int, help="Locust worker processes (0: one local process); default: load.workers"
    )
    parser.add_argument("--run-time", type=int, metavar="SECONDS", help="override the mode's run_time")
    parser.add_argument(
        "--report-dir", default="conformance-load-report", help="where reports go (default: %(default)s)"
    )
    parser.add_argument("--service-command", help="override service.command (a shell-style string)")
    parser.add_argument("--service-port", type=int, help="override service.port")
    parser.set_defaults(func=_load)


def default_locustfile() -> Path:
    """``loadtests/locustfile.py``: shipped as ``conformance.loadtests`` when installed,
    else next to the package in a source checkout."""
    try:
        from importlib import resources

        shipped = Path(str(resources.files("conformance.loadtests").joinpath("locustfile.py")))
        if shipped.is_file():
            return shipped
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parents[2] / "loadtests" / "locustfile.py"


def _load(args: argparse.Namespace) -> int:
    started = time.time()
    profile = load_profile(args.profile).with_overrides(
        service_command=args.service_command, service_port=args.service_port
    )
    section: LoadSection = profile.section(KEY)
    if not section.configured:
        raise UsageError(f"{args.profile}: {KEY}.scenarios: the profile defines no load scenarios")
    if args.workers is not None and not 0 <= args.workers <= 64:
        raise UsageError(f"--workers: must be 0-64, got {args.workers}")
    if args.run_time is not None and not 1 <= args.run_time <= 21600:
        raise UsageError(f"--run-time: must be 1-21600 seconds, got {args.run_time}")
    mode = section.mode(args.mode, run_time=args.run_time)
    workers = section.workers if args.workers is None else args.workers
    locustfile = default_locustfile()
    if not locustfile.is_file():
        raise UsageError(f"the locustfile is missing: {locustfile}")
    service = replace(profile.service, env={**profile.service.env, **section.service_env})
    profile = replace(profile, service=service)
    report_dir = Path(args.report_dir).resolve()
    report_dir.mkdir(parents=True, exist_ok=True)

    gate = _Gate(profile, section, mode, workers, report_dir, locustfile)
    try:
        locust_command()
    except HarnessError as exc:
        return gate.report_harness_error(started, str(exc))

    install_termination_handlers()
    print(
        f"conformance: load {RUN_ID}: starting {profile.service.name} (local mode); {mode.name} mode, "
        f"{mode.users} users x {mode.throughput_per_user:g}/s for {mode.run_time:g}s, "
        f"{workers or 'no'} worker(s)",
        file=sys.stderr,
        flush=True,
    )
    from conformance._session import ConformanceSession

    try:
        # Local processes only: the load generator, the service and the backends share this machine's
        # cores and 127.0.0.1, which is what the profile's targets are scaled to.
        session = ConformanceSession.open(profile, report_dir / "work", mode="local")
    except HarnessError as exc:
        return gate.report_harness_error(started, str(exc))
    except KeyboardInterrupt:
        stop_all()
        print("conformance: interrupted; everything started was stopped", file=sys.stderr)
        return EXIT_INTERRUPTED

    interrupted = False
    try:
        gate.run(session)
    except KeyboardInterrupt:
        interrupted = True
        gate.error = "interrupted before the load run ended"
    except HarnessError as exc:
        gate.error = str(exc)
        print(f"conformance: error: {exc}", file=sys.stderr)
    finally:
        try:
            session.close()
        except HarnessError as exc:
            print(f"conformance: warning: {exc}", file=sys.stderr)
    report = gate.write(started, session.stack_description)
    gate.print_summary(report)
    if interrupted:
        print(
            "conformance: interrupted; partial report written, everything started was stopped",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    code: int = report["summary"]["exit_code"]
    return code


@dataclass
class _Gate:
    """One load run's state: what ran, what was measured, the verdicts."""

    profile: Profile
    section: LoadSection
    mode: LoadMode
    workers: int
    report_dir: Path
    locustfile: Path
    results: dict[str, RequirementResult] = field(default_factory=dict)
    targets: list[TargetResult] = field(default_factory=list)
    locust: LocustRun | None = None
    error: str = ""

    @property
    def locust_dir(self) -> Path:
        return self.report_dir / "locust"

    # -- the run -----------------------------------------------------------
    def run(self, session: ConformanceSession) -> None:
        job = session.profile.prometheus.job
        telemetry = self.section.telemetry
        prometheus = session.prometheus
        since = wait_for_scrape_after(prometheus, job, time.time(), timeout=telemetry.scrape_timeout)
        self.locust_dir.mkdir(parents=True, exist_ok=True)
        plan_path = self.locust_dir / "plan.json"
        processes = max(1, self.workers)
        plan = self.section.plan(
            self.profile, self.mode, client_prefix=f"obsconform-load-{RUN_ID}", processes=processes
        )
        plan_path.write_text(json.dumps(plan, indent=2) + "\n", encoding="utf-8")
        config = LocustRunConfig(
            locustfile=self.locustfile,
            host=session.stack.service_url,
            users=self.mode.users,
            spawn_rate=self.mode.spawn_rate,
            run_time=round(self.mode.run_time),
            stop_timeout=round(self.section.stop_timeout),
            workers=self.workers,
            env={PLAN_ENV: str(plan_path)},
            start_timeout=self.section.start_timeout,
            finish_timeout=self.section.finish_timeout,
        )
        self.locust = run = run_locust(config, self.locust_dir)
        if not run.final:
            raise HarnessError(
                "Locust left only its periodic statistics (locust_final_stats.csv is missing), which can "
                "miss the last second of requests",
                hint=f"the locustfile {self.locustfile} writes the final ones on Locust's quit event",
            )
        self._decide_targets(run)
        # A service that died under load has its failures in PERF-001..004; its telemetry is moot.
        session.require_running()

        # The window closes at the first scrape after Locust's last response; PERF-005/006 need it.
        window_error: HarnessError | None = None
        until = 0.0
        try:
            until = wait_for_scrape_after(prometheus, job, run.finished_at, timeout=telemetry.scrape_timeout)
        except HarnessError as exc:
            window_error = exc

        def closed_window() -> float:
            if window_error is not None:
                raise window_error
            return until

        routes = [s.route for s in self.section.scenarios]
        labels = {"method_label": telemetry.method_label, "route_label": telemetry.route_label}

        def counts() -> tuple[list[Finding], dict[str, Any]]:
            served = served_requests(
                prometheus,
                routes,
                metric=telemetry.requests_metric,
                since=since,
                until=closed_window(),
                **labels,
            )
            findings = check_request_counts(
                run.stats,
                self.section.scenarios,
                served,
                telemetry.count_tolerance,
                metric=telemetry.requests_metric,
            )
            sent = run.aggregate.requests if run.aggregate else 0
            counted = sum(v for v in served.values() if v is not None)
            return findings, {"sent": sent, "counted": counted, "window": [since, closed_window()]}

        def quantiles() -> tuple[list[Finding], dict[str, Any]]:
            p95 = server_p95_seconds(
                prometheus,
                routes,
                metric=telemetry.duration_metric,
                since=since,
                until=closed_window(),
                **labels,
            )
            findings = check_server_p95(
                run.stats,
                self.section.scenarios,
                p95,
                telemetry.p95_tolerance,
                min_samples=telemetry.min_samples,
                metric=telemetry.duration_metric,
            )
            compared = {}
            for scenario in self.section.scenarios:
                entry, server = run.entry(scenario.name), p95.get(scenario.route)
                compared[scenario.name] = {
                    "locust_p95_ms": entry.percentiles_ms.get(0.95) if entry else None,
                    "server_p95_ms": None if server is None else round(server * 1000, 3),
                }
            tolerance = telemetry.p95_tolerance
            return findings, {
                "p95": compared,
                "tolerance": f"{tolerance.absolute:g} ms + {tolerance.ratio:g} x Locust's p95",
            }

        def export_errors() -> tuple[list[Finding], dict[str, Any]]:
            lines = []
            for stream in ("stdout", "stderr"):
                lines += read_log_lines(
                    session.stack.log_path(stream),
                    stream=stream,
                    max_line_bytes=self.profile.logs.max_line_bytes,
                    final=False,
                )
            findings = check_export_errors(lines, telemetry.export_error_patterns)
            notes: dict[str, Any] = {"lines_scanned": len(lines)}
            # Local mode keeps its embedded receiver behind the collector; it is then not the trace store.
            receiver = getattr(session.stack, "receiver", session.stack.trace_store)
            if hasattr(receiver, "stats"):
                notes["otlp_receiver"] = receiver.stats()
            return findings, notes

        self._decide("PERF-005", counts)
        self._decide("PERF-006", quantiles)
        self._decide("PERF-007", export_errors)

    def _decide_targets(self, run: LocustRun) -> None:
        """PERF-001..004 from Locust's statistics; one table row per target."""
        scenarios, mode, aggregate = self.section.scenarios, self.mode, self.section.aggregate
        self.targets = evaluate_targets(
            run.stats, scenarios, aggregate, rps_scale=mode.rps_scale, latency_scale=mode.latency_scale
        )
        checks: dict[str, Callable[[], list[Finding]]] = {
            "PERF-001": lambda: check_latency_targets(run.stats, scenarios, latency_scale=mode.latency_scale),
            "PERF-002": lambda: check_throughput_targets(run.stats, scenarios, rps_scale=mode.rps_scale),
            "PERF-003": lambda: check_failure_targets(run.stats, scenarios),
            "PERF-004": lambda: check_aggregate_targets(
                run.stats, aggregate, rps_scale=mode.rps_scale, latency_scale=mode.latency_scale
            ),
        }
        for requirement_id, check in checks.items():

            def decide(
                requirement_id: str = requirement_id, check: Callable[[], list[Finding]] = check
            ) -> tuple[list[Finding], dict[str, Any]]:
                notes: dict[str, Any] = {
                    "targets": [t.to_evidence() for t in self.targets if t.requirement_id == requirement_id]
                }
                if requirement_id == "PERF-001":
                    notes["latency"] = self._latency_rows(run)
                if requirement_id == "PERF-003" and run.failures:
                    notes["locust_failures"] = [
                        {"scenario": f.name, "error": excerpt(f.error, 200), "occurrences": f.occurrences}
                        for f in run.failures[:20]
                    ]
                return check(), notes

            self._decide(requirement_id, decide)

    def _latency_rows(self, run: LocustRun) -> list[dict[str, Any]]:
        """Per scenario, Locust's p50/p95/p99 and RPS next to the p95 target (the report's latency chart)."""
        rows = []
        for scenario in self.section.scenarios:
            entry = run.entry(scenario.name)
            if entry is None:
                continue
            method, route = scenario.route
            target = scenario.targets.latency_ms.get("p95")
            rows.append(
                {
                    "endpoint": f"{method} {route}",
                    "scenario": scenario.name,
                    "p50_ms": entry.percentiles_ms.get(0.5),
                    "p95_ms": entry.percentiles_ms.get(0.95),
                    "p99_ms": entry.percentiles_ms.get(0.99),
                    "rps": round(entry.rps, 3),
                    "requests": entry.requests,
                    "p95_target_ms": None if target is None else target * self.mode.latency_scale,
                }
            )
        return rows

    def _run_notes(self) -> dict[str, Any]:
        run = self.locust
        notes: dict[str, Any] = {
            "mode": self.mode.name,
            "users": self.mode.users,
            "throughput_per_user": self.mode.throughput_per_user,
            "run_time": self.mode.run_time,
            "workers": self.workers,
        }
        if run is not None and run.aggregate is not None:
            notes |= {
                "requests": run.aggregate.requests,
                "failures": run.aggregate.failures,
                "rps": run.aggregate.rps,
            }
        return notes

    def _decide(
        self, requirement_id: str, decide: Callable[[], tuple[list[Finding], dict[str, Any]]]
    ) -> None:
        """Record one requirement: passed, failed with findings, or error if it could not be checked."""
        if requirement_id in self.profile.not_applicable:
            return  # the report marks it skipped with the profile's reason
        req = get_requirement(requirement_id)
        begun = time.monotonic()
        try:
            findings, notes = decide()
        except HarnessError as exc:
            result = RequirementResult(req, Status.ERROR, str(exc), [self._run_notes()])
        else:
            evidence: list[dict[str, Any]] = [{**self._run_notes(), **notes}]
            evidence += [f.to_dict() for f in findings[:MAX_EVIDENCE]]
            if len(findings) > MAX_EVIDENCE:
                evidence.append({"omitted_findings": len(findings) - MAX_EVIDENCE})
            if findings:
                message = f"{len(findings)} finding(s); first: {findings[0].message}"
                result = RequirementResult(req, Status.FAILED, message, evidence)
            else:
                result = RequirementResult(req, Status.PASSED, "", evidence)
        result.duration_seconds = time.monotonic() - begun
        self.results[requirement_id] = result

    # -- reporting ---------------------------------------------------------
    def _stack(self, stack: dict[str, Any]) -> dict[str, Any]:
        components = list(stack.get("components", []))
        if self.locust is not None:
            try:
                version = metadata.version("locust")
            except metadata.PackageNotFoundError:
                version = "unknown"
            components.append(
                {
                    "name": "locust",
                    "kind": "process",
                    "version": version,
                    "processes": self.locust.processes,
                    "command": list(self.locust.command),
                    "artifacts": [f"locust/{name}" for name in self.locust.artifacts()],
                }
            )
        return {**stack, "components": components}

    def write(self, started: float, stack: dict[str, Any]) -> dict[str, Any]:
        if self.targets:
            (self.report_dir / TARGETS_NAME).write_text(
                render_target_table(self.targets, markdown=True), encoding="utf-8"
            )
        return write_reports(
            self.report_dir,
            profile=self.profile,
            results=self.results,
            stack=self._stack(stack),
            started_at=started,
            finished_at=time.time(),
            stack_error=self.error,
            kind="load",
        )

    def report_harness_error(self, started: float, message: str) -> int:
        self.error = message
        self.write(started, {"mode": "local", "components": []})
        print(f"conformance: error: {message}", file=sys.stderr)
        return EXIT_HARNESS_ERROR

    def print_summary(self, report: dict[str, Any]) -> None:
        print()
        if self.targets:
            run = self.locust
            head = f"Load targets, {self.mode.name} mode ({self.mode.users} users, {self.mode.run_time:g}s"
            if run is not None and run.aggregate is not None:
                head += (
                    f", {run.processes} Locust process(es)): {run.aggregate.requests} requests, "
                    f"{run.aggregate.rps:.1f} req/s"
                )
            else:
                head += ")"
            print(head)
            print(render_target_table(self.targets))
        for r in report["results"]:
            print(f"  {r['status'].upper():<8} {r['id']:<9} {r['level']:<6} {r['title']}")
            if r["status"] in ("failed", "error") and r["message"]:
                print(f"  {'':<8} {r['message'][:200]}")
        s = report["summary"]
        c = s["counts"]
        print(
            f"\nconformance: load {s['verdict'].upper()} — {c['passed']} passed, {c['failed']} failed, "
            f"{c['error']} error, {c['skipped']} skipped; report: {self.report_dir / REPORT_NAME}"
        )


def render_target_table(targets: Sequence[TargetResult], *, markdown: bool = False) -> str:
    """Which target passed or failed, and by how much: one row per target."""
    header = ("requirement", "scope", "metric", "target", "observed", "result")
    rows = []
    for t in targets:
        bound = "<=" if t.kind == "max" else ">="
        target = f"{bound} {_cell(t.target, t.unit)}"
        observed = "no requests" if t.observed is None else _cell(t.observed, t.unit)
        if t.passed:
            result = "ok"
        elif t.observed is None:
            result = "FAILED"
        else:
            miss = t.miss or 0.0
            side = "over" if t.kind == "max" else "short"
            relative = f", {miss / t.target:+.0%}" if t.target else ""
            result = f"FAILED: {side} by {_cell(miss, t.unit)}{relative}"
        rows.append((t.requirement_id, t.scope, t.metric, target, observed, result))
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines) + "\n"
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  " + "  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in [header, *rows]
    )


def _cell(value: float, unit: str) -> str:
    if unit == "ratio":
        return f"{value:.2%}"
    if unit == "req/s":
        return f"{value:.2f} req/s"
    return f"{value:g} {unit}".rstrip()
