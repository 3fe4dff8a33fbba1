"""ALR-*: alert rules go from "the file parses" to "this alert really fires against this service".

Pure: rule-file texts, promtool results, the metric inventory Prometheus
scraped from the service, the SLOs, Prometheus's loaded rules and live-fire
observations in; findings out.

How ALR-009 judges a selector against the service's metrics (series appear
only after traffic, so absence is weighed by what it can mean):

* a metric **name** that is neither stored by Prometheus for the service,
  nor declared by a ``# TYPE`` line of its exposition, nor Prometheus's own
  (``up``, ``scrape_*``, ``ALERTS``), nor a recording rule's output, nor listed
  in ``alerts.external_metrics`` fails: the alert watches something the service
  never exposes;
* a declared family with **no series yet** (a labelled counter nobody has
  incremented, e.g. ``http_errors_total`` before the first error) cannot show
  its labels; its matchers are reported as unverified, not failed;
* a **label** a positive matcher needs (``status_code=~"5.."``) that appears on
  none of the metric's series fails: label names are fixed by the
  instrumentation, so a selector on a label the metric never carries can
  never match (``status`` vs ``status_code``);
* a label that exists but with **no matching value yet** (no 5xx so far) is
  data that arrives with traffic: unverified, not failed;
* matchers on target labels (``job``, ``instance``; ``alerts.target_labels``)
  come from the scrape configuration, not the service, and are skipped, as
  are negative matchers, which a missing label satisfies.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import yaml

from conformance._mask import excerpt
from conformance._model import Finding, Level
from conformance._promql import PromQLError, Selector, family_name, parse_duration, selectors
from conformance._requirements import requirement
from conformance._sections.slos import Slo
from conformance.collect._livefire import STATES, LiveFireOutcome, QuietOutcome, format_statuses
from conformance.collect._promtool import RuleCheckResult, RuleTestResult

__all__ = [
    "ALR_001",
    "ALR_002",
    "ALR_003",
    "ALR_004",
    "ALR_005",
    "ALR_006",
    "ALR_007",
    "ALR_008",
    "ALR_009",
    "ALR_010",
    "ALR_011",
    "ALR_012",
    "ALR_013",
    "PROMETHEUS_METRICS",
    "MetricInventory",
    "Rule",
    "RuleSet",
    "SelectorReport",
    "check_alerts_tested",
    "check_annotations",
    "check_for_durations",
    "check_live_fire",
    "check_quiet",
    "check_recording_rule_names",
    "check_rule_files",
    "check_rule_tests",
    "check_rules_loaded",
    "check_selectors",
    "check_severities",
    "check_slo_coverage",
    "check_unique_alert_names",
    "fired_in_tests",
    "parse_rule_files",
    "slo_coverage",
]

ALR_001 = requirement(
    "ALR-001", Level.MUST, "promtool check rules accepts every rule file",
    source="seeds 000 and 004 §Alerting Rules (Prometheus rule files); promtool check rules --lint=all",
)  # fmt: skip
ALR_002 = requirement(
    "ALR-002", Level.MUST, "The rule files' promtool unit tests pass",
    source="Prometheus 'Unit testing for rules' (promtool test rules); prometheus.rule_tests",
)  # fmt: skip
ALR_003 = requirement(
    "ALR-003", Level.SHOULD, "Every alert has a promtool unit test in which it fires",
    source="Prometheus 'Unit testing for rules': alert_rule_test exp_alerts",
)  # fmt: skip
ALR_004 = requirement(
    "ALR-004", Level.MUST, "Every alert has a non-zero `for` duration",
    source="seeds 000 and 004 §Alerting Rules: every example alert has `for` (1m-10m)",
)  # fmt: skip
ALR_005 = requirement(
    "ALR-005", Level.MUST, "Every alert has labels.severity from the allowed set",
    source="seed 003 §Alertmanager Configuration 'Alert Routing' and §Alert Tiers: critical, warning, info",
)  # fmt: skip
ALR_006 = requirement(
    "ALR-006", Level.MUST, "Every alert has summary, description and runbook_url annotations",
    source="seeds 000 and 004 alert annotations (summary, description); seed 003 §Runbooks",
)  # fmt: skip
ALR_007 = requirement(
    "ALR-007", Level.MUST, "Alert names are unique across the rule files",
    source="seed 003 §Alertmanager 'Alert Routing'/'Inhibition Rules' (routing by alertname); "
    "promtool lint duplicate-rules",
)  # fmt: skip
ALR_008 = requirement(
    "ALR-008", Level.SHOULD, "Recording rules are named level:metric:operations",
    source="Prometheus docs, Practices 'Recording rules': naming level:metric:operations",
)  # fmt: skip
ALR_009 = requirement(
    "ALR-009", Level.MUST, "Every metric and label a rule selects exists in the service's scraped metrics",
    source="seed 003 §Troubleshooting 'Alerts Not Firing'; seed 000 §SLO Monitoring (metric names)",
)  # fmt: skip
ALR_010 = requirement(
    "ALR-010", Level.MUST, "Every SLO of the profile is watched by an alert on its metric",
    source="seed 001 §SLO-Based Monitoring 'Automated alerting on SLO violations'; seed 000 §3 SLOs",
)  # fmt: skip
ALR_011 = requirement(
    "ALR-011", Level.MUST, "Every rule loads into the real Prometheus and evaluates without error",
    source="seed 003 §Troubleshooting 'Alerts Not Firing: check Prometheus rules /api/v1/rules'",
)  # fmt: skip
ALR_012 = requirement(
    "ALR-012", Level.MUST,
    "Live-fired alerts become pending/firing in the real Prometheus when traffic meets their condition",
    source="seed 003 §Alert Thresholds 'Critical Alerts: Error rate >5%'; seed 001 §Alerting",
)  # fmt: skip
ALR_013 = requirement(
    "ALR-013", Level.MUST, "Live-fired alerts stay inactive under normal traffic",
    source="seed 003 §Alertmanager 'Prevent alert spam during widespread issues'",
)  # fmt: skip

#: Series Prometheus writes itself, for every target or rule; rules may select them.
PROMETHEUS_METRICS = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
        "scrape_timeout_seconds",
        "scrape_sample_limit",
        "scrape_body_size_bytes",
        "ALERTS",
        "ALERTS_FOR_STATE",
    }
)


# -- rule files ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """One alerting or recording rule as written in a rule file."""

    file: str
    group: str
    index: int
    kind: str  # "alert" or "record"
    name: str
    expr: str
    for_: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    line: int | None = None

    @property
    def where(self) -> str:
        """``file:line group "g" alert Name``: enough to find the rule."""
        place = f"{self.file}:{self.line}" if self.line else self.file
        return f'{place} group "{self.group}" {self.kind} {self.name}'

    def evidence(self, **extra: Any) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "group": self.group, self.kind: self.name, **extra}


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    #: Files (or parts) that are not rule files at all, e.g. invalid YAML: ALR-001's business.
    problems: tuple[str, ...] = ()

    @property
    def alerts(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.kind == "alert")

    @property
    def records(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.kind == "record")


def parse_rule_files(texts: Mapping[str, str]) -> RuleSet:
    """Rules from rule-file texts (file name → YAML); what is not a rule is a problem."""
    rules: list[Rule] = []
    problems: list[str] = []
    for file, text in texts.items():
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            problems.append(f"{file}: not valid YAML: {str(exc).splitlines()[0]}")
            continue
        groups = data.get("groups") if isinstance(data, dict) else None
        if not isinstance(groups, list):
            problems.append(f"{file}: no `groups` list")
            continue
        group_nodes = _child(root, "groups")
        for g, group in enumerate(groups):
            if not isinstance(group, dict) or not isinstance(group.get("rules"), list):
                problems.append(f"{file}: groups[{g}] has no `rules` list")
                continue
            rule_nodes = _child(_item(group_nodes, g), "rules")
            for r, raw in enumerate(group["rules"]):
                kind = "alert" if isinstance(raw, dict) and "alert" in raw else "record"
                if not isinstance(raw, dict) or kind not in raw or "expr" not in raw:
                    problems.append(
                        f"{file}: groups[{g}].rules[{r}] is neither an alert nor a recording rule"
                    )
                    continue
                node = _item(rule_nodes, r)
                rules.append(
                    Rule(
                        file=file,
                        group=str(group.get("name", "")),
                        index=r + 1,
                        kind=kind,
                        name=str(raw[kind]),
                        expr=str(raw["expr"]),
                        for_=None if raw.get("for") is None else str(raw["for"]),
                        labels={str(k): str(v) for k, v in (raw.get("labels") or {}).items()},
                        annotations={str(k): str(v) for k, v in (raw.get("annotations") or {}).items()},
                        line=node.start_mark.line + 1 if node is not None else None,
                    )
                )
    return RuleSet(tuple(rules), tuple(problems))


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                child: yaml.Node = v
                return child
    return None


def _item(node: yaml.Node | None, index: int) -> yaml.Node | None:
    if isinstance(node, yaml.SequenceNode) and index < len(node.value):
        item: yaml.Node = node.value[index]
        return item
    return None


def fired_in_tests(texts: Mapping[str, str]) -> set[str]:
    """Alert names that some promtool unit test expects to fire (non-empty ``exp_alerts``)."""
    fired: set[str] = set()
    for text in texts.values():
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            continue
        tests = data.get("tests") if isinstance(data, dict) else None
        for test in tests if isinstance(tests, list) else []:
            cases = test.get("alert_rule_test") if isinstance(test, dict) else None
            for case in cases if isinstance(cases, list) else []:
                if isinstance(case, dict) and case.get("exp_alerts") and case.get("alertname"):
                    fired.add(str(case["alertname"]))
    return fired


# -- promtool -----------------------------------------------------------------


def check_rule_files(result: RuleCheckResult) -> list[Finding]:
    """ALR-001: every file passes ``promtool check rules`` (lint findings are not failures here)."""
    findings = []
    for file in result.files:
        for error in file.errors:
            findings.append(
                Finding(
                    ALR_001.id,
                    f"promtool check rules: {excerpt(error, 300)}",
                    {"file": file.file, "exit_code": file.run.exit_code},
                )
            )
    return findings


def check_rule_tests(result: RuleTestResult) -> list[Finding]:
    """ALR-002: unit-test files exist, have test groups, and every group passes."""
    if not result.files:
        return [Finding(ALR_002.id, "no promtool unit-test files (prometheus.rule_tests) for the rule files")]
    findings = []
    for file in result.files:
        if not any(case.file == file for case in result.cases):
            findings.append(Finding(ALR_002.id, f"{file}: no test groups", {"file": file}))
    for case in result.failed:
        name = case.name or "(unnamed test group)"
        if case.error:
            message = f"{case.file}: could not run: {excerpt(case.error, 300)}"
        else:
            message = f"{case.file}: test {name!r} failed: {excerpt(case.failures[0], 300)}"
            if len(case.failures) > 1:
                message += f" (and {len(case.failures) - 1} more assertion(s))"
        findings.append(
            Finding(ALR_002.id, message, {"file": case.file, "test": case.name, "source": result.source})
        )
    return findings


# -- our own lint (pint-style) -------------------------------------------------


def check_alerts_tested(rules: RuleSet, fired: set[str]) -> list[Finding]:
    """ALR-003: each alert is expected to fire by at least one unit test."""
    return [
        Finding(ALR_003.id, f"{rule.where}: no promtool unit test expects it to fire", rule.evidence())
        for rule in rules.alerts
        if rule.name not in fired
    ]


def check_for_durations(rules: RuleSet) -> list[Finding]:
    """ALR-004: ``for`` is present and longer than zero (a blip must not page)."""
    findings = []
    for rule in rules.alerts:
        if rule.for_ is None:
            findings.append(Finding(ALR_004.id, f"{rule.where}: no `for` duration", rule.evidence()))
            continue
        try:
            zero = parse_duration(rule.for_).total_seconds() == 0
        except PromQLError:
            continue  # not a duration at all: promtool rejects the file (ALR-001)
        if zero:
            findings.append(Finding(ALR_004.id, f"{rule.where}: `for: {rule.for_}` is zero", rule.evidence()))
    return findings


def check_severities(rules: RuleSet, allowed: Sequence[str]) -> list[Finding]:
    """ALR-005: ``labels.severity`` is present and one of ``allowed``."""
    findings = []
    for rule in rules.alerts:
        severity = rule.labels.get("severity")
        if severity is None:
            findings.append(Finding(ALR_005.id, f"{rule.where}: no labels.severity", rule.evidence()))
        elif severity not in allowed:
            findings.append(
                Finding(
                    ALR_005.id,
                    f"{rule.where}: severity {severity!r} is not one of {', '.join(allowed)}",
                    rule.evidence(severity=severity),
                )
            )
    return findings


def check_annotations(rules: RuleSet, required: Sequence[str]) -> list[Finding]:
    """ALR-006: required annotations are present and not blank; runbook_url is an absolute http(s) URL."""
    findings = []
    for rule in rules.alerts:
        missing = [name for name in required if not rule.annotations.get(name, "").strip()]
        if missing:
            findings.append(
                Finding(
                    ALR_006.id,
                    f"{rule.where}: missing or empty annotation(s) {', '.join(missing)}",
                    rule.evidence(missing=missing),
                )
            )
        url = rule.annotations.get("runbook_url", "").strip()
        if url and not _absolute_http_url(url):
            findings.append(
                Finding(
                    ALR_006.id,
                    f"{rule.where}: runbook_url {excerpt(url, 80)!r} is not an absolute http(s) URL",
                    rule.evidence(),
                )
            )
    return findings


def _absolute_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def check_unique_alert_names(rules: RuleSet) -> list[Finding]:
    """ALR-007: no alert name is defined twice (in any group or file)."""
    by_name: dict[str, list[Rule]] = {}
    for rule in rules.alerts:
        by_name.setdefault(rule.name, []).append(rule)
    return [
        Finding(
            ALR_007.id,
            f"alert {name} is defined {len(found)} times: {'; '.join(r.where for r in found)}",
            {"alert": name, "places": [r.where for r in found]},
        )
        for name, found in by_name.items()
        if len(found) > 1
    ]


def check_recording_rule_names(rules: RuleSet) -> list[Finding]:
    """ALR-008: recording rules are named ``level:metric:operations`` (three non-empty parts)."""
    findings = []
    for rule in rules.records:
        parts = rule.name.split(":")
        if len(parts) != 3 or not all(parts) or not all(p.replace("_", "a").isalnum() for p in parts):
            findings.append(
                Finding(
                    ALR_008.id,
                    f"{rule.where}: {rule.name!r} is not named level:metric:operations "
                    "(e.g. job:http_requests:rate5m)",
                    rule.evidence(),
                )
            )
    return findings


# -- selectors vs the service's metrics ---------------------------------------


class _Family(Protocol):
    """A parsed exposition family (prometheus-client's ``Metric``)."""

    @property
    def name(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def samples(self) -> Sequence[Any]: ...


_TYPE_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum"),
    "info": ("_info",),
}


@dataclass(frozen=True, slots=True)
class MetricInventory:
    """What a selector can find in the service's metrics.

    ``series`` maps each stored series name to the label sets seen with it
    (from Prometheus's TSDB for the service's job, so names are exactly as
    Prometheus stores them); ``declared`` holds names the exposition declares
    (``# TYPE``) that have no series yet.
    """

    series: Mapping[str, tuple[Mapping[str, str], ...]]
    declared: frozenset[str] = frozenset()

    @classmethod
    def build(
        cls, series: Iterable[Mapping[str, str]] = (), families: Iterable[_Family] = ()
    ) -> MetricInventory:
        """From series label sets (with ``__name__``, as ``/api/v1/series`` returns them)
        and the exposition's families; families with samples add nothing the series
        do not already show, families without any add their stored names."""
        by_name: dict[str, list[Mapping[str, str]]] = {}
        for labels in series:
            name = labels.get("__name__")
            if name:
                by_name.setdefault(name, []).append({k: v for k, v in labels.items() if k != "__name__"})
        declared = {
            family.name + suffix
            for family in families
            if not family.samples
            for suffix in _TYPE_SUFFIXES.get(family.type, ("",))
        }
        return cls({k: tuple(v) for k, v in by_name.items()}, frozenset(declared - set(by_name)))

    @classmethod
    def from_exposition(cls, families: Iterable[_Family]) -> MetricInventory:
        """From one scrape alone (the samples' names as prometheus-client parsed them)."""
        families = list(families)
        series = [{"__name__": s.name, **s.labels} for f in families for s in f.samples]
        return cls.build(series, families)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.series) | self.declared


