"""promtool for the alert checks: ``check rules``, ``test rules`` and ``check metrics``.

:class:`PromtoolRunner` is the protocol the suites use; :class:`LocalPromtool`
runs the binary :func:`~conformance.stack._prometheus.find_prometheus_binary`
finds (``OBSCONFORM_PROMTOOL_BIN``, else ``PATH``). A container runner (the
``prom/prometheus`` image with entrypoint ``promtool``) implements the same
protocol: it receives host paths, bind-mounts their directories read-only
(a unit-test file names its rule files relative to itself, so the test
file's directory and the rule files' directories must all be mounted),
maps the paths it reports back to the host paths it was given, and reuses
the pure parsers below, so both runners produce identical results.

Output formats (promtool 2.42, Debian bookworm, checked by hand):

* ``check rules``: stdout ``Checking FILE`` then ``  SUCCESS: N rules found``;
  problems go to stderr after ``  FAILED:``, one ``FILE: [line:col: ]group
  "g", rule 1, "Name": …`` line per error (exit 1), or a ``lint error …``
  block (exit 0, or 3 with ``--lint-fatal``). Each file is checked in its own
  run, so problems never have to be matched to files by position.
* ``test rules``: JUnit XML with ``--junit=PATH`` (added in Prometheus 2.55,
  PR #14506: ``<testsuite name=FILE>`` per file, ``<testcase name=GROUP>``
  per test group with ``<failure>``/``<error>``). 2.42 has no ``--junit``, so
  the runner asks the binary (``test rules --help``) and otherwise parses
  the text output: ``  SUCCESS`` on stdout, or ``  FAILED:`` on stderr
  followed by one block per failed assertion, starting ``    name: GROUP,``
  when the group has a name. :attr:`RuleTestResult.source` says which was parsed.
* ``check metrics`` (stdin): one ``metric problem`` line per lint problem on
  stderr (exit 3), ``error while linting: …`` for an unparsable exposition
  (exit 1); ``--extended`` prints a cardinality table on stdout.

promtool that cannot be run, times out, or rejects our own command line
raises :class:`~conformance._exceptions.HarnessError`; problems in the
rules are data in the results.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import yaml

from conformance._exceptions import HarnessError
from conformance._process import RUN_ID, RUN_ID_ENV

__all__ = [
    "DEFAULT_PROMTOOL_TIMEOUT",
    "LocalPromtool",
    "MetricsCheckResult",
    "MetricsProblem",
    "PromtoolCommands",
    "PromtoolRun",
    "PromtoolRunner",
    "RuleCheckResult",
    "RuleFileCheck",
    "RuleTestCase",
    "RuleTestResult",
    "default_runner",
    "loadable_rule_files",
    "parse_check_metrics_output",
    "parse_check_rules_output",
    "parse_junit",
    "parse_test_rules_text",
    "rule_dirs",
    "rule_test_group_names",
]

#: Seconds one promtool invocation may take before it is killed.
DEFAULT_PROMTOOL_TIMEOUT = 60.0

LintMode = Literal["all", "duplicate-rules", "none"]


@dataclass(frozen=True, slots=True)
class PromtoolRun:
    """One promtool invocation as it happened."""

    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str
    duration_seconds: float


@dataclass(frozen=True, slots=True)
class RuleFileCheck:
    """``promtool check rules`` on one file.

    ``errors`` make the file unusable (Prometheus would refuse to load it);
    ``lint`` holds promtool's lint findings, which do not.
    """

    file: str
    ok: bool
    rules_found: int | None
    errors: tuple[str, ...]
    lint: tuple[str, ...]
    run: PromtoolRun


@dataclass(frozen=True, slots=True)
class RuleCheckResult:
    lint: str
    files: tuple[RuleFileCheck, ...]

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.files)


@dataclass(frozen=True, slots=True)
class RuleTestCase:
    """One test group of a promtool unit-test file (``name`` is ``""`` for unnamed groups).

    ``error`` is set when the file could not be run at all (bad YAML, a rule
    file that does not load); ``failures`` holds promtool's messages for
    assertions that did not hold.
    """

    file: str
    name: str
    failures: tuple[str, ...] = ()
    error: str = ""

    @property
    def passed(self) -> bool:
        return not self.failures and not self.error


@dataclass(frozen=True, slots=True)
class RuleTestResult:
    files: tuple[str, ...]
    cases: tuple[RuleTestCase, ...]
    #: ``junit`` when promtool wrote JUnit XML, ``text`` when its text output was parsed.
    source: Literal["junit", "text"]
    runs: tuple[PromtoolRun, ...]
    junit_path: str | None = None

    @property
    def exit_code(self) -> int:
        return max((run.exit_code for run in self.runs), default=0)

    @property
    def failed(self) -> tuple[RuleTestCase, ...]:
        return tuple(case for case in self.cases if not case.passed)


@dataclass(frozen=True, slots=True)
class MetricsProblem:
    metric: str
    message: str


@dataclass(frozen=True, slots=True)
class MetricsCheckResult:
    """``promtool check metrics`` on one exposition."""

    exit_code: int
    problems: tuple[MetricsProblem, ...]
    parse_error: str
    #: ``(metric, series, share in percent)`` rows of ``--extended``.
    cardinality: tuple[tuple[str, int, float], ...]
    run: PromtoolRun


@runtime_checkable
class PromtoolRunner(Protocol):
    """Runs promtool somewhere (a local binary, a container) on host paths."""

    def describe(self) -> dict[str, Any]:
        """What ran, for the report: ``{"kind": "local"|"container", "binary"|"image": …, "version": …}``."""
        ...

    def check_rules(self, files: Sequence[Path], lint: LintMode = "all") -> RuleCheckResult: ...

    def test_rules(self, files: Sequence[Path], junit_path: Path | None = None) -> RuleTestResult:
        """Run the unit-test files; with ``junit_path`` and a promtool that
        supports it, the JUnit XML is written there and parsed."""
        ...

    def check_metrics(self, text: str, extended: bool = False) -> MetricsCheckResult: ...


def default_runner(*, timeout: float = DEFAULT_PROMTOOL_TIMEOUT) -> PromtoolRunner:
    """The promtool to use for this run.

    Today the local binary; once the container runner exists, the
    ``prom/prometheus`` image when a Docker engine is reachable, this local
    binary otherwise. Either way ``describe()`` tells the report which ran.
    """
    return LocalPromtool.discover(timeout=timeout)


class PromtoolCommands:
    """The promtool commands both runners share, and how their output is read.

    A runner supplies :meth:`_run` (one promtool invocation: ``reads`` and
    ``writes`` are the host directories the command needs, ``stdin`` its input)
    and, when promtool sees other paths than the host's, :meth:`_where` and
    :meth:`_to_host`. Everything else — which commands, one file per
    ``check rules`` run, JUnit or text for ``test rules`` — is decided here once.
    """

    timeout: float
    _junit: bool | None

    def _run(
        self,
        args: Sequence[str],
        *,
        stdin: str | None = None,
        reads: Sequence[Path] = (),
        writes: Sequence[Path] = (),
    ) -> PromtoolRun:
        raise NotImplementedError

    def _where(self, path: Path) -> str:
        """A host path as promtool sees it."""
        return str(path)

    def _to_host(self, text: str) -> str:
        """Text promtool wrote, with the paths it saw turned back into host paths."""
        return text

    def supports_junit(self) -> bool:
        """Whether this promtool has ``test rules --junit`` (Prometheus 2.55+); asked once."""
        if self._junit is None:
            run = self._run(["test", "rules", "--help"])
            self._junit = "--junit" in run.stdout + run.stderr
        return self._junit

    def check_rules(self, files: Sequence[Path], lint: LintMode = "all") -> RuleCheckResult:
        checks = []
        for file in files:
            file = Path(file).resolve()
            run = self._run(["check", "rules", f"--lint={lint}", self._where(file)], reads=[file.parent])
            _refuse_usage_error(run)
            checks.append(parse_check_rules_output(str(file), run))
        return RuleCheckResult(lint=lint, files=tuple(checks))

    def test_rules(self, files: Sequence[Path], junit_path: Path | None = None) -> RuleTestResult:
        paths = [Path(f).resolve() for f in files]
        names = [str(p) for p in paths]
        if not paths:
            return RuleTestResult(files=(), cases=(), source="text", runs=())
        if junit_path is not None and self.supports_junit():
            junit_path = junit_path.resolve()
            junit_path.parent.mkdir(parents=True, exist_ok=True)
            run = self._run(
                ["test", "rules", f"--junit={self._where(junit_path)}", *map(self._where, paths)],
                reads=rule_dirs(paths),
                writes=[junit_path.parent],
            )
            _refuse_usage_error(run)
            try:
                xml_text = self._to_host(junit_path.read_text(encoding="utf-8"))
            except OSError as exc:
                raise HarnessError(
                    f"promtool test rules exited {run.exit_code}, no JUnit at {junit_path}: {exc.strerror}",
                    hint=_tail(run.stderr),
                ) from None
            return RuleTestResult(tuple(names), parse_junit(xml_text), "junit", (run,), str(junit_path))
        runs: list[PromtoolRun] = []
        cases: list[RuleTestCase] = []
        for path in paths:
            run = self._run(["test", "rules", self._where(path)], reads=rule_dirs([path]))
            _refuse_usage_error(run)
            runs.append(run)
            cases.extend(parse_test_rules_text(str(path), run, rule_test_group_names(path)))
        return RuleTestResult(tuple(names), tuple(cases), "text", tuple(runs))

    def check_metrics(self, text: str, extended: bool = False) -> MetricsCheckResult:
        run = self._run(["check", "metrics", *(["--extended"] if extended else [])], stdin=text)
        _refuse_usage_error(run)
        return parse_check_metrics_output(run)


class LocalPromtool(PromtoolCommands):
    """The ``promtool`` binary on this machine."""

    kind = "local"

    def __init__(self, binary: str, *, version: str = "", timeout: float = DEFAULT_PROMTOOL_TIMEOUT) -> None:
        self.binary = binary
        self.version = version
        self.timeout = timeout
        self._junit = None

    def __repr__(self) -> str:
        return f"<LocalPromtool {self.binary} {self.version}>"

    @classmethod
    def discover(cls, *, timeout: float = DEFAULT_PROMTOOL_TIMEOUT) -> LocalPromtool:
        """The promtool :func:`find_prometheus_binary` finds, with its version; raises StackError if none."""
        # The stack room is only needed to find the binary; imported here so
        # that checks importing this module's value types never load it.
        from conformance.stack._prometheus import binary_version, find_prometheus_binary

        binary = find_prometheus_binary("promtool")
        return cls(binary, version=binary_version(binary), timeout=timeout)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "binary": self.binary,
            "version": self.version,
            "junit": self.supports_junit(),
        }

    def _run(
        self,
        args: Sequence[str],
        *,
        stdin: str | None = None,
        reads: Sequence[Path] = (),
        writes: Sequence[Path] = (),
    ) -> PromtoolRun:
        argv = (self.binary, *args)
        env = {**os.environ, RUN_ID_ENV: RUN_ID}
        started = time.monotonic()
        try:
            done = subprocess.run(
                argv, input=stdin, capture_output=True, text=True, timeout=self.timeout, check=False, env=env
            )
        except subprocess.TimeoutExpired:
            raise HarnessError(
                f"{' '.join(argv)} did not finish within {self.timeout:g}s (killed)",
                hint="raise alerts.promtool_timeout in the profile",
            ) from None
        except OSError as exc:
            raise HarnessError(f"cannot run {self.binary}: {exc.strerror or exc}") from None
        return PromtoolRun(argv, done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def loadable_rule_files(
    runner: PromtoolRunner, files: Sequence[Path]
) -> tuple[tuple[Path, ...], dict[str, str]]:
    """The rule files Prometheus can load — those ``promtool check rules`` (no lint)
    accepts — and, for the others, promtool's first error.

    A file Prometheus cannot parse stops it from starting at all; loading only
    the accepted ones keeps every other check running, and ALR-001/ALR-011
    report the rejected file.
    """
    accepted: list[Path] = []
    rejected: dict[str, str] = {}
    for check in runner.check_rules(files, lint="none").files:
        if check.ok:
            accepted.append(Path(check.file))
        else:
            rejected[check.file] = check.errors[0] if check.errors else _tail(check.run.stderr, 300)
    return tuple(accepted), rejected


def rule_dirs(test_files: Sequence[Path]) -> list[Path]:
    """The directories a ``test rules`` run reads: the unit-test files' and those of
    the rule files they name (relative to themselves); nested ones are covered by
    their parent."""
    dirs: dict[str, Path] = {}
    for test_file in test_files:
        dirs[str(test_file.parent)] = test_file.parent
        try:
            data = yaml.safe_load(test_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        for rule_file in (data or {}).get("rule_files", []) if isinstance(data, dict) else []:
            resolved = (test_file.parent / str(rule_file)).resolve()
            dirs[str(resolved.parent)] = resolved.parent
    ordered = sorted(dirs.values(), key=lambda p: len(p.parts))
    kept: list[Path] = []
    for directory in ordered:
        if not any(directory.is_relative_to(parent) for parent in kept):
            kept.append(directory)
    return kept


def _refuse_usage_error(run: PromtoolRun) -> None:
    """promtool's own ``promtool: error: …`` lines mean our command line was wrong."""
    for line in run.stderr.splitlines():
        if line.startswith("promtool: error:"):
            raise HarnessError(f"{' '.join(run.argv)}: {line.removeprefix('promtool: error:').strip()}")


