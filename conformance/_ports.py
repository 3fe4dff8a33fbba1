"""Free loopback ports for the stack's components."""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

__all__ = ["LOOPBACK", "free_port"]

#: Every socket the harness opens or targets is on this address.
LOOPBACK = "127.0.0.1"

#: Ports handed out by this process (never handed out twice).
_HANDED_OUT: set[int] = set()
_LOCK = threading.Lock()
_ATTEMPTS = 64


def _below_ephemeral() -> tuple[int, int]:
    """A port range below the kernel's ephemeral range (``ip_local_port_range``), where
    neither outgoing connections nor other programs' ``bind(0)`` take ports."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return (10000, low - 1) if low > 11000 else (1024, max(low - 1, 1025))


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago.

    Picked at random below the ephemeral range: a port from ``bind(0)`` is free only
    until the next ``bind(0)``, so two harness runs side by side (CI's two workers) were
    handed the same port, and one service's readiness probe was answered by the other's.
    There is still a small race between this check and the component binding the port;
    components that can bind port 0 themselves (the OTLP receiver) should do that instead.
    """
    low, high = _below_ephemeral()
    pick = random.SystemRandom()
    with _LOCK:
        for _ in range(_ATTEMPTS):
            port = pick.randint(low, high)
            if port not in _HANDED_OUT and _bindable(port):
                _HANDED_OUT.add(port)
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # a crowded range: the kernel's pick
        sock.bind((LOOPBACK, 0))
        chosen: int = sock.getsockname()[1]
        return chosen
