"""The profile's limits (issue 21): defaults, forms, where they are enforced, the message when hit."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest

from conformance import LimitExceeded, ProfileError, load_profile
from conformance._process import ManagedProcess, token_holders
from conformance._profile import parse_byte_size
from conformance.collect._logs import log_limit_exceeded
from conformance.collect._scrape import scrape_metrics
from conformance.stack._prometheus import ScrapeTarget, render_config

MIB = 1024 * 1024
MINIMAL = "version: 1\nservice: {name: svc, command: [x]}\n"


def _profile(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "conformance.yaml"
    path.write_text(MINIMAL + extra)
    return path


def test_defaults(tmp_path: Path) -> None:
    profile = load_profile(_profile(tmp_path))
    assert profile.logs.max_bytes == 64 * MIB
    assert profile.logs.max_line_bytes == MIB
    assert profile.logs.max_lines == 100_000
    assert profile.prometheus.sample_limit == 200_000
    assert profile.prometheus.body_size_limit == 50 * MIB
    assert profile.prometheus.scrape_timeout == 10.0
    assert profile.telemetry.max_request_body_size == 4 * MIB


def test_sizes_with_units(tmp_path: Path) -> None:
    profile = load_profile(
        _profile(
            tmp_path,
            "logs: {max_bytes: 8MiB}\n"
            "prometheus: {body_size_limit: 2MB, sample_limit: 0, scrape_timeout: 2}\n"
            "telemetry: {max_request_body_size: 65536}\n",
        )
    )
    assert profile.logs.max_bytes == 8 * MIB
    assert profile.prometheus.body_size_limit == 2 * MIB  # base 2, as Prometheus reads it
    assert profile.prometheus.sample_limit == 0
    assert profile.telemetry.max_request_body_size == 65536


@pytest.mark.parametrize(
    ("extra", "expect"),
    [
        ("logs: {max_bytes: lots}\n", "logs.max_bytes"),
        ("logs: {max_bytes: 0}\n", "logs.max_bytes"),
        ("logs: {max_lines: 0}\n", "logs.max_lines"),
        ("prometheus: {sample_limit: -1}\n", "prometheus.sample_limit"),
        ("prometheus: {body_size_limit: 5 parsecs}\n", "prometheus.body_size_limit"),
        ("prometheus: {scrape_timeout: 0}\n", "prometheus.scrape_timeout"),
        ("telemetry: {max_request_body_size: 1TB}\n", "telemetry.max_request_body_size"),
    ],
)
def test_bad_limits_are_one_clear_line(tmp_path: Path, extra: str, expect: str) -> None:
    with pytest.raises(ProfileError, match=expect.replace(".", r"\.")):
        load_profile(_profile(tmp_path, extra))


def test_parse_byte_size() -> None:
    assert parse_byte_size("1.5KiB") == 1536
    assert parse_byte_size(" 3 GB ") == 3 * 1024 * MIB
    with pytest.raises(ValueError, match="not a byte size"):
        parse_byte_size("3 XB")


def test_prometheus_gets_the_limits_and_a_timeout_within_its_interval() -> None:
    target = ScrapeTarget(
        job="service", address="127.0.0.1:9", sample_limit=10, body_size_limit=2048, scrape_timeout=10.0
    )
    text = render_config([target], scrape_interval=1.0, evaluation_interval=1.0)
    assert "sample_limit: 10\n" in text
    assert "body_size_limit: 2048B\n" in text
    assert "  scrape_timeout: 1s\n" in text  # Prometheus refuses a timeout longer than the interval


def test_limit_message_names_limit_value_time_and_fix() -> None:
    from conformance._process import CaptureOverflow

    error = log_limit_exceeded("stdout", CaptureOverflow("stdout", 64 * MIB, 3 * MIB, 40.2))
    assert isinstance(error, LimitExceeded)
    message = str(error)
    assert message.startswith("log stream stdout exceeded 64 MiB")
    assert "after 40 s" in message
    assert "raise logs.max_bytes or fix the flood" in message


def _serving(body: bytes) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(200, content=body)))


def test_own_scrape_body_size_limit() -> None:
    with pytest.raises(LimitExceeded, match=r"prometheus\.body_size_limit"):
        scrape_metrics("http://x/metrics", client=_serving(b"a 1\n" * 1000), max_bytes=100, limits_raise=True)
    # Without limits_raise the oversized body stays the service's problem (a parse error).
    exposition = scrape_metrics("http://x/metrics", client=_serving(b"a 1\n" * 1000), max_bytes=100)
    assert "larger than 100 bytes" in exposition.parse_error


def test_own_scrape_sample_limit_counts_lines_not_comments() -> None:
    body = b"# HELP a x\n# TYPE a gauge\n" + b"".join(b'a{i="%d"} 1\n' % i for i in range(50)) + b"\n"
    ok = scrape_metrics("http://x/metrics", client=_serving(body), sample_limit=50, limits_raise=True)
    assert len(ok.families) == 1
    with pytest.raises(LimitExceeded, match=r"more than 49 sample lines.*prometheus\.sample_limit"):
        scrape_metrics("http://x/metrics", client=_serving(body), sample_limit=49, limits_raise=True)


def test_own_scrape_timeout_is_a_limit() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client = httpx.Client(transport=httpx.MockTransport(hang))
    with pytest.raises(LimitExceeded, match=r"raise prometheus\.scrape_timeout"):
        scrape_metrics("http://x/metrics", client=client, timeout=0.5)


def test_capture_keeps_at_most_max_bytes_and_counts_the_rest(tmp_path: Path) -> None:
    code = (
        "import sys\nfor _ in range(64): sys.stdout.write('x' * 16383 + '\\n')\nsys.stderr.write('ok\\n')\n"
    )
    proc = ManagedProcess(
        "flood",
        [sys.executable, "-c", code],
        stdout_path=tmp_path / "out.log",
        stderr_path=tmp_path / "err.log",
        max_output_bytes=100_000,
    )
    proc.start()
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.stop(timeout=5)
    assert (tmp_path / "out.log").stat().st_size == 100_000
    overflow = proc.overflow("stdout")
    assert overflow is not None
    assert overflow.dropped == 64 * 16384 - 100_000
    assert proc.overflow("stderr") is None
    assert (tmp_path / "err.log").read_text() == "ok\n"


def test_stop_kills_children_that_left_the_group(tmp_path: Path) -> None:
    # The child calls setsid (its own session and group) and outlives its parent.
    code = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(300)\ntime.sleep(300)\n"
    proc = ManagedProcess(
        "forker", [sys.executable, "-c", code], stdout_path=tmp_path / "o", stderr_path=tmp_path / "e"
    )
    proc.start()
    deadline = time.monotonic() + 10
    while len(token_holders(proc.token)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(token_holders(proc.token)) == 2
    proc.stop(timeout=2)
    assert token_holders(proc.token) == []


def _write_minimal(report_dir: Path) -> dict[str, object]:
    from conformance.report import write_reports

    return write_reports(
        report_dir,
        profile=None,
        results={},
        stack={"mode": "local", "components": []},
        started_at=1.0,
        finished_at=2.0,
        profile_path="p.yaml",
        stack_error="the service exited with code 3 during start-up",
    )


def test_reports_are_written_atomically_and_an_unwritable_one_is_named(tmp_path: Path) -> None:
    from conformance.report import HTML_NAME, JUNIT_NAME, MARKDOWN_NAME, REPORT_NAME, ReportNotWritten

    _write_minimal(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [REPORT_NAME, HTML_NAME, JUNIT_NAME, MARKDOWN_NAME]
    )  # no temporary file left behind
    (tmp_path / JUNIT_NAME).unlink()
    (tmp_path / JUNIT_NAME).mkdir()  # a rename over a directory fails
    with pytest.raises(ReportNotWritten, match=JUNIT_NAME) as info:
        _write_minimal(tmp_path)
    assert list(info.value.failures) == [JUNIT_NAME]
    assert info.value.report["summary"]  # the summary can still be printed
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    "hostile",
    ["\x1b[2J\x1b[31mred", "nul\x00byte", "bidi\u202eevil", "c1\x9bcontrol", "lone\udcffsurrogate"],
)
def test_excerpt_shows_control_characters_never_obeys_them(hostile: str) -> None:
    from conformance._mask import excerpt
    from conformance.report._html import _e

    for shown in (excerpt(hostile), _e(hostile)):
        assert shown.isprintable()
        assert "\\x" in shown
    assert "&lt;script&gt;" in _e("<script>alert(1)</script>")


@pytest.mark.parametrize("final", [False, True])
@pytest.mark.parametrize("content", [b"", b"a\n", b"a\nb", b"a\n\nb\n", b"x" * 3000 + b"\n" + b"y" * 10])
def test_count_log_lines_agrees_with_read_log_lines(tmp_path: Path, content: bytes, final: bool) -> None:
    from conformance.collect._logs import count_log_lines, read_log_lines

    path = tmp_path / "stdout.log"
    path.write_bytes(content)
    lines = read_log_lines(path, stream="stdout", max_line_bytes=1024, final=final)
    assert count_log_lines(path, final=final) == len(lines)


def test_line_limit_message() -> None:
    from conformance.collect._logs import log_lines_exceeded

    message = str(log_lines_exceeded("stdout", 100_000, 669_300, 60 * MIB))
    assert message == (
        "log stream stdout exceeded 100000 lines (669300 lines in 60 MiB); "
        "raise logs.max_lines or log less per request"
    )
