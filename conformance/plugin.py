"""The pytest plugin: suites become requirement verdicts.

Registered through the ``pytest11`` entry point, so ``pytest suites/
--conformance-profile P`` works without the CLI; the CLI drives the same
plugin with a session it has already started. Each suite test carries
``@pytest.mark.requirement("LOG-001")``; its outcome becomes that
requirement's status (a :class:`Failure` → failed, any other exception →
error, never passed), and Allure gets epic = area, feature = id, severity
from the level.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import allure
import pytest

from conformance._exceptions import ConformanceError, Failure, HarnessError, NoEvidence, ProfileError
from conformance._model import Finding, Level, Requirement, RequirementResult, Status, describe_examined
from conformance._process import install_termination_handlers
from conformance._profile import Profile, load_profile
from conformance._requirements import get_requirement
from conformance._session import ConformanceSession

__all__ = ["MAX_EVIDENCE", "RunState", "Verdict"]

#: Evidence items kept per requirement; the rest are counted, not listed.
MAX_EVIDENCE = 50

_SEVERITY = {Status.FAILED: 3, Status.ERROR: 2, Status.SKIPPED: 1, Status.PASSED: 0}


@dataclass
class RunState:
    """What one run accumulates: the profile, the session and the verdicts."""

    profile: Profile | None = None
    report_dir: Path | None = None
    provided_session: ConformanceSession | None = None
    session: ConformanceSession | None = None
    results: dict[str, RequirementResult] = field(default_factory=dict)
    stack: dict[str, Any] = field(default_factory=dict)
    #: The requirement ids of the collected tests that will run (not skipped as not applicable):
    #: the probes of the run's plan that serve them start with the session.
    selected: set[str] = field(default_factory=set)
    #: Run the plan's probes one at a time (``conformance run --sequential``).
    sequential: bool = False
    started_at: float = field(default_factory=time.time)

    def record(self, result: RequirementResult) -> None:
        """Merge a verdict: the worst outcome across a requirement's tests wins."""
        old = self.results.get(result.requirement.id)
        if old is None:
            self.results[result.requirement.id] = result
            return
        if _SEVERITY[result.status] > _SEVERITY[old.status]:
            old.status, old.message = result.status, result.message
        for kind, count in result.examined.items():
            old.examined[kind] = old.examined.get(kind, 0) + count
        old.evidence.extend(result.evidence)
        old.duration_seconds += result.duration_seconds


STATE_KEY = pytest.StashKey[RunState]()
_VERDICT_KEY = pytest.StashKey["Verdict"]()
_SETUP_SECONDS_KEY = pytest.StashKey[float]()


