"""LocalPrometheus and PrometheusClient against the real Prometheus binary.

Only the API error-shape tests use ``httpx.MockTransport`` (a JSON envelope is
all they need); everything else runs ``/usr/bin/prometheus`` (or
``OBSCONFORM_PROMETHEUS_BIN``). A missing binary fails these tests with the
bootstrap hint rather than skipping them.

Prometheus 2.42 hands new targets to its scrape manager on a 5-second tick, so
the module shares one scraping server; rule/alert tests that need no target use
their own small servers, which are ready in well under a second.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, start_http_server

from conformance._exceptions import HarnessError, StackError, WaitTimeout
from conformance._ports import LOOPBACK, free_port
from conformance._wait import wait_until
from conformance.collect._prometheus_api import PrometheusClient, wait_for_series, wait_for_target_up
from conformance.stack._prometheus import (
    PROMETHEUS_BIN_ENV,
    LocalPrometheus,
    ScrapeTarget,
    binary_version,
    find_prometheus_binary,
    render_config,
)

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[1]

ALWAYS_FIRING_RULES = """\
groups:
  - name: conformance-test
    rules:
      - alert: AlwaysFiring
        expr: vector(1)
        for: 0s
        labels:
          severity: page
        annotations:
          summary: fires on every evaluation
      - record: job:demo_requests:sum
        expr: sum by (job) (demo_requests_total)