@dataclass(frozen=True, slots=True)
class SelectorReport:
    """ALR-009's findings plus what could not be verified (and why), for the evidence."""

    findings: list[Finding]
    selectors_checked: int
    unverified: list[str]
    #: ``(rule, parser message)`` for expressions the PromQL parser rejects.
    unparsable: list[tuple[Rule, str]]


def check_selectors(
    rules: RuleSet,
    inventory: MetricInventory,
    *,
    target_labels: Sequence[str] = ("job", "instance"),
    external_metrics: Iterable[str] = (),
) -> SelectorReport:
    """ALR-009: every selector's metric (and each label its matchers need) exists; see the module doc."""
    recorded = {r.name for r in rules.records}
    elsewhere = frozenset(PROMETHEUS_METRICS | recorded | set(external_metrics))
    candidates = inventory.names | elsewhere
    findings: list[Finding] = []
    unverified: list[str] = []
    unparsable: list[tuple[Rule, str]] = []
    checked = 0
    for rule in rules.rules:
        try:
            found = selectors(rule.expr)
        except PromQLError as exc:
            unparsable.append((rule, str(exc)))
            continue
        for sel in found:
            checked += 1
            problem = _judge_selector(
                sel, inventory, candidates, elsewhere, set(target_labels), unverified, rule
            )
            if problem:
                findings.append(
                    Finding(
                        ALR_009.id,
                        f"{rule.where} selects {sel.text}: {problem}",
                        rule.evidence(selector=sel.text),
                    )
                )
    return SelectorReport(findings, checked, unverified, unparsable)


