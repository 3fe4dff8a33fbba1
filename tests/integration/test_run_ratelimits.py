"""RL suite end to end on the real reference service: it is quick with the
short test window, each way of keying clients works, and the failures no
REFSVC_BREAK variant covers (a limit shared across clients, a window that
does not end when the profile says) fail their own requirements."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import CliRun, variant_profile

pytestmark = pytest.mark.integration

RunCli = Callable[..., CliRun]
RL_ONLY = ("-k", "test_ratelimits")


def rl_statuses(run: CliRun) -> dict[str, str]:
    return {i: s for i, s in run.statuses().items() if i.startswith("RL-")}


def failed_rl(run: CliRun) -> set[str]:
    return {i for i, s in rl_statuses(run).items() if s == "failed"}


def test_reference_passes_with_the_bursts_it_reports(run_cli: RunCli) -> None:
    # The suite's time is measured by the benchmarks and reported (probe_seconds), not asserted here.
    run = run_cli(*RL_ONLY)
    assert set(rl_statuses(run).values()) == {"passed"} and len(rl_statuses(run)) == 10, run.stdout[-3000:]
    notes = next(r for r in run.report["results"] if r["id"] == "RL-001")["evidence"][0]
    assert notes["probe_seconds"] > 0
    assert notes["bursts"] == {
        "auth": "200x10, 429x2",
        "chat": "200x30, 429x2",
        "health": "200x60, 429x2",
        "general": "200x100, 429x2",
    }


def test_clients_keyed_by_source_address(run_cli: RunCli, tmp_path: Path) -> None:
    """Without an API key the reference service keys clients by peer address;
    the probe then binds other 127.0.0.0/8 addresses, one pair per rule."""

    def by_address(data: dict[str, Any]) -> None:
        del data["traffic"]["client_header"]
        data["rate_limits"]["client_key"] = "source-address"

    run = run_cli(*RL_ONLY, profile=variant_profile(tmp_path, by_address))
    assert set(rl_statuses(run).values()) == {"passed"}, run.stdout[-3000:]


def test_forwarded_for_the_service_does_not_trust_is_a_shared_limit(run_cli: RunCli, tmp_path: Path) -> None:
    """The reference service ignores X-Forwarded-For, so two "clients" that
    differ only in it share one quota: RL-006 fails, and only RL-006."""

    def forwarded(data: dict[str, Any]) -> None:
        data["rate_limits"]["client_key"] = "forwarded-for"

    run = run_cli(*RL_ONLY, profile=variant_profile(tmp_path, forwarded))
    assert failed_rl(run) == {"RL-006"}, run.stdout[-3000:]
    assert "the limit is shared across clients" in next(
        r["message"] for r in run.report["results"] if r["id"] == "RL-006"
    )


def test_window_longer_than_the_profile_says(run_cli: RunCli, tmp_path: Path) -> None:
    """A service whose window is a minute while its profile says 5 s: the 429
    asks to wait longer than the window (RL-002), the limit does not reset in
    time (RL-005) and the reset fields point past the window (RL-007)."""

    def minute_window(data: dict[str, Any]) -> None:
        data["service"]["env"]["REFSVC_RATE_LIMIT_WINDOW_SECONDS"] = 60

    run = run_cli(*RL_ONLY, profile=variant_profile(tmp_path, minute_window))
    assert failed_rl(run) == {"RL-002", "RL-005", "RL-007"}, run.stdout[-3000:]
    assert {s for i, s in rl_statuses(run).items() if i not in failed_rl(run)} == {"passed"}
