"""The foreign-service corpus: the harness on services nobody here wrote.

Every service in ``tests/foreign/<name>/`` (see README.md there) is run with
its own profile, and every verdict is compared with the service's
expected-verdict table, which is reasoned from the service's code. When they
disagree and the table is right, the harness is fixed, never the table.

The services are built by ``scripts/build-corpus`` (``scripts/run tests`` runs
it first; builds are cached by content hash).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance._requirements import all_requirements
from tests.integration.conftest import CliRun, cli_run

CORPUS = Path(__file__).resolve().parent
SERVICES = sorted(p.parent.name for p in CORPUS.glob("*/expected.yaml"))
VERDICTS = {"passed", "failed", "error", "not_applicable"}
#: The report's status for each verdict of a table.
STATUS = {"passed": "passed", "failed": "failed", "error": "error", "not_applicable": "skipped"}
#: Conformance requirements (load runs report PERF-* alone).
CONFORMANCE_IDS = sorted(r.id for r in all_requirements() if not r.id.startswith("PERF-"))


def _table(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((CORPUS / name / "expected.yaml").read_text(encoding="utf-8"))
    return data


def test_the_corpus_has_its_languages() -> None:
    languages = " ".join(_table(name)["language"] for name in SERVICES)
    assert len(SERVICES) >= 8, SERVICES
    for language in ("Python", "Go", "Node.js", "Java"):
        assert language in languages, (language, languages)


@pytest.mark.parametrize("name", SERVICES)
def test_every_table_is_complete(name: str) -> None:
    """A row for every conformance requirement, each with a verdict and a reason."""
    rows = _table(name)["verdicts"]
    missing = [rid for rid in CONFORMANCE_IDS if rid not in rows]
    unknown = sorted(set(rows) - set(CONFORMANCE_IDS))
    bad = [
        rid
        for rid, row in rows.items()
        if row.get("verdict") not in VERDICTS
        or not row.get("why")
        or not set(row.get("timing_dependent", ())) <= VERDICTS
    ]
    assert not (missing or unknown or bad), f"{name}: missing {missing}, unknown {unknown}, malformed {bad}"


@pytest.mark.integration
@pytest.mark.parametrize("name", SERVICES)
def test_verdicts_match_the_table(name: str, tmp_path: Path) -> None:
    service = CORPUS / name
    if not (service / ".build" / ".done").exists():
        pytest.fail(f"{name} is not built: run scripts/build-corpus {name} (scripts/run tests does)")
    run = cli_run(tmp_path, "--mode", "local", profile=service / "conformance.yaml")
    assert (run.report_dir / "conformance-report.json").exists(), run.stderr[-2000:]
    rows = _table(name)["verdicts"]
    results = {r["id"]: r for r in run.report["results"]}
    wrong = []
    for rid in CONFORMANCE_IDS:
        want, got = STATUS[rows[rid]["verdict"]], results[rid]["status"]
        # A row whose service behaves by timing (documented in the table) names the other verdict it allows.
        allowed = {want, *(STATUS[v] for v in rows[rid].get("timing_dependent", ()))}
        if got not in allowed:
            wrong.append(
                f"  {rid}: table {rows[rid]['verdict']} ({rows[rid]['why']})\n"
                f"  {'':8} harness {got}: {results[rid]['message'][:300]}"
            )
    assert not wrong, f"{name}: {len(wrong)} verdict(s) differ from the table:\n" + "\n".join(wrong)
    _no_pass_without_evidence(run)


def _no_pass_without_evidence(run: CliRun) -> None:
    empty = [
        r["id"] for r in run.report["results"] if r["status"] == "passed" and not any(r["examined"].values())
    ]
    assert not empty, f"passed with nothing examined: {empty}"


@pytest.mark.integration
def test_otlp_metrics_without_the_collector_are_errors_never_passed(tmp_path: Path) -> None:
    """metrics.source: otlp on the embedded fallback (OBSCONFORM_TELEMETRY=embedded): the
    collector's exporter does not exist, so every requirement that reads it is ``error`` with the
    reason and the fix, never passed and never not applicable."""
    service = CORPUS / "py-fastapi-stderr"
    if not (service / ".build" / ".done").exists():
        pytest.fail("py-fastapi-stderr is not built: run scripts/build-corpus py-fastapi-stderr")
    run = cli_run(
        tmp_path,
        "--mode",
        "local",
        profile=service / "conformance.yaml",
        env={"OBSCONFORM_TELEMETRY": "embedded"},
    )
    results = {r["id"]: r for r in run.report["results"]}
    for rid in [f"MET-{n:03d}" for n in range(1, 11)] + ["PII-004"]:
        assert results[rid]["status"] == "error", (rid, results[rid]["message"])
    for rid in [f"MET-{n:03d}" for n in range(1, 11)]:
        message = results[rid]["message"]
        assert "OBSCONFORM_TELEMETRY=embedded" in message and "scripts/build-telemetry" in message, message