def _judge_selector(
    sel: Selector,
    inventory: MetricInventory,
    candidates: frozenset[str],
    elsewhere: frozenset[str],
    target_labels: set[str],
    unverified: list[str],
    rule: Rule,
) -> str:
    """The failure message for ``sel``, or ``""`` (appending to ``unverified`` what cannot be judged)."""
    if not sel.has_name:
        unverified.append(f"{rule.where}: {sel.text} selects no metric by name; not checked")
        return ""
    try:
        names = sel.names_matching(candidates)
    except PromQLError as exc:
        unverified.append(f"{rule.where}: {sel.text}: {exc}")
        return ""
    if not names:
        wanted = sel.name or " ".join(map(str, sel.name_matchers))
        close = difflib.get_close_matches(sel.name or "", sorted(inventory.names), n=3, cutoff=0.75)
        hint = f" (similar: {', '.join(close)})" if close else ""
        return f"no metric {wanted} in the service's metrics{hint}"
    stored = sorted(n for n in names if n in inventory.series)
    if not stored:
        if names - elsewhere:
            shown = "" if names == {sel.name} else f" ({', '.join(sorted(names))})"
            unverified.append(
                f"{rule.where}: {sel.text}{shown}: declared by the exposition but no series yet; "
                "label matchers not verified"
            )
        return ""
    label_sets = [labels for n in stored for labels in inventory.series[n]]
    for matcher in sel.matchers:
        if matcher.name in target_labels:
            continue
        try:
            if not matcher.requires_label:
                continue
            if not any(matcher.name in labels for labels in label_sets):
                seen = sorted({k for labels in label_sets for k in labels} - target_labels)
                return (
                    f"label {matcher.name!r} never appears on {', '.join(stored)} "
                    f"(its labels: {', '.join(seen) or 'none'})"
                )
            if not any(matcher.matches(labels.get(matcher.name, "")) for labels in label_sets):
                values = sorted({labels[matcher.name] for labels in label_sets if matcher.name in labels})
                shown = ", ".join(values[:8]) + (" …" if len(values) > 8 else "")
                unverified.append(
                    f"{rule.where}: {sel.text}: no series with {matcher} yet (values seen: {shown})"
                )
        except PromQLError as exc:
            unverified.append(f"{rule.where}: {sel.text}: {exc}")
    return ""


