"""``conformance clean``: stop what runs killed with SIGKILL left behind."""

from __future__ import annotations

import argparse
from typing import Any

from conformance._process import find_leftovers, reap_leftovers


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "clean", help="stop processes left behind by runs that were killed (SIGKILL)"
    )
    parser.add_argument("--dry-run", action="store_true", help="only list them")
    parser.set_defaults(func=_clean)


def _clean(args: argparse.Namespace) -> int:
    from conformance.stack._docker import find_container_leftovers, reap_container_leftovers

    leftovers = find_leftovers() if args.dry_run else reap_leftovers()
    containers = find_container_leftovers() if args.dry_run else reap_container_leftovers()
    verb = "would stop" if args.dry_run else "stopped"
    for item in leftovers:
        print(f"{verb} pid {item.pid} (run {item.run_id}): {item.cmdline}")
    for c in containers:
        print(f"{verb} {c.kind} {c.name} (run {c.run_id})")
    print(
        f"conformance: {verb} {len(leftovers)} leftover process(es), "
        f"{len(containers)} container(s)/network(s)"
    )
    return 0
