"""Reading captured streams: line numbers, partial lines, huge lines."""

from __future__ import annotations

from pathlib import Path

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