# -- SLO coverage ---------------------------------------------------------------


def _selected_names(rule: Rule) -> set[str]:
    try:
        return {s.name for s in selectors(rule.expr) if s.name}
    except PromQLError:
        return set()


def slo_coverage(slos: Iterable[Slo], rules: RuleSet) -> dict[str, list[str]]:
    """SLO name → alerts whose expression uses one of the SLO's metrics
    (directly, or through recording rules defined in the rule files)."""
    recorded = {r.name: _selected_names(r) for r in rules.records}

    def expand(names: set[str]) -> set[str]:
        out, todo = set(names), list(names)
        while todo:
            for name in recorded.get(todo.pop(), set()) - out:
                out.add(name)
                todo.append(name)
        return out

    watched = [(a.name, {family_name(n) for n in expand(_selected_names(a))}) for a in rules.alerts]
    return {
        slo.name: list(dict.fromkeys(name for name, families in watched if families & slo.families))
        for slo in slos
    }


def check_slo_coverage(slos: Sequence[Slo], rules: RuleSet) -> list[Finding]:
    """ALR-010: every SLO has at least one alert on its metric."""
    coverage = slo_coverage(slos, rules)
    return [
        Finding(
            ALR_010.id,
            f"SLO {slo.name} ({', '.join(sorted(slo.metrics))}) is watched by no alert",
            {"slo": slo.name, "metrics": sorted(slo.metrics)},
        )
        for slo in slos
        if not coverage.get(slo.name)
    ]