class Verdict:
    """A suite test's handle on its requirement: record what it examined, then check findings.

    The rule *no verdict without evidence* lives here: :meth:`check` passes
    only when :meth:`examined` recorded at least one item ("412 lines", "37
    requests"); with nothing examined it raises :class:`NoEvidence`, so the
    requirement is ``error`` with the reason and the fix. The plugin turns a
    test that passes without having recorded anything into ``error`` too, so
    a new requirement cannot forget it.
    """

    def __init__(self, requirement: Requirement) -> None:
        self.requirement = requirement
        self.evidence: list[dict[str, Any]] = []
        self.findings: list[Finding] = []
        #: What the verdict rests on, by kind: ``{"lines": 412, "requests": 37}``.
        self.counts: dict[str, int] = {}
        self._none_because = ""
        self._hint = ""

    def note(self, **facts: Any) -> None:
        """Context worth keeping whatever the outcome (settings, sources)."""
        self.evidence.append(facts)

    def examined(self, *, none_because: str = "", hint: str = "", **counts: int) -> None:
        """Record what the verdict rests on (added up over calls).

        ``none_because`` and ``hint`` are the error's reason and fix if every
        count stays 0: "no JSON record on stdout", "set logs.stream".
        """
        for kind, count in counts.items():
            self.counts[kind] = self.counts.get(kind, 0) + int(count)
        if none_because:
            self._none_because, self._hint = none_because, hint

    @property
    def has_evidence(self) -> bool:
        return any(self.counts.values())

    def require_evidence(self) -> None:
        """Raise :class:`NoEvidence` unless something was examined."""
        if self.has_evidence:
            return
        if self._none_because:
            raise NoEvidence(self._none_because, hint=self._hint)
        what = describe_examined(self.counts) if self.counts else "nothing recorded"
        raise NoEvidence(f"nothing to examine ({what})", hint=self._hint)

    def check(self, findings: Sequence[Finding], *, what: str) -> None:
        """Pass when ``findings`` is empty and something was examined, else raise.

        Findings raise :class:`Failure` (the service broke the requirement,
        whatever else is missing); no findings and nothing examined raise
        :class:`NoEvidence`.
        """
        __tracebackhide__ = True  # the failure is the service's, not this frame's
        stray = sorted({f.requirement_id for f in findings} - {self.requirement.id})
        if stray:
            raise HarnessError(
                f"suite wiring: {self.requirement.id} test got findings for {', '.join(stray)}"
            )
        self.findings = list(findings)
        if not findings:
            self.require_evidence()
            return
        shown = "\n".join(f"  - {f.message}" for f in findings[:10])
        more = f"\n  … and {len(findings) - 10} more" if len(findings) > 10 else ""
        raise Failure(
            f"{self.requirement.id} ({self.requirement.level.value}) {self.requirement.title}: "
            f"{len(findings)} finding(s) in {what}\n{shown}{more}",
            tuple(findings),
        )


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "observability conformance (obsconform)")
    group.addoption("--conformance-profile", metavar="PATH", help="conformance profile (YAML) of the service")
    group.addoption("--conformance-report-dir", metavar="DIR", help="write conformance-report.json etc. here")
    group.addoption("--conformance-service-command", metavar="CMD", help="override service.command")
    group.addoption("--conformance-service-port", metavar="PORT", type=int, help="override service.port")
    group.addoption(
        "--conformance-sequential",
        action="store_true",
        help="run the plan's probes one at a time (same verdicts, slower)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requirement(id): the conformance requirement this test decides")
    state = RunState(sequential=bool(config.getoption("--conformance-sequential", default=False)))
    config.stash[STATE_KEY] = state
    for plugin in config.pluginmanager.get_plugins():
        if getattr(plugin, "is_conformance_provided_session", False):
            # The CLI started the session; it also writes the reports from our state.
            plugin.state = state
            state.provided_session = plugin.session
            state.profile = plugin.session.profile
            return
    profile_path = config.getoption("--conformance-profile")
    if profile_path:
        try:
            state.profile = load_profile(profile_path).with_overrides(
                service_command=config.getoption("--conformance-service-command"),
                service_port=config.getoption("--conformance-service-port"),
            )
        except ProfileError as exc:
            raise pytest.UsageError(str(exc)) from None
        install_termination_handlers()
    report_dir = config.getoption("--conformance-report-dir")
    state.report_dir = Path(report_dir) if report_dir else None


def _requirement_of(item: pytest.Item) -> Requirement | None:
    marker = item.get_closest_marker("requirement")
    if marker is None:
        return None
    if len(marker.args) != 1:
        raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.requirement takes exactly one id")
    try:
        return get_requirement(marker.args[0])
    except KeyError as exc:
        raise pytest.UsageError(f"{item.nodeid}: {exc.args[0]}") from None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    state = config.stash[STATE_KEY]
    for item in items:
        req = _requirement_of(item)
        if req is None:
            continue
        if state.profile is not None and req.id in state.profile.not_applicable:
            reason = state.profile.not_applicable[req.id]
            item.add_marker(pytest.mark.skip(reason=f"not applicable: {reason}"))
    # PII detectors scan what every other suite's traffic left behind; alert live-fire drives
    # errors on purpose, so it follows the suites that measure steady behaviour; the semantic
    # conventions judge every span of the run (live-fire's 5xx among them); log checks read
    # everything the service wrote, so they run last.
    items.sort(key=lambda it: _RUN_LAST.get(_area_of(it), 0))


_RUN_LAST = {"PII": 1, "ALR": 2, "SEM": 3, "LOG": 4}


def pytest_collection_finish(session: pytest.Session) -> None:
    """The requirements of the tests that will run (after ``-k``, not applicable ones left out)."""
    state = session.config.stash[STATE_KEY]
    for item in session.items:
        req = _requirement_of(item)
        if req is not None and item.get_closest_marker("skip") is None:
            state.selected.add(req.id)


def _area_of(item: pytest.Item) -> str:
    marker = item.get_closest_marker("requirement")
    return str(marker.args[0]).partition("-")[0] if marker and marker.args else ""


@pytest.fixture(scope="session")
def conformance_session(request: pytest.FixtureRequest) -> Iterator[ConformanceSession]:
    """The run's started stack with the baseline traffic sent."""
    state = request.config.stash[STATE_KEY]
    if state.provided_session is not None:
        state.provided_session.start_plan(state.selected, sequential=state.sequential)
        yield state.provided_session
        return
    if state.profile is None:
        raise pytest.UsageError("conformance suites need --conformance-profile PATH")
    workdir = Path(request.config.getoption("--conformance-report-dir") or ".") / "work"
    if state.report_dir is None:
        workdir = request.getfixturevalue("tmp_path_factory").mktemp("conformance")
    session = ConformanceSession.open(state.profile, workdir)
    state.session = session
    try:
        session.start_plan(state.selected, sequential=state.sequential)
        yield session
    finally:
        session.close()
        state.stack = session.stack_description


