"""OTLP log records judged as log lines (``logs.stream: otlp``), next to a plain JSON round trip.

    python benchmarks/bench_otlp_logs.py [--records 100000] [--seed 1]

Builds ``--records`` OTLP log records shaped like what Python's ``LoggingHandler``
exports for a Flask service (a string body, the request's ids, OpenTelemetry
attribute names, ``code.*`` attributes; every tenth an item record), as the
receiver keeps them (:class:`OtlpLogRecord`). Then, in the same run:

* **ours**: ``otlp_log_lines`` (each record rendered as its canonical line) →
  ``parse_log_lines`` (decode, the profile's field mapping) → LOG-001, LOG-002
  (the built-in record schema) and LOG-003 (the built-in request_completed schema);
* **plain**: each record's fields put in a dict by hand, ``json.dumps`` and
  ``json.loads`` of it, nothing else.

Prints both and the ratio (plain seconds / ours). Speed is reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from conformance._profile import LogContract, schema_path  # noqa: E402
from conformance.checks import logs  # noqa: E402
from conformance.collect._otlp_logs import otlp_log_lines  # noqa: E402
from conformance.telemetry import OtlpLogRecord  # noqa: E402

_PATHS = ("/items", "/items/1", "/items/2", "/healthz")


def generate(count: int, seed: int) -> list[OtlpLogRecord]:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    start = 1_765_161_601_000_000_000
    records = []
    for n in range(count):
        attributes: dict[str, object] = {
            "code.file.path": "/srv/pantry/app.py",
            "code.function.name": "log_request",
            "code.line.number": 70,
        }
        # A request id on every record, so that LOG-003's built-in record is met (no findings).
        attributes["request_id"] = f"{rng.getrandbits(64):016x}"
        if n % 10:
            body = "request completed"
            attributes.update(
                {
                    "http.request.method": "GET",
                    "url.path": rng.choice(_PATHS),
                    "http.response.status_code": 200,
                    "duration_ms": rng.random() * 5,
                }
            )
        else:
            body = "item created"
            attributes["item.id"] = n
        records.append(
            OtlpLogRecord(
                time_unix_nano=start + n * 1_000_000,
                severity_text="INFO",
                body=body,
                attributes=attributes,
                trace_id=f"{rng.getrandbits(128):032x}",
                span_id=f"{rng.getrandbits(64):016x}",
                severity_number=9,
                scope_name="pantry",
            )
        )
    return records


def run_ours(records: list[OtlpLogRecord]) -> tuple[float, float, Counter[str], dict[str, float]]:
    contract = LogContract(
        stream="otlp",
        fields={
            "correlation_id": "request_id",
            "method": "http.request.method",
            "path": "url.path",
            "status_code": "http.response.status_code",
        },
        request_completed_message="request completed",
    )
    record_schema = json.loads(schema_path("log-record.schema.json").read_text(encoding="utf-8"))
    completed = schema_path("log-request-completed.schema.json")
    completed_schema = json.loads(completed.read_text(encoding="utf-8"))
    cpu = time.process_time()
    started = time.perf_counter()
    lines = otlp_log_lines(records)
    rendered = time.perf_counter()
    parsed = logs.parse_log_lines(lines, contract)
    decoded = time.perf_counter()
    findings = [
        *logs.check_json_lines(parsed),
        *logs.check_record_schema(parsed, contract, record_schema),
        *logs.check_request_completed(parsed, contract, completed_schema),
    ]
    ended = time.perf_counter()
    steps = {"render": rendered - started, "parse": decoded - rendered, "checks": ended - decoded}
    return ended - started, time.process_time() - cpu, Counter(f.requirement_id for f in findings), steps


def run_plain(records: list[OtlpLogRecord]) -> tuple[float, float]:
    cpu = time.process_time()
    started = time.perf_counter()
    for r in records:
        own = {"time": r.time_unix_nano, "level": r.severity_text, "logger": r.scope_name, "message": r.body}
        json.loads(json.dumps({**own, "trace_id": r.trace_id, "span_id": r.span_id, **r.attributes}))
    return time.perf_counter() - started, time.process_time() - cpu


def main() -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    records = generate(args.records, args.seed)
    plain, plain_cpu = run_plain(records)
    ours, ours_cpu, findings, steps = run_ours(records)
    print(f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPU(s); "
          f"{args.records:,} OTLP log records\n")  # fmt: skip
    print(f"| {'path':<62} | {'seconds':>8} | {'CPU s':>6} | {'records/s':>10} |")
    print(f"|{'-' * 64}|{'-' * 10}|{'-' * 8}|{'-' * 12}|")
    for name, seconds, cpu in (
        ("ours: otlp_log_lines + parse_log_lines + LOG-001/002/003", ours, ours_cpu),
        ("plain: a dict by hand, json.dumps, json.loads", plain, plain_cpu),
    ):
        print(f"| {name:<62} | {seconds:>8.2f} | {cpu:>6.2f} | {args.records / seconds:>10,.0f} |")
    print(f"\nratio plain / ours = {plain / ours:.2f}x wall clock, {plain_cpu / ours_cpu:.2f}x CPU time")
    print("ours, by step: " + ", ".join(f"{name} {seconds:.2f}s" for name, seconds in steps.items()))
    print(f"ours: findings {dict(sorted(findings.items()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
