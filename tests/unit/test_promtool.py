"""promtool: the output parsers on captured output, and the local runner on the real binary."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from conformance import HarnessError
from conformance.collect._promtool import (
    LocalPromtool,
    PromtoolRun,
    PromtoolRunner,
    RuleTestCase,
    parse_check_metrics_output,
    parse_check_rules_output,
    parse_junit,
    parse_test_rules_text,
    rule_test_group_names,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "rules"
# promtool is installed by scripts/bootstrap; without it these tests fail with that hint, never skip.
needs_promtool = pytest.mark.usefixtures("_promtool_on_path")


@pytest.fixture
def _promtool_on_path() -> None:
    if shutil.which("promtool") is None:
        raise RuntimeError("promtool not on PATH: run scripts/bootstrap (Debian's prometheus package)")


def run(code: int, stdout: str = "", stderr: str = "") -> PromtoolRun:
    return PromtoolRun(("promtool",), code, stdout, stderr, 0.01)


# Captured from promtool 2.42 (`promtool test rules t.yml`): a named group failing, an unnamed one failing.
TEST_RULES_2_42 = """\
  FAILED:
    name: fires,
    alertname: HighErrors, time: 3m, 
        exp:[], 
        got:[
            0:
              Labels:{alertname="HighErrors", severity="critical"}
              Annotations:{summary="x"}
            ]
    alertname: HighErrors, time: 3m, 
        exp:[
            0:
              Labels:{alertname="HighErrors", severity="warning"}
              Annotations:{}
            ], 
        got:[]
"""  # noqa: W291 - promtool's trailing spaces


def test_text_output_attributes_failures_to_groups() -> None:
    cases = parse_test_rules_text(
        "t.yml", run(1, "Unit Testing:  t.yml\n", TEST_RULES_2_42), ["fires", "quiet", ""]
    )
    by_name = {c.name: c for c in cases}
    assert by_name["quiet"].passed
    assert by_name["fires"].failures[0].startswith("name: fires,\nalertname: HighErrors, time: 3m,")
    assert 'severity="warning"' in by_name[""].failures[0]
    assert len(cases) == 3


def test_text_output_success_lists_every_group() -> None:
    cases = parse_test_rules_text("t.yml", run(0, "Unit Testing:  t.yml\n  SUCCESS\n"), ["a", "b"])
    assert [(c.name, c.passed) for c in cases] == [("a", True), ("b", True)]


def test_text_output_file_level_error() -> None:
    stderr = (
        "  FAILED:\nyaml: unmarshal errors:\n  line 3: field tests2 not found in type main.unitTestFile\n"
    )
    (case,) = parse_test_rules_text("t.yml", run(1, "", stderr), [])
    assert case.error.startswith("yaml: unmarshal errors:") and "field tests2" in case.error


def test_text_output_eval_error() -> None:
    stderr = "  FAILED:\n    rule: A, time: 1m, err: found duplicate series for the match group\n"
    (case,) = parse_test_rules_text("t.yml", run(1, "", stderr), [""])
    assert case.failures == ("rule: A, time: 1m, err: found duplicate series for the match group",)


# The format of util/junitxml in Prometheus 2.55+ (`promtool test rules --junit=PATH`).
JUNIT = """<testsuites>
<testsuite name="rules/alerts_test.yml" tests="2" failures="1" errors="0" skipped="0"
 timestamp="2025-01-01T00:00:00">
<testcase name="fires"></testcase>
<testcase name="quiet"><failure>    name: quiet,
    alertname: A, time: 5m,
        exp:[],
        got:[x]</failure></testcase>
