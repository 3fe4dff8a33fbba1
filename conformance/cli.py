"""``conformance``: the command line, a thin shell over profile, session, suites and reports.

Exit codes (also in the README):

* 0 — every MUST requirement passed
* 1 — at least one MUST requirement failed (the service does not conform)
* 2 — usage error: bad flag or broken profile (one line names file, path and problem)
* 3 — harness error: no MUST failed, but something could not be checked
  (the stack did not start, a backend broke); the report says which
* 130 — interrupted (Ctrl-C / SIGTERM); everything started was stopped
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from conformance._exceptions import HarnessError, UsageError
from conformance._process import RUN_ID, ignore_termination_signals, install_termination_handlers, stop_all
from conformance._profile import Profile, load_profile
from conformance._requirements import all_requirements
from conformance.report import EXIT_HARNESS_ERROR, EXIT_USAGE, REPORT_NAME, ReportNotWritten, write_reports

__all__ = ["main"]

EXIT_INTERRUPTED = 130


class ProvidedSession:
    """Hands a session the CLI already started to the pytest plugin."""

    is_conformance_provided_session = True

    def __init__(self, session: Any) -> None:
        self.session = session
        self.state: Any = None  # set by the plugin's pytest_configure


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="conformance", description="Check that an HTTP service's telemetry keeps its contract."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="start the stack, run the suites, write the reports")
    run.add_argument("--profile", required=True, help="the service's conformance profile (YAML)")
    run.add_argument(
        "--report-dir", default="conformance-report", help="where reports go (default: %(default)s)"
    )
    run.add_argument("--service-command", help="override service.command (a shell-style string)")
    run.add_argument("--service-port", type=int, help="override service.port")
    run.add_argument("-k", dest="keyword", help="only suite tests matching this pytest -k expression")
    run.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show the suites' pytest output with tracebacks (default: one line per requirement)",
    )
    run.add_argument(
        "--mode",
        choices=["auto", "containers", "local", "external"],
        default="auto",
        help="where the stack runs: containers (Docker), local (processes), external (URLs in the "
        "profile); auto = containers when a Docker engine answers, else local (default: %(default)s)",
    )
    for component in ("service", "prometheus", "collector", "jaeger", "receiver"):
        run.add_argument(
            f"--{component}-image", metavar="IMAGE", help=f"container mode: override the {component} image"
        )
    run.add_argument(
        "--pull",
        choices=["missing", "never"],
        help="container mode: pull missing images, or never (overrides containers.pull)",
    )
    run.add_argument("--pytest-arg", action="append", default=[], help="extra argument passed to pytest")
    run.add_argument(
        "--plan",
        action="store_true",
        help="print which probes run when, and why (see conformance._plan), and exit without running",
    )
    run.add_argument(
        "--sequential",
        action="store_true",
        help="run the probes one at a time instead of concurrently (same verdicts, slower)",
    )

    val = sub.add_parser("validate", help="validate a profile and exit")
    val.add_argument("profile")

    req = sub.add_parser("requirements", help="list every requirement the harness checks")
    req.add_argument("--format", choices=["table", "json"], default="table")

    from conformance import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue  # helpers of a command, not commands
        importlib.import_module(f"{commands.__name__}.{info.name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    finally:
        _forget_caught_interrupts()


def _forget_caught_interrupts() -> None:
    """Keep the exit code of a run whose interrupt was handled.

    CPython (3.8 to 3.12 at least) sets a runtime flag when a KeyboardInterrupt ends code
    run from a *string* ``exec`` (dataclasses and namedtuples build their methods that way,
    so a SIGTERM during a lazy import lands there), even when a caller catches it; under
    ``python -m`` the interpreter then exits by SIGINT (status -2) instead of with our 130.
    The flag is reset at the start of every string ``exec``: one that ends normally clears it.
    """
    exec("pass")  # noqa: S102 - a constant string, see the docstring


def _main(argv: Sequence[str] | None = None) -> int:
    # gRPC's C core writes its own shutdown races (an epoll_wait on a descriptor closed when a
    # signal stops the run) straight to stderr, even ahead of the run's first line; the OTLP
    # receiver reports what it refuses itself, so that noise is off unless the user asks for it.
    # Set before anything imports grpc (the stack modules do, on first use).
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    args = _parser().parse_args(argv)
    try:
        if args.command == "validate":
            from conformance.commands._init_fill import unfilled_values

            unfilled = unfilled_values(Path(args.profile))
            if unfilled:
                what = f"{len(unfilled)} value(s) still to fill in"
                print(f"{args.profile}: incomplete: {what}:", file=sys.stderr)
                for where, what in unfilled:
                    print(f"  {where}: {what}", file=sys.stderr)
                return EXIT_USAGE
            profile = load_profile(args.profile)
            print(f"{args.profile}: ok ({profile.service.name}, {len(profile.endpoints)} endpoint(s))")
            return 0
        if args.command == "requirements":
            return _list_requirements(args.format)
        if args.command == "run":
            return _run(args)
        code: int = args.func(args)
        return code
    except UsageError as exc:
        print(f"conformance: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        # An interrupt that escaped a command's own handling (e.g. during its clean-up).
        ignore_termination_signals()
        stop_all()
        print("conformance: interrupted; everything started was stopped", file=sys.stderr)
        return EXIT_INTERRUPTED


def _list_requirements(fmt: str) -> int:
    reqs = all_requirements()
    if fmt == "json":
        print(
            json.dumps(
                [
                    {"id": r.id, "level": r.level.value, "area": r.area, "title": r.title, "source": r.source}
                    for r in reqs
                ],
                indent=2,
            )
        )
    else:
        for r in reqs:
            print(f"{r.id:<9} {r.level.value:<6} {r.title}\n{'':16}source: {r.source}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from conformance._session import ConformanceSession

    started = time.time()
    from conformance._sections.containers import with_image_overrides
    from conformance.stack import resolve_mode

    profile = load_profile(args.profile).with_overrides(
        service_command=args.service_command, service_port=args.service_port
    )
    profile = with_image_overrides(
        profile,
        service=args.service_image,
        prometheus=args.prometheus_image,
        collector=args.collector_image,
        jaeger=args.jaeger_image,
        receiver=args.receiver_image,
        pull=args.pull,
    )
    if args.plan:
        return _print_plan(profile, args.sequential)
    mode, why = resolve_mode(args.mode)
    telemetry = None
    if mode == "local":
        from conformance.stack._telemetry import plan_local_telemetry

        telemetry = plan_local_telemetry()
        why = f"{why}; {telemetry.summary()}"
    report_dir = Path(args.report_dir).resolve()
    report_dir.mkdir(parents=True, exist_ok=True)
    install_termination_handlers()
    print(
        f"conformance: run {RUN_ID}: starting {profile.service.name} ({mode} mode; {why})",
        file=sys.stderr,
        flush=True,
    )
    try:
        session = ConformanceSession.open(profile, report_dir / "work", mode=mode, telemetry=telemetry)
    except HarnessError as exc:
        try:
            _write(report_dir, profile, {}, {"mode": mode, "components": []}, started, stack_error=str(exc))
        except ReportNotWritten as unwritten:
            print(f"conformance: error: {_printable(str(unwritten))}", file=sys.stderr)
        print(f"conformance: error: {_printable(str(exc))}", file=sys.stderr)
        return EXIT_HARNESS_ERROR
    except KeyboardInterrupt:
        ignore_termination_signals()
        stop_all()
        print("conformance: interrupted; everything started was stopped", file=sys.stderr)
        return EXIT_INTERRUPTED

    provided = ProvidedSession(session)
    interrupted = False
    try:
        pytest_rc = _run_suites(report_dir, provided, args)
        interrupted = pytest_rc == 2
    except KeyboardInterrupt:
        interrupted = True
        ignore_termination_signals()
    finally:
        try:
            session.close()
        except HarnessError as exc:
            print(f"conformance: warning: {exc}", file=sys.stderr)
    results = provided.state.results if provided.state is not None else {}
    not_written: ReportNotWritten | None = None
    try:
        report = _write(report_dir, profile, results, session.stack_description, started)
    except ReportNotWritten as exc:
        report, not_written = dict(exc.report), exc
    _print_summary(report, report_dir)
    missing = _allure_missing(report_dir) if results else ""
    if interrupted:
        print(
            "conformance: interrupted; partial report written, everything started was stopped",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if not_written is not None or missing:
        for problem in (str(not_written) if not_written else "", missing):
            if problem:
                print(f"conformance: error: {_printable(problem)}", file=sys.stderr)
        return EXIT_HARNESS_ERROR
    code: int = report["summary"]["exit_code"]
    return code


def _allure_missing(report_dir: Path) -> str:
    """Why the Allure results (written by allure-pytest during the run) are missing, or ""."""
    results = report_dir / "allure-results"
    if any(results.glob("*-result.json")):
        return ""
    return f"report not written: {results} holds no Allure result"


def _print_plan(profile: Any, sequential: bool) -> int:
    """``conformance run --plan``: the probes this profile's requirements need, in waves."""
    from conformance._plan import describe_plan
    from conformance._requirements import all_requirements

    applicable = {r.id for r in all_requirements()} - set(profile.not_applicable)
    how = "one at a time (--sequential)" if sequential else "each wave once what it follows is done"
    print(f"probe plan for {profile.service.name}: {how}; a probe not listed is not needed")
    for line in describe_plan(applicable):
        print(line)
    return 0


