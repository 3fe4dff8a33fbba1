"""The harness's exceptions, one root, three kinds kept apart.

::

    ConformanceError                 root of everything the harness raises on purpose
    ├── UsageError                   the user's mistake: bad flag, missing file (exit 2)
    │   └── ProfileError             a profile that fails to load or validate (exit 2)
    ├── HarnessError                 our infrastructure broke; a check could not run (exit 3)
    │   ├── NoEvidence               a check had nothing to examine (never a pass)
    │   ├── LimitExceeded            the service's output hit one of the profile's limits
    │   ├── StackError               a stack component would not start or died
    │   │   └── ServiceStartError    the service under test crashed or never got ready
    │   └── WaitTimeout              a bounded wait ran out (what, last seen, hint)
    └── Failure (also AssertionError) the service does not conform (exit 1)

A ``Failure`` is an ``AssertionError`` so pytest shows it as a plain test
failure; anything else escaping a suite test becomes status ``error``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conformance._model import Finding

__all__ = [
    "ConformanceError",
    "Failure",
    "HarnessError",
    "LimitExceeded",
    "NoEvidence",
    "ProfileError",
    "ServiceStartError",
    "StackError",
    "UsageError",
    "WaitTimeout",
]


class ConformanceError(Exception):
    """Root of every exception the harness raises on purpose."""


class UsageError(ConformanceError):
    """The user asked for something impossible: one clear line, exit code 2."""


class ProfileError(UsageError):
    """A profile that cannot be used.

    The message always has the form ``FILE: PATH: PROBLEM`` so a person can go
    straight to the offending key.
    """

    def __init__(self, file: str, path: str, problem: str) -> None:
        self.file = file
        self.path = path
        self.problem = problem
        where = f"{file}: {path}" if path else file
        super().__init__(f"{where}: {problem}")


class HarnessError(ConformanceError):
    """Our infrastructure broke, so a check could not run (status ``error``)."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        self.hint = hint
        super().__init__(f"{message} (hint: {hint})" if hint else message)


class NoEvidence(HarnessError):
    """A check had nothing to examine: its verdict is ``error``, never ``passed``.

    The message says what was missing and the hint how to get it ("no JSON
    record on stdout; set logs.stream").
    """


class LimitExceeded(HarnessError):
    """The service's output hit one of the profile's limits, so what depends on it is ``error``.

    The message names the limit, the value seen, when in the run it was hit and
    the fix: "log stream stdout exceeded 64 MiB after 40 s; raise
    logs.max_bytes or fix the flood". ``detail`` adds what the enforcing tool
    said (Prometheus's scrape error).
    """

    def __init__(
        self,
        what: str,
        *,
        limit_key: str,
        limit: str,
        seen: str = "",
        after: float | None = None,
        fix: str = "",
        detail: str = "",
    ) -> None:
        self.what = what
        self.limit_key = limit_key
        self.limit = limit
        self.seen = seen
        self.after = after
        self.fix = fix
        self.detail = detail
        when = f" after {after:.0f} s" if after is not None else ""
        seen_text = f" ({seen})" if seen else ""
        fix_text = f" or {fix}" if fix else ""
        message = f"{what} exceeded {limit}{seen_text}{when}; raise {limit_key}{fix_text}"
        if detail:
            message += f"; {detail}"
        super().__init__(message)

    def amended(self, *, detail: str = "", after: float | None = None) -> LimitExceeded:
        """The same limit, with the enforcing tool's word and the time in the run filled in."""
        return LimitExceeded(
            self.what,
            limit_key=self.limit_key,
            limit=self.limit,
            seen=self.seen,
            after=self.after if self.after is not None else after,
            fix=self.fix,
            detail=detail or self.detail,
        )


class StackError(HarnessError):
    """A stack component (Prometheus, the OTLP receiver, a container) failed."""


class ServiceStartError(StackError):
    """The service under test exited during start-up or never became ready."""


class WaitTimeout(HarnessError):
    """A bounded wait ran out; says what was awaited and what was last seen."""

    def __init__(self, awaited: str, timeout: float, last_seen: str, *, hint: str = "") -> None:
        self.awaited = awaited
        self.timeout = timeout
        self.last_seen = last_seen
        super().__init__(
            f"timed out after {timeout:g}s waiting for {awaited}; last seen: {last_seen}", hint=hint
        )


class Failure(AssertionError, ConformanceError):
    """The service does not meet a requirement; carries the findings."""

    def __init__(self, message: str, findings: tuple[Finding, ...] = ()) -> None:
        self.findings = findings
        super().__init__(message)
