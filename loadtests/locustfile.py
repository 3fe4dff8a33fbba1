"""Locust traffic for the obsconform load gate, driven by a conformance profile.

Through the gate (the harness starts the service and writes the plan)::

    conformance load --profile fixtures/reference_service/conformance.yaml --mode pr

Standalone, against a service you started yourself (with the profile's
``load.service_env`` applied by you)::

    OBSCONFORM_PROFILE=fixtures/reference_service/conformance.yaml \\
        locust -f loadtests/locustfile.py --host http://127.0.0.1:8000 --headless -u 5 -t 20s

Standalone, ``OBSCONFORM_LOAD_MODE`` (``pr`` unless set) picks the mode whose
pacing and request cap apply; users and run time are Locust's own flags, and
Locust's CSV/HTML output is yours to read (``conformance load`` also gates it).

What each simulated user does:

* **the mix**: every scenario of ``load.scenarios``, ``weight`` times per
  cycle, spread evenly through the cycle (smooth weighted round-robin), each
  user starting at its own point of the cycle (golden-ratio offsets), so at any
  moment the users together follow the weights. Locust's own
  ``tasks = {fn: weight}`` draws every request at random: over a 20-second PR
  run a weight-1 scenario then gets anywhere from half to twice its share, and
  its RPS target becomes a dice roll.
* **pacing**: ``constant_throughput(throughput_per_user)``, an upper bound on
  requests per second per user, so a run is bounded in requests as well as time.
* **its own client id**: when the profile names ``traffic.client_header``
  (the header a rate limiter keys clients by), each user sends its own value.
* **success** is a status in the scenario's ``expect_status``; anything else
  (a 429, a 500, no response) is a Locust failure with the status in its message.
* **the cap**: a process stops its users once it has sent
  ``max_requests_per_process`` requests.

With ``--csv PREFIX``, Locust rewrites ``PREFIX_stats.csv`` once a second
while running and never after the users stopped, so it misses up to the last
second of requests. This file therefore also writes ``PREFIX_final_stats.csv``
and ``PREFIX_final_failures.csv`` on Locust's ``quit`` event, after every user
(and every worker's last report) is in, with Locust's own ``StatsCSV``: the
same columns and percentiles, complete. The gate reads those.

This file runs inside Locust (gevent, monkey-patched); it reads the plan as
JSON and never talks to the harness process.
"""

from __future__ import annotations

import csv
import itertools
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from locust import FastHttpUser, constant, constant_throughput, events, stats, task
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import WorkerRunner

from conformance._sections.load import LATENCY_KEYS, MODES, PLAN_ENV, PROFILE_ENV, PROFILE_MODE_ENV

logger = logging.getLogger("obsconform.locustfile")


def _load_plan() -> dict[str, Any]:
    plan_path = os.environ.get(PLAN_ENV)
    if plan_path:
        plan: dict[str, Any] = json.loads(Path(plan_path).read_text(encoding="utf-8"))
        return plan
    profile_path = os.environ.get(PROFILE_ENV)
    if not profile_path:
        raise SystemExit(f"loadtests/locustfile.py: set {PROFILE_ENV}=<conformance profile> (or {PLAN_ENV})")
    from conformance._profile import load_profile

    mode_name = os.environ.get(PROFILE_MODE_ENV, "pr")
    if mode_name not in MODES:
        raise SystemExit(f"loadtests/locustfile.py: {PROFILE_MODE_ENV} must be one of {', '.join(MODES)}")
    profile = load_profile(profile_path)
    section = profile.section("load")
    if not section.configured:
        raise SystemExit(f"loadtests/locustfile.py: {profile_path} has no load.scenarios")
    plan = section.plan(profile, section.mode(mode_name), client_prefix=f"obsconform-locust-{os.getpid()}")
    return plan


PLAN = _load_plan()

# The gate reads these percentiles from Locust's CSV; make sure Locust writes them.
for _fraction in LATENCY_KEYS.values():
    if _fraction not in stats.PERCENTILES_TO_REPORT:
        stats.PERCENTILES_TO_REPORT.append(_fraction)
