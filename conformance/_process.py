"""Child processes the harness starts, and the guarantee that they stop.

Every process is started in its own session (so its whole process group can
be signalled), its output goes to files, and it is registered until stopped.
``stop_all`` runs at interpreter exit; :func:`install_termination_handlers`
turns SIGTERM/SIGHUP into ``KeyboardInterrupt`` so the normal ``finally``
clean-up paths also run when CI cancels a job.

Each child gets ``OBSCONFORM_RUN_ID`` in its environment, so leftovers of a
harness that was SIGKILLed (which no handler sees) can be found by run id,
and ``OBSCONFORM_PROCESS``, a token of its own: :meth:`ManagedProcess.stop`
also kills descendants that left its process group (``setsid``, double fork)
by finding that token in ``/proc/*/environ``.

With ``max_output_bytes`` a child's stdout and stderr go through pipes that a
thread per stream drains into the files: at most that many bytes are kept, the
rest is read and counted (never left to block the child), and
:meth:`ManagedProcess.overflow` says when the limit was passed and how much
was dropped.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import BinaryIO

__all__ = [
    "HARNESS_ENV",
    "PROCESS_TOKEN_ENV",
    "RUN_ID",
    "RUN_ID_ENV",
    "CappedSink",
    "CaptureOverflow",
    "Leftover",
    "ManagedProcess",
    "find_leftovers",
    "ignore_termination_signals",
    "install_termination_handlers",
    "reap_leftovers",
    "signals_deferred",
    "stop_all",
]

#: Environment variable that labels every child with the run that started it.
RUN_ID_ENV = "OBSCONFORM_RUN_ID"

#: This harness process's run id.
RUN_ID = uuid.uuid4().hex[:12]

#: "<pid>:<start time>" of the harness that started a child; a child whose
#: harness is gone (pid dead, or reused by another process) is a leftover.
HARNESS_ENV = "OBSCONFORM_HARNESS"

#: A token of one started process, inherited by everything it starts: how descendants that
#: escaped its process group are found when it stops.
PROCESS_TOKEN_ENV = "OBSCONFORM_PROCESS"  # noqa: S105 - a variable name, not a secret

_DRAIN_CHUNK = 64 * 1024

_live: set[ManagedProcess] = set()
_live_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class CaptureOverflow:
    """A captured stream that passed its byte limit: kept ``limit`` bytes, dropped ``dropped``
    (so far), first passed ``after`` seconds after the process started."""

    stream: str
    limit: int
    dropped: int
    after: float


class CappedSink:
    """Writes at most ``limit`` bytes of a stream to ``out`` and counts the rest (never
    blocking the writer): a child's pipe here, a container's log in container mode."""

    def __init__(self, stream: str, out: BinaryIO, limit: int, started: float | None = None) -> None:
        self.stream = stream
        self.limit = limit
        self.kept = 0
        self.dropped = 0
        self.overflow_at: float | None = None
        self._out = out
        self._started = time.monotonic() if started is None else started

    def write(self, chunk: bytes) -> None:
        room = self.limit - self.kept
        if room > 0:
            self._out.write(chunk[:room])
            self._out.flush()
            self.kept += min(room, len(chunk))
        if len(chunk) > room:
            if self.overflow_at is None:
                self.overflow_at = time.monotonic() - self._started
            self.dropped += len(chunk) - max(room, 0)

    def overflow(self) -> CaptureOverflow | None:
        if self.overflow_at is None:
            return None
        return CaptureOverflow(self.stream, self.limit, self.dropped, self.overflow_at)


class _StreamCapture:
    """Drains one pipe into a file, keeping at most ``limit`` bytes and counting the rest."""

    def __init__(self, stream: str, fd: int, path: Path, limit: int, started: float) -> None:
        self.stream = stream
        self._fd = fd
        self._path = path
        self._started = started
        self._limit = limit
        self._sink: CappedSink | None = None
        self._thread = threading.Thread(target=self._drain, name=f"capture-{stream}", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        with self._path.open("ab") as out:
            self._sink = CappedSink(self.stream, out, self._limit, self._started)
            while True:
                try:
                    chunk = os.read(self._fd, _DRAIN_CHUNK)
                except OSError:
                    break
                if not chunk:
                    break
                self._sink.write(chunk)
        with contextlib.suppress(OSError):
            os.close(self._fd)

    def overflow(self) -> CaptureOverflow | None:
        return self._sink.overflow() if self._sink is not None else None

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


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
        max_output_bytes: int | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path
        self.env = dict(os.environ if env is None else env)
        self.env[RUN_ID_ENV] = RUN_ID
        self.env[HARNESS_ENV] = _harness_identity(os.getpid())
        self.token = uuid.uuid4().hex
        self.env[PROCESS_TOKEN_ENV] = self.token
        self.cwd = cwd
        self.max_output_bytes = max_output_bytes
        self._popen: subprocess.Popen[bytes] | None = None
        self._captures: dict[str, _StreamCapture] = {}

    def __repr__(self) -> str:
        return f"<ManagedProcess {self.name} pid={self.pid}>"

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    def start(self) -> None:
        self.stdout_path.parent.mkdir(parents=True, exist_ok=True)
        # A SIGTERM raised as KeyboardInterrupt between fork and registration would leave a
        # child nobody stops (Popen does not kill what it forked when interrupted): the
        # signal waits until the child is registered, then unwinds as usual.
        with signals_deferred():
            if self.max_output_bytes is not None:
                self._start_captured(self.max_output_bytes)
            else:
                with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
                    self._popen = subprocess.Popen(
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

    def _start_captured(self, limit: int) -> None:
        # Raw pipe ends, not Popen's file objects: the drain threads own and close them.
        pipes = [os.pipe(), os.pipe()]
        try:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=pipes[0][1],
                stderr=pipes[1][1],
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        except BaseException:
            for read_end, write_end in pipes:
                os.close(read_end)
                os.close(write_end)
            raise
        started = time.monotonic()
        for (read_end, write_end), stream, path in zip(
            pipes, ("stdout", "stderr"), (self.stdout_path, self.stderr_path), strict=True
        ):
            os.close(write_end)
            path.write_bytes(b"")
            self._captures[stream] = _StreamCapture(stream, read_end, path, limit, started)

    def overflow(self, stream: str) -> CaptureOverflow | None:
        """How ``stream`` passed ``max_output_bytes``, or None (within it, or not capped)."""
        capture = self._captures.get(stream)
        return capture.overflow() if capture else None

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
            # The leader may be gone while children it forked linger in the group, or
            # outside it (setsid, double fork): those still carry the token.
            _signal_group(popen.pid, signal.SIGKILL)
            kill_token_holders(self.token)
        finally:
            with _live_lock:
                _live.discard(self)
            for capture in self._captures.values():
                capture.join(timeout=2.0)
        return popen.returncode


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def token_holders(token: str) -> list[int]:
    """Pids of live processes whose environment carries ``PROCESS_TOKEN_ENV=token``."""
    marker = f"{PROCESS_TOKEN_ENV}={token}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0") and _state(int(entry.name)) not in ("Z", None):
            found.append(int(entry.name))
    return found


def kill_token_holders(token: str, timeout: float = 5.0) -> list[int]:
    """SIGKILL every process carrying ``token`` (each in its own group too) until none is left."""
    killed: list[int] = []
    deadline = time.monotonic() + timeout
    while holders := token_holders(token):
        own_group = os.getpgid(0)
        for pid in holders:
            if _pgid(pid) != own_group:
                _signal_group(_pgid(pid), signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            if pid not in killed:
                killed.append(pid)
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    return killed


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

#: Depth of :func:`signals_deferred` blocks in the main thread, and the signal that arrived
#: inside one (raised when the outermost block ends).
_deferring = 0
_deferred: int | None = None


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    global _deferred
    if _deferring:
        _deferred = signum
        return
    raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold the handlers' KeyboardInterrupt until the block ends.

    For the few steps that must not be cut in half: a child forked but not yet
    registered for :func:`stop_all`. Python runs signal handlers in the main
    thread only, so elsewhere this changes nothing. (Blocking the signal with
    ``pthread_sigmask`` instead would be inherited by the child across exec.)
    """
    global _deferring, _deferred
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
        if not _deferring and _deferred is not None:
            signum, _deferred = _deferred, None
            raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")


