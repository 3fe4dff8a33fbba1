"""Bounded waiting: poll a condition against a monotonic deadline.

Every wait in the harness goes through :func:`wait_until`, so every wait has a
timeout and every timeout says what was awaited and what was last seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from conformance._exceptions import WaitTimeout

__all__ = ["Clock", "wait_until"]

T = TypeVar("T")

#: A clock is injected so tests can drive time; production uses monotonic time.
Clock = Callable[[], float]


def wait_until(
    probe: Callable[[], tuple[T | None, str]],
    *,
    awaited: str,
    timeout: float,
    interval: float = 0.05,
    max_interval: float = 0.5,
    hint: str = "",
    clock: Clock = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``probe`` until it returns a value, or raise :class:`WaitTimeout`.

    ``probe`` returns ``(value, last_seen)``: a non-``None`` value ends the wait;
    ``last_seen`` is a short description of the current state, used in the
    timeout message. Exceptions from the probe propagate (a probe that wants to
    tolerate e.g. connection refused catches it and reports it as last seen).
    The poll interval grows from ``interval`` up to ``max_interval``.
    """
    deadline = clock() + timeout
    last_seen = "nothing yet"
    delay = interval
    while True:
        value, last_seen = probe()
        if value is not None:
            return value
        remaining = deadline - clock()
        if remaining <= 0:
            raise WaitTimeout(awaited, timeout, last_seen, hint=hint)
        sleep(min(delay, remaining))
        delay = min(delay * 1.5, max_interval)
