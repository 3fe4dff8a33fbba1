"""Child processes the harness starts, and the guarantee that they stop.

Every process is started in its own session (so its whole process group can
be signalled), its output goes to files, and it is registered until stopped.
``stop_all`` runs at interpreter exit; :func:`install_termination_handlers`
turns SIGTERM/SIGHUP into ``KeyboardInterrupt`` so the normal ``finally``
clean-up paths also run when CI cancels a job.

Each child gets ``OBSCONFORM_RUN_ID`` in its environment, so leftovers of a
harness that was SIGKILLed (which no handler sees) can be found by run id.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

__all__ = [
    "RUN_ID",
    "RUN_ID_ENV",
    "ManagedProcess",
    "install_termination_handlers",
    "stop_all",
]

#: Environment variable that labels every child with the run that started it.
RUN_ID_ENV = "OBSCONFORM_RUN_ID"

#: This harness process's run id.
RUN_ID = uuid.uuid4().hex[:12]

_live: set[ManagedProcess] = set()
_live_lock = threading.Lock()


class ManagedProcess:
    """A child process in its own process group with output captured to files."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        stdout_path: Path,
        stderr_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path
        self.env = dict(os.environ if env is None else env)
        self.env[RUN_ID_ENV] = RUN_ID
        self.cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<ManagedProcess {self.name} pid={self.pid}>"

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    def start(self) -> None:
        self.stdout_path.parent.mkdir(parents=True, exist_ok=True)
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self._popen = subprocess.Popen(  # noqa: S603 - argv comes from the user's profile
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        with _live_lock:
            _live.add(self)

    def poll(self) -> int | None:
        """The exit code, or ``None`` while running (or never started)."""
        return self._popen.poll() if self._popen else None

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def stderr_tail(self, max_bytes: int = 2000) -> str:
        """The end of the process's stderr, for error messages."""
        return _tail(self.stderr_path, max_bytes)

    def stdout_tail(self, max_bytes: int = 2000) -> str:
        return _tail(self.stdout_path, max_bytes)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``timeout``; idempotent."""
        popen = self._popen
        if popen is None:
            return None
        try:
            if popen.poll() is None:
                _signal_group(popen.pid, signal.SIGTERM)
                try:
                    popen.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    _signal_group(popen.pid, signal.SIGKILL)
                    popen.wait(timeout=5)
            # The leader may be gone while children it forked linger in the group.
            _signal_group(popen.pid, signal.SIGKILL)
        finally:
            with _live_lock:
                _live.discard(self)
        return popen.returncode


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(path: Path, max_bytes: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            return f.read().decode("utf-8", errors="replace").strip()
    except OSError:
        return ""


def stop_all(timeout: float = 5.0) -> None:
    """Stop every process still registered (at exit, or after an interrupt)."""
    with _live_lock:
        procs = list(_live)
    for proc in procs:
        proc.stop(timeout=timeout)


atexit.register(stop_all)

_handlers_installed = False


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")


def install_termination_handlers() -> None:
    """Make SIGTERM and SIGHUP unwind like Ctrl-C so clean-up code runs.

    Only possible from the main thread; elsewhere it is a no-op (the atexit
    hook still stops the children on a normal exit).
    """
    global _handlers_installed
    if _handlers_installed or threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, _raise_interrupt)
    _handlers_installed = True