def _tail(text: str, limit: int = 500) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]


_RULES_FOUND = re.compile(r"SUCCESS: (\d+) rules found")


def parse_check_rules_output(file: str, run: PromtoolRun) -> RuleFileCheck:
    """``check rules`` output of a run on the single ``file``."""
    found = _RULES_FOUND.search(run.stdout)
    failed_lines = _after_failed(run.stderr)
    lint: list[str] = []
    errors: list[str] = []
    if failed_lines and failed_lines[0].startswith("lint error"):
        lint.append("\n".join(failed_lines))
    else:
        for line in failed_lines:
            # Continuation lines (a YAML error's detail) belong to the error above them.
            if errors and (line.startswith(" ") or not line.startswith(file)):
                errors[-1] += "\n" + line
            else:
                errors.append(line)
    if run.exit_code == 1 and not errors:
        errors.append(_tail(run.stderr) or f"promtool exited {run.exit_code} without a message")
    return RuleFileCheck(
        file=file,
        ok=run.exit_code in (0, 3) and not errors,
        rules_found=int(found.group(1)) if found else None,
        errors=tuple(errors),
        lint=tuple(lint),
        run=run,
    )


def _after_failed(stderr: str) -> list[str]:
    """Non-empty stderr lines after the first ``FAILED:`` marker."""
    lines = stderr.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "FAILED:":
            return [x for x in lines[i + 1 :] if x.strip() and x.strip() != "FAILED:"]
    return []


