"""Reading captured streams: line numbers, partial lines, huge lines."""

from __future__ import annotations

from pathlib import Path
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.collect import _logs
from conformance.collect._logs import read_log_lines


def test_lines_numbered_and_partial_last_line_waits(tmp_path: Path) -> None:
    path = tmp_path / "out"
    path.write_bytes(b'{"a": 1}\n\n{"b": 2}\r\n{"c": ')
    lines = read_log_lines(path, stream="stdout", max_line_bytes=1024, final=False)
    assert [(line.number, line.raw) for line in lines] == [(1, b'{"a": 1}'), (2, b""), (3, b'{"b": 2}')]
    final = read_log_lines(path, stream="stdout", max_line_bytes=1024, final=True)
    assert final[-1].number == 4 and final[-1].raw == b'{"c": '


def test_huge_line_is_truncated_and_flagged(tmp_path: Path) -> None:
    path = tmp_path / "out"
    path.write_bytes(b"x" * (3 * 1024 * 1024) + b"\nok\n")
    lines = read_log_lines(path, stream="stderr", max_line_bytes=1000, final=True)
    assert [(line.number, len(line.raw), line.truncated, line.stream) for line in lines] == [
        (1, 1000, True, "stderr"),
        (2, 2, False, "stderr"),
    ]


def test_missing_file_is_no_lines(tmp_path: Path) -> None:
    assert read_log_lines(tmp_path / "none", stream="stdout", max_line_bytes=10, final=True) == []


def _one_line_at_a_time(data: bytes, max_line_bytes: int, final: bool) -> list[tuple[int, bytes, bool]]:
    """The reader's contract, spelled out line by line (its earlier, byte-loop implementation)."""
    out = []
    pieces = data.split(b"\n")
    last = pieces.pop()
    for number, piece in enumerate(pieces, 1):
        out.append((number, piece[:max_line_bytes].rstrip(b"\r"), len(piece) > max_line_bytes))
    if last and final:
        out.append((len(pieces) + 1, last[:max_line_bytes], len(last) > max_line_bytes))
    return out


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.lists(
        st.sampled_from([b"a", b"bc", b"\n", b"\r", b"\r\n", b"xxxxxxx", b"\n\n"]), max_size=30
    ).map(b"".join),
    chunk=st.integers(1, 9),
    max_line_bytes=st.integers(1, 12),
    final=st.booleans(),
)
def test_chunked_reading_matches_line_by_line_reading(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, chunk: int, max_line_bytes: int, final: bool
) -> None:
    path = tmp_path_factory.mktemp("log") / "out"
    path.write_bytes(data)
    with patch.object(_logs, "_CHUNK", chunk):
        lines = read_log_lines(path, stream="stdout", max_line_bytes=max_line_bytes, final=final)
    assert [(line.number, line.raw, line.truncated) for line in lines] == _one_line_at_a_time(
        data, max_line_bytes, final
    )
