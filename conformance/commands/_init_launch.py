"""``conformance init --command``: start the service under init's eye, and see what it does.

* :class:`OtlpSniffer` is one loopback port for the service's OTLP exporters whatever
  protocol they speak: it peeks at the first bytes of each connection (the HTTP/2 client
  preface ``PRI * HTTP/2.0`` means gRPC, anything else is OTLP/HTTP) and relays the
  connection to the embedded receiver's gRPC or HTTP port. Init cannot know the service's
  exporter protocol in advance, and ``OTEL_EXPORTER_OTLP_ENDPOINT`` names one address.
  Hand-written because no library relays by protocol on one port for a test harness; it is
  a plain byte relay, the receiver does all OTLP work.
* :func:`listening_ports` finds the TCP ports a process group listens on from ``/proc``
  (socket inodes of every process in the group matched against ``/proc/net/tcp{,6}``), so a
  metrics server on a second port is found without knowing its flag.
* :class:`LaunchedService` starts the command as a :class:`ManagedProcess` with stdout and
  stderr captured apart, and stops it (also on Ctrl-C, by ManagedProcess's handlers).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from conformance._exceptions import HarnessError
from conformance._ports import LOOPBACK, free_port
from conformance._process import ManagedProcess
from conformance._readiness import wait_answering
from conformance.stack._otlp import OtlpReceiver

__all__ = [
    "FAST_EXPORT_ENV",
    "LaunchedService",
    "OtlpSniffer",
    "client_for",
    "fill",
    "listening_ports",
    "parse_proc_net_tcp",
]

_H2_PREFACE = b"PRI * HTTP/2.0"
#: OTel SDK variables that make exporters flush quickly (as the local stack sets them).
FAST_EXPORT_ENV = {
    "OTEL_BSP_SCHEDULE_DELAY": "200",
    "OTEL_BLRP_SCHEDULE_DELAY": "200",
    "OTEL_METRIC_EXPORT_INTERVAL": "1000",
    "OTEL_METRIC_EXPORT_TIMEOUT": "1000",
}


class OtlpSniffer:
    """One port in front of an :class:`OtlpReceiver`: gRPC to its gRPC port, the rest to HTTP."""

    def __init__(self, receiver: OtlpReceiver) -> None:
        self.receiver = receiver
        self.connections: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind((LOOPBACK, 0))
        self._server.listen(64)
        self._server.settimeout(0.2)
        self.port: int = self._server.getsockname()[1]
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, name="init-otlp-sniffer", daemon=True)
        self._accept.start()

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def protocols(self) -> list[str]:
        """The protocols the service used, from the connections and the receiver's counts."""
        stats = self.receiver.stats()
        requests = stats.get("requests", {})
        return sorted(p for p, n in requests.items() if n)

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._relay, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _relay(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            conn.settimeout(5.0)
            head = conn.recv(len(_H2_PREFACE), socket.MSG_PEEK)
            kind = "grpc" if head.startswith(_H2_PREFACE[: len(head)]) and head else "http"
            with self._lock:
                self.connections[kind] += 1
            port = self.receiver.grpc_port if kind == "grpc" else self.receiver.http_port
            conn.settimeout(None)
            with socket.create_connection((LOOPBACK, port), timeout=5.0) as upstream:
                upstream.settimeout(None)
                back = threading.Thread(target=_pump, args=(upstream, conn), daemon=True)
                back.start()
                _pump(conn, upstream)
                back.join(timeout=5.0)

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._server.close()
        self._accept.join(timeout=2.0)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


# --------------------------------------------------------------------------- /proc


def _group_pids(pgid: int, proc: Path = Path("/proc")) -> list[int]:
    pids = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[2] == str(pgid):
            pids.append(int(entry.name))
    return sorted(pids)


def _socket_inodes(pid: int, proc: Path = Path("/proc")) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in (proc / str(pid) / "fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


def parse_proc_net_tcp(text: str) -> dict[str, int]:
    """``inode -> local port`` of the LISTEN sockets in a ``/proc/net/tcp{,6}`` table (pure)."""
    out: dict[str, int] = {}
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 10 or parts[3] != "0A":  # 0A: TCP_LISTEN
            continue
        _, _, port_hex = parts[1].rpartition(":")
        out[parts[9]] = int(port_hex, 16)
    return out


def listening_ports(pgid: int, proc: Path = Path("/proc")) -> list[int]:
    """TCP ports any process of group ``pgid`` listens on (Linux ``/proc``; empty elsewhere)."""
    listening: dict[str, int] = {}
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            listening.update(parse_proc_net_tcp((proc / "net" / table).read_text()))
    ports: set[int] = set()
    for pid in _group_pids(pgid, proc):
        ports.update(listening[i] for i in _socket_inodes(pid, proc) if i in listening)
    return sorted(ports)


# --------------------------------------------------------------------------- the service


@dataclass(slots=True)
class LaunchedService:
    """The service started by init, with the harness's OTLP receiver behind one port."""

    argv: Sequence[str]
    env: Mapping[str, str]
    workdir: Path
    cwd: Path | None = None
    port: int = 0
    metrics_port: int = 0
    process: ManagedProcess | None = None
    receiver: OtlpReceiver = field(default_factory=OtlpReceiver)
    sniffer: OtlpSniffer | None = None

    def values(self) -> dict[str, str]:
        """What the placeholders of the command and env stand for in this launch."""
        assert self.sniffer is not None
        return {
            "port": str(self.port),
            "metrics_port": str(self.metrics_port),
            "python": sys.executable,
            "otlp_grpc_endpoint": self.sniffer.endpoint,
            "otlp_http_endpoint": self.sniffer.endpoint,
        }

    def start(self, ready_timeout: float) -> None:
        self.receiver.start()
        self.sniffer = OtlpSniffer(self.receiver)
        self.port = free_port()
        self.metrics_port = free_port()
        values = self.values()
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.update(FAST_EXPORT_ENV)
        # No OTEL_EXPORTER_OTLP_PROTOCOL: the service's own default is what init wants to see.
        env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": self.sniffer.endpoint, "PYTHONUNBUFFERED": "1"})
        env.update({k: fill(v, values) for k, v in self.env.items()})
        self.process = ManagedProcess(
            "service",
            [fill(a, values) for a in self.argv],
            stdout_path=self.workdir / "stdout.log",
            stderr_path=self.workdir / "stderr.log",
            env=env,
            cwd=self.cwd,
        )
        try:
            self.process.start()
        except OSError as exc:
            raise HarnessError(
                f"--command: cannot start {self.argv[0]!r}: {exc.strerror}",
                hint="check the path, or give --cwd",
            ) from None
        process = self.process
        wait_answering(
            f"http://{LOOPBACK}:{self.port}/",
            what="the service",
            exited=lambda: (process.poll(), process.stderr_tail() or process.stdout_tail()),
            timeout=ready_timeout,
            hint="does the command listen on {port}? (give --ready-timeout for a slow start)",
            output_hint="the service's output is above; is the command right?",
        )

    def other_ports(self) -> list[int]:
        """Ports the service's process group listens on besides its service port."""
        if self.process is None or self.process.pid is None:
            return []
        return [p for p in listening_ports(self.process.pid) if p != self.port]

    def stop(self, timeout: float = 10.0) -> None:
        try:
            if self.process is not None:
                self.process.stop(timeout=timeout)
        finally:
            if self.sniffer is not None:
                self.sniffer.stop()
            with contextlib.suppress(Exception):
                self.receiver.stop()

    def output(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for stream in ("stdout", "stderr"):
            path = self.workdir / f"{stream}.log"
            try:
                out[stream] = path.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                out[stream] = []
        return out

    def __enter__(self) -> LaunchedService:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def fill(template: str, values: Mapping[str, str]) -> str:
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", value)
    return out


def client_for(port: int, timeout: float) -> httpx.Client:
    return httpx.Client(base_url=f"http://{LOOPBACK}:{port}", timeout=timeout, trust_env=False)