def rule_test_group_names(file: Path) -> list[str]:
    """The ``tests[].name`` of a unit-test file, in order ("" for unnamed); [] if unreadable.

    The text output only names failing groups; this lists the passing ones too.
    """
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    tests = data.get("tests") if isinstance(data, dict) else None
    if not isinstance(tests, list):
        return []
    return [str(t.get("name", "")) if isinstance(t, dict) else "" for t in tests]


_GROUP_LINE = re.compile(r"^    name: (?P<name>.*),\s*$")
_ASSERTION_LINE = re.compile(r"^    (alertname|expr|rule): ")


def parse_test_rules_text(file: str, run: PromtoolRun, group_names: Sequence[str]) -> list[RuleTestCase]:
    """Cases of one ``test rules FILE`` run from its text output.

    Each failure block is attributed to its group when promtool names it;
    failures of unnamed groups are collected in one case named ``""``, and
    an error that stopped the whole file (bad YAML, unloadable rules) becomes
    a case with ``error`` set.
    """
    if run.exit_code == 0:
        return [RuleTestCase(file, name) for name in group_names]
    blocks: list[tuple[str | None, list[str]]] = []  # (group or None, lines)
    aborted: list[str] = []
    for line in _after_failed(run.stderr):
        group = _GROUP_LINE.match(line)
        if group:
            blocks.append((group.group("name"), [line.strip()]))
        elif _ASSERTION_LINE.match(line):
            if blocks and blocks[-1][0] is not None and len(blocks[-1][1]) == 1:
                blocks[-1][1].append(line.strip())
            else:
                blocks.append((None, [line.strip()]))
        elif not line.startswith(" "):
            aborted.append(line.strip())
        elif blocks:
            blocks[-1][1].append(line.rstrip())
        else:
            aborted.append(line.strip())
    cases: list[RuleTestCase] = []
    named = {name for name, _ in blocks if name is not None}
    for name in dict.fromkeys(list(group_names) + sorted(named)):
        failures = tuple("\n".join(lines) for group, lines in blocks if group == name and name)
        cases.append(RuleTestCase(file, name, failures))
    unnamed = tuple("\n".join(lines) for group, lines in blocks if group is None)
    if unnamed:
        cases = [c for c in cases if c.name]
        cases.append(RuleTestCase(file, "", unnamed))
    if aborted or not (named or unnamed):
        message = "\n".join(aborted) or _tail(run.stderr) or f"promtool exited {run.exit_code}"
        cases.append(RuleTestCase(file, "", error=message))
    return cases


