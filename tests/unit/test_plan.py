"""The run's probe plan (conformance._plan): order, exclusivity, milestones, errors, the printed plan."""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable
from typing import Any

import pytest

from conformance._exceptions import NoEvidence
from conformance._plan import _IMPLEMENTATIONS, PLAN, PlannedProbe, ProbeContext, ProbeRunner, describe_plan
from conformance._requirements import all_requirements

TIMEOUT = 10.0  # a deadline for the events below, never a sleep


class Recorder:
    """Probe functions that log start/end and block on an event until released."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.lock = threading.Lock()
        self.release: dict[str, threading.Event] = {}
        self.started: dict[str, threading.Event] = {}

    def probe(self, name: str, *, result: Any = None, raises: BaseException | None = None,
              milestone: str = "") -> Callable[[Any, ProbeContext], Any]:  # fmt: skip
        self.release[name] = threading.Event()
        self.started[name] = threading.Event()

        def run(_session: Any, ctx: ProbeContext) -> Any:
            with self.lock:
                self.log.append(f"start {name}")
            self.started[name].set()
            if milestone:
                ctx.reached(milestone)
            assert self.release[name].wait(TIMEOUT), f"{name} was never released"
            with self.lock:
                self.log.append(f"end {name}")
            if raises is not None:
                raise raises
            return result

        return run


def _runner(plan: list[PlannedProbe], impl: dict[str, Any], wanted: set[str] | None = None,
            **kw: Any) -> ProbeRunner:  # fmt: skip
    runner = ProbeRunner(object(), wanted, plan=plan, implementations=impl, **kw)  # type: ignore[arg-type]
    runner.start()
    return runner


def test_a_probe_starts_only_after_what_it_follows() -> None:
    rec = Recorder()
    plan = [PlannedProbe("a", ("X-1",), "a"), PlannedProbe("b", ("X-1",), "b", after=("a",))]
    runner = _runner(plan, {"a": rec.probe("a", result=1), "b": rec.probe("b", result=2)})
    assert rec.started["a"].wait(TIMEOUT)
    assert not rec.started["b"].is_set()
    rec.release["a"].set()
    rec.release["b"].set()
    assert runner.result("b") == 2
    assert rec.log == ["start a", "end a", "start b", "end b"]


def test_independent_probes_overlap() -> None:
    rec = Recorder()
    plan = [PlannedProbe("a", ("X-1",), "a"), PlannedProbe("b", ("X-1",), "b")]
    runner = _runner(plan, {"a": rec.probe("a"), "b": rec.probe("b")})
    # Both run before either is released: they overlap.
    assert rec.started["a"].wait(TIMEOUT) and rec.started["b"].wait(TIMEOUT)
    rec.release["a"].set()
    rec.release["b"].set()
    runner.wait_all()
    assert {e for e in rec.log if e.startswith("start")} == {"start a", "start b"}


def test_sequential_runs_one_at_a_time_in_plan_order() -> None:
    rec = Recorder()
    plan = [PlannedProbe("a", ("X-1",), "a"), PlannedProbe("b", ("X-1",), "b")]
    runner = _runner(plan, {"a": rec.probe("a"), "b": rec.probe("b")}, sequential=True)
    assert rec.started["a"].wait(TIMEOUT)
    assert not rec.started["b"].is_set()
    rec.release["a"].set()
    rec.release["b"].set()
    runner.wait_all()
    assert rec.log == ["start a", "end a", "start b", "end b"]


def test_an_alone_probe_runs_with_nothing_else() -> None:
    rec = Recorder()
    plan = [PlannedProbe("lonely", ("X-1",), "l", alone=True), PlannedProbe("other", ("X-1",), "o")]
    runner = _runner(plan, {"lonely": rec.probe("lonely"), "other": rec.probe("other")})
    assert rec.started["lonely"].wait(TIMEOUT)
    assert not rec.started["other"].is_set()
    rec.release["lonely"].set()
    rec.release["other"].set()
    runner.wait_all()
    assert rec.log[:2] == ["start lonely", "end lonely"]


def test_a_milestone_lets_the_next_probe_start_while_the_first_runs() -> None:
    rec = Recorder()
    plan = [
        PlannedProbe("fire", ("X-1",), "f", milestones=("series",)),
        PlannedProbe("count", ("X-1",), "c", after=("fire:series",)),
    ]
    runner = _runner(plan, {"fire": rec.probe("fire", milestone="series"), "count": rec.probe("count")})
    assert rec.started["count"].wait(TIMEOUT)
    assert "end fire" not in rec.log
    rec.release["fire"].set()
    rec.release["count"].set()
    runner.wait_all()


def test_a_probe_nobody_needs_never_runs_and_holds_nothing_back() -> None:
    rec = Recorder()
    plan = [PlannedProbe("unneeded", ("X-9",), "u"), PlannedProbe("b", ("X-1",), "b", after=("unneeded",))]
    runner = _runner(plan, {"unneeded": rec.probe("unneeded"), "b": rec.probe("b", result="ok")}, {"X-1"})
    rec.release["b"].set()
    assert runner.result("b") == "ok"
    assert runner.scheduled == ("b",)
    assert not rec.started["unneeded"].is_set()


def test_a_probes_exception_reaches_every_reader_unchanged() -> None:
    rec = Recorder()
    error = NoEvidence("nothing to probe", hint="add rules")
    plan = [PlannedProbe("a", ("X-1",), "a"), PlannedProbe("b", ("X-1",), "b", after=("a",))]
    runner = _runner(plan, {"a": rec.probe("a", raises=error), "b": rec.probe("b", result=2)})
    rec.release["a"].set()
    rec.release["b"].set()
    for _ in range(2):
        with pytest.raises(NoEvidence) as caught:
            runner.result("a")
        assert caught.value is error
    assert runner.result("b") == 2  # a failed probe is finished: what follows it runs
    assert any(
        str(row.get("error", "")).startswith("NoEvidence: nothing to probe") for row in runner.timeline()
    )


def test_a_probe_not_scheduled_runs_inline_when_asked_for() -> None:
    plan = [PlannedProbe("a", ("X-1",), "a")]
    runner = ProbeRunner(object(), (), plan=plan, implementations={"a": lambda s, c: threading.get_ident()})  # type: ignore[arg-type]
    assert runner.result("a") == threading.get_ident()


def test_cancel_releases_readers_of_unstarted_probes() -> None:
    rec = Recorder()
    plan = [PlannedProbe("a", ("X-1",), "a"), PlannedProbe("b", ("X-1",), "b", after=("a",))]
    runner = _runner(plan, {"a": rec.probe("a"), "b": rec.probe("b")})
    assert rec.started["a"].wait(TIMEOUT)
    runner.cancel()
    with pytest.raises(Exception, match="cancelled"):
        runner.result("b")
    rec.release["a"].set()


# -- the plan itself ---------------------------------------------------------
def test_every_dependency_names_an_earlier_probe_and_a_declared_milestone() -> None:
    seen: dict[str, PlannedProbe] = {}
    for probe in PLAN:
        for dependency in probe.after:
            name, _, milestone = dependency.partition(":")
            assert name in seen, f"{probe.name} follows {name}, which is not earlier in PLAN"
            assert not milestone or milestone in seen[name].milestones, dependency
        seen[probe.name] = probe


def test_every_probe_is_implemented_and_serves_declared_requirements() -> None:
    import suites

    for info in pkgutil.iter_modules(suites.__path__):
        importlib.import_module(f"suites.{info.name}")
    importlib.import_module("conformance._session")
    known = {r.id for r in all_requirements()}
    for probe in PLAN:
        assert probe.name in _IMPLEMENTATIONS, f"no @implements({probe.name!r}) in the suites"
        assert set(probe.requirements) <= known, probe.name
        assert probe.why, f"{probe.name} says not why it is ordered so"


def test_the_printed_plan_shows_waves_reasons_and_only_what_is_needed() -> None:
    lines = describe_plan({"ALR-012", "ALR-013", "MET-006"})
    text = "\n".join(lines)
    assert "alerts-quiet" in text and "alerts-fire" in text and "cardinality" in text
    assert "rate-limits" not in text and "pii-canaries" not in text
    wave_of = {}
    wave = 0
    for line in lines:
        if line.startswith("wave "):
            wave = int(line.split()[1].rstrip(":"))
        elif line.startswith("  ") and line.split()[0] in {"alerts-quiet", "alerts-fire", "cardinality"}:
            wave_of[line.split()[0]] = wave
    # The cardinality probe waits only for the live-fire's series milestone: the same wave.
    assert wave_of["alerts-quiet"] < wave_of["alerts-fire"] == wave_of["cardinality"]
    assert "its 404s would disturb the quiet watch" in text


def test_wait_alone_returns_once_the_alone_probes_are_done() -> None:
    rec = Recorder()
    plan = [PlannedProbe("lonely", ("X-1",), "l", alone=True), PlannedProbe("other", ("X-1",), "o")]
    runner = _runner(plan, {"lonely": rec.probe("lonely"), "other": rec.probe("other")})
    waited = threading.Event()
    threading.Thread(target=lambda: (runner.wait_alone(), waited.set()), daemon=True).start()
    assert rec.started["lonely"].wait(TIMEOUT)
    assert not waited.is_set()
    rec.release["lonely"].set()
    assert waited.wait(TIMEOUT)
    rec.release["other"].set()
    runner.wait_all()
