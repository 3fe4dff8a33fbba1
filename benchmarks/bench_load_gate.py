"""What the load gate costs in load-generating power, and how Locust scales with workers.

    python benchmarks/bench_load_gate.py [--profile P] [--users 32] [--run-time 10] [--repeats 2]

One stack (the reference service with the profile's ``load.service_env``, real
Prometheus, the OTLP receiver) serves every run, so the runs differ only in the
load generator. All runs are unpaced (users send as fast as the service
answers), bounded by ``--run-time`` and 127.0.0.1.

1. **Gate overhead**: plain ``locust --headless`` (``benchmarks/plain_locustfile.py``:
   one ``FastHttpUser`` task, ``GET /health``) against the gate's
   ``loadtests/locustfile.py`` with a one-scenario plan on the same endpoint,
   alternated ``--repeats`` times. Reported: median RPS of each and their ratio.
2. **Workers**: the gate's locustfile on the profile's whole scenario mix with
   one local Locust process, then a master and 1, 2 and 4 worker processes.

Besides RPS, each run reports the CPU time its Locust processes used per
request (``getrusage(RUSAGE_CHILDREN)`` around the run): on a shared machine
the neighbours move RPS a lot and CPU per request much less.

Every configuration runs ``--repeats`` times, round-robin with a rotating
start, so drift on a shared machine hits them alike; the table shows medians
and the spread.

Prints a table; the numbers in docs/readme/load.md come from this script. The
harness process never imports Locust: every run is a child process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PROFILE = REPO / "fixtures/reference_service/conformance.yaml"
PLAIN_LOCUSTFILE = Path(__file__).with_name("plain_locustfile.py")


def main() -> int:
    from conformance._process import RUN_ID, install_termination_handlers
    from conformance._profile import load_profile
    from conformance._sections.load import PLAN_ENV, LoadSection
    from conformance._session import ConformanceSession
    from conformance.collect._locust import LocustRun, LocustRunConfig, run_locust
    from conformance.commands.load import default_locustfile

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", type=Path, default=DEFAULT_PROFILE)
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--run-time", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4])
    args = parser.parse_args()

    profile = load_profile(args.profile)
    section: LoadSection = profile.section("load")
    profile = replace(
        profile, service=replace(profile.service, env={**profile.service.env, **section.service_env})
    )
    install_termination_handlers()

    measured: dict[str, list[float]] = {}
    cpu_cost: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="obsconform-bench-load-") as tmp:
        work = Path(tmp)
        session = ConformanceSession.open(profile, work / "stack")
        try:
            host = session.stack.service_url
            mode = section.mode("pr", run_time=args.run_time)
            health = next(s for s in section.scenarios if s.endpoint.path == "/health")

            def plan_file(name: str, scenarios: Any, processes: int) -> Path:
                plan = replace(section, scenarios=scenarios).plan(
                    profile, mode, client_prefix=f"bench-{RUN_ID}", processes=processes
                )
                plan["throughput_per_user"] = None  # unpaced: as fast as the service answers
                plan["max_requests_per_process"] = 10**7
                path = work / f"{name}.json"
                path.write_text(json.dumps(plan))
                return path

            def run(name: str, locustfile: Path, plan: Path | None, workers: int) -> tuple[LocustRun, float]:
                """One Locust run; also the CPU its processes used per request (µs), which the
                neighbours on a shared machine disturb far less than the RPS."""
                config = LocustRunConfig(
                    locustfile=locustfile,
                    host=host,
                    users=args.users,
                    spawn_rate=args.users,
                    run_time=args.run_time,
                    stop_timeout=2,
                    workers=workers,
                    env={PLAN_ENV: str(plan)} if plan else {"OBSCONFORM_BENCH_PATH": health.endpoint.path},
                )
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                result = run_locust(config, work / name)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
                total = result.aggregate
                rps = total.rps if total else 0.0
                per_request = cpu / total.requests * 1e6 if total and total.requests else 0.0
                print(
                    f"  run {name:<5} {rps:8.1f} req/s  {per_request:6.0f} µs CPU/request  "
                    f"{locustfile.name}, {workers} worker(s)",
                    flush=True,
                )
                return result, per_request

            print(
                f"stack up at {host}; {args.users} users, {args.run_time}s per run, {os.cpu_count()} CPU(s)"
            )
            one = plan_file("health-only", (health,), 1)
            configs: list[tuple[str, Path, Path | None, int]] = [
                ("plain locust --headless", PLAIN_LOCUSTFILE, None, 0),
                ("gate locustfile", default_locustfile(), one, 0),
            ]
            for workers in [0, *args.workers]:
                label = "mix, 1 local process" if workers == 0 else f"mix, master + {workers} worker(s)"
                mix = plan_file(f"mix-{workers}", section.scenarios, max(1, workers))
                configs.append((label, default_locustfile(), mix, workers))
            # Round-robin, each repeat starting one later: drift on a shared machine hits every config alike.
            for r in range(args.repeats):
                for k in range(len(configs)):
                    label, locustfile, plan, workers = configs[(k + r) % len(configs)]
                    result, per_request = run(f"{r}-{(k + r) % len(configs)}", locustfile, plan, workers)
                    measured.setdefault(label, []).append(result.aggregate.rps if result.aggregate else 0.0)
                    cpu_cost.setdefault(label, []).append(per_request)
        finally:
            session.close()

    def row(label: str) -> str:
        runs, cpu = measured[label], cpu_cost[label]
        spread = f"{min(runs):.0f}-{max(runs):.0f}"
        return f"  {label:<32} {statistics.median(runs):8.1f}   {spread:>11}   {statistics.median(cpu):10.0f}"

    def ratio(values: dict[str, list[float]]) -> float:
        plain = statistics.median(values["plain locust --headless"])
        return statistics.median(values["gate locustfile"]) / plain if plain else 0.0

    print(f"\n  {'load generator (unpaced)':<32} {'req/s':>8}   {'min-max':>11}   {'µs CPU/req':>10}")
    print(f"  GET /health only, {args.repeats} run(s) each (medians):")
    print(row("plain locust --headless"))
    print(row("gate locustfile"))
    print(f"  {'ratio gate / plain':<32} {ratio(measured):8.2f}   {'':>11}   {ratio(cpu_cost):10.2f}")
    print("  the profile's whole mix:")
    for label in measured:
        if label.startswith("mix"):
            print(row(label))
    return 0


if __name__ == "__main__":
    sys.exit(main())
