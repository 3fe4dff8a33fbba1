"""The run's probe plan: which probes drive traffic at the same time, which wait, and why.

A PR run is mostly waiting: for an alert's ``for``, for Prometheus to scrape,
for spans to be exported. Probes that do not disturb one another wait at the
same time against the one stack; probes that would disturb one another are
ordered here, explicitly, with the reason. :data:`PLAN` is that order, one
table for the whole run, printed by ``conformance run --plan``.

Two ways one probe disturbs another:

* **Attribution by time.** The malformed correlation ids and the W3C vectors
  are sent *alone*: every line the service writes meanwhile is attributed to
  them (LOG-009). The trace requests are sent alone too, because a SERVER
  span that neither carries the harness's User-Agent nor continues the sent
  trace is located as *the one span of that route in flight*, which needs
  the route to itself.
* **Shared metrics.** The cardinality probe and the steady-traffic scrapes
  count series: probes that create series (rate-limit 429s, canaries, the
  live-fire errors) must not run during them. The alert quiet watch expects
  normal traffic only: probes that error, throttle or hit unknown paths wait
  until it ends.

The probes themselves live in the suites (``@implements("name")``), which
read their results through :meth:`ConformanceSession.probe`. Each runs in its
own thread once the probes it comes ``after`` have finished (or reached the
named milestone, ``"probe:milestone"``); a probe not needed by any selected
requirement never runs, and counts as finished for the probes after it.
``sequential=True`` runs them one at a time in plan order: the same verdicts,
slower (the stability benchmark compares both).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conformance._exceptions import HarnessError

if TYPE_CHECKING:
    from conformance._session import ConformanceSession

__all__ = ["PLAN", "PlannedProbe", "ProbeContext", "ProbeRunner", "describe_plan", "implements"]


@dataclass(frozen=True)
class PlannedProbe:
    """One probe of the plan: what it serves, what it must follow, and why."""

    name: str
    requirements: tuple[str, ...]
    what: str
    after: tuple[str, ...] = ()
    why: str = ""
    alone: bool = False
    #: Milestones the probe announces (``ProbeContext.reached``) for probes that wait for them.
    milestones: tuple[str, ...] = ()


_PROVOKED = "malformed-correlation", "trace-vectors"
_TRACE_PROBE_IDS = tuple(f"TRC-{n:03d}" for n in (2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13))

PLAN: tuple[PlannedProbe, ...] = (
    PlannedProbe(
        "malformed-correlation", ("TRC-008", "LOG-009"),
        "malformed correlation ids, one request each",
        why="alone: every line written meanwhile is attributed to the probe (LOG-009)",
        alone=True,
    ),
    PlannedProbe(
        "trace-vectors", (*_TRACE_PROBE_IDS, "LOG-009"),
        "the W3C trace-context vectors, one batch",
        after=("malformed-correlation",),
        why="alone: every line written meanwhile is attributed to the vectors (LOG-009)",
        alone=True,
    ),
    PlannedProbe(
        "trace-requests", _TRACE_PROBE_IDS,
        "every endpoint with and without a traceparent",
        after=("trace-vectors",),
        why="alone: a SERVER span without the harness's User-Agent is located as the only span of its "
        "route in flight, which needs the route to itself",
        alone=True,
    ),
    PlannedProbe(
        "trace-observe", _TRACE_PROBE_IDS,
        "waits for the trace probes' spans and log lines (sends nothing)",
        after=("trace-requests",),
        why="needs the trace requests' answers; sends nothing, so it overlaps everything after them",
    ),
    PlannedProbe(
        "health-probes", ("HLT-001", "HLT-004"),
        "one GET per health probe",
        after=("trace-requests",),
        why="normal traffic",
    ),
    PlannedProbe(
        "health-dependency", ("HLT-002", "HLT-003", "HLT-004"),
        "a second instance of the service with a failing dependency",
        after=("trace-requests",),
        why="sends nothing to the instance under test",
    ),
    PlannedProbe(
        "metrics-steady", ("MET-009", "MET-010"),
        "normal traffic between two scrapes",
        after=("trace-requests",),
        why="its two scrapes must see no new series: before the probes that create series "
        "(cardinality, canaries, rate limits, live-fire errors)",
    ),
    PlannedProbe(
        "alerts-quiet", ("ALR-013",),
        "normal traffic while the live-fired alerts are watched",
        after=("trace-requests",),
        why="normal traffic only: before anything that errors, throttles or hits unknown paths",
    ),
    PlannedProbe(
        "alerts-fire", ("ALR-012",),
        "the live-fire recipes' traffic until their alerts fire",
        after=("alerts-quiet",),
        why="the same alerts as the quiet watch, which must end first",
        milestones=("series",),
    ),
    PlannedProbe(
        "rate-limits", tuple(f"RL-{n:03d}" for n in range(1, 11)),
        "bursts past each limit (each from its own source address), recovery, a second client",
        after=("alerts-quiet", "metrics-steady"),
        why="429s are not normal traffic (quiet watch) and create series (steady scrapes); the other "
        "probes use their own client keys, so a limiter that keys clients (RL-006) throttles only the "
        "probe's; RL-008 is an error if another probe's request was answered 429 meanwhile",
    ),
    PlannedProbe(
        "cardinality", ("MET-006", "MET-007", "MET-008"),
        "requests with fresh ids, headers and unknown paths; series counted before and after",
        after=("trace-requests", "alerts-quiet", "metrics-steady", "alerts-fire:series", "rate-limits"),
        why="its 404s would disturb the quiet watch; it counts series once the live-fire's errors and "
        "the 429s have been scraped, so the only new series are its own; after the whole rate-limit "
        "probe, because its repeated requests may themselves be throttled by a limiter keyed by source "
        "address, and those 429s would land in RL-008's count",
    ),
    PlannedProbe(
        "pii-canaries", ("PII-001", "PII-002", "PII-003", "PII-004", "PII-005", "PII-006", "PII-007"),
        "requests carrying canary values; waits for their logs, spans and samples",
        after=("cardinality",),
        why="canaries may create series: after the series counts",
    ),
    PlannedProbe(
        "trace-uniqueness", ("TRC-009",),
        "traces.uniqueness_requests requests to the probe endpoint",
        after=("trace-requests", "alerts-fire"),
        why="a thousand requests would dilute the error ratio the live-fire drives an alert with "
        "(rate windows reach back over the whole run): after it",
    ),
)  # fmt: skip

_BY_NAME = {p.name: p for p in PLAN}

ProbeFunction = Callable[["ConformanceSession", "ProbeContext"], Any]
_IMPLEMENTATIONS: dict[str, ProbeFunction] = {}


def implements(name: str) -> Callable[[ProbeFunction], ProbeFunction]:
    """Register the function that runs probe ``name`` of :data:`PLAN` (used by the suites)."""
    if name not in _BY_NAME:
        raise KeyError(f"{name!r} is not a probe of conformance._plan.PLAN")

    def register(fn: ProbeFunction) -> ProbeFunction:
        _IMPLEMENTATIONS[name] = fn
        return fn

    return register


class ProbeContext:
    """What a running probe may tell the plan: a milestone reached."""

    def __init__(self, runner: ProbeRunner, name: str) -> None:
        self._runner = runner
        self.name = name

    def reached(self, milestone: str) -> None:
        self._runner._reach(f"{self.name}:{milestone}")


@dataclass
class _Run:
    probe: PlannedProbe
    started: float | None = None
    ended: float | None = None
    result: Any = None
    error: BaseException | None = None


class ProbeRunner:
    """Runs the planned probes a set of requirements needs, each as soon as it may.

    :meth:`start` launches a scheduler thread; :meth:`result` blocks until a
    probe finished and returns its result or raises its exception (a
    :class:`~conformance._exceptions.NoEvidence` raised by a probe reaches the
    tests that read it unchanged). Threads are daemons: on Ctrl-C the run's
    clean-up stops the stack, and the probes' bounded waits end on their own.
    """

    def __init__(
        self,
        session: ConformanceSession,
        requirements: Collection[str] | None,
        *,
        sequential: bool = False,
        plan: Iterable[PlannedProbe] = PLAN,
        implementations: dict[str, ProbeFunction] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.sequential = sequential
        self.plan = tuple(plan)
        self._by_name = {p.name: p for p in self.plan}
        self._impl = _IMPLEMENTATIONS if implementations is None else implementations
        self._clock = clock
        self._origin = clock()
        wanted = set(requirements) if requirements is not None else None
        self._runs = {
            p.name: _Run(p)
            for p in self.plan
            if p.name in self._impl and (wanted is None or wanted.intersection(p.requirements))
        }
        self._reached: set[str] = set()
        self._cond = threading.Condition()
        self._started = False
        self._cancelled = False

    @property
    def scheduled(self) -> tuple[str, ...]:
        return tuple(self._runs)

    def start(self) -> None:
        with self._cond:
            if self._started:
                return
            self._started = True
            self._origin = self._clock()
        threading.Thread(target=self._schedule, name="obsconform-plan", daemon=True).start()

    def cancel(self) -> None:
        """Start nothing more (the session is closing)."""
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()

    def result(self, name: str) -> Any:
        """The probe's result once it finished; its exception re-raised.

        A probe no selected requirement needed (a test run with ``-k``) runs
        here, in the caller's thread, when first asked for.
        """
        if name not in self._by_name:
            raise KeyError(f"{name!r} is not a probe of the plan")
        with self._cond:
            run = self._runs.get(name)
            if run is None:
                run = self._runs[name] = _Run(self._by_name[name], started=self._clock())
                inline = True
            else:
                inline = False
        if inline:
            self._execute(run)
        else:
            if not self._started:
                self.start()
            with self._cond:
                self._cond.wait_for(lambda: run.ended is not None or self._cancelled)
        if run.ended is None:
            raise HarnessError(f"the run was cancelled before probe {name!r} finished")
        if run.error is not None:
            raise run.error
        return run.result

    def wait_all(self) -> None:
        """Block until every scheduled probe has finished (the traffic of the run is over)."""
        if not self._started:
            self.start()
        with self._cond:
            self._cond.wait_for(
                lambda: self._cancelled or all(r.ended is not None for r in self._runs.values())
            )

    def wait_alone(self) -> None:
        """Block until every scheduled ``alone`` probe has finished (nothing else may send
        traffic to the service while one runs, the caller included)."""
        if not self._started:
            self.start()
        with self._cond:
            self._cond.wait_for(
                lambda: (
                    self._cancelled or all(r.ended is not None for r in self._runs.values() if r.probe.alone)
                )
            )

    def timeline(self) -> list[dict[str, Any]]:
        """What ran when (seconds from the plan's start), for the report."""
        rows = []
        for run in sorted(self._runs.values(), key=lambda r: (r.started is None, r.started or 0.0)):
            row: dict[str, Any] = {"probe": run.probe.name, "requirements": list(run.probe.requirements)}
            if run.started is not None:
                row["started_seconds"] = round(run.started - self._origin, 3)
            if run.ended is not None and run.started is not None:
                row["seconds"] = round(run.ended - run.started, 3)
            if run.error is not None:
                first = (str(run.error).splitlines() or [""])[0]
                row["error"] = f"{type(run.error).__name__}: {first}"
            rows.append(row)
        return rows

    # -- scheduling ------------------------------------------------------------
    def _reach(self, key: str) -> None:
        with self._cond:
            self._reached.add(key)
            self._cond.notify_all()

    def _done(self, dependency: str) -> bool:
        """A dependency (``probe`` or ``probe:milestone``) no longer holds anything back."""
        name, _, milestone = dependency.partition(":")
        run = self._runs.get(name)
        if run is None:  # not scheduled: nothing to wait for
            return True
        if run.ended is not None:
            return True
        return bool(milestone) and dependency in self._reached

    def _ready(self, run: _Run) -> bool:
        if run.started is not None or not all(self._done(d) for d in run.probe.after):
            return False
        running = [r for r in self._runs.values() if r.started is not None and r.ended is None]
        if self.sequential or run.probe.alone:
            return not running
        return not any(r.probe.alone for r in running)

    def _schedule(self) -> None:
        with self._cond:
            while not self._cancelled:
                pending = [r for r in self._runs.values() if r.started is None]
                if not pending:
                    return
                # Plan order decides between probes that are ready at the same time.
                for run in pending:
                    if self._ready(run):
                        run.started = self._clock()
                        name = f"obsconform-{run.probe.name}"
                        threading.Thread(target=self._execute, args=(run,), name=name, daemon=True).start()
                        if self.sequential or run.probe.alone:
                            break
                self._cond.wait(timeout=1.0)

    def _execute(self, run: _Run) -> None:
        if run.started is None:
            run.started = self._clock()
        try:
            run.result = self._impl[run.probe.name](self.session, ProbeContext(self, run.probe.name))
        except BaseException as exc:  # handed to the tests that read the result
            run.error = exc
        finally:
            with self._cond:
                run.ended = self._clock()
                self._cond.notify_all()


def describe_plan(
    requirements: Collection[str] | None = None, plan: Iterable[PlannedProbe] = PLAN
) -> list[str]:
    """``conformance run --plan``: the probes in waves (a wave starts when what it follows
    is done), and why."""
    probes = [p for p in plan if requirements is None or set(requirements).intersection(p.requirements)]
    names = {p.name for p in probes}
    wave: dict[str, int] = {}
    for p in probes:  # PLAN lists every probe after what it follows
        # A milestone of a probe is reached while it runs: the same wave, not the next.
        deps = [(d, m) for d, _, m in (a.partition(":") for a in p.after) if d in names]
        wave[p.name] = max((wave[d] + (0 if m else 1) for d, m in deps), default=1)
    lines = []
    for n in sorted(set(wave.values())):
        members = [p for p in probes if wave[p.name] == n]
        lines.append(f"wave {n}:" + (" (one at a time, alone)" if all(p.alone for p in members) else ""))
        for p in members:
            lines.append(f"  {p.name:<20} {', '.join(p.requirements)}")
            lines.append(f"  {'':<20} {p.what}")
            after = [a for a in p.after if a.partition(":")[0] in names]
            if after:
                lines.append(f"  {'':<20} after {', '.join(after)}: {p.why}")
            elif p.why:
                lines.append(f"  {'':<20} {p.why}")
    return lines
