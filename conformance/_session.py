"""One conformance run's shared state: the stack, the client, the baseline
traffic, and accessors that gather telemetry for the suites.

Suites share one session per run (a pytest session fixture, or the CLI's),
so the stack starts once.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from conformance._exceptions import HarnessError, LimitExceeded, NoEvidence, WaitTimeout
from conformance._mask import excerpt
from conformance._plan import ProbeContext, ProbeRunner, implements
from conformance._process import RUN_ID, reap_leftovers
from conformance._profile import Profile
from conformance._sections.traces import KEY as TRACES_KEY
from conformance._wait import wait_until
from conformance.checks.exports import check_server_spans_exported
from conformance.checks.logs import ParsedLogLine, ProvokedWindow, attribute_provoked, parse_log_lines
from conformance.collect._logs import count_log_lines, log_limit_exceeded, log_lines_exceeded, read_log_lines
from conformance.collect._otlp_logs import OTLP_STREAM, otlp_log_lines
from conformance.collect._otlp_metrics import OtlpMetricsSource, service_families, strip_exporter_families
from conformance.collect._prometheus_api import PrometheusClient, wait_for_target_up
from conformance.collect._propagation import CORRELATION, malformed_correlation_probes, send_probes
from conformance.collect._scrape import Exposition, scrape_metrics
from conformance.collect._traffic import drive_endpoints
from conformance.stack import Stack, make_stack
from conformance.telemetry import HttpExchange, LogLine, OtlpLogLine, OtlpLogRecord, Span

if TYPE_CHECKING:
    from conformance.stack._telemetry import TelemetryPlan

__all__ = ["ConformanceSession"]

#: How to get the first OTLP metric to the exporter sooner (metrics.source: otlp).
_NO_OTLP_METRICS_HINT = (
    "make the service push metrics over OTLP to OTEL_EXPORTER_OTLP_ENDPOINT at OTEL_METRIC_EXPORT_INTERVAL "
    "(a JavaScript PeriodicExportingMetricReader built without exportIntervalMillis pushes every 60 s), "
    "or raise metrics.push_timeout above its push interval"
)

#: Seconds Prometheus may take after its start to list a static scrape target.
_TARGET_DISCOVERY = 5.0
#: Seconds without a new OTLP log record after which the records count as complete (the
#: harness sets OTEL_BLRP_SCHEDULE_DELAY to 200 ms; the collector batches for up to 200 ms more).
OTLP_LOGS_QUIET = 1.0


class ConformanceSession:
    """Start with :meth:`open`; always :meth:`close` (it stops the stack)."""

    def __init__(self, profile: Profile, stack: Stack) -> None:
        self.profile = profile
        self.stack = stack
        self._clients: list[httpx.Client] = []
        self.http = self.client("baseline")
        self._api_http = httpx.Client(timeout=5.0)
        self.exchanges: list[HttpExchange] = []
        #: Log lines written in answer to the harness's malformed probes (LOG-009).
        self.provoked: list[ProvokedWindow] = []
        #: The wall-clock span (ns) of each malformed probe, for OTLP log records (LOG-009).
        self._provoked_times: list[tuple[int, int, str]] = []
        #: True once a settle_logs() found no OTLP log record at all (not waited for again).
        self._no_otlp_logs = False
        #: The OTLP log records rendered so far (logs.stream: otlp), and the lock of the polls.
        self._otlp_lines: list[OtlpLogLine] = []
        self._otlp_lock = threading.Lock()
        #: Every 429 a session client received: (monotonic time, the client's purpose). Probes run
        #: concurrently; RL-008 uses this to tell whether another probe was throttled meanwhile.
        self.throttled: list[tuple[float, str]] = []
        self._traffic_started = time.monotonic()
        self._spans_seen: bool | None = None
        self._prometheus_error: str | None = None
        self._scrape_limit: LimitExceeded | None = None
        self._otlp_metrics_missing: str | None = None
        self._otlp_lock = threading.Lock()
        self._otlp_push_missed = ""
        self._malformed: dict[str, HttpExchange] | None = None
        self.started_at = time.time()
        self.stack_description: dict[str, Any] = {"mode": stack.mode, "components": []}
        self._closed = False
        self._spans_lock = threading.Lock()
        #: The run's probe plan (see conformance._plan); :meth:`start_plan` replaces this
        #: one, which runs every probe inline when first asked for.
        self.plan = ProbeRunner(self, ())

    @classmethod
    def open(
        cls,
        profile: Profile,
        workdir: Path,
        *,
        prometheus_binary: str | None = None,
        mode: str = "local",
        telemetry: TelemetryPlan | None = None,
    ) -> ConformanceSession:
        """Start the stack and send the baseline traffic; clean up if anything fails.

        Leftovers of earlier runs that were SIGKILLed are stopped first, so they
        cannot hold ports or skew measurements. ``mode`` is a concrete stack mode
        (``local``, ``containers``, ``external``; resolve ``auto`` with
        :func:`conformance.stack.resolve_mode` first); ``telemetry`` is local
        mode's decision on the collector and Jaeger (made here when not given).
        """
        for leftover in reap_leftovers():
            print(
                f"conformance: stopped leftover pid {leftover.pid} of dead run {leftover.run_id}",
                file=sys.stderr,
            )
        stack = make_stack(mode, profile, workdir, prometheus_binary=prometheus_binary, telemetry=telemetry)
        stack.start()
        session = cls(profile, stack)
        try:
            session._traffic_started = time.monotonic()
            session.stack_description = stack.describe()
            session.exchanges = drive_endpoints(
                session.http, profile.endpoints, profile.requests_per_endpoint
            )
        except BaseException:
            session.close()
            raise
        return session

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.plan.cancel()
        try:
            self.stack_description = self.stack.describe()
            if self.plan.scheduled:
                self.stack_description["plan"] = {
                    "sequential": self.plan.sequential,
                    "probes": self.plan.timeline(),
                }
        finally:
            for client in self._clients:
                client.close()
            self._api_http.close()
            self.stack.stop()

    def client(self, purpose: str) -> httpx.Client:
        """An HTTP client to the service for one purpose (a suite, a probe).

        When the profile names ``traffic.client_header`` (the header the
        service's rate limiter keys clients by), each purpose sends its own
        value, so one suite's burst never throttles another suite's requests.
        """
        headers = {}
        if self.profile.client_header:
            headers[self.profile.client_header] = f"obsconform-{purpose}-{RUN_ID}"

        def note_throttled(response: httpx.Response) -> None:
            if response.status_code == 429:
                self.throttled.append((time.monotonic(), purpose))

        client = httpx.Client(
            base_url=self.stack.service_url,
            timeout=self.profile.request_timeout,
            headers=headers,
            event_hooks={"response": [note_throttled]},
        )
        self._clients.append(client)
        return client

    # -- the probe plan --------------------------------------------------
    def start_plan(self, requirements: Collection[str] | None, *, sequential: bool = False) -> None:
        """Start the probes ``requirements`` need, concurrently where they do not disturb one
        another (:data:`conformance._plan.PLAN`); ``sequential`` runs them one at a time."""
        if self.plan.scheduled:
            return
        self.plan = ProbeRunner(self, requirements, sequential=sequential)
        self.plan.start()
        # The suites' own requests (a scrape, one GET) must not land in an alone probe's window.
        self.plan.wait_alone()
        self.stack_description["plan"] = {"sequential": sequential, "probes": self.plan.timeline()}

    def probe(self, name: str) -> Any:
        """A planned probe's result (waits for it; re-raises what it raised)."""
        return self.plan.result(name)

    def after_all_traffic(self) -> None:
        """Wait until every planned probe has finished: what the service wrote is complete."""
        self.plan.wait_all()

    # -- what the suites gather ------------------------------------------
    @cached_property
    def templates(self) -> dict[str, str]:
        """Concrete path sent → the endpoint's route template."""
        return {ep.concrete_path(): ep.path for ep in self.profile.endpoints}

    @property
    def traced_endpoints(self) -> set[str]:
        return {ep.name for ep in self.profile.endpoints if ep.traced}

    def log_lines(self, stream: str | None = None) -> list[LogLine]:
        """Every complete line the service has written to its log stream (or ``stream``) so far;
        for ``otlp``, every OTLP log record the receiver holds, as a canonical line
        (:mod:`conformance.collect._otlp_logs`).

        Raises :class:`LimitExceeded` once the stream has passed ``logs.max_bytes``: a
        capture that lost its tail is no evidence for a verdict on the stream.
        """
        stream = stream or self.profile.logs.stream
        if stream == OTLP_STREAM:
            records = self.otlp_log_records()
            # The receiver only appends: render what is new (probes poll this while they wait).
            with self._otlp_lock:
                done = self._otlp_lines
                if len(records) < len(done):
                    done.clear()
                done += otlp_log_lines(records[len(done) :], start=len(done) + 1)
                return list(done)
        # Only local mode captures the streams itself (containers keep their own logs).
        overflow_of = getattr(self.stack, "log_overflow", None)
        overflow = overflow_of(stream) if overflow_of is not None else None
        if overflow is not None:
            raise log_limit_exceeded(stream, overflow)
        path = self.stack.log_path(stream)
        lines = count_log_lines(path, final=False)
        if lines > self.profile.logs.max_lines:
            raise log_lines_exceeded(stream, self.profile.logs.max_lines, lines, path.stat().st_size)
        return self._read_lines(stream)

    def _read_lines(self, stream: str) -> list[LogLine]:
        return read_log_lines(
            self.stack.log_path(stream),
            stream=stream,
            max_line_bytes=self.profile.logs.max_line_bytes,
            final=self.stack.service_exit_code() is not None,
        )

    def otlp_log_records(self) -> list[OtlpLogRecord]:
        """The OTLP log records the service exported so far, as the stack's receiver holds them.

        Raises :class:`HarnessError` in a mode that keeps none (external), and
        :class:`LimitExceeded` past ``logs.max_lines`` records.
        """
        read = getattr(self.stack, "otlp_log_records", None)
        if read is None:
            raise HarnessError(
                f"{self.stack.mode} mode keeps no OTLP log records, so there is nothing to read for "
                "logs.stream: otlp",
                hint="run in local or container mode (their OTLP receiver keeps the records the service "
                "exports), or point logs.stream at the stream the deployment's log file holds",
            )
        records: list[OtlpLogRecord] = read()
        if len(records) > self.profile.logs.max_lines:
            raise LimitExceeded(
                "OTLP log records",
                limit_key="logs.max_lines",
                limit=f"{self.profile.logs.max_lines} records",
                seen=f"{len(records)} records",
                after=self._run_seconds(),
                fix="log less per request",
            )
        return records

    def settle_logs(self) -> None:
        """For ``logs.stream: otlp``: wait until the OTLP log records have stopped arriving
        (the SDK exports in batches, after the lines it stands for were written): no new
        record for :data:`OTLP_LOGS_QUIET` seconds, or none at all within ``telemetry.timeout``
        of the first request. A no-op for the captured streams, which are complete when read."""
        if self.profile.logs.stream != OTLP_STREAM:
            return
        seen, changed_at = -1, time.monotonic()

        def quiet() -> tuple[int | None, str]:
            nonlocal seen, changed_at
            count = len(self.otlp_log_records())
            now = time.monotonic()
            if count != seen:
                seen, changed_at = count, now
            if count == 0:
                # None yet: wait for the first, as long as telemetry.timeout allows since the traffic began.
                done = self._no_otlp_logs or self._run_seconds() >= self.profile.telemetry.timeout
                return (0 if done else None), "no OTLP log record yet"
            return (
                count if now - changed_at >= OTLP_LOGS_QUIET else None
            ), f"{count} records, still arriving"

        try:
            count = wait_until(
                quiet,
                awaited="the OTLP log records to stop arriving",
                timeout=max(self.profile.telemetry.timeout, 2 * OTLP_LOGS_QUIET),
            )
        except WaitTimeout:
            return  # still arriving at the deadline: the checks judge what is there
        self._no_otlp_logs = count == 0

    def no_otlp_logs_reason(self) -> tuple[str, str]:
        """Why no OTLP log record is there to judge, and the fix."""
        return (
            f"the service exported no OTLP log record to the harness's receiver within "
            f"{self.profile.telemetry.timeout:g}s of the first request (logs.stream: otlp)",
            "send the service's logs through an OpenTelemetry logs bridge (Python's LoggingHandler, Go's "
            "otelslog, Java's Logback/Log4j appender, Node's pino instrumentation) to an OTLP log exporter "
            "(OTEL_LOGS_EXPORTER=otlp where the SDK reads it; the harness sets OTEL_EXPORTER_OTLP_ENDPOINT), "
            "or set logs.stream to the stream the service writes its records on",
        )

    def parsed_logs(self) -> tuple[list[ParsedLogLine], list[ParsedLogLine]]:
        """The log stream parsed, split into (normal traffic, provoked by a malformed probe)."""
        self.settle_logs()
        lines = self.log_lines()
        parsed = parse_log_lines(lines, self.profile.logs)
        return attribute_provoked(parsed, [*self.provoked, *self._provoked_records(lines)])

    def _provoked_records(self, lines: list[LogLine]) -> list[ProvokedWindow]:
        """OTLP log records emitted while a malformed probe was alone in flight: matched by
        their own time (they arrive in batches, later); consecutive records of one probe make
        one window."""
        windows: list[ProvokedWindow] = []
        if not self._provoked_times:
            return windows
        for line in lines:
            if not isinstance(line, OtlpLogLine):
                continue
            probe = next(
                (p for start, end, p in self._provoked_times if start <= line.time_unix_nano <= end), ""
            )
            if not probe:
                continue
            last = windows[-1] if windows else None
            if last is not None and last.probe == probe and last.last == line.number - 1:
                windows[-1] = ProvokedWindow(OTLP_STREAM, last.first, line.number, probe)
            else:
                windows.append(ProvokedWindow(OTLP_STREAM, line.number, line.number, probe))
        return windows

    def other_stream_json_lines(self) -> tuple[int, str]:
        """JSON objects on the streams the profile does not name, and which stream holds them
        (for the hint when the named one has none): the other captured stream, or the OTLP
        log records the service exported."""
        named = self.profile.logs.stream
        for other in [s for s in ("stdout", "stderr") if s != named]:
            parsed = parse_log_lines(self.log_lines(other), self.profile.logs)
            found = sum(1 for p in parsed if p.record is not None)
            if found:
                return found, other
        if named != OTLP_STREAM and getattr(self.stack, "otlp_log_records", None) is not None:
            try:
                return len(self.otlp_log_records()), OTLP_STREAM
            except HarnessError:
                return 0, ""
        return 0, ""

    @contextmanager
    def provoking(self, probe: str, *, quiet: float = 0.2, timeout: float = 2.0) -> Iterator[None]:
        """Run a malformed probe alone and attribute what the service writes meanwhile to it.

        The lines of both streams written from the start of the block until
        the streams have been quiet for ``quiet`` seconds (at most ``timeout``)
        become a :class:`ProvokedWindow` each.
        """

        def counts() -> tuple[int, int]:
            final = self.stack.service_exit_code() is not None
            out = count_log_lines(self.stack.log_path("stdout"), final=final)
            return out, count_log_lines(self.stack.log_path("stderr"), final=final)

        before = counts()
        started = time.time_ns()
        yield
        seen, changed_at = counts(), time.monotonic()

        def settled() -> tuple[tuple[int, int] | None, str]:
            nonlocal seen, changed_at
            now = counts()
            if now != seen:
                seen, changed_at = now, time.monotonic()
            return (now if time.monotonic() - changed_at >= quiet else None), f"{now} lines"

        try:
            after = wait_until(settled, awaited=f"the log streams to settle after {probe}", timeout=timeout)
        except WaitTimeout:
            after = counts()
        self._provoked_times.append((started, time.time_ns(), probe))
        for stream, first, end in zip(("stdout", "stderr"), before, after, strict=True):
            if end > first:
                self.provoked.append(ProvokedWindow(stream, first + 1, end, probe))

    def malformed_probes(self) -> Mapping[str, HttpExchange]:
        """The malformed correlation-id probes (``correlation id: <what>`` → exchange),
        each sent alone to ``traces.probe_endpoint`` (else the first GET endpoint) so what the
        service writes in answer
        is attributed to it (LOG-009); sent once per run, for TRC-008 and LOG-009 alike."""
        result: Mapping[str, HttpExchange] = self.probe("malformed-correlation")
        return result

    def _send_malformed_probes(self) -> Mapping[str, HttpExchange]:
        if self._malformed is None:
            # The trace probes' endpoint, else any GET: the probes need an answer, not a span.
            endpoint = self.profile.section(TRACES_KEY).probe_endpoint or next(
                (ep for ep in self.profile.endpoints if ep.method == "GET"), None
            )
            if endpoint is None:
                raise HarnessError(
                    "no endpoint to send the malformed correlation-id probes to: the profile has no GET "
                    "endpoint",
                    hint="name one in traces.probe_endpoint",
                )
            header = self.profile.correlation_header
            client = self.client("malformed")
            sent: dict[str, HttpExchange] = {}
            for request in malformed_correlation_probes(endpoint, header):
                with self.provoking(f"malformed {header}: {request.name.removeprefix(CORRELATION)}"):
                    sent |= send_probes([(client, [request])], concurrency=1)
            self._malformed = sent
        return self._malformed

    def spans_exported(self) -> bool:
        """Whether the service exports spans at all, decided once per run.

        True as soon as any span is in the store; False when none arrived
        within ``telemetry.timeout`` of the baseline traffic (one wait per run,
        not one per requirement). A profile with ``telemetry.spans: false`` is
        False without waiting.
        """
        with self._spans_lock:
            return self._decide_spans_exported()

    def _decide_spans_exported(self) -> bool:
        if self._spans_seen is None:
            if not self.profile.telemetry.spans:
                self._spans_seen = False
            else:
                store = self.stack.trace_store
                remaining = self.profile.telemetry.timeout - (time.monotonic() - self._traffic_started)
                try:
                    self._spans_seen = wait_until(
                        lambda: (True if store.spans() else None, "no span yet"),
                        awaited="the service's first span",
                        timeout=max(remaining, 0.5),
                    )
                except WaitTimeout:
                    self._spans_seen = False
        if not self._spans_seen:
            refused = self._otlp_refused_too_large()
            if refused:
                raise LimitExceeded(
                    "OTLP requests to the harness's receiver",
                    limit_key="telemetry.max_request_body_size",
                    limit=f"{self.profile.telemetry.max_request_body_size} bytes after decompression",
                    seen=f"{refused} request(s) refused, and no span arrived otherwise",
                    fix="export smaller batches (the SDK's max_export_batch_size)",
                )
        return self._spans_seen

    def _otlp_refused_too_large(self) -> int:
        """OTLP/HTTP requests the embedded receiver refused as too large (local mode)."""
        receiver = getattr(self.stack, "receiver", None)
        if receiver is None or not hasattr(receiver, "stats"):
            return 0
        return int(receiver.stats()["rejected"].get("too_large", 0))

    def no_spans_reason(self) -> str:
        if not self.profile.telemetry.spans:
            return "the profile declares that the service exports no spans (telemetry.spans: false)"
        return (
            f"the service exports no spans: none arrived in {self.stack.trace_store.describe()} within "
            f"{self.profile.telemetry.timeout:g}s of the first request"
        )

    @property
    def prometheus(self) -> PrometheusClient:
        return self.stack.prometheus_client(self._api_http)

    @cached_property
    def otlp_metrics(self) -> OtlpMetricsSource | None:
        """Where the metrics the service pushes over OTLP are scraped (``metrics.source: otlp``),
        or None when the MET requirements read the service's own exposition."""
        if self.profile.metrics.source != "otlp":
            return None
        source = getattr(self.stack, "otlp_metrics_source", None)
        if source is None:
            return OtlpMetricsSource(
                "",
                self.profile.prometheus.job,
                unavailable=f"{self.stack.mode} mode runs no collector of the harness's",
                fix="run in local or container mode, or point the service's metrics at an exposition "
                "(metrics.source: exposition)",
            )
        found: OtlpMetricsSource = source()
        return found

    @property
    def metrics_url(self) -> str:
        """The exposition the MET requirements read: the service's, or the collector's exporter."""
        source = self.otlp_metrics
        if source is None:
            return self.stack.metrics_url
        return source.url or "(none: the collector is not running)"

    @property
    def metrics_job(self) -> str:
        """The Prometheus job whose series are the service's metrics."""
        source = self.otlp_metrics
        return self.profile.prometheus.job if source is None else source.job

    def otlp_metric_names(self) -> list[str]:
        """Metric names the harness's own receiver got over OTLP (local mode; other stacks'
        receivers keep none the suites can read)."""
        names = getattr(getattr(self.stack, "receiver", None), "metric_names", None)
        return list(names()) if callable(names) else []

    def scrape(self, *, openmetrics: bool = False) -> Exposition:
        """The harness's own scrape of /metrics, under the profile's Prometheus limits
        (:class:`LimitExceeded`, with Prometheus's own scrape error when it has one).

        With ``metrics.source: otlp``, the collector's prometheus exporter instead, once the
        service's first OTLP metric reached it, without the families the exporter adds
        (:mod:`conformance.collect._otlp_metrics`); :class:`NoEvidence` when the collector is
        not running or nothing arrived within ``metrics.push_timeout``."""
        if self.otlp_metrics is not None:
            return strip_exporter_families(self._scrape_exporter(self.otlp_metrics, openmetrics))
        return self._scrape(self.stack.metrics_url, openmetrics)

    def _scrape_exporter(self, source: OtlpMetricsSource, openmetrics: bool) -> Exposition:
        if not source.url:
            raise NoEvidence(
                f"the metrics the service pushes over OTLP (metrics.source: otlp) are read from the "
                f"collector's prometheus exporter, and {source.unavailable}",
                hint=source.fix,
            )
        asked = source.pushes() if source.pushes is not None else None
        with self._otlp_lock:  # probes run concurrently: one wait per run
            if self._otlp_metrics_missing is None:
                self._otlp_metrics_missing = self._await_otlp_metrics(source)
        if self._otlp_metrics_missing:
            raise NoEvidence(self._otlp_metrics_missing, hint=_NO_OTLP_METRICS_HINT)
        if asked is not None:
            self._await_push_after(source, asked)
        return self._scrape(source.url, openmetrics)

    def _await_push_after(self, source: OtlpMetricsSource, seen: int) -> None:
        """Wait for a push that began after the scrape was asked for: the exporter serves what the
        service pushed last, so traffic sent just before shows only after the next push."""
        timeout = self.profile.metrics.push_timeout

        def pushed() -> tuple[bool | None, str]:
            now = source.pushes() if source.pushes is not None else seen + 1
            return (True if now > seen else None), f"{now} metric points received, none since"

        try:
            wait_until(pushed, awaited="the service's next OTLP metric push", timeout=timeout)
        except WaitTimeout as exc:
            self._otlp_push_missed = (
                f"the service pushed no OTLP metric within {timeout:g}s (metrics.push_timeout) of the "
                f"harness's scrape of {source.url}, so that scrape would show the metrics before the "
                f"traffic just sent ({exc.last_seen})"
            )
            raise NoEvidence(self._otlp_push_missed, hint=_NO_OTLP_METRICS_HINT) from None

    def otlp_metrics_gap(self) -> str:
        """Why a scrape of the service's OTLP metrics this run showed nothing to judge (the
        collector not running, no push in time), or "" (or ``metrics.source`` is exposition)."""
        source = self.otlp_metrics
        if source is None:
            return ""
        if not source.url:
            return (
                "the metrics the service pushes over OTLP are read from the collector's prometheus "
                f"exporter, and {source.unavailable}"
            )
        return self._otlp_metrics_missing or self._otlp_push_missed

    def scrape_or_gap(self) -> Exposition:
        """:meth:`scrape`, except that an exporter with nothing to show (``metrics.source: otlp``)
        is an empty exposition saying why, for probes that read other signals too."""
        try:
            return self.scrape()
        except NoEvidence as exc:
            if self.otlp_metrics is None:
                raise
            return Exposition(self.metrics_url, 0, "", "", (), "prometheus-text", str(exc))

    def _await_otlp_metrics(self, source: OtlpMetricsSource) -> str:
        """Wait (once per run) for the exporter to serve a metric of the service's; "" when it
        does, else what never arrived."""
        timeout = self.profile.metrics.push_timeout

        def probe() -> tuple[bool | None, str]:
            exposition = self._scrape(source.url, False)
            names = service_families(f.name for f in exposition.families)
            if names:
                return True, ""
            shown = ", ".join(f.name for f in exposition.families) or "no family"
            return None, f"HTTP {exposition.status_code}, {shown}"

        remaining = timeout - (time.monotonic() - self._traffic_started)
        try:
            wait_until(probe, awaited="the service's first OTLP metric", timeout=max(remaining, 0.5))
        except WaitTimeout as exc:
            return (
                f"no metric the service pushed over OTLP reached the collector's prometheus exporter at "
                f"{source.url} within {timeout:g}s of the first request (metrics.push_timeout; last seen: "
                f"{exc.last_seen}; OTLP metrics the harness's receiver got: "
                f"{', '.join(self.otlp_metric_names()) or 'none'})"
            )
        return ""

    def _scrape(self, url: str, openmetrics: bool) -> Exposition:
        prom = self.profile.prometheus
        if self._scrape_limit is not None:
            raise self._scrape_limit  # hit once, reported for the whole run: no re-reading 50 MiB
        try:
            return scrape_metrics(
                url,
                client=self._api_http,
                accept_openmetrics=openmetrics,
                timeout=prom.scrape_timeout,
                max_bytes=prom.body_size_limit,
                sample_limit=prom.sample_limit,
                limits_raise=True,
            )
        except LimitExceeded as exc:
            after = self._run_seconds()
            said = self._prometheus_last_error()
            detail = f"Prometheus's own scrape failed too: {excerpt(said, 300)}" if said else ""
            self._scrape_limit = exc.amended(detail=detail, after=after)
            raise self._scrape_limit from None
        except HarnessError as exc:
            code = self._exit_code_soon()
            if code is None:
                raise
            raise HarnessError(f"the service exited with code {code} during the run; {exc}") from None

    def _exit_code_soon(self, within: float = 1.0) -> int | None:
        """The service's exit code if it exits within ``within`` seconds (a connection it
        dropped may be the first sign of its exit), else None."""
        try:
            return wait_until(
                lambda: (self.stack.service_exit_code(), "running"),
                awaited="the service's exit",
                timeout=within,
            )
        except WaitTimeout:
            return None

    def _run_seconds(self) -> float:
        return time.monotonic() - self._traffic_started

    def _prometheus_last_error(self) -> str:
        """Prometheus's ``lastError`` for the service's target once it has one (it enforces the
        same limits), or "" (no Prometheus, or none within one scrape's time); waited for once
        per run."""
        if self._prometheus_error is not None:
            return self._prometheus_error
        prom = self.profile.prometheus
        job = self.metrics_job

        def last_error() -> tuple[str | None, str]:
            try:
                targets = self.prometheus.targets()
            except Exception:  # a detail for a message; the limit is the error
                return "", "Prometheus not answering"
            for target in targets:
                if target.get("labels", {}).get("job") == job and target.get("lastError"):
                    return str(target["lastError"]), "an error"
            return None, "no scrape error yet"

        try:
            self._prometheus_error = wait_until(
                last_error,
                awaited="Prometheus's scrape error",
                # Prometheus finds a static target up to ~5 s after it starts, then scrapes it.
                timeout=_TARGET_DISCOVERY
                + min(prom.scrape_timeout, prom.scrape_interval)
                + 2 * prom.scrape_interval,
            )
        except WaitTimeout:
            self._prometheus_error = ""
        return self._prometheus_error

    def prometheus_target(self) -> dict[str, Any] | None:
        """Prometheus's view of the service target after a scrape newer than the traffic."""
        try:
            target: dict[str, Any] = wait_for_target_up(
                self.prometheus,
                self.metrics_job,
                timeout=max(5.0, 4 * self.profile.prometheus.scrape_interval),
            )
            return target
        except WaitTimeout:
            for target in self.prometheus.targets():
                if target.get("labels", {}).get("job") == self.metrics_job:
                    return dict(target)
            return None

    def server_spans(self) -> list[Span]:
        """Spans in the trace store once every traced request's SERVER span
        has arrived, or when ``telemetry.timeout`` runs out (the check then
        reports which ones are missing)."""
        store = self.stack.trace_store
        if not self.spans_exported():
            return []

        def probe() -> tuple[list[Span] | None, str]:
            spans = store.spans()
            missing = check_server_spans_exported(
                self.exchanges,
                spans,
                templates=self.templates,
                traced_endpoints=self.traced_endpoints,
                store=store.describe(),
            )
            return (spans if not missing else None), f"{len(spans)} span(s), {len(missing)} route(s) short"

        try:
            return wait_until(
                probe, awaited="SERVER spans for the baseline traffic", timeout=self.profile.telemetry.timeout
            )
        except WaitTimeout:
            return store.spans()

    def require_running(self) -> None:
        """Raise :class:`HarnessError` if the service died mid-run."""
        code = self.stack.service_exit_code()
        if code is not None:
            raise HarnessError(f"the service exited with code {code} during the run")


@implements("malformed-correlation")
def _malformed_correlation(session: ConformanceSession, _: ProbeContext) -> Mapping[str, HttpExchange]:
    return session._send_malformed_probes()