def parse_junit(xml_text: str) -> tuple[RuleTestCase, ...]:
    """Cases from promtool's JUnit XML (``testsuites/testsuite[name=file]/testcase``)."""
    try:
        # The XML is written by the promtool we just ran, not by the service.
        root = ET.fromstring(xml_text)  # noqa: S314
    except ET.ParseError as exc:
        raise HarnessError(f"promtool wrote JUnit XML that does not parse: {exc}") from None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    cases: list[RuleTestCase] = []
    for suite in suites:
        file = suite.get("name", "")
        for case in suite.findall("testcase"):
            failures = tuple((f.text or f.get("message") or "").strip() for f in case.findall("failure"))
            error = case.find("error")
            cases.append(
                RuleTestCase(
                    file=file,
                    name=case.get("name", ""),
                    failures=failures,
                    error=(
                        (error.text or error.get("message") or "error").strip() if error is not None else ""
                    ),
                )
            )
    return tuple(cases)


def parse_check_metrics_output(run: PromtoolRun) -> MetricsCheckResult:
    problems: list[MetricsProblem] = []
    parse_error = ""
    for line in run.stderr.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("error while linting:"):
            parse_error = line.removeprefix("error while linting:").strip()
            continue
        metric, _, message = line.partition(" ")
        problems.append(MetricsProblem(metric, message))
    rows: list[tuple[str, int, float]] = []
    for line in run.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit() and parts[0] != "Total":
            rows.append((parts[0], int(parts[1]), float(parts[2].rstrip("%"))))
    return MetricsCheckResult(run.exit_code, tuple(problems), parse_error, tuple(rows), run)
