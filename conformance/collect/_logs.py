"""Reading the service's captured log stream into :class:`LogLine` values."""

from __future__ import annotations

from pathlib import Path

from conformance._gc import cyclic_gc_paused
from conformance.telemetry import LogLine

__all__ = ["read_log_lines"]

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
