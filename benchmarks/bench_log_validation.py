"""Log validation throughput, next to a plain ``json.loads`` pass over the same lines.

    python benchmarks/bench_log_validation.py [--lines 200000] [--bad-every 1000] [--seed 1]

Writes ``--lines`` JSON lines shaped like the reference service's log stream
(request_completed records with uuids, hex trace ids and float durations,
login and chat records, error records with a traceback), with a defective
record every ``--bad-every`` lines (a missing field, a wrong type, a status
code out of range, a line that is not JSON), into a temporary directory. Then,
in the same run and on the same file:

* **ours**: the harness's log path with the reference profile's log contract:
  ``read_log_lines`` (the session's reader) → ``parse_log_lines`` (decode,
  field mapping) → LOG-001 (``check_json_lines``), LOG-002
  (``check_record_schema``, the built-in record schema) and LOG-003
  (``check_request_completed``, the built-in request_completed schema);
* **json.loads**: the file read in one go, split into lines, ``json.loads``
  on each, nothing else.

Prints both, the ratio (json.loads seconds / ours; the goal is ≥ 0.5) and the
findings per requirement. Speed is reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from conformance import load_profile  # noqa: E402
from conformance._profile import schema_path  # noqa: E402
from conformance.checks import logs  # noqa: E402
from conformance.collect._logs import read_log_lines  # noqa: E402

PROFILE = REPO / "fixtures/reference_service/conformance.yaml"
_ROUTES = ("/health", "/health/live", "/models", "/settings", "/users/{user_id}", "/auth/login")
_DEFECTS = (
    lambda r: r.pop("logger"),
    lambda r: r.update(level=3),
    lambda r: r.update(message="request_completed", status_code=700),
    lambda r: r.update(message="request_completed", duration_ms="fast"),
    lambda r: r.update(correlation_id=""),
)


def generate(path: Path, count: int, bad_every: int, seed: int) -> int:
    """Write ``count`` lines to ``path``; return how many defects were planted."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    traceback = (
        'Traceback (most recent call last):\n  File "/srv/app/routes.py", line 212, in error\n'
        '    raise DeliberateFailure("deliberate failure from GET /error")\n'
        "reference_service.routes.DeliberateFailure: deliberate failure from GET /error"
    )
    planted = 0
    with path.open("w", encoding="utf-8") as f:
        for number in range(1, count + 1):
            record: dict[str, Any] = {
                "timestamp": f"2025-12-06T10:{number // 60000 % 60:02d}:{number // 1000 % 60:02d}."
                f"{number % 1000:03d}Z",
                "level": "INFO",
                "logger": "reference_service.middleware",
                "correlation_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "trace_id": f"{rng.getrandbits(128):032x}",
                "span_id": f"{rng.getrandbits(64):016x}",
            }
            pick = number % 10
            if pick < 6:
                record.update(message="request_completed", method="GET", path=rng.choice(_ROUTES),
                              status_code=200, duration_ms=rng.random() * 50)  # fmt: skip
            elif pick < 8:
                record.update(message="login_attempt", email="[REDACTED_EMAIL]", success=True)
            elif pick < 9:
                record.update(message="chat_completion_requested", model="fake-small", message_count=1)
            else:
                record.update(level="ERROR", message="unhandled_exception", path="/error", exc_info=traceback)
            if number % bad_every == 0:
                planted += 1
                defect = number // bad_every % (len(_DEFECTS) + 1)
                if defect == len(_DEFECTS):
                    f.write("Traceback (most recent call last): not JSON\n")
                    continue
                _DEFECTS[defect](record)
            f.write(json.dumps(record) + "\n")
    return planted


def run_ours(path: Path) -> tuple[float, float, Counter[str], int, dict[str, float]]:
    contract = load_profile(PROFILE).logs
    record_schema = json.loads(schema_path("log-record.schema.json").read_text(encoding="utf-8"))
    completed_schema = json.loads(
        schema_path("log-request-completed.schema.json").read_text(encoding="utf-8")
    )
    cpu = time.process_time()
    started = time.perf_counter()
    lines = read_log_lines(path, stream="stdout", max_line_bytes=contract.max_line_bytes, final=True)
    read = time.perf_counter()
    parsed = logs.parse_log_lines(lines, contract)
    decoded = time.perf_counter()
    findings = [
        *logs.check_json_lines(parsed),
        *logs.check_record_schema(parsed, contract, record_schema),
        *logs.check_request_completed(parsed, contract, completed_schema),
    ]
    ended = time.perf_counter()
    cpu = time.process_time() - cpu
    steps = {"read": read - started, "parse": decoded - read, "checks": ended - decoded}
    return ended - started, cpu, Counter(f.requirement_id for f in findings), len(parsed), steps


def run_json_loads(path: Path) -> tuple[float, float, int]:
    cpu = time.process_time()
    started = time.perf_counter()
    objects = 0
    for line in path.read_bytes().split(b"\n"):
        if line:
            try:
                json.loads(line)
            except json.JSONDecodeError:
                continue
            objects += 1
    return time.perf_counter() - started, time.process_time() - cpu, objects


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--bad-every", type=int, default=1000, help="plant a defect every N lines (1000)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="obsconform-log-bench-") as tmp:
        log = Path(tmp) / "service.log"
        planted = generate(log, args.lines, args.bad_every, args.seed)
        size = log.stat().st_size
        plain, plain_cpu, objects = run_json_loads(log)
        ours, ours_cpu, findings, parsed, steps = run_ours(log)
    print(f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPU(s); "
          f"{args.lines:,} lines, {size / 2**20:.1f} MiB, {planted} defects planted\n")  # fmt: skip
    mib = size / 2**20
    print(f"| {'path':<58} | {'seconds':>8} | {'CPU s':>6} | {'MiB/s':>7} | {'lines/s':>9} |")
    print(f"|{'-' * 60}|{'-' * 10}|{'-' * 8}|{'-' * 9}|{'-' * 11}|")
    for name, seconds, cpu in (
        ("ours: read_log_lines + parse_log_lines + LOG-001/002/003", ours, ours_cpu),
        ("json.loads: read, split, json.loads each line", plain, plain_cpu),
    ):
        print(f"| {name:<58} | {seconds:>8.2f} | {cpu:>6.2f} | {mib / seconds:>7.1f} "
              f"| {args.lines / seconds:>9,.0f} |")  # fmt: skip
    print(f"\nratio json.loads / ours = {plain / ours:.2f}x wall clock, {plain_cpu / ours_cpu:.2f}x CPU time "
          "(goal >= 0.5x)")  # fmt: skip
    print("ours, by step: " + ", ".join(f"{name} {seconds:.2f}s" for name, seconds in steps.items()))
    print(f"ours: {parsed:,} lines parsed; findings {dict(sorted(findings.items()))}; "
          f"json.loads: {objects:,} lines decoded")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
