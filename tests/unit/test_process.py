"""ManagedProcess: output captured, whole process group stopped, stop idempotent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance import _process
from conformance._process import RUN_ID, RUN_ID_ENV, ManagedProcess, signals_deferred, stop_all
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


@pytest.fixture
def sigterm_raises() -> Iterator[None]:
    """SIGTERM handled as the CLI handles it (KeyboardInterrupt), for this test only."""
    previous = signal.signal(signal.SIGTERM, _process._raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.usefixtures("sigterm_raises")
def test_sigterm_right_after_fork_still_leaves_the_child_registered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The signal lands the moment Popen has forked, before ManagedProcess registered the child:
    # without deferral the KeyboardInterrupt leaves a child that stop_all does not know.
    real_popen = subprocess.Popen

    def popen_then_sigterm(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        child = real_popen(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)
        return child

    monkeypatch.setattr(subprocess, "Popen", popen_then_sigterm)
    proc = ManagedProcess(
        "sleeper", [sys.executable, "-c", "import time; time.sleep(600)"],
        stdout_path=tmp_path / "o", stderr_path=tmp_path / "e",
    )  # fmt: skip
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        proc.start()
    assert proc.pid is not None and alive(proc.pid)
    stop_all()
    assert not proc.running


@pytest.mark.usefixtures("sigterm_raises")
def test_signals_deferred_raises_once_at_the_end_of_the_outermost_block() -> None:
    reached = []

    def nested() -> None:
        with signals_deferred():
            with signals_deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                reached.append("inner")
            reached.append("outer")

    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        nested()
    assert reached == ["inner", "outer"]
    with signals_deferred():
        pass  # nothing pending any more


def test_capped_sink_keeps_the_limit_and_counts_the_rest() -> None:
    import io

    from conformance._process import CappedSink

    out = io.BytesIO()
    sink = CappedSink("stdout", out, limit=10, started=0.0)
    sink.write(b"12345")
    assert sink.overflow() is None
    sink.write(b"67890abc")
    sink.write(b"defg")
    assert out.getvalue() == b"1234567890"
    overflow = sink.overflow()
    assert overflow is not None
    assert (overflow.stream, overflow.limit, overflow.dropped) == ("stdout", 10, 7)