</testsuite>
<testsuite name="rules/broken_test.yml" tests="1" failures="0" errors="1" skipped="0" timestamp="">
<testcase name="unknown"><error>yaml: line 2: mapping values are not allowed</error></testcase>
</testsuite>
</testsuites>"""


def test_junit() -> None:
    cases = parse_junit(JUNIT)
    assert cases[0] == RuleTestCase("rules/alerts_test.yml", "fires")
    assert cases[1].failures[0].startswith("name: quiet,") and not cases[1].passed
    assert cases[2].error == "yaml: line 2: mapping values are not allowed"


def test_junit_that_does_not_parse_is_a_harness_error() -> None:
    with pytest.raises(HarnessError, match="JUnit XML that does not parse"):
        parse_junit("<testsuites><testsuite>")


def test_check_rules_multiline_yaml_error() -> None:
    detail = "  line 4: field exprr not found in type rulefmt.RuleNode"
    stderr = f"  FAILED:\nr.yml: yaml: unmarshal errors:\n{detail}\n"
    check = parse_check_rules_output("r.yml", run(1, "Checking r.yml\n", stderr))
    assert check.errors == (
        "r.yml: yaml: unmarshal errors:\n  line 4: field exprr not found in type rulefmt.RuleNode",
    )
    assert not check.ok and check.rules_found is None


def test_check_metrics_output() -> None:
    stderr = 'foo_count counter metrics should have "_total" suffix\nbar no help text\n'
    result = parse_check_metrics_output(run(3, "", stderr))
    assert [(p.metric, p.message) for p in result.problems] == [
        ("foo_count", 'counter metrics should have "_total" suffix'),
        ("bar", "no help text"),
    ]
    assert (
        parse_check_metrics_output(run(1, "", "error while linting: bad line 1\n")).parse_error
        == "bad line 1"
    )
    table = "Metric     Cardinality    Percentage\nx_total    3              75.00%\nTotal 4 100%\n"
    assert parse_check_metrics_output(run(0, table)).cardinality == (("x_total", 3, 75.0),)


def test_group_names_of_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "t.yml").write_text("tests: [")
    assert rule_test_group_names(tmp_path / "t.yml") == []
    assert rule_test_group_names(DATA / "good_test.yml") == ["errors fire", "slow endpoint", "no traffic"]


# -- the real binary ------------------------------------------------------------


@needs_promtool
def test_local_runner_describes_itself_and_is_a_runner() -> None:
    promtool = LocalPromtool.discover()
    assert isinstance(promtool, PromtoolRunner)
    described = promtool.describe()
    assert described["kind"] == "local" and described["binary"].endswith("promtool")
    assert described["version"][0].isdigit() and isinstance(described["junit"], bool)


@needs_promtool
def test_local_runner_on_the_data_files(tmp_path: Path) -> None:
    promtool = LocalPromtool.discover()
    checked = promtool.check_rules([DATA / "good.yml", DATA / "syntax_error.yml"])
    assert [f.ok for f in checked.files] == [True, False]
    assert checked.files[0].rules_found == 5
    assert "unclosed left parenthesis" in checked.files[1].errors[0]
    tested = promtool.test_rules(
        [DATA / "good_test.yml", DATA / "failing_test.yml"], junit_path=tmp_path / "j.xml"
    )
    assert {(Path(c.file).name, c.name, c.passed) for c in tested.failed} == {
        ("failing_test.yml", "errors fire", False)
    }
    assert tested.source == ("junit" if promtool.supports_junit() else "text")
    problems = promtool.check_metrics("# HELP x y\n# TYPE x counter\nx 1\n").problems
    assert problems and problems[0].metric == "x"


def test_a_binary_that_hangs_is_a_harness_error(tmp_path: Path) -> None:
    fake = tmp_path / "promtool"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(HarnessError, match=r"did not finish within 0\.2s"):
        LocalPromtool(str(fake), timeout=0.2).check_rules([DATA / "good.yml"])


def test_our_own_usage_error_is_a_harness_error(tmp_path: Path) -> None:
    fake = tmp_path / "promtool"
    fake.write_text(
        "#!/bin/sh\necho \"promtool: error: unknown long flag '--lint', try --help\" >&2\nexit 1\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(HarnessError, match="unknown long flag '--lint'"):
        LocalPromtool(str(fake)).check_rules([DATA / "good.yml"])
