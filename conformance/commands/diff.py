"""``conformance diff OLD NEW``: what changed between two runs (e.g. two releases).

Prints new failures, fixed requirements, other status changes, changed
evidence of requirements failing in both, and added/removed requirements
(see ``conformance.report._diff``).

Exit codes: 0 no new failures; 1 at least one new failure that is not
baselined in NEW (MUST or SHOULD: a regression is a regression; pass
``--fail-on must`` to count MUSTs only, ``never`` to only report); 2 a file
is missing or is not a conformance report.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from conformance.report import EXIT_FAILED, EXIT_OK, diff_reports, load_report


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "diff",
        help="compare two JSON reports: new failures, fixed, changed status/evidence",
        description="OLD and NEW are conformance-report.json files or report directories.",
    )
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    parser.add_argument("--output", help="write to this file instead of stdout")
    parser.add_argument(
        "--fail-on",
        choices=["any", "must", "never"],
        default="any",
        help="which new failures make the exit code 1 (default: %(default)s)",
    )
    parser.set_defaults(func=_diff)


def _diff(args: argparse.Namespace) -> int:
    diff = diff_reports(load_report(args.old), load_report(args.new))
    if args.format == "json":
        text = json.dumps(diff.to_dict(), indent=2) + "\n"
    elif args.format == "markdown":
        text = diff.render_markdown()
    else:
        text = diff.render_text()
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    counted = diff.regressions
    if args.fail_on == "must":
        counted = [r for r in counted if r.get("level") == "MUST"]
    elif args.fail_on == "never":
        counted = []
    return EXIT_FAILED if counted else EXIT_OK
