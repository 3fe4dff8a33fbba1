"""Waiting until a started service answers HTTP: the stack's service and HLT's second instance.

One bounded poll (:func:`~conformance._wait.wait_until`) that also watches the
process or container it waits for, so a service that dies during start-up ends
the wait at once with its last output, instead of after the whole timeout.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from conformance._exceptions import ServiceStartError, WaitTimeout
from conformance._mask import excerpt
from conformance._wait import wait_until

__all__ = ["Exited", "wait_answering"]

#: ``(exit code, its last output, already masked)`` once the thing has exited, else ``(None, "")``.
Exited = Callable[[], tuple[int | None, str]]


def wait_answering(
    url: str,
    *,
    what: str,
    exited: Exited,
    timeout: float,
    accept: Callable[[int], bool] = lambda status: True,
    expected: str = "any status",
    hint: str,
    output_hint: str = "",
    gave_up: str = "never became ready",
) -> int:
    """Poll ``GET url`` until its status is accepted; return that status.

    Raises :class:`ServiceStartError` naming ``what`` when it exits first (with
    its last output) or when ``timeout`` passes (with what it last answered).
    """

    def probe() -> tuple[int | None, str]:
        code, tail = exited()
        if code is not None:
            raise ServiceStartError(
                f"{what} exited with code {code} during start-up; "
                f"last output: {excerpt(tail, 300) or '(none)'}",
                hint=output_hint,
            )
        try:
            status = httpx.get(url, timeout=2.0).status_code
        except httpx.HTTPError as exc:
            return None, f"GET {url}: {type(exc).__name__}"
        return (status if accept(status) else None), f"GET {url} answered {status}"

    try:
        return wait_until(probe, awaited=f"{what} to answer {expected} on {url}", timeout=timeout)
    except WaitTimeout as exc:
        raise ServiceStartError(
            f"{what} {gave_up}: {exc.last_seen} after {exc.timeout:g}s", hint=hint
        ) from None