"""


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _assert_process_gone(pid: int) -> None:
    wait_until(
        lambda: (True if _process_gone(pid) else None, f"pid {pid} still exists"),
        awaited=f"process {pid} to be gone",
        timeout=10,
    )


def _fake_binary(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    try:
        return find_prometheus_binary()
    except StackError as exc:
        pytest.fail(f"Prometheus is required for these tests: {exc}")


@dataclass
class MetricsApp:
    registry: CollectorRegistry
    requests: Counter
    port: int

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"


@pytest.fixture(scope="module")
def metrics_app() -> Iterator[MetricsApp]:
    registry = CollectorRegistry()
    requests = Counter("demo_requests", "Requests handled.", ["path"], registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr=LOOPBACK, registry=registry)
    yield MetricsApp(registry, requests, port)
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def dead_port() -> int:
    """A port nothing listens on, for a target that must stay down."""
    return free_port()


@pytest.fixture(scope="module")
def prometheus(
    prometheus_binary: str, metrics_app: MetricsApp, dead_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalPrometheus]:
    workdir = tmp_path_factory.mktemp("prometheus")
    rules = workdir / "rules.yml"
    rules.write_text(ALWAYS_FIRING_RULES)
    targets = [
        ScrapeTarget("svc", metrics_app.address, labels={"env": "test"}),
        ScrapeTarget("dead", f"{LOOPBACK}:{dead_port}"),
    ]
    with LocalPrometheus(workdir, targets, binary=prometheus_binary, rule_files=[rules]) as prom:
        yield prom


@pytest.fixture(scope="module")
def api(prometheus: LocalPrometheus) -> Iterator[PrometheusClient]:
    with httpx.Client(trust_env=False) as http:
        yield PrometheusClient(prometheus.url, client=http)


@pytest.fixture(scope="module")
def svc_target(api: PrometheusClient) -> dict[str, Any]:
    return wait_for_target_up(api, "svc", timeout=30)


# --- the scraping server -----------------------------------------------------------------------------


def test_target_comes_up(svc_target: dict[str, Any], metrics_app: MetricsApp, api: PrometheusClient) -> None:
    assert svc_target["health"] == "up"
    assert svc_target["lastError"] == ""
    assert svc_target["scrapeUrl"] == f"http://{metrics_app.address}/metrics"
    assert svc_target["labels"] == {"instance": metrics_app.address, "job": "svc", "env": "test"}
    assert {t["scrapePool"] for t in api.targets()} == {"svc", "dead"}


def test_down_target_times_out_with_the_scrape_error(
    svc_target: dict[str, Any], api: PrometheusClient
) -> None:
    with pytest.raises(WaitTimeout) as excinfo:
        wait_for_target_up(api, "dead", timeout=2)

    message = str(excinfo.value)
    assert "job='dead'" in message
    assert "health='down'" in message
    assert "connection refused" in message


def test_counter_increments_are_queried(
    svc_target: dict[str, Any], metrics_app: MetricsApp, api: PrometheusClient
) -> None:
    metrics_app.requests.labels(path="/inc").inc(5)
    [sample] = wait_for_series(api, 'demo_requests_total{path="/inc"} == 5', timeout=15)
    assert sample["metric"] == {
        "__name__": "demo_requests_total",
        "path": "/inc",
        "job": "svc",
        "env": "test",
        "instance": metrics_app.address,
    }
    assert sample["value"] == 5.0

    metrics_app.requests.labels(path="/inc").inc(2)
    wait_for_series(api, 'demo_requests_total{path="/inc"} == 7', timeout=15)


def test_series_and_label_values(
    svc_target: dict[str, Any], metrics_app: MetricsApp, api: PrometheusClient
) -> None:
    metrics_app.requests.labels(path="/series").inc()
    wait_for_series(api, 'demo_requests_total{path="/series"}', timeout=15)

    series = api.series(['{job="svc", __name__=~"demo_requests_total|up"}'])
    names = {s["__name__"] for s in series}
    assert names == {"demo_requests_total", "up"}
    assert all(s["job"] == "svc" for s in series)
    assert {"/series", "/inc"} & set(api.label_values("path"))
    assert api.label_values("job") == ["dead", "svc"]
    assert {"demo_requests_total", "demo_requests_created", "up", "scrape_duration_seconds"} <= set(
        api.label_values("__name__")
    )


def test_query_result_shapes(svc_target: dict[str, Any], api: PrometheusClient) -> None:
    [scalar] = api.query("scalar(vector(2.5))")
    assert scalar["metric"] == {}
    assert scalar["value"] == 2.5
    [vector] = api.query('up{job="svc"}', time=scalar["timestamp"])
    assert vector["value"] == 1.0
    assert vector["metric"]["job"] == "svc"
    [matrix] = api.query('up{job="svc"}[1m]')
    assert matrix["values"]
    assert all(v == 1.0 for _, v in matrix["values"])
    [nan] = api.query("vector(0) / 0")
    assert nan["value"] != nan["value"]  # NaN survives the string encoding


def test_bad_promql_raises_with_prometheus_error(api: PrometheusClient) -> None:
    with pytest.raises(HarnessError) as excinfo:
        api.query("sum(")

    assert "bad_data" in str(excinfo.value)
    assert "parse error" in str(excinfo.value)


def test_tsdb_status_build_info_and_describe(
    svc_target: dict[str, Any], prometheus: LocalPrometheus, api: PrometheusClient, prometheus_binary: str
) -> None:
    tsdb = api.tsdb_status()
    assert tsdb["headStats"]["numSeries"] > 0
    assert "up" in {entry["name"] for entry in tsdb["seriesCountByMetricName"]}

    info = api.build_info()
    assert info["version"] == prometheus.version == binary_version(prometheus_binary)
    assert info["version"].startswith("2.")
    assert api.ready()

    described = prometheus.describe()
    assert described["name"] == "prometheus"
    assert described["kind"] == "process"
    assert described["binary"] == prometheus_binary
    assert described["version"] == info["version"]
    assert described["url"] == prometheus.url
    assert described["scrape_interval"] == 1.0
    assert 0 < described["startup_seconds"] < 20


def test_rules_are_loaded_and_the_alert_fires(api: PrometheusClient) -> None:
    rules = {r["name"]: r for r in api.rules()}
    assert rules["AlwaysFiring"]["type"] == "alerting"
    assert rules["AlwaysFiring"]["group"] == "conformance-test"
    assert rules["job:demo_requests:sum"]["type"] == "recording"
    assert [r["name"] for r in api.rules("record")] == ["job:demo_requests:sum"]

    def firing() -> tuple[dict[str, Any] | None, str]:
        alerts = api.alerts()
        hit = next((a for a in alerts if a["labels"].get("alertname") == "AlwaysFiring"), None)
        state = hit["state"] if hit else "absent"
        return (hit if state == "firing" else None), f"AlwaysFiring {state}"

    alert = wait_until(firing, awaited="AlwaysFiring to fire", timeout=15)
    assert alert["labels"]["severity"] == "page"
    assert alert["annotations"]["summary"] == "fires on every evaluation"


# --- start-up, reload and shutdown -------------------------------------------------------------------


def test_reload_picks_up_rule_changes_and_reports_bad_ones(prometheus_binary: str, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text("groups: [{name: g, rules: [{record: one, expr: vector(1)}]}]\n")
    with LocalPrometheus(tmp_path / "prom", [], binary=prometheus_binary, rule_files=[rules]) as prom:
        api = PrometheusClient(prom.url)
        try:
            assert [r["name"] for r in api.rules()] == ["one"]

            rules.write_text(
                "groups: [{name: g, rules: [{record: one, expr: vector(1)},"
                " {record: two, expr: vector(2)}]}]\n"
            )
            prom.reload()
            assert [r["name"] for r in api.rules()] == ["one", "two"]

            rules.write_text("groups: [{name: g, rules: [{record: three, expr: 'sum('}]}]\n")
            with pytest.raises(StackError, match="could not parse expression"):
                prom.reload()
            assert [r["name"] for r in api.rules()] == ["one", "two"]
        finally:
            api.close()


def test_bad_rule_file_fails_start_with_prometheus_error(prometheus_binary: str, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text("groups: [{name: g, rules: [{alert: Broken, expr: 'vector(1) +'}]}]\n")
    prom = LocalPrometheus(tmp_path / "prom", [], binary=prometheus_binary, rule_files=[rules])

    with pytest.raises(StackError) as excinfo:
        prom.start()

    message = str(excinfo.value)
    assert "exited with code 1 during start-up" in message
    assert "could not parse expression" in message
    assert str(prom.stderr_path) in message
    assert not prom.running


def test_bad_config_fails_start_with_prometheus_error(
    prometheus_binary: str, metrics_app: MetricsApp, tmp_path: Path
) -> None:
    target = ScrapeTarget("svc", metrics_app.address, labels={"not-a-label": "x"})
    prom = LocalPrometheus(tmp_path / "prom", [target], binary=prometheus_binary)

    with pytest.raises(StackError, match='"not-a-label" is not a valid label name'):
        prom.start()
    assert not prom.running


def test_process_that_never_gets_ready_times_out_and_is_stopped(tmp_path: Path) -> None:
    binary = _fake_binary(
        tmp_path / "prometheus",
        """\
        [ "$1" = "--version" ] && { echo "prometheus, version 9.9.9+fake (branch: x)"; exit 0; }
        exec sleep 60
        """,
    )
    prom = LocalPrometheus(tmp_path / "prom", [], binary=binary, startup_timeout=0.5)

    with pytest.raises(WaitTimeout, match=r"waiting for Prometheus at http://127\.0\.0\.1:\d+/-/ready"):
        prom.start()
    assert prom.pid is not None
    _assert_process_gone(prom.pid)


def test_stop_leaves_no_process_and_is_idempotent(prometheus_binary: str, tmp_path: Path) -> None:
    prom = LocalPrometheus(tmp_path / "prom", [], binary=prometheus_binary)
    prom.start()
    pid = prom.pid
    assert pid is not None
    assert prom.running
    assert not _process_gone(pid)

    prom.stop()
    prom.stop()

    assert not prom.running
    _assert_process_gone(pid)
    assert not PrometheusClient(prom.url, timeout=1).ready()


HARNESS_SCRIPT = """\
import signal, sys
from pathlib import Path
from conformance._process import install_termination_handlers
from conformance.stack._prometheus import LocalPrometheus