stats.PERCENTILES_TO_REPORT.sort()


_environment: list[Environment] = []


@events.init.add_listener
def _remember_environment(environment: Environment, **_kwargs: Any) -> None:
    _environment.append(environment)


@events.quit.add_listener
def _write_final_stats(**_kwargs: Any) -> None:
    """Locust's own statistics CSVs, written once the run is over (see the module docstring)."""
    if not _environment:
        return
    environment = _environment[0]
    prefix = getattr(environment.parsed_options, "csv_prefix", None)
    if not prefix or isinstance(environment.runner, WorkerRunner):
        return
    writer = stats.StatsCSV(environment, stats.PERCENTILES_TO_REPORT)
    for suffix, write in (("final_stats", writer.requests_csv), ("final_failures", writer.failures_csv)):
        with open(f"{prefix}_{suffix}.csv", "w", newline="", encoding="utf-8") as f:
            write(csv.writer(f))


class _RequestCap:
    """Counts this process's requests; past the cap, users stop (a safety net:
    the pacing already bounds a run, this holds even if the pacing is wrong)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sent = 0

    def take(self) -> None:
        if self.sent >= self.limit:
            if self.sent == self.limit:
                logger.warning("request cap of %d for this process reached; stopping users", self.limit)
                self.sent += 1
            raise StopUser()
        self.sent += 1


_cap = _RequestCap(int(PLAN["max_requests_per_process"]))
_user_numbers = itertools.count(1)


def _scenario_request(scenario: dict[str, Any]) -> Callable[[ProfileUser], None]:
    query = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in scenario["query"].items()}
    url = scenario["path"] + (f"?{urlencode(query)}" if query else "")
    expect = frozenset(int(s) for s in scenario["expect_status"])
    body = {"json": scenario["json"]} if scenario["has_json"] else {}

    def send(user: ProfileUser) -> None:
        _cap.take()
        headers = {**scenario["headers"], **user.identity}
        with user.client.request(
            scenario["method"], url, name=scenario["name"], headers=headers, catch_response=True, **body
        ) as response:
            if response.status_code in expect:
                response.success()
            elif not response.status_code:
                response.failure(f"no response: {response.error}")
            else:
                response.failure(f"HTTP {response.status_code}, expected {sorted(expect)}")

    send.__name__ = scenario["name"]
    return send


def smooth_cycle(weights: list[int]) -> list[int]:
    """Scenario indexes, each ``weights[i]`` times, spread evenly (nginx's smooth weighted round-robin)."""
    total = sum(weights)
    current = [0] * len(weights)
    order = []
    for _ in range(total):
        for i, weight in enumerate(weights):
            current[i] += weight
        best = max(range(len(weights)), key=current.__getitem__)
        current[best] -= total
        order.append(best)
    return order


_SENDERS = [_scenario_request(s) for s in PLAN["scenarios"]]
_CYCLE = smooth_cycle([int(s["weight"]) for s in PLAN["scenarios"]])
_GOLDEN = (5**0.5 - 1) / 2
#: Where this process's users start in the cycle; differs per process so workers do not align.
_PROCESS_PHASE = (os.getpid() * _GOLDEN) % 1.0


class ProfileUser(FastHttpUser):
    """One client of the service, cycling through the profile's weighted scenario mix."""

    # A plan without pacing (the benchmark's saturation runs) sends as fast as the service answers.
    wait_time = (
        constant_throughput(float(PLAN["throughput_per_user"]))
        if PLAN["throughput_per_user"]
        else constant(0)
    )
    network_timeout = float(PLAN["request_timeout"])
    connection_timeout = float(PLAN["request_timeout"])

    def on_start(self) -> None:
        number = next(_user_numbers)
        header = PLAN["client_header"]
        self.identity = {header: f"{PLAN['client_prefix']}-{os.getpid()}-{number}"} if header else {}
        self.position = int(((_PROCESS_PHASE + number * _GOLDEN) % 1.0) * len(_CYCLE))

    @task
    def next_request(self) -> None:
        send = _SENDERS[_CYCLE[self.position]]
        self.position = (self.position + 1) % len(_CYCLE)
        send(self)