def install_termination_handlers() -> None:
    """Make SIGTERM and SIGHUP unwind like Ctrl-C so clean-up code runs, and let
    :func:`signals_deferred` hold all three (SIGINT's default handler included).

    Only possible from the main thread; elsewhere it is a no-op (the atexit
    hook still stops the children on a normal exit).
    """
    global _handlers_installed
    if _handlers_installed or threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, _raise_interrupt)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _raise_interrupt)
    _handlers_installed = True


def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses; fields after it are plain.
    return stat.rsplit(")", 1)[1].split()[19]


def _harness_identity(pid: int) -> str:
    return f"{pid}:{_start_time(pid) or '?'}"


@dataclass(frozen=True, slots=True)
class Leftover:
    """A process started by a harness run that is no longer alive."""

    pid: int
    run_id: str
    cmdline: str


def find_leftovers() -> list[Leftover]:
    """Processes labelled by a run whose harness died without cleaning up (SIGKILL).

    Processes of live runs, this one included, are never listed.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = dict(
                item.split(b"=", 1) for item in (entry / "environ").read_bytes().split(b"\0") if b"=" in item
            )
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        run_id = environ.get(RUN_ID_ENV.encode())
        harness = environ.get(HARNESS_ENV.encode())
        if run_id is None or harness is None:
            continue
        pid_text, _, started = harness.decode(errors="replace").partition(":")
        if pid_text.isdigit() and _start_time(int(pid_text)) == started:
            continue  # its harness is alive
        found.append(Leftover(int(entry.name), run_id.decode(errors="replace"), cmdline[:200]))
    return found


def reap_leftovers(timeout: float = 5.0) -> list[Leftover]:
    """Stop every leftover (its whole process group): SIGTERM, then SIGKILL."""
    leftovers = find_leftovers()
    for leftover in leftovers:
        _signal_group(_pgid(leftover.pid), signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for leftover in leftovers:
        while Path(f"/proc/{leftover.pid}").exists() and _state(leftover.pid) not in ("Z", None):
            if time.monotonic() > deadline:
                _signal_group(_pgid(leftover.pid), signal.SIGKILL)
                break
            time.sleep(0.05)
    return leftovers


def _pgid(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return pid


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def ignore_termination_signals() -> None:
    """Once an interrupt is being handled, further SIGINT/SIGTERM/SIGHUP must not
    abort the clean-up half-way (CI runners often send SIGTERM more than once)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