install_termination_handlers()
workdir = Path(sys.argv[1])
with LocalPrometheus(workdir / "prom", [], binary=sys.argv[2]) as prom:
    (workdir / "pid").write_text(str(prom.pid))
    while True:
        signal.pause()
"""


def test_sigterm_to_the_harness_stops_prometheus(prometheus_binary: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    harness = subprocess.Popen(
        [sys.executable, "-c", HARNESS_SCRIPT, str(tmp_path), prometheus_binary],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        pid_file = tmp_path / "pid"
        wait_until(
            lambda: (pid_file.read_text() or None if pid_file.exists() else None, "no pid file"),
            awaited="the harness to start Prometheus",
            timeout=20,
        )
        prom_pid = int(pid_file.read_text())
        assert not _process_gone(prom_pid)

        harness.send_signal(signal.SIGTERM)
        _, stderr = harness.communicate(timeout=20)

        assert b"KeyboardInterrupt: received SIGTERM" in stderr
        _assert_process_gone(prom_pid)
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.communicate()


# --- binaries and config -----------------------------------------------------------------------------


def test_missing_binary_named_by_env_gives_the_bootstrap_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(PROMETHEUS_BIN_ENV, str(tmp_path / "no-such-prometheus"))

    with pytest.raises(StackError) as excinfo:
        LocalPrometheus(tmp_path / "prom", []).start()

    assert PROMETHEUS_BIN_ENV in str(excinfo.value)
    assert "run scripts/bootstrap, which installs Debian's prometheus package" in excinfo.value.hint


def test_binary_missing_from_path_gives_the_bootstrap_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(PROMETHEUS_BIN_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(StackError, match="prometheus not found on PATH") as excinfo:
        find_prometheus_binary()

    assert "scripts/bootstrap" in excinfo.value.hint


def test_env_override_and_version_parsing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = _fake_binary(tmp_path / "prom", 'echo "prometheus, version 2.99.1+ds (branch: debian/sid)"\n')
    monkeypatch.setenv(PROMETHEUS_BIN_ENV, fake)

    assert find_prometheus_binary() == fake
    assert binary_version(fake) == "2.99.1+ds"


def test_real_binaries_report_versions(prometheus_binary: str) -> None:
    promtool = find_prometheus_binary("promtool")
    assert binary_version(prometheus_binary) == binary_version(promtool)
    assert binary_version(prometheus_binary)[0].isdigit()


def test_rendered_config_is_accepted_by_promtool(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(ALWAYS_FIRING_RULES)
    targets = [
        ScrapeTarget("svc", "127.0.0.1:8000", labels={"env": "ci"}),
        ScrapeTarget(
            "secured",
            "127.0.0.1:8001",
            metrics_path="/internal/metrics",
            scheme="https",
            params={"format": ["prometheus"]},
            bearer_token="s3cret",
        ),
    ]
    text = render_config(targets, scrape_interval=0.5, evaluation_interval=1.0, rule_files=[rules])
    config = yaml.safe_load(text)

    assert config["global"] == {
        "scrape_interval": "500ms",
        "scrape_timeout": "500ms",
        "evaluation_interval": "1s",
    }
    secured = config["scrape_configs"][1]
    assert secured["authorization"] == {"type": "Bearer", "credentials": "s3cret"}
    assert secured["params"] == {"format": ["prometheus"]}
    assert "s3cret" not in repr(targets[1])

    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(text)
    checked = subprocess.run(
        [find_prometheus_binary("promtool"), "check", "config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ("scrape_interval", "evaluation_interval", "message"),
    [
        (0.0, 1.0, "scrape_interval must be a positive"),
        (1.0, float("nan"), "evaluation_interval must be a positive"),
        (0.0001, 1.0, "at least 1ms"),
    ],
)
def test_render_config_rejects_bad_intervals(
    scrape_interval: float, evaluation_interval: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        render_config([], scrape_interval=scrape_interval, evaluation_interval=evaluation_interval)


def test_render_config_rejects_duplicate_jobs() -> None:
    targets = [ScrapeTarget("svc", "127.0.0.1:1"), ScrapeTarget("svc", "127.0.0.1:2")]
    with pytest.raises(ValueError, match="duplicate scrape job name 'svc'"):
        render_config(targets, scrape_interval=1, evaluation_interval=1)


@pytest.mark.parametrize(
    ("address", "metrics_path", "scheme"),
    [
        ("localhost", "/metrics", "http"),
        ("127.0.0.1:http", "/metrics", "http"),
        ("127.0.0.1:8000", "metrics", "http"),
        ("127.0.0.1:8000", "/metrics", "ftp"),
    ],
)
def test_scrape_target_validates(address: str, metrics_path: str, scheme: str) -> None:
    with pytest.raises(ValueError, match="ScrapeTarget"):
        ScrapeTarget("svc", address, metrics_path=metrics_path, scheme=scheme)


# --- API error shapes (MockTransport: only the JSON envelope matters here) ---------------------------


def _mock_api(handler: Any) -> PrometheusClient:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return PrometheusClient("http://prometheus.test", client=http)


def test_api_error_envelope_raises_with_error_type_and_message() -> None:
    api = _mock_api(
        lambda request: httpx.Response(
            422,
            json={"status": "error", "errorType": "execution", "error": "query would load too many samples"},
        )
    )

    with pytest.raises(HarnessError, match=r"/api/v1/query failed \(HTTP 422\): execution: query would load"):
        api.query("up")


def test_api_non_json_response_raises() -> None:
    api = _mock_api(lambda request: httpx.Response(502, text="<html>Bad Gateway</html>"))

    with pytest.raises(HarnessError, match="HTTP 502, not a JSON response"):
        api.targets()


def test_api_connection_failure_names_the_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    api = _mock_api(refuse)

    with pytest.raises(HarnessError, match=r"http://prometheus\.test/api/v1/alerts unreachable"):
        api.alerts()
    assert api.ready() is False


def test_series_needs_a_selector_list() -> None:
    api = _mock_api(lambda request: httpx.Response(200, json={"status": "success", "data": []}))

    with pytest.raises(ValueError, match="non-empty list"):
        api.series([])
    with pytest.raises(ValueError, match="non-empty list"):
        api.series("up")
