"""A PR run against its physical floor, measured in one go on the same machine.

    python benchmarks/bench_run_floor.py [--profile P] [--runs 1] [--compare PROFILE ...] [-- extra run args]

The **floor** is what no conformance run of this profile can avoid, done
alone and timed here: start the stack (the same ``ConformanceSession.open``
a run uses: backends, the service until ready, the baseline traffic), one
Prometheus scrape of the service newer than that traffic, the first exported
span visible in the trace store, and stopping everything; plus the longest
wait the profile itself imposes, computed from the profile rather than slept:
each live-fired alert's ``for`` plus two evaluation intervals, and the alert
quiet watch (``alerts.baseline.duration`` plus a scrape and an evaluation).

The **full run** is ``conformance run`` as a user runs it (a subprocess, the
same interpreter), on the same profile, right after. The benchmark prints both,
their ratio, and the run's probe timeline (``stack.plan`` of its report).

``--compare`` adds full runs of other profiles (e.g. a foreign-corpus service
that exports no spans, or one without ``/metrics``) and prints each one's time
as a ratio against the reference run of the same benchmark run.

Nothing is asserted: speed is reported, never a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from conformance._exceptions import WaitTimeout
from conformance._profile import Profile, load_profile
from conformance._promql import parse_duration
from conformance.checks.alerts import parse_rule_files
from conformance.collect._prometheus_api import wait_for_target_up

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PROFILE = REPO / "fixtures/reference_service/conformance.yaml"


def imposed_wait(profile: Profile) -> tuple[float, str]:
    """The longest wait the profile itself imposes on a run, and what it is."""
    waits: list[tuple[float, str]] = [(0.0, "none")]
    alerts = profile.section("alerts")
    interval = profile.prometheus.evaluation_interval
    if alerts.live_fire:
        texts = {str(f): f.read_text(encoding="utf-8") for f in profile.prometheus.rule_files}
        rules = {r.name: r for r in parse_rule_files(texts).alerts}
        quiet = alerts.baseline.duration + profile.prometheus.scrape_interval + interval
        for recipe in alerts.live_fire:
            rule = rules.get(recipe.alert)
            hold = parse_duration(rule.for_).total_seconds() if rule is not None and rule.for_ else 0.0
            why = f"quiet watch {quiet:g}s + {recipe.alert} for {hold:g}s + 2 evaluations of {interval:g}s"
            waits.append((quiet + hold + 2 * interval, why))
    return max(waits)


def measure_floor(profile: Profile, workdir: Path) -> dict[str, float]:
    from conformance._session import ConformanceSession

    steps: dict[str, float] = {}
    t = time.perf_counter()
    session = ConformanceSession.open(profile, workdir)
    steps["stack start, service ready, baseline traffic"] = time.perf_counter() - t
    try:
        if profile.metrics.exposed:
            t = time.perf_counter()
            with contextlib.suppress(WaitTimeout):
                wait_for_target_up(session.prometheus, profile.prometheus.job, timeout=30)
            steps["one scrape after the traffic"] = time.perf_counter() - t
        if profile.telemetry.spans:
            t = time.perf_counter()
            session.spans_exported()
            steps["first span visible in the trace store"] = time.perf_counter() - t
    finally:
        t = time.perf_counter()
        session.close()
        steps["stop everything"] = time.perf_counter() - t
    return steps


def full_run(profile: Path, report_dir: Path, extra: list[str]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "conformance.cli", "run", "--profile", str(profile),
         "--report-dir", str(report_dir), *extra],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    report = json.loads((report_dir / "conformance-report.json").read_text(encoding="utf-8"))
    return seconds, report


def _counts(summary: dict[str, Any]) -> str:
    counts = summary.get("counts", {})
    return ", ".join(f"{counts.get(k, 0)} {k}" for k in ("passed", "failed", "error", "skipped"))


def _spread(values: list[float]) -> str:
    return f"{min(values):.1f}-{max(values):.1f} s"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", type=Path, default=DEFAULT_PROFILE)
    parser.add_argument("--runs", type=int, default=1, help="full runs (and floors) to take the median of")
    parser.add_argument("--compare", type=Path, nargs="*", default=[], help="other profiles, full runs only")
    parser.add_argument("extra", nargs="*", help="extra arguments for `conformance run` (after --)")
    args = parser.parse_args()
    profile = load_profile(args.profile)
    wait, what = imposed_wait(profile)
    floors, fulls = [], []
    with tempfile.TemporaryDirectory(prefix="obsconform-floor-") as tmp:
        report: dict[str, Any] = {}
        for i in range(args.runs):
            steps = measure_floor(profile, Path(tmp) / f"floor-{i}")
            floors.append(sum(steps.values()) + wait)
            seconds, report = full_run(args.profile, Path(tmp) / f"run-{i}", args.extra)
            fulls.append(seconds)
        print(f"profile: {args.profile}")
        print("floor (measured alone):")
        for step, seconds in steps.items():
            print(f"  {step:<48} {seconds:6.1f} s")
        print(f"  {'longest wait the profile imposes (computed)':<48} {wait:6.1f} s  ({what})")
        floor, run = statistics.median(floors), statistics.median(fulls)
        if args.runs > 1:
            print(f"  (medians of {args.runs}: floors {_spread(floors)}, full runs {_spread(fulls)})")
        print(f"  {'floor':<48} {floor:6.1f} s")
        summary = report.get("summary", {})
        print(f"full PR run (conformance run, wall clock):          {run:6.1f} s  ({_counts(summary)})")
        print(f"ratio full / floor:                                 {run / floor:6.2f}")
        plan = report.get("stack", {}).get("plan", {}).get("probes", [])
        if plan:
            print("probe timeline of the (last) full run (seconds from the plan's start):")
            for row in plan:
                print(
                    f"  {row['probe']:<22} {row.get('started_seconds', 0):6.1f} +{row.get('seconds', 0):5.1f}"
                )
        for other in args.compare:
            seconds, rep = full_run(other, Path(tmp) / f"compare-{other.parent.name}", args.extra)
            ratio = seconds / run
            counts = _counts(rep.get("summary", {}))
            print(f"{other.parent.name:<40} {seconds:6.1f} s  = {ratio:4.2f} x the reference run  ({counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
