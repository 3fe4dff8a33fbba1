"""The fast text-format parser against prometheus-client's, on generated and real expositions.

Equal means equal ``repr``: names, types, help, sample names, label order,
value types (``1`` vs ``1.0``), NaN and infinities, timestamps. A text
prometheus-client refuses must be refused with the same exception.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_latest,
)
from prometheus_client.parser import text_string_to_metric_families

from conformance._gc import cyclic_gc_paused
from conformance.collect._textformat import parse_prometheus_text

DATA = Path(__file__).parents[1] / "data"
sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))


def outcome(parse: object, text: str) -> str:
    try:
        return repr(list(parse(text)))  # type: ignore[operator]
    except Exception as exc:
        return f"raised {type(exc).__name__}: {exc}"


def assert_same(text: str) -> None:
    assert outcome(parse_prometheus_text, text) == outcome(text_string_to_metric_families, text), text


# -- generated ------------------------------------------------------------------
_NAMES = st.sampled_from(
    ["a", "a_total", "a_created", "b_count", "b_sum", "b_bucket", "b", "c:d", "q", "x_total", "__n"]
)
_TYPES = st.sampled_from(["counter", "gauge", "histogram", "summary", "untyped", "unknown", "info", "bogus",
                          "counter extra"])  # fmt: skip
_VALUES = st.sampled_from(
    ["1", "0", "-1", "+1", "007", "1.5", "-0.0", "1e3", "1E-3", "NaN", "nan", "+Inf", "-Inf", "inf",
     "Infinity", "0x1", "1_0", "abc", ".5", "5.", "1.5.5", "--1", "\u0661", ""]
)  # fmt: skip
_LABEL_NAMES = st.sampled_from(["le", "quantile", "method", "a", "_x", "__name__", "__r", "b:c", "1a"])
_LABEL_VALUES = st.lists(st.sampled_from([*'ab0 ,={}#"\\n\t.é', '\\"', "\\\\", "\\n"]), max_size=8).map(
    "".join
)
_SPACE = st.sampled_from([" ", " ", " ", "  ", "\t", " \t"])


@st.composite
def _label_block(draw: st.DrawFn) -> str:
    pairs = draw(st.lists(st.tuples(_LABEL_NAMES, _LABEL_VALUES), max_size=4))
    quote = draw(st.sampled_from(['"', '"', '"', "'"]))
    body = ",".join(f"{k}={quote}{v}{quote}" for k, v in pairs)
    body += draw(st.sampled_from(["", "", ",", " ", ",,"]))
    return "{" + body + "}"


@st.composite
def _sample_line(draw: st.DrawFn) -> str:
    line = draw(_NAMES)
    if draw(st.booleans()):
        line += draw(_label_block())
    line += draw(_SPACE) + draw(_VALUES)
    if draw(st.integers(0, 4)) == 0:
        line += draw(_SPACE) + draw(st.sampled_from(["1700000000000", "-5", "1.5", "x", "1 2"]))
    if draw(st.integers(0, 9)) == 0:
        line += ' # {trace_id="1"} 1'
    before = draw(st.sampled_from(["", "", "", " ", "\t"]))
    return before + line + draw(st.sampled_from(["", "", "", " ", "\r"]))


@st.composite
def _declaration(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["HELP", "TYPE", "HELP", "TYPE", "EOF", "help", ""]))
    line = "#" + draw(_SPACE) + kind + draw(_SPACE) + draw(_NAMES)
    if kind in ("TYPE", "type"):
        line += draw(_SPACE) + draw(_TYPES) if draw(st.integers(0, 9)) else ""
    elif draw(st.booleans()):
        words = st.lists(st.sampled_from([*'ab "\\n\t#é', "\\\\"]), max_size=12)
        line += draw(_SPACE) + "".join(draw(words))
    return line


_LINES = st.one_of(
    _sample_line(), _sample_line(), _sample_line(), _declaration(), st.sampled_from(["", "#", "# x"])
)


@settings(max_examples=600, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(_LINES, max_size=12), ending=st.sampled_from(["\n", "\n", "\r\n"]))
def test_generated_expositions_parse_like_prometheus_client(lines: list[str], ending: str) -> None:
    assert_same(ending.join(lines) + ending)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.lists(st.sampled_from([*'ab_:{}="\\,# \n\t01.e+-', "HELP", "TYPE", "counter"]), max_size=60).map(
        "".join
    )
)
def test_arbitrary_text_parses_or_fails_like_prometheus_client(text: str) -> None:
    assert_same(text)


# -- real expositions -------------------------------------------------------------
def _client_exposition() -> str:
    """What prometheus-client itself serves for every metric kind, _created series included."""
    registry = CollectorRegistry()
    requests = Counter("http_requests", "Requests.", ["method", "route"], registry=registry)
    requests.labels("GET", '/users/{id} "quoted" \\ back\nslash').inc(3)
    requests.labels("POST", "/é").inc(0.5)
    Gauge("queue_depth", 'Depth\\n of the "queue".', registry=registry).set(float("nan"))
    Gauge("temperature_celsius", "Temp.", ["room"], registry=registry).labels("a").set(float("-inf"))
    latency = Histogram("latency_seconds", "Latency.", ["route"], registry=registry)
    latency.labels("/a").observe(0.2)
    latency.labels("/b").observe(7)
    Summary("size_bytes", "Sizes.", registry=registry).observe(512)
    Info("build", "Build.", registry=registry).info({"version": "1.2.3", "commit": "abc"})
    Enum("state", "State.", states=["up", "down"], registry=registry).state("down")
    Counter("jobs_total", "Jobs.", registry=registry)  # declared, no samples of its own but _created
    return generate_latest(registry).decode()


def _lint_cases() -> list[tuple[str, str]]:
    cases = yaml.safe_load((DATA / "metrics_lint_cases.yaml").read_text())
    return [(case["id"], case["text"]) for case in cases]


@pytest.mark.parametrize(("case", "text"), _lint_cases())
def test_lint_case_expositions_parse_like_prometheus_client(case: str, text: str) -> None:
    assert_same(text)


def test_prometheus_client_own_exposition_parses_like_prometheus_client() -> None:
    text = _client_exposition()
    assert "_created" in text and "NaN" in text
    assert_same(text)


def test_benchmark_exposition_parses_like_prometheus_client() -> None:
    from bench_metrics_parse import generate

    assert_same(generate(3_000))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n",
        "# HELP a_total A \\\\ b \\n c \\x.\n# TYPE a_total counter\na_total 1 1700000000000\n",
        "# TYPE a counter\n# HELP a x\na_total 1\na 2\n",  # a sample of an unexpected name
        '# TYPE b histogram\nb_bucket{le="+Inf"} 1\nb_sum 1\nb_count 1\nb 4\n',
        'a{x="1",x="2"} 1\n',  # duplicate label: refused
        'a{__name__="b"} 1\n',
        '{__name__="b",c="d"} 1\n',
        'a{x="1"} 1 2 3\n',
        "# TYPE a\n",
        "# TYPE a bogus\na 1\n",
        '# HELP "a" quoted\n',
        "a\t1\n",
        "a 1_000\n",
        'a{x="\\q"} 1\n',
    ],
)
def test_edge_cases_parse_like_prometheus_client(text: str) -> None:
    assert_same(text)


def _run(lines: list[str], n: int = 5) -> list[str]:
    return [line.format(i=i) for i in range(n) for line in lines]


# Runs of one label layout are parsed together; these end a run, or break into one, in every way.
_RUN_BREAKERS = {
    "escaped value": 'a{{x="{i}",y="q\\"uote\\\\ \\n"}} 1',
    "timestamp": 'a{{x="{i}",y="t"}} 1 1700000000000',
    "exemplar": 'a{{x="{i}",y="e"}} 1 # {{trace_id="abc"}} 1.0',
    "two spaces": 'a{{x="{i}",y="s"}}  1',
    "tab": 'a{{x="{i}",y="s"}}\t1',
    "duplicate label": 'a{{x="{i}",x="d"}} 1',
    "reserved label": 'a{{x="{i}",__r="d"}} 1',
    "name in labels": '{{__name__="a",x="{i}"}} 1',
    "bad value": 'a{{x="{i}",y="v"}} abc',
    "underscore value": 'a{{x="{i}",y="v"}} 1_0',
    "float value": 'a{{x="{i}",y="f"}} 1e3',
    "other label order": 'a{{y="o",x="{i}"}} 1',
    "trailing comma": 'a{{x="{i}",y="c",}} 1',
    "empty braces": "a{{}} {i}",
    "no labels": "a {i}",
    "unexpected name": 'b{{x="{i}",y="u"}} 1',
    "comment": "# just a comment {i}",
    "blank": "",
    "garbage": "a{{x=",
}


@pytest.mark.parametrize("breaker", sorted(_RUN_BREAKERS))
@pytest.mark.parametrize("typ", ["counter", "gauge", "histogram", "untyped"])
def test_runs_of_a_layout_end_and_resume_like_prometheus_client(breaker: str, typ: str) -> None:
    plain = 'a{{x="{i}",y="p"}} {i}'
    lines = [*_run([plain], 4), _RUN_BREAKERS[breaker].format(i=9), *_run([plain, plain + ".5"], 4)]
    assert_same(f"# HELP a A.\n# TYPE a {typ}\n" + "\n".join(lines) + "\n")


def test_histogram_layouts_interleaved_like_prometheus_client() -> None:
    bucket = 'h_bucket{{r="/{i}",le="{le}"}} {i}'
    lines = ["# TYPE h histogram"]
    for i in range(5):
        lines += [bucket.format(i=i, le=le) for le in ("0.1", "1", "+Inf")]
        lines += [f'h_sum{{r="/{i}"}} 1.5', f'h_count{{r="/{i}"}} {i}', f'h_created{{r="/{i}"}} 1e9']
    assert_same("\n".join(lines) + "\n")


def test_more_layouts_than_remembered_parse_like_prometheus_client() -> None:
    # Twelve layouts in turn: more than _Layouts keeps, so each is looked up again.
    lines = [f'm{{{"abcdefghijkl"[i]}="{n}"}} {n}' for n in range(3) for i in range(12)]
    assert_same("\n".join(lines) + "\n")


def test_label_names_that_are_python_keywords_parse_like_prometheus_client() -> None:
    # Label values are captured in groups named after their labels (Match.groupdict).
    lines = _run(['k{{class="{i}",None="n",if="",_="u",le="1"}} {i}'], 3)
    assert_same("\n".join(lines) + "\n")


def test_a_layout_per_line_parses_like_prometheus_client() -> None:
    # A metric or label name per series (a cardinality accident): past _Layouts' budget the
    # lines take the careful path, escapes and runs of one layout included.
    lines = [f'm_{i}{{a="x",b{i % 300}="{i}"}} {i}' for i in range(400)]
    lines += _run(['m{{a="{i}"}} {i}', 'm{{a="e\\\\{i}"}} 1.5', "m 1 17"], 3)
    assert_same("# TYPE m gauge\n" + "\n".join(lines) + "\n")


def test_a_layout_per_line_is_not_compiled_per_line() -> None:
    from conformance.collect import _textformat

    layouts = _textformat._Layouts()
    for i in range(1_000):
        layouts.find(f'm_{i}{{a="x"}} {i}')
    assert len(layouts.known) == _textformat._Layouts._FREE_LAYOUTS


def test_crlf_and_indented_lines_parse_like_prometheus_client() -> None:
    lines = _run(['  a{{x="{i}"}} 1\r', 'a{{x="{i}"}} 2 \r'], 4)
    assert_same("# TYPE a gauge\r\n" + "\n".join(lines) + "\n")


def test_cyclic_gc_is_restored() -> None:
    assert gc.isenabled()
    with cyclic_gc_paused():
        assert not gc.isenabled()
        with cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), cyclic_gc_paused():
        raise RuntimeError
    assert gc.isenabled()
