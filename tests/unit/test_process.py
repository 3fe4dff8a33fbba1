"""ManagedProcess: output captured, whole process group stopped, stop idempotent."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from conformance._process import RUN_ID, RUN_ID_ENV, ManagedProcess, stop_all
from conformance._wait import wait_until


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_group_with_grandchild_and_term_ignoring_child_is_stopped(tmp_path: Path) -> None:
    # The child ignores SIGTERM and forks a grandchild that prints its pid.
    script = (
        "import os, signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "print(p.pid, flush=True)\n"
        "print(os.environ['" + RUN_ID_ENV + "'], flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = ManagedProcess(
        "stubborn", [sys.executable, "-c", script], stdout_path=tmp_path / "out", stderr_path=tmp_path / "err"
    )
    proc.start()

    def grandchild() -> tuple[int | None, str]:
        lines = (tmp_path / "out").read_text().split()
        return (int(lines[0]) if len(lines) >= 2 else None), f"stdout {lines!r}"

    gpid = wait_until(grandchild, awaited="the grandchild's pid", timeout=10)
    assert (tmp_path / "out").read_text().split()[1] == RUN_ID
    assert proc.pid is not None
    assert alive(proc.pid) and alive(gpid)
    proc.stop(timeout=0.5)
    wait_until(
        lambda: (True if not alive(gpid) else None, "grandchild alive"), awaited="grandchild gone", timeout=5
    )
    assert not proc.running
    assert proc.stop() == proc.stop()  # idempotent


def test_stop_all_stops_registered(tmp_path: Path) -> None:
    proc = ManagedProcess(
        "sleeper",
        [sys.executable, "-c", "import time; time.sleep(600)"],
        stdout_path=tmp_path / "o",
        stderr_path=tmp_path / "e",
    )
    proc.start()
    stop_all()
    assert not proc.running


def test_stderr_tail(tmp_path: Path) -> None:
    proc = ManagedProcess(
        "failing",
        [sys.executable, "-c", "import sys; sys.stderr.write('x' * 5000 + 'END'); sys.exit(3)"],
        stdout_path=tmp_path / "o",
        stderr_path=tmp_path / "e",
    )
    proc.start()
    code = wait_until(lambda: (proc.poll(), "running"), awaited="exit", timeout=10)
    assert code == 3
    tail = proc.stderr_tail(100)
    assert tail.endswith("END") and len(tail) == 100


def test_leftovers_of_dead_harness_are_found_and_reaped(tmp_path: Path) -> None:
    import subprocess

    from conformance._process import HARNESS_ENV, find_leftovers, reap_leftovers

    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    # A harness identity that cannot be alive: pid 1 never has this start time.
    dead = subprocess.Popen(
        sleeper, env={**os.environ, RUN_ID_ENV: "deadrun00001", HARNESS_ENV: "1:0"}, start_new_session=True
    )
    # A child of this (live) harness must never be touched.
    live = ManagedProcess("live", sleeper, stdout_path=tmp_path / "o", stderr_path=tmp_path / "e")
    live.start()
    try:
        found = {item.pid: item.run_id for item in find_leftovers()}
        assert found.get(dead.pid) == "deadrun00001"
        assert live.pid not in found
        reaped = reap_leftovers(timeout=5)
        assert dead.pid in {item.pid for item in reaped}
        assert dead.wait(timeout=5) is not None
        assert live.running
    finally:
        live.stop()
        dead.kill()
