"""Run the conformance suites N times on one profile and compare the verdicts.

    python benchmarks/verdict_stability.py [--runs 20] [--profile P] [-- --mode local ...]

A harness whose verdict flips between reruns is worse than none. This runs
``conformance run`` N times (each a fresh stack), and prints per requirement
the statuses seen, the run durations, and whether every run agreed. Exit code
0 when all runs gave identical verdicts, 1 otherwise.

``--sequential-runs M`` adds M runs with ``--sequential`` (the probes one at a
time instead of the concurrent plan, see ``conformance run --plan``): their
verdicts must equal the concurrent runs' too.

It takes N minutes on the reference service: run it from a checkout nobody
edits meanwhile (e.g. ``git worktree add /tmp/stable HEAD`` with its own
``pip install -e``), since every run imports the harness and the service anew.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PROFILE = REPO / "fixtures/reference_service/conformance.yaml"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--profile", type=Path, default=DEFAULT_PROFILE)
    parser.add_argument("--sequential-runs", type=int, default=0, help="extra runs with --sequential")
    parser.add_argument("extra", nargs="*", help="extra arguments for `conformance run` (after --)")
    args = parser.parse_args()

    seen: dict[str, Counter[str]] = defaultdict(Counter)
    exit_codes: Counter[int] = Counter()
    durations = []
    with tempfile.TemporaryDirectory(prefix="obsconform-stability-") as tmp:
        total = args.runs + args.sequential_runs
        for i in range(total):
            sequential = ["--sequential"] if i >= args.runs else []
            report_dir = Path(tmp) / f"run-{i:02d}"
            started = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "conformance.cli", "run", "--profile", str(args.profile),
                 "--report-dir", str(report_dir), *sequential, *args.extra],
                capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            durations.append(time.perf_counter() - started)
            exit_codes[proc.returncode] += 1
            report = json.loads((report_dir / "conformance-report.json").read_text())
            for result in report["results"]:
                seen[result["id"]][result["status"]] += 1
            how = "sequential" if sequential else "concurrent"
            print(
                f"run {i + 1:>2}/{total} ({how}): exit {proc.returncode} in {durations[-1]:.1f}s", flush=True
            )

    unstable = {rid: dict(c) for rid, c in seen.items() if len(c) > 1}
    print(f"\n{'requirement':<12} statuses over {total} runs ({args.sequential_runs} sequential)")
    for rid in sorted(seen):
        mark = "  <-- UNSTABLE" if rid in unstable else ""
        print(f"{rid:<12} {dict(seen[rid])}{mark}")
    print(
        f"\nexit codes: {dict(exit_codes)}; duration per run: median {statistics.median(durations):.1f}s, "
        f"min {min(durations):.1f}s, max {max(durations):.1f}s"
    )
    if unstable or len(exit_codes) > 1:
        print(f"verdicts DIFFER between runs: {unstable or dict(exit_codes)}")
        return 1
    print("verdicts identical across all runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