def _run_suites(report_dir: Path, provided: ProvidedSession, args: argparse.Namespace) -> int:
    import pytest

    work = report_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    # Our own ini file keeps the user's (or this repo's) pytest settings out of the run.
    # Plugins imported before pytest.main (httpx pulls in anyio) cannot be
    # assert-rewritten; that warning is about them, not the suites, so it is muted.
    ini = work / "pytest.ini"
    ini.write_text("[pytest]\naddopts =\n", encoding="utf-8")
    pytest_args = [
        "-c",
        str(ini),
        "--rootdir",
        str(work),
        "-p",
        "no:cacheprovider",
        # Quiet by default: the summary prints one line per requirement (with the reason for
        # each error and failure); pytest's own output and tracebacks are for -v.
        *(["--no-header", "-q", "--tb=short"] if args.verbose else ["-p", "no:terminal"]),
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
        f"--alluredir={report_dir / 'allure-results'}",
        "--clean-alluredir",
        *_suites_argument(),
    ]
    if args.keyword:
        pytest_args += ["-k", args.keyword]
    if args.sequential:
        pytest_args.append("--conformance-sequential")
    pytest_args += args.pytest_arg
    return int(pytest.main(pytest_args, plugins=[provided]))


def _suites_argument() -> list[str]:
    """The installed suites (``conformance.suites``), or the checkout's ``suites/``
    when the package is imported straight from a source tree."""
    import importlib.util

    if importlib.util.find_spec("conformance.suites") is not None:
        return ["--pyargs", "conformance.suites"]
    return [str(Path(__file__).resolve().parents[1] / "suites")]