# -- the real Prometheus --------------------------------------------------------


def check_rules_loaded(
    rules: RuleSet, loaded: Sequence[Mapping[str, Any]], rejected: Mapping[str, str] | None = None
) -> list[Finding]:
    """ALR-011: each rule of the files is loaded (``/api/v1/rules``), evaluated, and healthy.

    ``rejected``: files the stack did not give Prometheus because promtool rejects
    them (file → promtool's first error); none of their rules can load.
    """
    kinds = {"alert": "alerting", "record": "recording"}
    findings = [
        Finding(
            ALR_011.id,
            f"{file}: not loaded into Prometheus, which cannot parse it (promtool: {excerpt(error, 200)}; "
            "see ALR-001)",
            {"file": file, "promtool_error": excerpt(error, 300)},
        )
        for file, error in sorted((rejected or {}).items())
    ]
    index: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for entry in loaded:
        key = (str(entry.get("group", "")), str(entry.get("name", "")), str(entry.get("type", "")))
        index.setdefault(key, []).append(entry)
    for rule in rules.rules:
        entries = index.get((rule.group, rule.name, kinds[rule.kind]), [])
        if not entries:
            findings.append(Finding(ALR_011.id, f"{rule.where}: not loaded in Prometheus", rule.evidence()))
            continue
        for entry in entries:
            health = entry.get("health")
            if health == "err":
                error = excerpt(str(entry.get("lastError", "")), 300)
                findings.append(
                    Finding(
                        ALR_011.id,
                        f"{rule.where}: evaluation fails in Prometheus: {error}",
                        rule.evidence(last_error=error),
                    )
                )
            elif health != "ok":
                findings.append(
                    Finding(ALR_011.id, f"{rule.where}: health {health!r}, never evaluated", rule.evidence())
                )
    return findings


