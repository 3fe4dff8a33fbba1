"""Free loopback ports for the stack's components."""

from __future__ import annotations

import socket

__all__ = ["LOOPBACK", "free_port"]

#: Every socket the harness opens or targets is on this address.
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago.

    There is a small race between closing this socket and the component binding
    the port; components that can bind port 0 themselves (the OTLP receiver)
    should do that instead.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port