def _write(
    report_dir: Path,
    profile: Profile,
    results: dict[str, Any],
    stack: dict[str, Any],
    started: float,
    *,
    stack_error: str = "",
) -> dict[str, Any]:
    return write_reports(
        report_dir,
        profile=profile,
        results=results,
        stack=stack,
        started_at=started,
        finished_at=time.time(),
        stack_error=stack_error,
    )


def _print_summary(report: dict[str, Any], report_dir: Path) -> None:
    print()
    for r in report["results"]:
        status = "BASELINED" if r["status"] == "failed" and r.get("baselined") else r["status"].upper()
        print(f"  {status:<9} {r['id']:<9} {r['level']:<6} {r['title']}")
        if r["status"] in ("error", "failed") and r["message"]:
            print(f"  {'':<9} {'':<9} {'':<6} └ {_one_line(r['message'])}")
    s = report["summary"]
    c = s["counts"]
    baselined = len(s.get("baselined", []))
    for kind in ("stale", "expired"):
        for entry in s.get(f"baseline_{kind}", []):
            print(f"  BASELINE  {entry:<9} {kind} entry in the baseline (fails the run: remove or renew it)")
    known = f", {baselined} baselined" if baselined else ""
    print(
        f"\nconformance: {s['verdict'].upper()} — {c['passed']} passed, "
        f"{c['failed'] - baselined} failed{known}, "
        f"{c['error']} error, {c['skipped']} skipped; report: {report_dir / REPORT_NAME}"
    )


def _printable(text: str) -> str:
    """``text`` with control characters (ANSI escapes, NUL, bidi controls) shown, not obeyed."""
    return "".join(ch if ch.isprintable() or ch == "\n" else f"\\x{ord(ch):02x}" for ch in text)


def _one_line(text: str, limit: int = 160) -> str:
    """A reason on one console line, with terminal control characters shown, not obeyed."""
    line = " ".join(text.split())
    line = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in line)
    return line if len(line) <= limit else line[: limit - 1] + "…"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
