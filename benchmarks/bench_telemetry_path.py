"""The telemetry path's cost: the collector and Jaeger against the embedded receiver.

    python benchmarks/bench_telemetry_path.py [--spans 200] [--pairs 1] [--load-seconds 20]
                                              [--skip latency,load,runs]

Three measurements, each with the real binaries of ``scripts/build-telemetry``:

1. **Export to visible.** One SERVER span at a time, exported by the OTel SDK
   (``SimpleSpanProcessor``, OTLP/gRPC) to the collector as local mode starts it;
   the clock runs from the moment the exporter returned to the moment Jaeger's
   query API (``JaegerTraceStore``, the trace requirements' own reader) returns
   the trace, polled every 5 ms. p50, p95 and max over ``--spans`` spans.
2. **Loss under the PR load.** The reference service in a local stack (collector
   and Jaeger in the path), driven at the reference profile's PR load (8 users x
   2 requests/s for 20 s, the ``load.modes.pr`` shape) over the profile's traced
   endpoints, each request with a fresh ``traceparent``. Then: requests whose
   trace has no SERVER span in Jaeger (goal 0), and the collector's own counts
   (spans accepted, spans lost) against the spans Jaeger holds.
3. **The whole run.** ``conformance run`` on the reference profile, local mode,
   with the collector and Jaeger and with ``OBSCONFORM_TELEMETRY=embedded``,
   alternating, ``--pairs`` pairs: durations, difference, ratio (goal: within
   10 s) and whether the verdicts are identical.

This is a benchmark, not a test: it prints numbers and never fails on them
(exit 0 unless a step could not run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from conformance._profile import load_profile
from conformance.collect._jaeger import JaegerTraceStore
from conformance.collect._traffic import send
from conformance.stack._local import LocalStack
from conformance.stack._otlp import OtlpReceiver
from conformance.stack._telemetry import LocalTelemetry, TelemetryBinaries, plan_local_telemetry

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "fixtures/reference_service/conformance.yaml"
POLL = 0.005


def binaries() -> TelemetryBinaries:
    plan = plan_local_telemetry({})
    if plan.binaries is None:
        raise SystemExit(f"bench_telemetry_path: {plan.reason}")
    return plan.binaries


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- 1. export to visible ------------------------------------------------------------------------


def export_to_visible(count: int, work: Path) -> list[float]:
    with OtlpReceiver() as receiver:
        telemetry = LocalTelemetry(
            binaries(), work / "latency", receiver_grpc_port=receiver.grpc_port, receiver_http_port=None
        )
        try:
            telemetry.launch_jaeger()
            telemetry.start_collector()
            provider = TracerProvider(resource=Resource.create({"service.name": "bench-latency"}))
            provider.add_span_processor(
                SimpleSpanProcessor(OTLPSpanExporter(endpoint=telemetry.otlp_grpc_endpoint, insecure=True))
            )
            tracer = provider.get_tracer("obsconform.bench")
            latencies = []
            with httpx.Client(timeout=5.0, trust_env=False) as client:
                store = JaegerTraceStore(telemetry.query_url, client=client, all_services=True, raw=True)
                for _ in range(count):
                    with tracer.start_as_current_span("GET /bench", kind=SpanKind.SERVER) as span:
                        trace_id = format(span.get_span_context().trace_id, "032x")
                    exported = time.perf_counter()  # SimpleSpanProcessor exports as the span ends
                    deadline = exported + 30.0
                    while not store.spans(trace_id):
                        if time.perf_counter() > deadline:
                            raise SystemExit(
                                f"bench_telemetry_path: trace {trace_id} not in Jaeger after 30 s"
                            )
                        time.sleep(POLL)
                    latencies.append(time.perf_counter() - exported)
            provider.shutdown()
            return latencies
        finally:
            telemetry.stop()


# -- 2. loss under the PR load -------------------------------------------------------------------


def pr_load(seconds: float, users: int, per_user_rps: float, work: Path) -> dict[str, Any]:
    profile = load_profile(PROFILE)
    endpoints = [e for e in profile.endpoints if e.traced]
    stack = LocalStack(profile, work / "load")
    stack.start()
    try:
        if stack.telemetry is None:
            raise SystemExit("bench_telemetry_path: the stack ran without the collector and Jaeger")
        sent: list[str] = []
        statuses: Counter[int] = Counter()
        lock = threading.Lock()
        stop_at = time.monotonic() + seconds

        def user(index: int) -> None:
            with httpx.Client(base_url=stack.service_url, timeout=10.0, trust_env=False) as client:
                next_at = time.monotonic()
                i = index
                while next_at < stop_at:
                    exchange = send(client, endpoints[i % len(endpoints)])
                    i += users
                    with lock:
                        sent.append(exchange.sent_trace_id)
                        statuses[exchange.status_code or 0] += 1
                    next_at += 1.0 / per_user_rps
                    time.sleep(max(0.0, next_at - time.monotonic()))

        started = time.monotonic()
        threads = [threading.Thread(target=user, args=(i,)) for i in range(users)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        load_seconds = time.monotonic() - started
        # Every request's SERVER span, as the trace requirements read them (one listing of the run).
        assert isinstance(stack.trace_store, JaegerTraceStore)
        wanted = set(sent)
        deadline = time.monotonic() + 30.0
        while True:
            spans = stack.trace_store.spans()
            found = {s.trace_id for s in spans if s.kind == "SERVER" and s.trace_id in wanted}
            if found == wanted or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        settled = time.monotonic() - started - load_seconds
        counts = stack.telemetry.pipeline_counts()
        return {
            "requests": len(sent),
            "statuses": dict(statuses),
            "load_seconds": load_seconds,
            "rps": len(sent) / load_seconds,
            "traces_found": len(found),
            "traces_missing": len(wanted - found),
            "settled_seconds": settled,
            "jaeger_spans": len(spans),
            "collector": counts,
        }
    finally:
        stack.stop()


# -- 3. the whole run ----------------------------------------------------------------------------


def whole_run(telemetry: str, report_dir: Path) -> tuple[float, int, dict[str, str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OBSCONFORM_TELEMETRY"] = telemetry
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "run", "--profile", str(PROFILE),
         "--report-dir", str(report_dir), "--mode", "local"],
        capture_output=True, text=True, timeout=900, env=env,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    report = json.loads((report_dir / "conformance-report.json").read_text())
    verdicts = {r["id"]: r["status"] for r in report["results"]}
    first = proc.stderr.splitlines()[0] if proc.stderr else ""
    return seconds, proc.returncode, verdicts, first


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=200)
    parser.add_argument("--pairs", type=int, default=1)
    parser.add_argument("--load-seconds", type=float, default=20.0)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--per-user-rps", type=float, default=2.0)
    parser.add_argument("--skip", default="", help="comma-separated: latency, load, runs")
    args = parser.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    found = binaries()
    print(f"collector {found.otelcol_version}, Jaeger {found.jaeger_version}", flush=True)

    with tempfile.TemporaryDirectory(prefix="obsconform-bench-telemetry-") as tmp:
        work = Path(tmp)
        if "latency" not in skip:
            latencies = export_to_visible(args.spans, work)
            ms = [x * 1000 for x in latencies]
            print(
                f"\n1. export -> visible in Jaeger's query API ({len(ms)} spans, polled every "
                f"{POLL * 1000:.0f} ms): p50 {percentile(ms, 0.5):.0f} ms, "
                f"p95 {percentile(ms, 0.95):.0f} ms, "
                f"max {max(ms):.0f} ms, mean {statistics.mean(ms):.0f} ms",
                flush=True,
            )
        if "load" not in skip:
            load = pr_load(args.load_seconds, args.users, args.per_user_rps, work)
            collector = load["collector"]
            print(
                f"\n2. PR load ({args.users} users x {args.per_user_rps:g} req/s "
                f"for {args.load_seconds:g} s): "
                f"{load['requests']} requests ({load['rps']:.1f}/s, statuses {load['statuses']}); "
                f"traces in Jaeger {load['traces_found']}, missing {load['traces_missing']} (goal 0), "
                f"all there {load['settled_seconds']:.1f} s after the load\n"
                f"   collector: accepted {collector.get('accepted')}, sent {collector.get('sent')}, "
                f"lost {collector.get('lost')} {collector.get('problems') or ''}; "
                f"Jaeger holds {load['jaeger_spans']} spans",
                flush=True,
            )
        if "runs" not in skip:
            rows: dict[str, list[float]] = {"auto": [], "embedded": []}
            verdicts: dict[str, list[dict[str, str]]] = {"auto": [], "embedded": []}
            for pair in range(args.pairs):
                for mode in ("embedded", "auto") if pair % 2 else ("auto", "embedded"):
                    seconds, code, result, first = whole_run(mode, work / f"run-{pair}-{mode}")
                    rows[mode].append(seconds)
                    verdicts[mode].append(result)
                    print(
                        f"   run {pair + 1} {mode:<8}: exit {code} in {seconds:.1f} s  ({first[-90:]})",
                        flush=True,
                    )
            with_stack, without = statistics.median(rows["auto"]), statistics.median(rows["embedded"])
            same = all(v == verdicts["auto"][0] for v in verdicts["auto"] + verdicts["embedded"])
            print(
                f"\n3. whole reference run (median of {args.pairs}): "
                f"with collector and Jaeger {with_stack:.1f} s, "
                f"embedded receiver {without:.1f} s: +{with_stack - without:.1f} s, ratio "
                f"{with_stack / without:.2f} (goal: within 10 s); verdicts identical: {same}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
