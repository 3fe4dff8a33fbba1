"""Parse and lint a generated exposition of N series; compare with the parsers alone and promtool.

    python benchmarks/bench_metrics_parse.py [--series 1000000] [--no-promtool]

Generates a lint-clean Prometheus text exposition of ``--series`` series
(counters, gauges and histograms with realistic labels), then times, on the
same text:

* ``prometheus-client parser``: ``text_string_to_metric_families`` alone;
* ``obsconform parser``: ``parse_prometheus_text`` alone (the same families);
* ``obsconform MET (one scrape)``: what the MET suite does with one scrape:
  that parse, the Prometheus-name view, the promlint port, and the
  series-per-metric snapshot used by the cardinality checks;
* ``promtool check metrics`` and ``promtool check metrics --extended``: the
  local promtool (lint; lint plus its cardinality table), when one is found.

Prints one table and the ratio of promtool's time to ours (above 1: we are
faster), in wall-clock and in CPU time (promtool's counted from its process);
nothing is asserted (speed is never a test).
"""

from __future__ import annotations

import argparse
import io
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from conformance._exceptions import StackError
from conformance.checks.metrics import lint_exposition, snapshot_from_view
from conformance.collect._promtool import LocalPromtool
from conformance.collect._textformat import parse_prometheus_text

_ROUTES = ("/health", "/users/{user_id}", "/auth/login", "/chat/completions", "/models", "/settings")
_METHODS = ("GET", "POST")
_STATUSES = ("200", "201", "400", "401", "404", "429", "500", "503")
_BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2", "5", "10", "+Inf")


def generate(series: int) -> str:
    """A lint-clean exposition of exactly ``series`` series: 40% counters, 30% gauges, 30% histograms.

    Clean on purpose: promtool 2.42 prints its ``--extended`` cardinality
    table only for an exposition without lint problems.
    """
    out = io.StringIO()
    per_histogram_series = len(_BUCKETS) + 2
    budget = {"counter": int(series * 0.4), "gauge": int(series * 0.3)}
    budget["histogram"] = series - budget["counter"] - budget["gauge"]
    families = {"counter": 8, "gauge": 6, "histogram": 6}
    written = 0
    for kind, count in families.items():
        for f in range(count):
            share = budget[kind] // count + (1 if f < budget[kind] % count else 0)
            if kind == "counter":
                name = f"bench_requests_{f}_total"
                out.write(f"# HELP {name} Requests served.\n# TYPE {name} counter\n")
                for i in range(share):
                    out.write(f"{name}{{{_labels(i)}}} {i % 977}\n")
                written += share
            elif kind == "gauge":
                name = f"bench_queue_depth_{f}"
                out.write(f"# HELP {name} Queue state.\n# TYPE {name} gauge\n")
                for i in range(share):
                    out.write(f"{name}{{{_labels(i)}}} {i % 13}.5\n")
                written += share
            else:
                name = f"bench_request_duration_{f}_seconds"
                out.write(f"# HELP {name} Latency.\n# TYPE {name} histogram\n")
                groups, rest = divmod(share, per_histogram_series)
                for i in range(groups):
                    labels = _labels(i)
                    for n, le in enumerate(_BUCKETS):
                        out.write(f'{name}_bucket{{{labels},le="{le}"}} {n + i % 7}\n')
                    out.write(f"{name}_sum{{{labels}}} {i * 0.01:.2f}\n")
                    out.write(f"{name}_count{{{labels}}} {11 + i % 7}\n")
                for i in range(rest):  # top up to the exact count with _count-only series
                    out.write(f"{name}_count{{{_labels(groups + i)}}} 1\n")
                written += share
    assert written == series, (written, series)
    return out.getvalue()


def _labels(i: int) -> str:
    return (
        f'method="{_METHODS[i % 2]}",route="{_ROUTES[i % len(_ROUTES)]}",status_code="{_STATUSES[i % 8]}",'
        f'instance_id="pod-{i // 24}"'
    )


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (promtool): a machine shared with
    other jobs stretches wall-clock time, much less the CPU time each side used."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=1_000_000)
    parser.add_argument("--no-promtool", action="store_true", help="skip promtool check metrics --extended")
    args = parser.parse_args()

    generation, text = timed(lambda: generate(args.series))
    size_mb = len(text.encode()) / 1e6
    print(f"exposition: {args.series:,} series, {size_mb:.1f} MB, generated in {generation:.1f} s\n")

    rows: list[tuple[str, float, str]] = []

    def ours() -> tuple[int, int]:
        parsed = parse_prometheus_text(text)
        linted = lint_exposition("bench", parsed, text, "prometheus-text")
        snapshot = snapshot_from_view(linted.view, source="/metrics", moment="bench")
        return len(linted.problems), snapshot.total

    # The compared work first: after prometheus-client's parse the process holds a heap of
    # millions of freed objects, which slows whatever allocates next.
    cpu = cpu_seconds()
    ours_seconds, (problems, counted) = timed(ours)
    ours_cpu = cpu_seconds() - cpu
    met_row = (
        "obsconform MET (one scrape)",
        ours_seconds,
        f"{problems} lint problems, {counted:,} series counted",
    )

    seconds, ours_families = timed(lambda: parse_prometheus_text(text))
    ours_parser = seconds
    seconds, families = timed(lambda: list(text_string_to_metric_families(text)))
    rows.append(("prometheus-client parser", seconds, f"{len(families)} families"))
    same = "the same" if repr(ours_families) == repr(families) else "DIFFERENT"
    rows.append(
        ("obsconform parser", ours_parser, f"{len(ours_families)} families, {same} as prometheus-client")
    )
    del families, ours_families
    rows.append(met_row)

    ratios: list[str] = []
    if not args.no_promtool:
        try:
            runner = LocalPromtool.discover(timeout=600)
        except StackError as exc:
            rows.append(("promtool check metrics", float("nan"), f"not available: {exc}"))
        else:
            described = runner.describe()
            cpu = cpu_seconds()
            seconds, result = timed(lambda: runner.check_metrics(text))
            promtool_cpu = cpu_seconds() - cpu
            rows.append(
                (f"promtool check metrics ({described['kind']} {described['version']})", seconds,
                 f"{len(result.problems)} lint problems")
            )  # fmt: skip
            ratios.append(
                f"promtool check metrics / obsconform MET = {seconds / ours_seconds:.2f}x wall clock, "
                f"{promtool_cpu / ours_cpu:.2f}x CPU time"
            )
            cpu = cpu_seconds()
            seconds, result = timed(lambda: runner.check_metrics(text, extended=True))
            promtool_cpu = cpu_seconds() - cpu
            total = sum(row[1] for row in result.cardinality)
            rows.append(
                ("promtool check metrics --extended", seconds,
                 f"{len(result.problems)} lint problems, {total:,} series in its own count")
            )  # fmt: skip
            ratios.append(
                f"promtool check metrics --extended / obsconform MET = {seconds / ours_seconds:.2f}x "
                "wall clock, "
                f"{promtool_cpu / ours_cpu:.2f}x CPU time"
            )

    width = max(len(r[0]) for r in rows)
    print(f"{'tool':<{width}}  {'seconds':>8}  {'series/s':>10}  result")
    for name, seconds, note in rows:
        rate = f"{args.series / seconds:,.0f}" if seconds == seconds and seconds > 0 else "-"
        print(f"{name:<{width}}  {seconds:>8.2f}  {rate:>10}  {note}")
    for ratio in ratios:
        print(ratio)
    return 0


if __name__ == "__main__":
    sys.exit(main())