@pytest.fixture
def verdict(request: pytest.FixtureRequest) -> Verdict:
    """The current test's requirement handle (see :class:`Verdict`)."""
    req = _requirement_of(request.node)
    if req is None:
        raise pytest.UsageError(f"{request.node.nodeid} uses `verdict` but has no @pytest.mark.requirement")
    v = Verdict(req)
    request.node.stash[_VERDICT_KEY] = v
    return v


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    req = _requirement_of(item)
    if req is None:
        return
    allure.dynamic.epic(req.area)
    allure.dynamic.feature(req.id)
    allure.dynamic.severity(
        allure.severity_level.CRITICAL if req.level is Level.MUST else allure.severity_level.NORMAL
    )
    allure.dynamic.label("requirement_level", req.level.value)
    allure.dynamic.description(f"Source: {req.source}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    req = _requirement_of(item)
    if req is not None:
        # The Allure listener names the test at setup; a title set here survives.
        allure.dynamic.title(f"{req.id} {req.title}")
    yield
    v = item.stash.get(_VERDICT_KEY, None)
    if v is not None and (v.evidence or v.findings or v.counts):
        payload = {
            "examined": v.counts,
            "notes": v.evidence,
            "findings": [f.to_dict() for f in v.findings[:MAX_EVIDENCE]],
        }
        allure.attach(
            json.dumps(payload, indent=2, default=str),
            name="evidence",
            attachment_type=allure.attachment_type.JSON,
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    req = _requirement_of(item)
    if req is None:
        return
    state = item.config.stash[STATE_KEY]
    v = item.stash.get(_VERDICT_KEY, None)
    notes = list(v.evidence) if v else []
    counts = dict(v.counts) if v else {}
    result: RequirementResult | None = None
    if report.skipped and call.excinfo is not None:
        reason = getattr(call.excinfo.value, "msg", None) or str(call.excinfo.value)
        result = RequirementResult(req, Status.SKIPPED, reason, notes)
    elif report.when == "setup" and report.failed and call.excinfo is not None:
        result = RequirementResult(req, Status.ERROR, _one_line(call.excinfo.value), notes)
    elif report.when == "call":
        if report.passed and (v is None or not v.has_evidence):
            # The rule lives here so no suite test can forget it: a pass rests on evidence.
            result = RequirementResult(
                req, Status.ERROR,
                "harness defect: the test passed without recording what it examined "
                "(call verdict.examined(...) before verdict.check)",
                notes,
            )
        elif report.passed:
            result = RequirementResult(req, Status.PASSED, f"examined {describe_examined(counts)}", notes)
        elif call.excinfo is not None:
            exc = call.excinfo.value
            if isinstance(exc, Failure):
                evidence = notes + [f.to_dict() for f in exc.findings[:MAX_EVIDENCE]]
                if len(exc.findings) > MAX_EVIDENCE:
                    evidence.append({"omitted_findings": len(exc.findings) - MAX_EVIDENCE})
                first = exc.findings[0].message if exc.findings else str(exc).splitlines()[0]
                msg = f"{len(exc.findings)} finding(s); first: {first}"
                result = RequirementResult(req, Status.FAILED, msg, evidence)
            elif isinstance(exc, AssertionError) and not isinstance(exc, ConformanceError):
                result = RequirementResult(req, Status.FAILED, _one_line(exc), notes)
            else:
                result = RequirementResult(req, Status.ERROR, _one_line(exc), notes)
    if report.when == "setup":
        # Probes often run in fixtures (a burst, a trace wait); their time is the requirement's too.
        item.stash[_SETUP_SECONDS_KEY] = report.duration
    if result is not None:
        result.examined = counts
        result.duration_seconds = report.duration + (
            item.stash.get(_SETUP_SECONDS_KEY, 0.0) if report.when == "call" else 0.0
        )
        state.record(result)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if not isinstance(exc, ConformanceError) else first


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE_KEY, None)
    if (
        state is None
        or state.provided_session is not None
        or state.report_dir is None
        or state.profile is None
    ):
        return
    from conformance.report import ReportNotWritten, write_reports

    try:
        write_reports(
            state.report_dir,
            profile=state.profile,
            results=state.results,
            stack=state.stack,
            started_at=state.started_at,
            finished_at=time.time(),
        )
    except ReportNotWritten as exc:
        # Said once, at the end; the run exits 3 (pytest's INTERNAL_ERROR, the harness-error code).
        sys.stderr.write(f"conformance: error: {exc}\n")
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
