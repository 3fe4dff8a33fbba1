"""``conformance report``: re-render a run's reports, screenshot the HTML, build the Allure site.

``conformance run`` already writes every format; this command works from the
JSON report alone (e.g. one downloaded from CI), so the HTML, JUnit and
Markdown can be regenerated with a newer harness, and it does the two things
that need tools a run does not: a PNG of the HTML report (headless Chromium)
and the Allure site (the Allure CLI).

Exit codes: 0 done; 2 the report is missing or is not a conformance report;
3 a tool it was asked to use is missing or failed (the message says how to
install it) — it never pretends.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from conformance._exceptions import HarnessError, UsageError
from conformance.report import EXIT_HARNESS_ERROR, HTML_NAME, load_report, write_renderings
from conformance.report._tools import allure_generate, chromium_screenshot

SCREENSHOT_NAME = "conformance-report.png"


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "report",
        help="re-render a run's HTML/JUnit/Markdown from its JSON report; screenshot; Allure site",
        description="Works from conformance-report.json (a report directory or the file).",
    )
    parser.add_argument("report", help="a report directory, or its conformance-report.json")
    parser.add_argument("--out", help="where to write (default: the report's directory)")
    parser.add_argument(
        "--screenshot",
        action="store_true",
        help=f"also render the HTML in headless Chromium and save {SCREENSHOT_NAME}",
    )
    parser.add_argument(
        "--chromium-bin", help="the Chromium binary (default: $OBSCONFORM_CHROMIUM or chromium)"
    )
    parser.add_argument(
        "--allure-html",
        action="store_true",
        help="generate the Allure site (OUT/allure-report) from the run's allure-results with the Allure CLI",
    )
    parser.add_argument("--allure-results", help="the allure-results directory (default: next to the report)")
    parser.add_argument("--allure-bin", help="the Allure CLI (default: $OBSCONFORM_ALLURE or allure on PATH)")
    parser.add_argument(
        "--allure-single-file", action="store_true", help="one self-contained index.html (Allure 2.24+)"
    )
    parser.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    source = Path(args.report)
    report = load_report(source)
    report_dir = source if source.is_dir() else source.parent
    out = Path(args.out) if args.out else report_dir
    out.mkdir(parents=True, exist_ok=True)
    for path in write_renderings(out, report):
        print(f"conformance: wrote {path}")
    try:
        if args.screenshot:
            png = chromium_screenshot(out / HTML_NAME, out / SCREENSHOT_NAME, binary=args.chromium_bin)
            print(f"conformance: wrote {png}")
        if args.allure_html:
            results = Path(args.allure_results) if args.allure_results else report_dir / "allure-results"
            if not results.is_dir() or not any(results.iterdir()):
                raise UsageError(
                    f"{results}: no Allure results (conformance run writes them to REPORT_DIR/allure-results)"
                )
            index = allure_generate(
                results, out / "allure-report", binary=args.allure_bin, single_file=args.allure_single_file
            )
            print(f"conformance: wrote {index}")
    except HarnessError as exc:
        print(f"conformance: error: {exc}", file=sys.stderr)
        return EXIT_HARNESS_ERROR
    return 0