def check_live_fire(outcomes: Sequence[LiveFireOutcome]) -> list[Finding]:
    """ALR-012: each live-fired alert reached the expected state within its timeout."""
    findings = []
    for out in outcomes:
        if not out.rule_loaded:
            findings.append(
                Finding(
                    ALR_012.id,
                    f"{out.alert}: no alerting rule of that name is loaded in Prometheus",
                    {"alert": out.alert},
                )
            )
            continue
        if out.ok:
            continue
        statuses = format_statuses(out.statuses)
        message = (
            f"{out.alert} did not become {out.expect} within {out.timeout:g}s "
            f"(reached {out.reached}; {out.requests_sent} requests {out.request}: {statuses})"
        )
        wanted = {str(s) for s in out.expect_status}
        if wanted and not set(out.statuses) & wanted:
            message += f"; the traffic never got the expected status {', '.join(sorted(wanted))}"
        findings.append(
            Finding(
                ALR_012.id,
                message,
                {"alert": out.alert, "reached": out.reached, "timeline": [list(t) for t in out.timeline]},
            )
        )
    return findings


def check_quiet(outcome: QuietOutcome) -> list[Finding]:
    """ALR-013: none of the watched alerts turned pending or firing under normal traffic."""
    return [
        Finding(
            ALR_013.id,
            f"{alert} became {state} {at:.1f}s into normal traffic "
            f"({outcome.requests_sent} requests: {format_statuses(outcome.statuses)}); value {value}",
            {"alert": alert, "state": state, "value": value},
        )
        for alert, (state, at, value) in sorted(outcome.active.items())
        if state in STATES[1:]
    ]
