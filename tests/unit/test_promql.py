"""PromQL selectors come from a real parser (promql-parser), wherever they sit in an expression."""

from __future__ import annotations

import pytest

from conformance._promql import LabelMatcher, PromQLError, family_name, parse_duration, selectors


@pytest.mark.parametrize(
    ("expr", "texts"),
    [
        ("up == 0", ["up"]),
        ("sum(rate(a_total[1m])) / sum(rate(b_total[1m]))", ["a_total", "b_total"]),
        ('histogram_quantile(0.95, sum by (le) (rate(h_bucket{e="/x"}[5m]))) > 2', ['h_bucket{e="/x"}']),
        ("max_over_time(g[10m:1m] offset 5m)", ["g"]),
        ('label_replace(up, "a", "$1", "b", "(.*)")', ["up"]),
        ("absent(x) or vector(1)", ["x"]),
        ('{__name__=~"http_.*", a!=""}', ['{__name__=~"http_.*",a!=""}']),
        ('{__name__="foo", a="b"}', ['foo{a="b"}']),
        ("1 + 2", []),
    ],
)
def test_selectors(expr: str, texts: list[str]) -> None:
    assert [s.text for s in selectors(expr)] == texts


def test_name_and_matchers() -> None:
    (sel,) = selectors('{__name__="foo", a=~"x|y", b!="z"}')
    assert sel.name == "foo" and sel.name_matchers == ()
    assert [str(m) for m in sel.matchers] == ['a=~"x|y"', 'b!="z"']
    (regex,) = selectors('{__name__=~"http_.*_total"}')
    assert regex.names_matching({"http_requests_total", "up", "http_x"}) == {"http_requests_total"}


@pytest.mark.parametrize(
    ("matcher", "value", "matches", "requires_label"),
    [
        (LabelMatcher("a", "=", "x"), "x", True, True),
        (LabelMatcher("a", "!=", "x"), "", True, False),
        (LabelMatcher("a", "=~", "5.."), "503", True, True),
        (LabelMatcher("a", "=~", "5.."), "1503", False, True),  # anchored like Prometheus
        (LabelMatcher("a", "=~", ".*"), "", True, False),
        (LabelMatcher("a", "!~", "4.."), "200", True, False),
        (LabelMatcher("a", "=", ""), "", True, False),
    ],
)
def test_matcher_semantics(matcher: LabelMatcher, value: str, matches: bool, requires_label: bool) -> None:
    assert matcher.matches(value) is matches
    assert matcher.requires_label is requires_label


def test_errors_are_the_parsers() -> None:
    with pytest.raises(PromQLError, match="unclosed left parenthesis"):
        selectors("sum(rate(x[1m])")
    with pytest.raises(PromQLError):
        parse_duration("5 minutes")
    with pytest.raises(PromQLError, match="regex"):
        LabelMatcher("a", "=~", "(").matches("x")


def test_durations() -> None:
    assert parse_duration("1m30s").total_seconds() == 90
    assert parse_duration("0s").total_seconds() == 0


@pytest.mark.parametrize(
    ("name", "family"),
    [("h_bucket", "h"), ("h_count", "h"), ("c_total", "c"), ("up", "up"), ("_total", "_total")],
)
def test_family_name(name: str, family: str) -> None:
    assert family_name(name) == family
