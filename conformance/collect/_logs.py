"""Reading the service's captured log stream into :class:`LogLine` values."""

from __future__ import annotations

from pathlib import Path

from conformance._exceptions import LimitExceeded
from conformance._gc import cyclic_gc_paused
from conformance._process import CaptureOverflow
from conformance.telemetry import LogLine

__all__ = ["count_log_lines", "log_limit_exceeded", "log_lines_exceeded", "read_log_lines"]

_CHUNK = 1024 * 1024


def read_log_lines(path: Path, *, stream: str, max_line_bytes: int, final: bool) -> list[LogLine]:
    """Split a captured stream into lines without ever holding a huge line.

    A line longer than ``max_line_bytes`` is kept truncated and flagged. While
    the service still runs (``final=False``) a last line without its newline is
    still being written and is left for the next read.
    """
    lines: list[LogLine] = []
    number = 0
    # The line being read when a chunk ended: at most max_line_bytes of it, and whether there was more.
    carry = b""
    carry_long = False
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return lines
    with f, cyclic_gc_paused():  # many small objects that all stay alive
        while chunk := f.read(_CHUNK):
            # bytes.split does the searching in C; only the (rare) long lines need a second look.
            pieces = chunk.split(b"\n")
            rest = pieces.pop()
            if pieces:
                first = carry + pieces[0]
                pieces[0] = first[:max_line_bytes]
                long_first = carry_long or len(first) > max_line_bytes
                carry, carry_long = b"", False
                short = max(map(len, pieces)) <= max_line_bytes
                if short and not long_first and b"\r" not in chunk and b"\r" not in pieces[0]:
                    lines += [LogLine(n, piece, stream, False) for n, piece in enumerate(pieces, number + 1)]
                    number += len(pieces)
                    pieces = []  # all taken: short lines without a carriage return
                for piece in pieces:
                    number += 1
                    if len(piece) > max_line_bytes:
                        lines.append(LogLine(number, piece[:max_line_bytes].rstrip(b"\r"), stream, True))
                    else:
                        lines.append(LogLine(number, piece.rstrip(b"\r"), stream, long_first))
                    long_first = False
            carry += rest
            if len(carry) > max_line_bytes:
                carry, carry_long = carry[:max_line_bytes], True
    if (carry or carry_long) and final:
        lines.append(LogLine(number + 1, carry, stream, carry_long))
    return lines


def count_log_lines(path: Path, *, final: bool) -> int:
    """``len(read_log_lines(path, ..., final=final))`` without building the lines: a newline
    count at C speed, for callers that poll a growing stream (the capture holds up to
    ``logs.max_bytes``, and re-parsing that many lines 20 times a second would be the run)."""
    count = 0
    last = b"\n"
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return 0
    with f:
        while chunk := f.read(_CHUNK):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (1 if final and last != b"\n" else 0)


def log_limit_exceeded(stream: str, overflow: CaptureOverflow) -> LimitExceeded:
    """The error for a stream whose capture passed ``logs.max_bytes`` (what was kept, what dropped)."""
    return LimitExceeded(
        f"log stream {stream}",
        limit_key="logs.max_bytes",
        limit=_mib(overflow.limit),
        seen=f"{_mib(overflow.dropped)} more written and dropped, the first {_mib(overflow.limit)} kept",
        after=overflow.after,
        fix="fix the flood",
    )


def log_lines_exceeded(stream: str, limit: int, lines: int, size: int) -> LimitExceeded:
    """The error for a stream with more lines than ``logs.max_lines`` (parsing them all would
    cost ~1 KiB each)."""
    return LimitExceeded(
        f"log stream {stream}",
        limit_key="logs.max_lines",
        limit=f"{limit} lines",
        seen=f"{lines} lines in {_mib(size)}",
        fix="log less per request",
    )


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f}".removesuffix(".0") + " MiB" if n >= 1024 * 1024 else f"{n} bytes"
