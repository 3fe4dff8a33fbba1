"""Peak memory of the harness on the hostile corpus, against its stated bound (1 GiB).

    python benchmarks/bench_hostile_memory.py [--cases log-flood,huge-line,...] [--corpus-limits] [--quick]

Runs ``conformance run --mode local`` on each service of ``tests/hostile`` (the collector and
Jaeger left out, ``OBSCONFORM_TELEMETRY=embedded``, as the hostile tests do) and samples,
every 50 ms from ``/proc``, the resident memory of the harness's process tree: the
``conformance`` process and every descendant (Prometheus included) except the service under
test and whatever it forked. Printed per service: the harness process's own peak, the peak of
the whole tree, the run's wall time and exit code, and whether the tree stayed under the bound.

By default each profile's limits are removed so the harness runs with its *defaults*
(logs.max_bytes 64 MiB, prometheus.body_size_limit 50 MiB, ...), the limits a user gets;
``--corpus-limits`` keeps the corpus's small ones. ``--quick`` runs only the suite tests the
hostile tests select (``-k``), not every requirement.

A benchmark, not a test: the numbers go into the README's guarantees table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests/hostile"
BOUND = 1024 * 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")

#: Each service and the suite tests its hostile test selects (for --quick).
CASES = {
    "log-flood": "test_logs",
    "huge-line": "test_logs",
    "log-burst": "test_logs",
    "metrics-series": "test_metrics_are_scraped_by_prometheus",
    "metrics-huge": "test_metrics_are_scraped_by_prometheus",
    "metrics-endless": "test_metrics_are_scraped_by_prometheus",
    "hang-after-headers": "test_metrics_are_scraped_by_prometheus",
    "close-mid-body": "test_metrics_are_scraped_by_prometheus",
    "stop-answering": "test_metrics_are_scraped_by_prometheus",
    "exit-mid-run": "test_metrics_are_scraped_by_prometheus",
    "hostile-text": "test_logs",
    "fork-orphans": "test_logs",
    "ignore-sigterm": "test_logs",
}
LIMIT_KEYS = {
    "logs": ("max_bytes", "max_line_bytes"),
    "prometheus": ("sample_limit", "body_size_limit", "scrape_timeout"),
    "telemetry": ("max_request_body_size",),
}


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid → (parent pid, resident bytes, command line) of every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            statm = (entry / "statm").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        table[int(entry.name)] = (int(fields[1]), int(statm.split()[1]) * PAGE, cmdline)
    return table


def _tree_rss(root: int) -> tuple[int, int]:
    """(root's own RSS, RSS of root and its descendants but the service's subtree)."""
    table = _processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    own = table.get(root, (0, 0, ""))[1]
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        if pid not in table:
            continue
        _, rss, cmdline = table[pid]
        if "hostile_service.py" in cmdline:
            continue  # the service and what it forked are not the harness
        total += rss
        stack.extend(children.get(pid, []))
    return own, total


def _profile(case: str, directory: Path, corpus_limits: bool) -> Path:
    source = CORPUS / case / "conformance.yaml"
    data: dict[str, Any] = yaml.safe_load(source.read_text())
    data["service"]["command"] = [
        part.replace("{profile_dir}/..", str(CORPUS)) for part in data["service"]["command"]
    ]
    if not corpus_limits:
        for section, keys in LIMIT_KEYS.items():
            for key in keys:
                data.get(section, {}).pop(key, None)
        if case == "log-burst":  # ~93,000 short lines: just under the default logs.max_lines
            data["service"]["env"]["HOSTILE_BURST_MIB"] = "8"
    path = directory / f"{case}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run_case(case: str, directory: Path, *, corpus_limits: bool, quick: bool) -> dict[str, Any]:
    profile = _profile(case, directory, corpus_limits)
    argv = [sys.executable, "-m", "conformance.cli", "run", "--profile", str(profile),
            "--report-dir", str(directory / case), "--mode", "local"]  # fmt: skip
    if quick:
        argv += ["-k", CASES[case]]
    env = {**os.environ, "OBSCONFORM_TELEMETRY": "embedded"}
    started = time.monotonic()
    quiet = subprocess.DEVNULL
    proc = subprocess.Popen(argv, stdout=quiet, stderr=quiet, env=env, cwd=directory)
    peaks = {"own": 0, "tree": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            own, tree = _tree_rss(proc.pid)
            peaks["own"] = max(peaks["own"], own)
            peaks["tree"] = max(peaks["tree"], tree)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        code = proc.wait(timeout=900)
    finally:
        done.set()
        sampler.join()
        if proc.poll() is None:
            proc.kill()
    return {"case": case, "seconds": time.monotonic() - started, "exit": code, **peaks}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated services of tests/hostile")
    parser.add_argument("--corpus-limits", action="store_true", help="keep the corpus profiles' small limits")
    parser.add_argument("--quick", action="store_true", help="only the suite tests the hostile tests select")
    args = parser.parse_args()
    cases = [c for c in args.cases.split(",") if c]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s): {', '.join(unknown)}")
    mib = 1024 * 1024
    limits = "the corpus's small limits" if args.corpus_limits else "the default limits"
    print(f"peak RSS of the harness on the hostile corpus ({limits}; bound {BOUND // mib} MiB)")
    print(f"{'service':<20} {'harness MiB':>11} {'tree MiB':>9} {'seconds':>8} {'exit':>5}  within bound")
    worst = 0
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        for case in cases:
            row = run_case(case, Path(tmp), corpus_limits=args.corpus_limits, quick=args.quick)
            worst = max(worst, row["tree"])
            print(
                f"{case:<20} {row['own'] / mib:>11.0f} {row['tree'] / mib:>9.0f} {row['seconds']:>8.1f} "
                f"{row['exit']:>5}  {'yes' if row['tree'] < BOUND else 'NO'}",
                flush=True,
            )
    print(f"worst peak of the harness tree: {worst / mib:.0f} MiB of the {BOUND // mib} MiB bound")
    return 0 if worst < BOUND else 1


if __name__ == "__main__":
    sys.exit(main())
